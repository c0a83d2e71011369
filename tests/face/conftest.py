"""Shared fixtures of the face tests."""

from pathlib import Path

import pytest

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "face.safetensors"


@pytest.fixture(scope="session")
def cascade_only_weights(tmp_path_factory) -> Path:
    """The shipped face weights without their single-shot part (cascade + attributes), with their card."""
    import json

    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("cascade_only") / "face.safetensors"
    state = {k: v for k, v in load_file(str(WEIGHTS)).items() if not k.startswith("single.")}
    save_file(state, str(out), metadata={"format": "pt", "polyhead": "1", "app": "face"})
    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    for key in ("single_model", "single_shot", "single_shot_figures"):
        card.pop(key, None)
    card["default_detector"] = "cascade"
    card.get("parts", {}).pop("single", None)
    out.with_suffix(".json").write_text(json.dumps(card))
    return out
