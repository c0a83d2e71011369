"""FaceApp: what ``polyhead face ...`` and the demo's face tab call.

>>> app = FaceApp().load()                                  # the shipped weights
>>> result = app.predict_image(read_image("group.jpg"))     # doctest: +SKIP
>>> [f["box"] for f in result.to_json()["faces"]]           # doctest: +SKIP
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from shared.app import App, Command, DemoProbe, DemoTab
from shared.errors import InputError


class FaceApp(App):
    name = "face"
    title = "Face"
    description = "faces: MTCNN-style cascade (boxes + 5 points), alignment, age and gender, blur, tracking"
    examples = {
        "predict": "examples:\n  polyhead face predict group.jpg --out runs/predict\n"
        "  polyhead face predict clip.mp4 --blur\n  polyhead face predict photos/ --save-crops --min-size 30",
        "train": "examples:\n  polyhead face train --data datasets/face.yaml --stage pnet --epochs 12 --batch 256\n"
        "  polyhead face train --data datasets/face.yaml --stage attributes --epochs 8 --batch 64",
        "val": "example:\n  polyhead face val --data datasets/face.yaml --json runs/face_val.json",
    }

    def __init__(self):
        self.nets: dict = {}
        self.card: dict = {}
        self.detector = None
        self.attr = None
        self.blur = False
        self.save_crops = False

    # ------------------------------------------------------------ CLI
    def add_arguments(self, mode: str, parser: argparse.ArgumentParser) -> None:
        if mode == "train":
            from apps.face.training import add_train_arguments

            add_train_arguments(parser)

    def train(self, args: argparse.Namespace) -> int:
        if args.stage == "attributes":
            from apps.face.attributes import train_attributes

            return train_attributes(args)
        from apps.face.training import train_stage

        return train_stage(args)
