"""DrivingApp: what ``polyhead driving ...`` and the demo's driving tabs call.

>>> app = DrivingApp().load()                            # the shipped weights
>>> result = app.predict_image(read_image("street.jpg"))  # doctest: +SKIP
>>> result.to_json()["lanes"][0]["points"][:2]            # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from polyhead.app import App, Command, DemoProbe, DemoTab, lazy
from polyhead.apps.driving.model import CLASSES, INPUT_SIZE
from polyhead.apps.driving.postprocess import DrivingResult, postprocess
from polyhead.cli import positive_int
from polyhead.encoders import DEFAULT_ENCODER
from polyhead.errors import InputError
from polyhead.preprocess import Letterbox, card_normalisation, check_input_size, to_tensor
from polyhead.ship import ship_command


class DrivingApp(App):
    name = "driving"
    title = "Driving"
    description = "traffic objects + drivable area + lane lines (camera); LiDAR ground, obstacles and boxes"
    artifact_suffixes = ("_drivable.png", "_lane.png")  # the masks of an image, beside its overlay and JSON
    examples = {
        "predict": "examples:\n  polyhead driving predict dashcam.mp4 --out runs/predict\n"
        "  polyhead driving predict 'frames/*.jpg' --conf 0.3 --tasks det lane",
        "train": "examples:\n  polyhead driving convert --source ../shared/data/driving --out runs/data/driving\n"
        "  polyhead driving train --data datasets/driving.yaml --epochs 60",
        "val": "example:\n  polyhead driving val --data datasets/driving.yaml --json runs/val.json",
        "export": "example:\n  polyhead driving export --out weights/driving.onnx",
    }

    def __init__(self):
        self.model = None
        self.card: dict = {}
        self.imgsz = INPUT_SIZE
        self.names = list(CLASSES)
        self.conf, self.iou = 0.25, 0.45
        self.norm = card_normalisation({})

    # ------------------------------------------------------------ model
    def load(
        self,
        weights=None,
        conf: float = 0.25,
        iou: float = 0.45,
        tasks=None,
        imgsz=None,
        trust_pickle: bool = False,
        runtime: str = "auto",
    ) -> DrivingApp:
        """Load weights; ``runtime`` ``"auto"`` (default) runs safetensors weights in ONNX Runtime, exported
        once at the input size and cached (about 1.5-2x torch eager on CPUs), and falls back to torch with a
        warning when the export fails; ``"torch"``, ``"onnx"``, ``"openvino"`` force one. An ``.onnx`` file
        always runs in ONNX Runtime (or OpenVINO when asked)."""
        from polyhead.runtime import load_network

        path = self.resolve_weights(weights)
        size = tuple(imgsz) if imgsz else None
        self.model, self.card = load_network(path, runtime, input_size=size, trust_pickle=trust_pickle)
        self.names = list(self.card.get("classes", CLASSES))
        self.norm = card_normalisation(self.card)
        self.imgsz = check_input_size(tuple(imgsz or self.card.get("input_size", INPUT_SIZE)))
        if getattr(self.model, "input_size", None) and tuple(self.model.input_size) != self.imgsz:
            raise InputError(path, f"this ONNX file takes {self.model.input_size[1]}x{self.model.input_size[0]} input")
        self.conf = conf if conf is not None else float(self.card.get("recommended_conf", 0.25))
        self.iou = iou
        if tasks:
            unknown = set(tasks) - set(self.model.tasks)
            if unknown:
                raise InputError(path, f"model has no task {sorted(unknown)}; it has {self.model.tasks}")
            self.model.active_tasks = list(tasks)
        return self

    def ensure_loaded(self) -> None:
        if self.model is None:
            self.load()

    # ------------------------------------------------------------ inference
    def preprocess(self, rgb: np.ndarray) -> tuple[torch.Tensor, Letterbox]:
        lb = Letterbox.fit(rgb.shape[:2], self.imgsz)
        return to_tensor(lb.apply(rgb), *self.norm), lb

    @torch.inference_mode()
    def predict_images(
        self, images: list[np.ndarray], *, conf: float | None = None, iou: float | None = None
    ) -> list[DrivingResult]:
        """A batch of RGB uint8 images (any sizes) -> one result each, in original pixels.

        ``conf`` / ``iou`` apply to this call only (default: the loaded settings); nothing is stored."""
        self.ensure_loaded()
        conf, iou = self._thresholds(conf, iou)
        prepared = [self.preprocess(im) for im in images]
        outputs = self.model(torch.stack([x for x, _ in prepared]))
        return postprocess(outputs, [lb for _, lb in prepared], self.names, conf, iou)

    def predict_image(self, rgb: np.ndarray, *, conf: float | None = None, iou: float | None = None) -> DrivingResult:
        return self.predict_images([rgb], conf=conf, iou=iou)[0]

    def _thresholds(self, conf: float | None, iou: float | None) -> tuple[float, float]:
        conf = self.conf if conf is None else float(conf)
        iou = self.iou if iou is None else float(iou)
        if not (0 <= conf <= 1 and 0 <= iou <= 1):
            raise InputError(None, f"conf and iou must be in [0, 1], got {conf} and {iou}")
        return conf, iou

    def video_stages(self, *, conf: float | None = None, iou: float | None = None):
        """Model in one thread, NMS + masks + lane fitting + BYTETrack ids in the drawing thread; ``conf`` /
        ``iou`` hold for this run only (default: the loaded settings)."""
        from polyhead.tracking import BoxTracker, TrackedFinish

        self.ensure_loaded()
        conf, iou = self._thresholds(conf, iou)

        @torch.inference_mode()
        def infer(rgb: np.ndarray):
            x, lb = self.preprocess(rgb)
            return self.model(x[None]), lb

        def finish(raw) -> DrivingResult:
            outputs, lb = raw
            return postprocess(outputs, [lb], self.names, conf, iou)[0]

        def assign(result: DrivingResult, tracker: BoxTracker) -> None:
            result.track_ids = tracker.update(result.boxes, result.scores, result.classes)

        return infer, TrackedFinish(finish, assign, lambda: BoxTracker(conf=conf))

    # ------------------------------------------------------------ CLI
    def add_arguments(self, mode: str, parser: argparse.ArgumentParser) -> None:
        if mode == "predict":
            parser.add_argument("--conf", type=float, help="box confidence threshold (default: the card's, else 0.25)")
            parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold")
            parser.add_argument("--tasks", nargs="+", choices=["det", "drivable", "lane"], help="run only these heads")
            parser.add_argument(
                "--runtime",
                choices=["auto", "torch", "onnx", "openvino"],
                default="auto",
                help="auto (default: ONNX Runtime, torch if the export fails), torch eager, ONNX Runtime or "
                "OpenVINO (bfloat16 on CPUs with AMX; the openvino extra); safetensors weights are exported "
                "once and cached",
            )
        elif mode == "train":
            parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder name (see polyhead.encoders)")
        elif mode == "val":
            parser.add_argument("--batch", type=positive_int, default=4)
            parser.add_argument("--plots", help="folder for PR / F1 curves and the confusion matrix (PNGs)")

    def load_options(self, args: argparse.Namespace) -> dict:
        return {
            "conf": args.conf,
            "iou": args.iou,
            "tasks": args.tasks,
            "trust_pickle": args.trust_pickle,
            "runtime": getattr(args, "runtime", "auto"),
        }

    def run_train(self, args: argparse.Namespace) -> int:
        from polyhead.apps.driving.training import train

        return train(args)

    def run_val(self, args: argparse.Namespace) -> int:
        from polyhead.apps.driving.data import DrivingDataset, load_spec
        from polyhead.apps.driving.evaluate import evaluate
        from polyhead.io.writers import write_json

        self.load(args.weights, trust_pickle=args.trust_pickle)
        spec = load_spec(args.data)
        ds = DrivingDataset(spec, args.split, imgsz=self.imgsz, norm=self.norm)
        metrics = evaluate(self.model, ds, batch_size=args.batch, plot_dir=getattr(args, "plots", None))
        print(json.dumps(metrics, indent=2))
        if args.json:
            write_json(
                args.json,
                {
                    "weights": str(args.weights or self.default_weights),
                    "data": str(args.data),
                    "split": args.split,
                    "metrics": metrics,
                },
            )
        return 0

    # ------------------------------------------------------------ run-level files (summary.csv, --save-txt/-coco)
    def detections(self, doc: dict):
        from polyhead.io.boxes import Detections

        return Detections.from_json(doc.get("objects", []), self.names)

    def summary_row(self, doc: dict) -> dict:
        """Boxes per class, the drivable share and the number of lanes."""
        row: dict = super().summary_row(doc)
        if "drivable_share" in doc:
            row["drivable_share"] = doc["drivable_share"]
        if "lanes" in doc:
            row["lanes"] = len(doc["lanes"])
        return row

    def extra_modes(self) -> dict[str, Command]:
        return {
            "convert": Command(
                "convert CamVid / TuSimple / clip pseudo-labels into the BDD100K layout",
                lazy("polyhead.apps.driving.convert", "add_convert_arguments"),
                lazy("polyhead.apps.driving.convert", "run_convert"),
            ),
            "audit": Command(
                "held-out checks before shipping: TuSimple lanes, lane placement on CamVid, BDD100K boxes",
                lazy("polyhead.apps.driving.audit", "add_audit_arguments"),
                lazy("polyhead.apps.driving.audit", "run_audit"),
                "example:\n  polyhead driving audit --weights runs/train/driving/best.safetensors --out runs/audit",
            ),
            "lidar": Command(
                "LiDAR scans: ground, obstacles, 3D boxes, BEV, camera overlay",
                lazy("polyhead.apps.driving.lidar.cli", "add_lidar_arguments"),
                lazy("polyhead.apps.driving.lidar.cli", "run_lidar"),
                "example:\n  polyhead driving lidar velodyne/ --calib calib/ --image image_2/ --out runs/lidar",
            ),
            "ship": ship_command("driving", "polyhead.apps.driving.training"),
            "lidar-val": Command(
                "LiDAR clusters vs KITTI label_2 boxes: recall at 2 m, ground height error",
                lazy("polyhead.apps.driving.lidar.cli", "add_lidar_val_arguments"),
                lazy("polyhead.apps.driving.lidar.cli", "run_lidar_val"),
            ),
        }

    def benchmarks(self) -> dict[str, Command]:
        return {
            "driving": Command(
                "3-task vs 3 single-task models, torch vs ONNX Runtime, end-to-end video",
                lazy("polyhead.apps.driving.bench", "add_bench_arguments"),
                lazy("polyhead.apps.driving.bench", "run_bench"),
            ),
            "lidar": Command(
                "LiDAR pipeline scans/s by stage",
                lazy("polyhead.apps.driving.lidar.cli", "add_bench_lidar_arguments"),
                lazy("polyhead.apps.driving.lidar.cli", "run_bench_lidar"),
            ),
        }

    def demo_tabs(self) -> list[DemoTab]:
        from polyhead.apps.driving.demo import EXAMPLES, build_camera_tab

        tabs = [
            DemoTab(
                "Driving camera",
                "tab-driving",
                lambda: build_camera_tab(self),
                example=sorted(EXAMPLES.glob("*.jpg"))[0],
                input_id="driving-in-img",
                run_id="driving-run",
                output_id="driving-out-img",
                json_id="driving-json",
                json_keys=("objects", "drivable_share", "lanes"),
            )
        ]
        from polyhead.apps.driving.lidar.cli import build_lidar_tab

        lidar = DemoTab(
            "Driving LiDAR",
            "tab-lidar",
            build_lidar_tab,
            example=EXAMPLES / "generated_street_scan.npy",
            input_id="lidar-in",
            run_id="lidar-run",
            output_id="lidar-bev",
            json_id="lidar-json",
            json_keys=("boxes", "ground_plane"),
        )
        return [*tabs, lidar]

    def demo_probes(self) -> list[DemoProbe]:
        from polyhead.apps.driving.demo import EXAMPLES

        def inputs():
            from gradio_client import handle_file

            return [handle_file(str(sorted(EXAMPLES.glob("*.jpg"))[0])), 0.25]

        def check(answer) -> bool:
            _, doc = answer
            return {"objects", "drivable_share", "lanes"} <= set(doc)

        def lidar_inputs():
            from gradio_client import handle_file

            return [handle_file(str(EXAMPLES / "generated_street_scan.npy"))]

        def lidar_check(answer) -> bool:
            _, _, doc = answer
            return len(doc.get("boxes", [])) >= 3 and doc.get("ground_plane") is not None

        return [DemoProbe("/driving_image", inputs, check), DemoProbe("/lidar_scan", lidar_inputs, lidar_check)]
