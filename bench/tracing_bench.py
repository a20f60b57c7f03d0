"""What observability costs: the serve benchmark's load, run against the same model three ways.

    python -m bench.tracing_bench --model artifacts/NAME/model.onnx [--rounds 2] [--requests 96]

1. ``off``: LOG_LEVEL=warning and no tracing (what serve_bench measures);
2. ``logs``: LOG_LEVEL=info, one JSON access line per request (written to /dev/null);
3. ``logs+tracing``: the same plus OpenTelemetry spans, exported over OTLP/HTTP to a
   collector stand-in in this process that accepts and drops them.

The modes alternate within each round (off, logs, logs+tracing, off, ...) so that a
machine whose load drifts affects all three alike; the report gives each mode's median
over the rounds and its ratio to ``off``. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.serve_bench import DEFAULT_MODEL, free_port, load, machine, photo_jpeg, start_service


class _Sink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and drops them, counting what arrived."""

    bodies = 0

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Sink.bodies += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.tracing_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX file written by export")
    p.add_argument("--requests", type=int, default=96, help="requests per concurrency level and run")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--rounds", type=int, default=2, help="times each mode runs (alternating)")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--batch-wait-ms", type=float, default=2.0)
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def modes(collector: str) -> dict[str, dict[str, str]]:
    return {
        "off": {},
        "logs": {"LOG_LEVEL": "info", "LOG_FORMAT": "json"},
        "logs+tracing": {"LOG_LEVEL": "info", "LOG_FORMAT": "json", "OTEL_EXPORTER_OTLP_ENDPOINT": collector},
    }


def run_mode(args: argparse.Namespace, env: dict[str, str], photo: bytes) -> list[dict[str, Any]]:
    port = free_port()
    proc, _ = start_service(args.model, port, args, extra_env=env, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        return [asyncio.run(load(url, photo, c, max(args.requests, 4 * c), proc.pid)) for c in args.concurrency]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def report(results: dict[str, list[list[dict[str, Any]]]], concurrency: list[int]) -> None:
    keys = ("img_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_img")
    print(
        "\n| mode | concurrency | img/s | p50 ms | p99 ms | service CPU ms/img "
        "| img/s vs off | p50 vs off | CPU/img vs off |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, c in enumerate(concurrency):
        base = {k: statistics.median(r[i][k] for r in results["off"]) for k in keys}
        for mode, runs in results.items():
            m = {k: statistics.median(r[i][k] for r in runs) for k in keys}
            print(
                f"| {mode} | {c} | {m['img_per_s']:.1f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | "
                f"{m['server_cpu_ms_per_img']:.2f} | {m['img_per_s'] / base['img_per_s']:.3f} | "
                f"{m['p50_ms'] / base['p50_ms']:.3f} | "
                f"{m['server_cpu_ms_per_img'] / base['server_cpu_ms_per_img']:.3f} |"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.model.is_file():
        print(f"tracing_bench: skipped, no model at {args.model} (run `make demo` or pass --model PATH)")
        return 0
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    collector = f"http://127.0.0.1:{sink.server_address[1]}"
    print(f"model {args.model}; machine: {machine()}; {args.rounds} rounds of {', '.join(modes(collector))}")
    photo = photo_jpeg()
    results: dict[str, list[list[dict[str, Any]]]] = {mode: [] for mode in modes(collector)}
    try:
        for r in range(args.rounds):
            for mode, env in modes(collector).items():
                results[mode].append(run_mode(args, env, photo))
                print(f"round {r + 1} {mode}: done", flush=True)
    finally:
        sink.shutdown()
    report(results, args.concurrency)
    print(f"\nOTLP exports received by the collector stand-in: {_Sink.bodies}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "model": str(args.model), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
