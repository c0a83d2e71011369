"""The demo shell: a tab per registered app, served on loopback, callable through gradio_client."""

import socket

import numpy as np
import pytest

from polyhead.io import write_image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served_demo(tiny_weights, monkeypatch):
    from polyhead import demo as demo_mod
    from polyhead.apps.driving.app import DrivingApp

    app = DrivingApp().load(tiny_weights)
    demo = demo_mod.build_demo({"driving": app})
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, max_file_size="100kb")
    yield demo, port
    demo.close()


def test_demo_has_a_tab_per_app_and_answers(served_demo, tmp_path):
    from gradio_client import Client, handle_file

    demo, port = served_demo
    config = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"tab-driving", "driving-in-img", "driving-out-img", "driving-json"} <= ids
    from polyhead.apps.driving.synthetic import road_scene

    img = tmp_path / "road.jpg"
    write_image(img, road_scene(np.random.default_rng(1), (180, 320)).image)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    overlay, result = client.predict(handle_file(str(img)), 0.25, api_name="/driving_image")
    assert result["image_size"] == {"height": 180, "width": 320}
    assert {"objects", "drivable_share", "lanes"} <= set(result)


def test_demo_binds_to_loopback_by_default():
    import inspect

    from polyhead.demo import launch

    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"


def test_oversized_and_malformed_uploads_get_messages_and_the_worker_lives(served_demo, tmp_path):
    import httpx
    from gradio_client import Client, handle_file

    from polyhead.apps.driving.synthetic import road_scene

    _, port = served_demo
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 300_000)
    r = httpx.post(f"http://127.0.0.1:{port}/gradio_api/upload", files={"files": ("big.jpg", big.read_bytes())})
    assert r.status_code == 413 and "size" in r.text.lower()
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"definitely not a jpeg" * 50)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    with pytest.raises(Exception) as err:
        client.predict(handle_file(str(junk)), 0.25, api_name="/driving_image")
    assert "Traceback" not in str(err.value)
    good = tmp_path / "road.jpg"
    write_image(good, road_scene(np.random.default_rng(2), (180, 320)).image)
    _, result = client.predict(handle_file(str(good)), 0.25, api_name="/driving_image")  # still serving
    assert "objects" in result
