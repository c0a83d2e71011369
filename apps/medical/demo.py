"""The medical tab: pick the PH2 (lesion + diagnosis) or DRIVE (vessels) model, image -> overlay + JSON;
a NIfTI volume -> segmented slice by slice (or taken as labels) -> 3-D surface mesh."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).parent / "examples"
MODELS = {"PH2 lesion + diagnosis": "ph2", "DRIVE vessels": "drive"}


class ModelCache:
    """One loaded MedicalApp per shipped model and TTA setting."""

    def __init__(self, app):
        self.app, self.loaded = app, {}

    def get(self, model_name: str, tta: bool = False):
        from apps.medical.app import MedicalApp

        key = (MODELS.get(model_name, "ph2"), bool(tta))
        if key not in self.loaded:
            app = MedicalApp() if self.loaded else self.app
            self.loaded[key] = app.load(key[0], tta=key[1])
        return self.loaded[key]


def volume_to_mesh(app, path: str, out_dir: Path) -> tuple[str, dict]:
    """A label volume (few integer values) is meshed directly; an image volume is segmented first."""
    from apps.medical.volume import read_volume, write_surface
    from apps.medical.volume_predict import segment_volume

    vol = read_volume(path)
    values = np.unique(vol.data) if vol.data.dtype.kind in "iub" or np.all(np.mod(vol.data, 1) == 0) else None
    if values is not None and len(values) <= 8:
        labels, how = vol.data.astype(np.uint8), "label volume meshed directly"
    else:
        _, labels, _ = segment_volume(app, path)
        how = f"segmented slice by slice with {Path(str(app.weights_path)).stem}"
    if not (labels > 0).any():
        raise ValueError("the volume has no foreground to mesh")
    mesh_path = out_dir / "surface.ply"  # open3d writes GLB buffers as data URIs that some readers reject
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

    from apps.medical.data import to_rgb
    from shared.errors import InputError

    cache = ModelCache(app)
    gr.Markdown(
        "Coloured outlines are the predicted lesion or vessels; the JSON gives each region's area and, for the "
        "PH2 model, the diagnosis probabilities (research models trained on 120 / 16 images: **not for clinical "
        "use**). Large images run in overlapping windows."
    )
    with gr.Row():
        with gr.Column():
            image_in = gr.Image(type="numpy", label="Image", elem_id="medical-in-img")
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

    def on_image(img, model_name: str, use_tta: bool):
        if img is None:
            raise gr.Error("Upload an image or pick an example first.")
        try:
            result = cache.get(model_name, use_tta).predict_image(img)
        except InputError as e:
            raise gr.Error(str(e)) from None
        return result.plot(to_rgb(img)), result.to_json()

    def on_volume(file, model_name: str, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 (gradio idiom)
        if file is None:
            raise gr.Error("Upload a .nii or .nii.gz volume first.")
        path = file if isinstance(file, str) else file.name
        try:
            return volume_to_mesh(cache.get(model_name), path, Path(tempfile.mkdtemp(prefix="polyhead_")))
        except (InputError, ValueError) as e:
            raise gr.Error(str(e)) from None

    run.click(on_image, [image_in, model, tta], [image_out, json_out], api_name="medical_image", concurrency_limit=2)
    run_vol.click(on_volume, [vol_in, model], [mesh_out, vol_json], api_name="medical_volume", concurrency_limit=1)
