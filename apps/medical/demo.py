"""The medical tab: pick the PH2 (lesion + diagnosis) or DRIVE (vessels) model, image -> overlay + JSON;
a NIfTI volume -> segmented slice by slice (or taken as labels) -> 3-D surface mesh."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from polyhead.demo_jobs import (
    IMAGE_TIMEOUT,
    LONG_TIMEOUT,
    check_deadline,
    check_volume,
    demo_job,
    job_file,
    read_upload,
    upload_path,
)

EXAMPLES = Path(__file__).parent / "examples"
MODELS = {"PH2 lesion + diagnosis": "ph2", "DRIVE vessels": "drive"}


class ModelCache:
    """One loaded MedicalApp per shipped model and TTA setting (loaded once, under a lock, so two
    first requests never load into the same object)."""

    def __init__(self, app):
        self.app, self.loaded = app, {}
        self._lock = threading.Lock()

    def get(self, model_name: str, tta: bool = False):
        from polyhead.apps.medical.app import MedicalApp

        key = (MODELS.get(model_name, "ph2"), bool(tta))
        with self._lock:
            if key not in self.loaded:
                app = MedicalApp() if self.loaded else self.app
                self.loaded[key] = app.load(key[0], tta=key[1])
            return self.loaded[key]


class _Checked:
    """An app whose ``predict_image`` first checks the job's deadline (stops a long volume per slice)."""

    def __init__(self, app):
        self._app = app

    def predict_image(self, rgb: np.ndarray):
        check_deadline()
        return self._app.predict_image(rgb)

    def __getattr__(self, name: str):
        return getattr(self._app, name)


def volume_to_mesh(app, path: str, out_dir: Path | None = None) -> tuple[str, dict]:
    """A label volume (few integer values) is meshed directly; an image volume is segmented first.
    Volumes over the demo's voxel budget are refused before their voxels are read."""
    from polyhead.apps.medical.volume import read_volume, write_surface
    from polyhead.apps.medical.volume_predict import segment_volume

    check_volume(path)
    vol = read_volume(path)
    values = np.unique(vol.data) if vol.data.dtype.kind in "iub" or np.all(np.mod(vol.data, 1) == 0) else None
    if values is not None and len(values) <= 8:
        labels, how = vol.data.astype(np.uint8), "label volume meshed directly"
    else:
        _, labels, _ = segment_volume(_Checked(app), path)
        how = f"segmented slice by slice with {Path(str(app.weights_path)).stem}"
    if not (labels > 0).any():
        raise ValueError("the volume has no foreground to mesh")
    check_deadline()
    # open3d writes GLB buffers as data URIs that some readers reject; the mesher bounds its own grid
    mesh_path = (out_dir / "surface.ply") if out_dir is not None else job_file("surface.ply")
    write_surface(mesh_path, labels > 0, vol.spacing)
    doc = {
        "shape": list(labels.shape),
        "spacing_mm": list(vol.spacing),
        "how": how,
        "foreground_voxels": int((labels > 0).sum()),
        "volume_mm3": round(float((labels > 0).sum() * np.prod(vol.spacing)), 3),
    }
    return str(mesh_path), doc


def build_medical_tab(app) -> None:
    import gradio as gr

    from polyhead.apps.medical.data import to_rgb

    cache = ModelCache(app)
    gr.Markdown(
        "Coloured outlines are the predicted lesion or vessels; the JSON gives each region's area and, for the "
        "PH2 model, the diagnosis probabilities (research models trained on 120 / 16 images: **not for clinical "
        "use**). Large images run in overlapping windows."
    )
    with gr.Row():
        with gr.Column():
            image_in = gr.Image(type="filepath", image_mode=None, label="Image", elem_id="medical-in-img")
            model = gr.Dropdown(list(MODELS), value=next(iter(MODELS)), label="Model", elem_id="medical-model")
            tta = gr.Checkbox(False, label="flip test-time augmentation (slower)")
            run = gr.Button("Run", variant="primary", elem_id="medical-run")
            examples = sorted(str(p) for p in EXAMPLES.glob("generated_*.jpg"))
            if examples:
                gr.Examples(examples, inputs=image_in)
        with gr.Column():
            image_out = gr.Image(label="Result", elem_id="medical-out-img")
            json_out = gr.JSON(label="Result JSON", elem_id="medical-json")
    with gr.Accordion("Volume (NIfTI) -> 3-D surface", open=False):
        with gr.Row():
            vol_in = gr.File(label="NIfTI volume (.nii / .nii.gz)", elem_id="medical-in-vol")
            mesh_out = gr.Model3D(label="Surface mesh", elem_id="medical-mesh")
        vol_json = gr.JSON(label="Volume JSON", elem_id="medical-vol-json")
        run_vol = gr.Button("Mesh the volume", elem_id="medical-run-vol")
        vols = sorted(str(p) for p in EXAMPLES.glob("*.nii.gz"))
        if vols:
            gr.Examples(vols, inputs=vol_in)

    @demo_job(IMAGE_TIMEOUT)
    def on_image(path: str | None, model_name: str, use_tta: bool) -> tuple[str, dict]:
        """One request: model and TTA pick a loaded app (none is changed); the overlay is this request's."""
        from polyhead.io.writers import write_image

        if not path:
            raise gr.Error("Upload an image or pick an example first.")
        rgb = read_upload(path)
        result = cache.get(model_name, use_tta).predict_image(rgb)
        return str(write_image(job_file("medical.png"), result.plot(to_rgb(rgb)))), result.to_json()

    @demo_job(LONG_TIMEOUT)
    def on_volume(file, model_name: str, progress=gr.Progress(track_tqdm=True)) -> tuple[str, dict]:  # noqa: B008
        from polyhead.apps.medical.volume import is_nifti

        path = upload_path(file)
        if not path:
            raise gr.Error("Upload a .nii or .nii.gz volume first.")
        if not is_nifti(path):
            raise gr.Error("Upload a NIfTI volume (.nii or .nii.gz).")
        return volume_to_mesh(cache.get(model_name), path)

    run.click(on_image, [image_in, model, tta], [image_out, json_out], api_name="medical_image", concurrency_limit=2)
    run_vol.click(on_volume, [vol_in, model], [mesh_out, vol_json], api_name="medical_volume", concurrency_limit=1)
