"""The demo as a person uses it: headless Chromium opens each tab, uploads, clicks Run, sees results.

Screenshots land in ``runs/screenshots/`` (a test artifact). Skips without Debian's Chromium.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "runs" / "screenshots"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyhead", "demo", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"demo exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("demo did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _tabs():
    from polyhead.registry import discover_apps

    return [t for app in discover_apps().values() for t in app.demo_tabs() if t.example is not None]


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--use-angle=swiftshader",  # software WebGL, so the 3-D views render without a GPU
                "--enable-unsafe-swiftshader",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.mark.parametrize("tab", _tabs(), ids=lambda t: t.elem_id)
def test_tab_runs_in_a_real_browser(browser, demo_url, tab):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(demo_url, wait_until="networkidle")
        page.locator(f"#{tab.elem_id}-button").click()
        page.set_input_files(f"#{tab.input_id} input[type=file]", str(tab.example))
        page.wait_for_timeout(500)
        page.locator(f"#{tab.run_id}").click()
        expect(page.locator(f"#{tab.output_id} {tab.output_kind}").first).to_be_visible(timeout=120_000)
        if tab.json_id:
            text = page.locator(f"#{tab.json_id}").inner_text(timeout=30_000)
            for key in tab.json_keys:
                assert key in text, (key, text[:500])
        page.wait_for_timeout(2000)  # let 3-D views (WebGL) draw before the screenshot
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{tab.elem_id}.png"), full_page=True)
    finally:
        page.close()
