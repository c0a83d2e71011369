"""``polyhead demo``: one Gradio Blocks app with a tab per registered app (loopback, analytics off).

>>> demo = build_demo()          # doctest: +SKIP
>>> demo.launch(prevent_thread_lock=True)   # doctest: +SKIP
"""

from __future__ import annotations

import shared  # noqa: F401  (offline switches before gradio loads)

MAX_UPLOAD = "200mb"


def build_demo(apps: dict | None = None):
    import gradio as gr

    from shared.registry import discover_apps

    apps = discover_apps() if apps is None else apps
    with gr.Blocks(title="polyhead", analytics_enabled=False) as demo:
        gr.Markdown(
            "# polyhead\nPerception apps on one shared multi-task backbone. Pick a tab, load an "
            "example or your own file, press **Run**."
        )
        for app in apps.values():
            for tab in app.demo_tabs():
                with gr.Tab(tab.title, elem_id=tab.elem_id):
                    tab.build()
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True):
    """Build and serve the demo; uploads above ``MAX_UPLOAD`` are refused with a message."""
    demo = build_demo()
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        show_error=True,
    )
    return demo
