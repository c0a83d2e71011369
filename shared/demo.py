"""``polyhead demo``: one Gradio Blocks app with a tab per registered app (loopback, analytics off).

>>> demo = build_demo()          # doctest: +SKIP
>>> demo.launch(prevent_thread_lock=True)   # doctest: +SKIP
"""

from __future__ import annotations

import errno

from polyhead import offline

MAX_UPLOAD = "200mb"
#: Gradio's cache (uploads and result copies): every 10 minutes, files older than an hour are removed
DELETE_CACHE = (600, 3600)


def build_demo(apps: dict | None = None):
    """The Blocks app: a tab per app; Gradio's upload and result cache is cleaned by age
    (:data:`DELETE_CACHE`). Serve it with :func:`launch` (or :func:`serve`), which add the origin guard."""
    offline.apply()  # before gradio loads
    import gradio as gr

    from polyhead.registry import discover_apps

    apps = discover_apps() if apps is None else apps
    with gr.Blocks(title="polyhead", analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(
            "# polyhead\nPerception apps on one shared multi-task backbone. Pick a tab, load an "
            "example or your own file, press **Run**."
        )
        for app in apps.values():
            for tab in app.demo_tabs():
                with gr.Tab(tab.title, elem_id=tab.elem_id):
                    tab.build()
    bound_endpoints(demo)
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def bound_endpoints(demo) -> None:
    """Every public endpoint runs as a bounded job (:func:`polyhead.demo_jobs.demo_job`, for tabs that do
    not wrap their handlers themselves) and hands Gradio files of its own request, never arrays."""
    import inspect

    import gradio as gr

    from polyhead.demo_jobs import IMAGE_TIMEOUT, arrays_to_files, demo_job, is_job

    for block_fn in demo.fns.values():
        fn = block_fn.fn
        if fn is None or getattr(block_fn, "api_visibility", "public") != "public":
            continue
        if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            continue  # streaming handlers keep their own protocol
        images = [isinstance(o, gr.Image) for o in block_fn.outputs]
        wrapped = arrays_to_files(fn, images) if any(images) else fn
        block_fn.fn = wrapped if is_job(fn) else demo_job(IMAGE_TIMEOUT)(wrapped)


def serve(demo, host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True, **options):
    """Serve a built demo with the demo's protections: uploads above ``MAX_UPLOAD`` get a 413,
    cross-origin requests a 403, old request folders are swept in the background; a busy port is a
    one-line :class:`InputError`."""
    from starlette.middleware import Middleware

    from polyhead.demo_jobs import ensure_sweeper, jobs_root
    from polyhead.errors import InputError

    ensure_sweeper()
    share_origins = SHARE_ORIGIN_SUFFIXES if share else ()
    guard = Middleware(OriginGuard, loopback=_is_loopback(host) and not share, trusted_suffixes=share_origins)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=share,
            max_file_size=MAX_UPLOAD,
            prevent_thread_lock=not block,
            show_error=True,
            allowed_paths=[str(jobs_root())],
            app_kwargs={"middleware": [guard]},
            **options,
        )
    except OSError as e:
        demo.close()
        if "empty port" in str(e) or getattr(e, "errno", None) in (errno.EADDRINUSE, errno.EACCES):
            raise InputError(None, f"port {port} on {host} is busy or not allowed; pick another with --port") from None
        raise
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True):
    """Build and serve the demo (see :func:`serve`); a busy port is reported before the build."""
    check_port(host, port)
    return serve(build_demo(), host=host, port=port, share=share, block=block)


def check_port(host: str, port: int) -> None:
    """InputError (one line) when ``host:port`` cannot be bound, e.g. another server holds it."""
    import socket

    from polyhead.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise InputError(None, f"cannot serve on {host}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(address)
        except OSError:
            raise InputError(None, f"port {port} on {host} is busy or not allowed; pick another with --port") from None


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
#: origins of Gradio's share links (``--share``), whose tunnel forwards the page's requests here
SHARE_ORIGIN_SUFFIXES = (".gradio.live",)


def _is_loopback(host: str) -> bool:
    return host.strip("[]") in LOOPBACK_HOSTS or host.startswith("127.")


def _host_name(netloc: str) -> str:
    """``host[:port]`` -> host (IPv6 brackets removed, lower case)."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


class OriginGuard:
    """ASGI middleware: refuse (403) any browser request sent from another web origin.

    Gradio's CORS middleware only withholds the response headers; the upload or job itself still runs,
    so a page on any site could feed files to a local demo. Here a request whose ``Origin`` is not the
    page's own (scheme-less ``host:port`` equal to the ``Host`` header) is refused before it reaches
    Gradio; requests without ``Origin`` (curl, ``gradio_client``) pass. With ``loopback``, the ``Host``
    itself must be a loopback name too, which stops DNS-rebinding pages that pose as same-origin.
    ``trusted_suffixes`` (with ``--share``: the share link's domain) are origins let through as well.
    """

    def __init__(self, app, loopback: bool = True, trusted_suffixes: tuple[str, ...] = ()):
        self.app, self.loopback, self.trusted_suffixes = app, loopback, trusted_suffixes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            reason = self.refusal(headers.get("origin"), headers.get("host", ""))
            if reason:
                await self._refuse(scope, receive, send, reason)
                return
        await self.app(scope, receive, send)

    def refusal(self, origin: str | None, host: str) -> str | None:
        """Why a request with these headers is refused, or None when it may pass."""
        if self.loopback and host and not _is_loopback(_host_name(host)):
            return f"host {host!r} is not this loopback server"
        if origin is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(origin)
        if parts.scheme == "https" and any(_host_name(parts.netloc).endswith(s) for s in self.trusted_suffixes):
            return None
        if origin == "null" or not parts.netloc or parts.netloc.lower() != host.lower():
            return f"cross-origin request from {origin!r} refused"
        return None

    @staticmethod
    async def _refuse(scope, receive, send, reason: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        from starlette.responses import PlainTextResponse

        await PlainTextResponse(reason, status_code=403)(scope, receive, send)
