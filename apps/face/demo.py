"""The face tab: image (upload or webcam) -> annotated image + JSON; video -> annotated video.

The examples are three real CC0 photos of masked and unmasked adults in the street and on a train,
from the Kaggle "Face Mask Detection" set (andrewmvd, CC0 1.0; ``examples/ATTRIBUTION.md``), read from the
team data folder beside the project when it is there (third-party files are not committed); otherwise the
generated scene (``skimage.data.astronaut()``, NASA, public domain, on a generated background) is the example.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from polyhead.demo_jobs import (
    IMAGE_TIMEOUT,
    LONG_TIMEOUT,
    check_deadline,
    check_video,
    demo_job,
    ensure_loaded,
    job_file,
    read_upload,
)

EXAMPLES = Path(__file__).parent / "examples"
#: the CC0 face-mask photos in the team data folder beside the repository (absent in an installed copy)
CC0_FOLDER = Path(__file__).resolve().parents[3] / "shared" / "data" / "face" / "facemask_cc0"
#: the demo's real photos (see examples/ATTRIBUTION.md): a street, a rainy street, a commuter train
PHOTOS = [CC0_FOLDER / "images" / f"maksssksksss{n}.jpg" for n in (316, 334, 137)]
#: a generated scene with the public-domain astronaut portrait at two scales (always present)
GENERATED = EXAMPLES / "generated_astronaut.jpg"
#: the demo probe's example: the first photo when the data folder is there, else the generated scene
EXAMPLE = PHOTOS[0] if PHOTOS[0].is_file() else GENERATED


def render_example(size: tuple[int, int] = (480, 640), seed: int = 0) -> np.ndarray:
    """A 640x480 scene: a generated backdrop with the astronaut portrait at two scales."""
    from skimage import data

    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([90 + 60 * xx / w, 110 + 50 * yy / h, 150 - 40 * xx / w], -1)
    for _ in range(14):
        c = tuple(int(v) for v in rng.integers(40, 220, 3))
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.rectangle(img, p, (p[0] + int(rng.integers(20, 120)), p[1] + int(rng.integers(20, 120))), c, -1)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    astro = data.astronaut()
    big = cv2.resize(astro, (300, 300), interpolation=cv2.INTER_AREA)
    small = cv2.resize(astro[:, ::-1], (150, 150), interpolation=cv2.INTER_AREA)
    img[h - 330 : h - 30, 40:340] = big
    img[60:210, w - 210 : w - 60] = small
    return img


def ensure_example() -> Path:
    """The generated scene's file, written when missing."""
    if not GENERATED.is_file():
        from polyhead.io import write_image

        write_image(GENERATED, render_example(), quality=92)
    return GENERATED


def build_face_tab(app) -> None:
    import gradio as gr

    gr.Markdown(
        "Boxes are faces found by the P/R/O-Net cascade, dots the 5 points (eyes, nose, mouth corners); "
        "labels give gender (M/F) and estimated age. **Blur** anonymises the faces instead. JSON "
        'coordinates are in the original image\'s pixels. Example photos: Kaggle "Face Mask Detection" '
        "(andrewmvd), CC0 1.0."
    )
    with gr.Row():
        with gr.Column():
            image_in = gr.Image(
                type="filepath", image_mode=None, label="Image", sources=["upload", "webcam"], elem_id="face-in-img"
            )
            blur = gr.Checkbox(False, label="blur faces (anonymise)")
            run = gr.Button("Run", variant="primary", elem_id="face-run")
            photos = [str(p) for p in PHOTOS if p.is_file()] or [str(p) for p in (GENERATED,) if p.is_file()]
            if photos:
                gr.Examples(photos, inputs=image_in)
        with gr.Column():
            image_out = gr.Image(label="Result", elem_id="face-out-img")
            json_out = gr.JSON(label="Result JSON", elem_id="face-json")
    with gr.Accordion("Video (faces tracked with ids)", open=False):
        with gr.Row():
            video_in = gr.Video(label="Video", elem_id="face-in-video")
            video_out = gr.Video(label="Annotated video", elem_id="face-out-video")
        blur_video = gr.Checkbox(False, label="blur faces")
        run_video = gr.Button("Run on video", elem_id="face-run-video")

    @demo_job(IMAGE_TIMEOUT)
    def on_image(path: str | None, anonymise: bool) -> tuple[str, dict]:
        """One request: blur is this call's own; the picture is a file of this request."""
        from polyhead.apps.face.app import check_image
        from polyhead.io.writers import write_image

        if not path:
            raise gr.Error("Upload an image, take a webcam snapshot or pick the example first.")
        rgb = check_image(read_upload(path))
        result = ensure_loaded(app).predict_image(rgb, blur=bool(anonymise))
        return str(write_image(job_file("face.jpg"), result.plot(rgb), quality=90)), result.to_json()

    @demo_job(LONG_TIMEOUT)
    def on_video(path: str | None, anonymise: bool, progress=gr.Progress(track_tqdm=True)) -> str:  # noqa: B008
        from polyhead.predict import predict_video

        if not path:
            raise gr.Error("Upload a video first.")
        check_video(path)
        predict = ensure_loaded(app).tracked_predictor(blur=bool(anonymise))

        def fn(rgb: np.ndarray):
            check_deadline()
            return predict(rgb)

        out = job_file("face.mp4")
        predict_video(path, out, fn, progress=True)
        return str(out)

    run.click(on_image, [image_in, blur], [image_out, json_out], api_name="face_image", concurrency_limit=2)
    run_video.click(on_video, [video_in, blur_video], video_out, api_name="face_video", concurrency_limit=1)
