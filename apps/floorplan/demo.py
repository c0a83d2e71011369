"""The floor-plan demo tab: plan image -> coloured masks + vectors overlay, a 3D model (.glb) and JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polyhead.demo_jobs import IMAGE_TIMEOUT, demo_job, ensure_loaded, job_file, read_upload

EXAMPLES = Path(__file__).parent / "examples"
EXAMPLE = EXAMPLES / "generated_plan_0.jpg"


def build_tab(app) -> None:
    import gradio as gr

    gr.Markdown(
        "Rooms are coloured by type, **walls** dark, **doors** pink, **windows** blue. With a scale "
        "(pixels per metre) areas are in m² and the 3D model is in metres. The example plan is generated."
    )
    with gr.Row():
        with gr.Column():
            image_in = gr.Image(type="filepath", image_mode=None, label="Floor plan", elem_id="floorplan-in-img")
            scale = gr.Number(value=0, label="scale: pixels per metre (0 = unknown)", minimum=0)
            tta = gr.Checkbox(value=False, label="average over mirror images (more accurate, ~3.6x slower)")
            run = gr.Button("Run", variant="primary", elem_id="floorplan-run")
            examples = sorted(str(p) for p in EXAMPLES.glob("*.jpg"))
            if examples:
                gr.Examples(examples, inputs=image_in)
        with gr.Column():
            image_out = gr.Image(label="Rooms, walls, openings", elem_id="floorplan-out-img")
            model_out = gr.Model3D(label="3D (walls with openings, room floors)", elem_id="floorplan-3d")
    json_out = gr.JSON(label="Result JSON", elem_id="floorplan-json")

    @demo_job(IMAGE_TIMEOUT)
    def on_image(path: str | None, px_per_m: float | None, mirrored: bool = False) -> tuple[str, str | None, dict]:
        """One request: the scale and the mirror averaging are this call's own; the overlay and the .glb
        are files of this request."""
        from polyhead.apps.floorplan.postprocess import write_glb
        from polyhead.io.writers import write_image

        if not path:
            raise gr.Error("Upload a plan image or pick the example first.")
        if px_per_m is not None and not px_per_m >= 0:
            raise gr.Error("The scale must be 0 (unknown) or a positive number of pixels per metre.")
        rgb = read_upload(path)
        result = ensure_loaded(app).predict_image(rgb, scale=float(px_per_m) if px_per_m else None, tta=bool(mirrored))
        glb = str(write_glb(job_file("floorplan.glb"), result.to_mesh())) if (result.rooms or result.walls) else None
        return str(write_image(job_file("floorplan.png"), result.plot(rgb))), glb, result.to_json()

    run.click(
        on_image,
        [image_in, scale, tta],
        [image_out, model_out, json_out],
        api_name="floorplan_image",
        concurrency_limit=2,
    )


def write_example(path: Path = EXAMPLE, seed: int = 14, size: tuple[int, int] = (512, 512)) -> Path:
    """(Re)create the demo's example plan with the synthetic generator."""
    from polyhead.apps.floorplan.synthetic import synthetic_plan
    from polyhead.io import write_image

    return write_image(path, synthetic_plan(np.random.default_rng(seed), size).image)
