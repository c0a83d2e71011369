"""``polyhead bench demo``: concurrent clients against a running demo, for a bounded time.

Starts the demo on a free loopback port (or uses ``--url``), then N ``gradio_client`` clients call
every app's probe endpoints in turn until the time is up; reports requests/s, p50/p95 latency and
how many answers were correct.

>>> main(["bench", "demo", "--clients", "4", "--seconds", "30"])   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="a running demo (default: start one on a free loopback port)")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to send requests")
    p.add_argument("--json", help="write the figures to this JSON file")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: argparse.Namespace) -> int:
    from gradio_client import Client

    from polyhead.registry import discover_apps

    probes = [p for app in discover_apps().values() for p in app.demo_probes()]
    if not probes:
        print("no app offers a demo probe")
        return 2
    demo = None
    url = args.url
    if url is None:
        from polyhead.demo import build_demo, serve

        port = _free_port()
        demo = serve(build_demo(), "127.0.0.1", port, block=False, quiet=True)  # as `polyhead demo` serves it
        url = f"http://127.0.0.1:{port}/"
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + args.seconds

    def client_loop(k: int) -> None:
        client = Client(url, verbose=False)
        i = k
        while time.perf_counter() < stop_at:
            probe = probes[i % len(probes)]
            i += 1
            t = time.perf_counter()
            try:
                ok = probe.check(client.predict(*probe.inputs(), api_name=probe.api_name))
                err = "" if ok else f"{probe.api_name}: wrong answer"
            except Exception as e:  # noqa: BLE001 - every failure is counted, none may stop the others
                err = f"{probe.api_name}: {type(e).__name__}: {e}"
            with lock:
                latencies.append(time.perf_counter() - t)
                if err:
                    failures.append(err)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if demo is not None:
        demo.close()
    lat = sorted(latencies)
    fig = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(lat),
        "requests_per_s": len(lat) / wall if wall else 0.0,
        "p50_latency_s": statistics.median(lat) if lat else None,
        "p95_latency_s": lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None,
        "correct": len(lat) - len(failures),
        "failed": len(failures),
        "endpoints": [p.api_name for p in probes],
    }
    for k, v in fig.items():
        print(f"{k:16s} {v:.3f}" if isinstance(v, float) else f"{k:16s} {v}")
    for f in failures[:5]:
        print("failure:", f)
    if args.json:
        from polyhead.io.writers import write_json

        write_json(args.json, fig)
    return 0 if not failures and lat else 1
