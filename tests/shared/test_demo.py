"""The demo shell: a tab per registered app, served on loopback, callable through gradio_client."""

import socket

import numpy as np
import pytest

from shared.io import write_image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served_demo(tiny_weights, monkeypatch):
    from apps.driving.app import DrivingApp
    from shared import demo as demo_mod

    app = DrivingApp().load(tiny_weights)
    demo = demo_mod.build_demo({"driving": app})
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield demo, port
    demo.close()


def test_demo_has_a_tab_per_app_and_answers(served_demo, tmp_path):
    from gradio_client import Client, handle_file

    demo, port = served_demo
    config = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"tab-driving", "driving-in-img", "driving-out-img", "driving-json"} <= ids
    from apps.driving.synthetic import road_scene

    img = tmp_path / "road.jpg"
    write_image(img, road_scene(np.random.default_rng(1), (180, 320)).image)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    overlay, result = client.predict(handle_file(str(img)), 0.25, api_name="/driving_image")
    assert result["image_size"] == {"height": 180, "width": 320}
    assert {"objects", "drivable_share", "lanes"} <= set(result)


def test_demo_binds_to_loopback_by_default():
    import inspect

    from shared.demo import launch

    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"
