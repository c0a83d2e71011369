"""The driving camera tab: image -> overlay + JSON; video -> processed H.264 video."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).parent / "examples"


def _default_conf(app) -> float:
    from shared.weights import load_card

    try:
        return float(load_card(app.default_weights).get("recommended_conf", 0.25))
    except Exception:  # no shipped card: the generic default
        return 0.25


def build_camera_tab(app) -> None:
    import gradio as gr

    gr.Markdown(
        "Boxes are traffic objects, **green** is drivable road, **red** lines are lane polylines "
        "fitted to the lane mask. JSON coordinates are in the original image's pixels."
    )
    with gr.Row():
        with gr.Column():
            image_in = gr.Image(type="numpy", label="Dash-cam image", elem_id="driving-in-img")
            conf = gr.Slider(0.05, 0.9, value=_default_conf(app), step=0.05, label="box confidence")
            run = gr.Button("Run", variant="primary", elem_id="driving-run")
            examples = sorted(str(p) for p in EXAMPLES.glob("*.jpg"))
            if examples:
                gr.Examples(examples, inputs=image_in)
        with gr.Column():
            image_out = gr.Image(label="Result", elem_id="driving-out-img")
            json_out = gr.JSON(label="Result JSON", elem_id="driving-json")
    with gr.Accordion("Video", open=False):
        with gr.Row():
            video_in = gr.Video(label="Dash-cam video", elem_id="driving-in-video")
            video_out = gr.Video(label="Processed video", elem_id="driving-out-video")
        run_video = gr.Button("Run on video", elem_id="driving-run-video")
        clips = sorted(str(p) for p in EXAMPLES.glob("*.mp4"))
        if clips:
            gr.Examples(clips, inputs=video_in)

    def on_image(img: np.ndarray | None, c: float):
        if img is None:
            raise gr.Error("Upload an image or pick an example first.")
        app.ensure_loaded()
        app.conf = c
        result = app.predict_image(img[..., :3] if img.ndim == 3 else np.stack([img] * 3, -1))
        return result.plot(img[..., :3] if img.ndim == 3 else np.stack([img] * 3, -1)), result.to_json()

    def on_video(path: str | None, c: float, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 (gradio idiom)
        from shared.errors import InputError
        from shared.predict import predict_video

        if not path:
            raise gr.Error("Upload a video or pick an example first.")
        app.ensure_loaded()
        app.conf = c
        out = Path(tempfile.mkdtemp(prefix="polyhead_")) / f"{Path(path).stem}_driving.mp4"
        try:
            infer, finish = app.video_stages()
            predict_video(path, out, infer, finish=finish, progress=True)
        except InputError as e:
            raise gr.Error(str(e)) from None
        return str(out)

    run.click(on_image, [image_in, conf], [image_out, json_out], api_name="driving_image", concurrency_limit=2)
    run_video.click(on_video, [video_in, conf], video_out, api_name="driving_video", concurrency_limit=1)
