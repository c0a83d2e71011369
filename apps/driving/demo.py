"""The driving camera tab: image -> overlay + JSON; video -> processed H.264 video."""

from __future__ import annotations

from pathlib import Path

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
from polyhead.io.writers import write_image

EXAMPLES = Path(__file__).parent / "examples"


def _default_conf(app) -> float:
    from polyhead.weights import load_card

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
            image_in = gr.Image(type="filepath", image_mode=None, label="Dash-cam image", elem_id="driving-in-img")
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

    @demo_job(IMAGE_TIMEOUT)
    def on_image(path: str | None, c: float) -> tuple[str, dict]:
        """One request: the box threshold is this call's own; the overlay is a file of this request."""
        if not path:
            raise gr.Error("Upload an image or pick an example first.")
        rgb = read_upload(path)
        result = ensure_loaded(app).predict_image(rgb, conf=c)
        return str(write_image(job_file("driving.jpg"), result.plot(rgb), quality=90)), result.to_json()

    @demo_job(LONG_TIMEOUT)
    def on_video(path: str | None, c: float, progress=gr.Progress(track_tqdm=True)) -> str:  # noqa: B008 (gradio idiom)
        from polyhead.predict import predict_video

        if not path:
            raise gr.Error("Upload a video or pick an example first.")
        check_video(path)
        infer, finish = ensure_loaded(app).video_stages(conf=c)

        def checked(rgb: np.ndarray):
            check_deadline()
            return infer(rgb)

        out = job_file("driving.mp4")
        predict_video(path, out, checked, finish=finish, progress=True)
        return str(out)

    run.click(on_image, [image_in, conf], [image_out, json_out], api_name="driving_image", concurrency_limit=2)
    run_video.click(on_video, [video_in, conf], video_out, api_name="driving_video", concurrency_limit=1)
