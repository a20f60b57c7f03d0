"""Robustness benchmark: overload, near-limit bodies, huge images, slow clients, hostile JSON, SIGTERM.

    python -m bench.robustness --model artifacts/NAME/model.int8.onnx [--quick] [--baseline DIR]

Each scenario starts ``python -m service`` afresh (so its peak RSS, VmHWM, is
the scenario's own) and drives it over loopback:

1. closed loop at c=32, 64, 128: answers by status, latency of the 200s and
   of the 503s, peak RSS;
2. an open loop at twice the capacity measured just before (c=8; Poisson
   arrivals, clients that give up after 10 s): how fast refusals come, whether admitted
   requests meet the deadline, inferences wasted on clients that left, how
   long the server stays busy after the last client;
3. near-limit bodies, many at once, in each form (multipart, raw, base64 JSON);
4. huge images (40 MP RGBA PNGs) while small photos keep coming: peak RSS and
   the small photos' latency (3 and 4 with 8 decode threads, as on a 16-core
   host, and a 1 GiB memory budget);
5. slow clients: idle connections, headers and bodies at a byte a second;
6. hostile JSON: deep nesting, a 5,000-digit number, and /healthz while 20 MB
   JSON bodies are parsed;
7. early refusals read by Python's urllib (21 MB bodies over the limit);
8. SIGTERM under load with a slow client: /readyz 503, answers, time to exit.

``--baseline DIR`` runs the same scenarios against another checkout's service
(e.g. ``git worktree add /tmp/before <commit>``) in the same run. The load
generator shares the machine with the service: numbers are lower bounds on a
small machine. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.serve_bench import free_port, machine, photo_jpeg
from core.runtime import memory_mb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "artifacts" / "bench-vgg16" / "model.int8.onnx"
MB = 1024 * 1024
# The memory scenarios run as on a 16-core host in a 2 GiB container: eight decode threads, and a
# budget that leaves room for the model and Python (the Kubernetes manifests' values).
MEMORY_ENV = {"DECODE_THREADS": "8", "MEMORY_BUDGET_BYTES": str(1024 * MB)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.robustness", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX file written by export")
    p.add_argument("--quick", action="store_true", help="smaller bodies and counts (about three minutes)")
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS), help="which to run")
    p.add_argument("--baseline", type=Path, help="also run every scenario against the service in this checkout")
    p.add_argument("--client-timeout", type=float, default=10.0, help="seconds a client waits before giving up")
    p.add_argument("--json", type=Path, help="also write the rows here")
    return p.parse_args(argv)


# ---------------------------------------------------------------- the service under test


class Service:
    """``python -m service`` from ``source`` on a free loopback port; its pid, URL and peak RSS."""

    def __init__(self, source: Path, model: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {
            **os.environ,
            "MODEL_PATH": str(model),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "error",
            **(env or {}),
        }
        self.proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=source, env=full, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service in {source} exited with {self.proc.returncode}")
            if get_status(f"{self.url}/readyz", 1) == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the service was not ready in 120 s")

    def peak_rss_mb(self) -> float:
        return memory_mb("VmHWM", self.proc.pid)

    def rss_mb(self) -> float:
        return memory_mb("VmRSS", self.proc.pid)

    def metric(self, name: str) -> float:
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return float("nan")
        return sum(
            float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(name + " ") or ln.startswith(name + "{")
        )

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM, then SIGKILL after ``timeout``; seconds it took to exit."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return time.monotonic() - start


def get_status(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@contextmanager
def service(source: Path, model: Path, env: dict[str, str] | None = None) -> Iterator[Service]:
    s = Service(source, model, env)
    try:
        yield s
    finally:
        s.stop(10)


# ---------------------------------------------------------------- load


@dataclass
class Outcome:
    status: int | str  # an HTTP status, "timeout" (the client gave up) or "error" (reset, refused...)
    seconds: float


async def post(client: Any, path: str, kwargs: dict[str, Any], timeout: float) -> Outcome:
    import httpx

    t0 = time.perf_counter()
    try:
        r = await client.post(path, timeout=timeout, **kwargs)
        return Outcome(r.status_code, time.perf_counter() - t0)
    except httpx.TimeoutException:
        return Outcome("timeout", time.perf_counter() - t0)
    except httpx.HTTPError:
        return Outcome("error", time.perf_counter() - t0)


def client_for(url: str, connections: int) -> Any:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, limits=limits)


async def closed_loop(
    url: str,
    forms: list[dict[str, Any]],
    concurrency: int,
    n: int,
    timeout: float,
    until: Callable[[], bool] = lambda: False,
) -> list[Outcome]:
    """``concurrency`` clients sending back to back, ``n`` requests in all (or until ``until()``)."""
    out: list[Outcome] = []
    todo = iter(range(n))

    async with client_for(url, concurrency) as client:

        async def worker() -> None:
            for i in todo:
                if until():
                    return
                out.append(await post(client, "/predict", forms[i % len(forms)], timeout))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def open_loop(url: str, form: dict[str, Any], rate: float, seconds: float, timeout: float) -> list[Outcome]:
    """Poisson arrivals at ``rate``/s for ``seconds``; each client gives up after ``timeout``."""
    rng = np.random.default_rng(0)
    tasks: list[asyncio.Task[Outcome]] = []
    async with client_for(url, 4096) as client:
        start = time.monotonic()
        next_at = start
        while next_at - start < seconds:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            tasks.append(asyncio.ensure_future(post(client, "/predict", form, timeout)))
            next_at += rng.exponential(1 / rate)
        return list(await asyncio.gather(*tasks))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else float("nan")


@dataclass
class Row:
    scenario: str
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    ok_p50_ms: float = float("nan")
    ok_p99_ms: float = float("nan")
    shed_p50_ms: float = float("nan")
    shed_p99_ms: float = float("nan")
    wasted: float = float("nan")
    peak_rss_mb: float = float("nan")
    note: str = ""

    @classmethod
    def of(cls, scenario: str, outcomes: list[Outcome], **extra: Any) -> Row:
        ok = [o.seconds for o in outcomes if o.status == 200]
        shed = [o.seconds for o in outcomes if o.status == 503]
        return cls(
            scenario,
            len(outcomes),
            Counter(str(o.status) for o in outcomes),
            pct(ok, 50),
            pct(ok, 99),
            pct(shed, 50),
            pct(shed, 99),
            **extra,
        )


# ---------------------------------------------------------------- scenarios


@dataclass
class Context:
    source: Path
    model: Path
    quick: bool
    client_timeout: float
    photo: bytes


def shed_reasons(s: Service) -> str:
    """What the service says it shed, by reason (empty for a service without admission control)."""
    try:
        with urllib.request.urlopen(f"{s.url}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return ""
    reasons = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("requests_shed_total{")
    }
    return "shed " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(reasons.items())) if reasons else "none shed"


def multipart(data: bytes) -> dict[str, Any]:
    return {"files": {"file": ("photo.jpg", data, "image/jpeg")}}


def closed(ctx: Context) -> list[Row]:
    rows = []
    for c in (32, 64, 128):
        with service(ctx.source, ctx.model) as s:
            n = 2 * c if ctx.quick else 3 * c
            start = time.monotonic()
            outcomes = asyncio.run(closed_loop(s.url, [multipart(ctx.photo)], c, n, 120))
            wall = time.monotonic() - start
            answered = sum(o.status == 200 for o in outcomes)
            note = f"{answered / wall:.1f} img/s; {shed_reasons(s)}"
            rows.append(Row.of(f"closed loop c={c}", outcomes, peak_rss_mb=s.peak_rss_mb(), note=note))
    return rows


def overload(ctx: Context) -> list[Row]:
    """Capacity measured just before, on the same process (c=8: below every limit), then twice that."""
    seconds = 10.0 if ctx.quick else 20.0
    with service(ctx.source, ctx.model) as s:
        start = time.monotonic()
        warm = asyncio.run(closed_loop(s.url, [multipart(ctx.photo)], 8, 24, 120))
        capacity = sum(o.status == 200 for o in warm) / (time.monotonic() - start)
        baseline_inferred = s.metric("inference_batch_size_sum")
        rate = 2 * capacity
        outcomes = asyncio.run(open_loop(s.url, multipart(ctx.photo), rate, seconds, ctx.client_timeout))
        left = time.monotonic()
        while s.metric("http_requests_in_flight") > 1 and time.monotonic() - left < 120:  # 1: this /metrics
            time.sleep(0.05)
        busy_after = time.monotonic() - left
        inferred = s.metric("inference_batch_size_sum") - baseline_inferred
        answered = sum(o.status == 200 for o in outcomes)
        row = Row.of(
            f"open loop {rate:.1f}/s (2 x {capacity:.1f}) {seconds:.0f}s",
            outcomes,
            wasted=inferred - answered,
            peak_rss_mb=s.peak_rss_mb(),
            note=f"busy {busy_after:.1f}s after the last client; {inferred:.0f} inferred; {shed_reasons(s)}",
        )
    return [row]


def bodies(ctx: Context) -> list[Row]:
    n, size = (16, 8 * MB) if ctx.quick else (48, 19 * MB)
    padded = ctx.photo + b"\0" * (size - len(ctx.photo))  # a JPEG decoder stops at its end marker
    b64 = base64.b64encode(ctx.photo + b"\0" * (size * 3 // 4 - len(ctx.photo))).decode()
    forms = {
        "multipart": multipart(padded),
        "raw": {"content": padded, "headers": {"content-type": "image/jpeg"}},
        "base64 JSON": {
            "content": json.dumps({"image": b64}).encode(),
            "headers": {"content-type": "application/json"},
        },
    }
    rows = []
    for name, form in forms.items():
        with service(ctx.source, ctx.model, MEMORY_ENV) as s:
            outcomes = asyncio.run(closed_loop(s.url, [form], n, n, 120))
            rows.append(Row.of(f"{n} x {size // MB} MB {name}", outcomes, peak_rss_mb=s.peak_rss_mb()))
    return rows


def huge_png(pixels: int) -> bytes:
    w = int((pixels * 4 / 3) ** 0.5)
    h = pixels // w
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., 0] = x
    rgba[..., 1] = y
    rgba[..., 2] = 128
    rgba[..., 3] = 200
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def huge(ctx: Context) -> list[Row]:
    n_huge = 4 if ctx.quick else 8
    big = huge_png(20_000_000 if ctx.quick else 39_000_000)

    async def run(url: str) -> tuple[list[Outcome], list[Outcome]]:
        async with client_for(url, 64) as client:
            huge_tasks = [asyncio.ensure_future(post(client, "/predict", multipart(big), 120)) for _ in range(n_huge)]
            small: list[Outcome] = []
            while not all(t.done() for t in huge_tasks):
                small += await asyncio.gather(*(post(client, "/predict", multipart(ctx.photo), 60) for _ in range(4)))
            return list(await asyncio.gather(*huge_tasks)), small

    with service(ctx.source, ctx.model, MEMORY_ENV) as s:
        big_out, small_out = asyncio.run(run(s.url))
        peak = s.peak_rss_mb()
    mp = Image.open(io.BytesIO(big)).size
    return [
        Row.of(f"{n_huge} x {mp[0] * mp[1] / 1e6:.0f} MP RGBA PNG", big_out, peak_rss_mb=peak),
        Row.of("  small photos meanwhile (c=4)", small_out, peak_rss_mb=peak),
    ]


def slow_clients(ctx: Context) -> list[Row]:
    n = 20 if ctx.quick else 50
    watch = 15.0

    def open_socket(url: str) -> socket.socket:
        host, port = url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.setblocking(False)
        return sock

    with service(ctx.source, ctx.model) as s:
        kinds: dict[str, list[socket.socket]] = {"idle": [], "slow headers": [], "slow body": []}
        for _ in range(n):
            kinds["idle"].append(open_socket(s.url))
            sock = open_socket(s.url)
            sock.send(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            kinds["slow headers"].append(sock)
            sock = open_socket(s.url)
            sock.send(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
            )
            kinds["slow body"].append(sock)
        start, closed_at = time.monotonic(), {k: [float("nan")] * n for k in kinds}
        health: list[float] = []
        while time.monotonic() - start < watch:
            for kind, socks in kinds.items():
                for i, sock in enumerate(socks):
                    if closed_at[kind][i] == closed_at[kind][i]:  # already closed (not NaN)
                        continue
                    try:
                        if kind == "slow body":
                            sock.send(b"\0")
                        if sock.recv(65536) == b"":
                            closed_at[kind][i] = time.monotonic() - start
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_at[kind][i] = time.monotonic() - start
            t0 = time.perf_counter()
            get_status(f"{s.url}/healthz", 5)
            health.append(time.perf_counter() - t0)
            time.sleep(1.0)
        rows = []
        for kind, times in closed_at.items():
            done = [t for t in times if t == t]
            note = (
                f"closed by the server after {max(done):.1f}s"
                if len(done) == n
                else f"{n - len(done)} still open after {watch:.0f}s"
            )
            rows.append(
                Row(
                    f"{n} {kind} connections", n, Counter({"closed": len(done)}), note=note, peak_rss_mb=s.peak_rss_mb()
                )
            )
        rows.append(
            Row("  /healthz meanwhile", len(health), Counter({"200": len(health)}), pct(health, 50), pct(health, 99))
        )
        for socks in kinds.values():
            for sock in socks:
                sock.close()
    return rows


def hostile_json(ctx: Context) -> list[Row]:
    size = 8 * MB if ctx.quick else 20 * MB
    payloads = {
        "nested 2,000 deep": b'{"image": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        "5,000-digit number": b'{"image": "AAAA", "n": ' + b"1" * 5000 + b"}",
    }
    rows = []
    with service(ctx.source, ctx.model) as s:
        for name, body in payloads.items():
            outcomes = asyncio.run(
                closed_loop(s.url, [{"content": body, "headers": {"content-type": "application/json"}}], 4, 8, 30)
            )
            rows.append(Row.of(name, outcomes))
        big = json.dumps({"image": base64.b64encode(os.urandom(size * 3 // 4 - 1024)).decode()}).encode()

        async def parse_while_probing() -> tuple[list[Outcome], list[float]]:
            async with client_for(s.url, 8) as client:
                form = {"content": big, "headers": {"content-type": "application/json"}}
                tasks = [asyncio.ensure_future(post(client, "/predict", form, 60)) for _ in range(4)]
                probes: list[float] = []
                while not all(t.done() for t in tasks):
                    t0 = time.perf_counter()
                    await client.get("/healthz", timeout=30)
                    probes.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.02)
                return list(await asyncio.gather(*tasks)), probes

        outcomes, probes = asyncio.run(parse_while_probing())
        rows.append(Row.of(f"4 x {size // MB} MB JSON at once", outcomes, peak_rss_mb=s.peak_rss_mb()))
        rows.append(
            Row(
                "  /healthz meanwhile",
                len(probes),
                Counter({"200": len(probes)}),
                pct(probes, 50),
                pct(probes, 99),
                note=f"max {max(probes) * 1e3:.0f} ms",
            )
        )
    return rows


def early_refusals(ctx: Context) -> list[Row]:
    n = 10 if ctx.quick else 30
    body = b"\xff\xd8" + b"\0" * (21 * MB)
    outcomes = []
    with service(ctx.source, ctx.model) as s:
        for _ in range(n):
            t0 = time.perf_counter()
            request = urllib.request.Request(f"{s.url}/predict", data=body, headers={"Content-Type": "image/jpeg"})
            try:
                with urllib.request.urlopen(request, timeout=60) as r:
                    status: int | str = r.status
            except urllib.error.HTTPError as e:
                status = e.code if b"payload_too_large" in e.read() else f"{e.code} (no JSON)"
            except OSError as e:
                status = type(e.reason if isinstance(e, urllib.error.URLError) else e).__name__
            outcomes.append(Outcome(status, time.perf_counter() - t0))
    return [Row.of(f"urllib, {n} x 21 MB over the limit", outcomes)]


def sigterm(ctx: Context) -> list[Row]:
    """SIGTERM at 3 s; the load goes on for 5 s more (a load balancer deregistering the instance), then stops."""
    c, after_s = 32, 5.0
    readyz: list[tuple[float, int]] = []  # (seconds after SIGTERM, status; 0 = refused)
    signalled: list[float] = []
    exited: list[float] = []
    with service(ctx.source, ctx.model) as s:
        host, port = s.url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=5)
        slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n")
        stop_feeding = threading.Event()

        def feed() -> None:  # a byte a second, for ever
            while not stop_feeding.wait(1.0):
                try:
                    slow.send(b"\0")
                except OSError:
                    return

        def terminate_later() -> None:
            time.sleep(3.0)
            signalled.append(time.monotonic())
            s.proc.send_signal(signal.SIGTERM)
            while s.proc.poll() is None and time.monotonic() - signalled[0] < 60:
                if not readyz or readyz[-1][1] not in (503, 0):
                    readyz.append((time.monotonic() - signalled[0], get_status(f"{s.url}/readyz", 1)))
                time.sleep(0.05)
            if s.proc.poll() is None:
                s.proc.kill()
            exited.append(time.monotonic() - signalled[0])

        def stop_load() -> bool:
            return bool(signalled) and time.monotonic() - signalled[0] > after_s

        threading.Thread(target=feed, daemon=True).start()
        killer = threading.Thread(target=terminate_later)
        killer.start()
        outcomes = asyncio.run(closed_loop(s.url, [multipart(ctx.photo)], c, 100 * c, 30, stop_load))
        killer.join()
        stop_feeding.set()
        slow.close()
        code = s.proc.returncode
    first = next(((t, st) for t, st in readyz if st in (503, 0)), None)
    seen = "never answered" if first is None else f"{'503' if first[1] else 'refused'} after {first[0] * 1e3:.0f} ms"
    end = f"exit {code}" if code is not None and code >= 0 else "killed (SIGKILL)"
    note = f"/readyz {seen}; {end} after {exited[0]:.1f}s; load until SIGTERM + {after_s:.0f}s"
    return [Row.of(f"SIGTERM at 3s, c={c} + a slow client", outcomes, note=note)]


SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "closed": closed,
    "overload": overload,
    "bodies": bodies,
    "huge": huge,
    "slow": slow_clients,
    "json": hostile_json,
    "refusals": early_refusals,
    "sigterm": sigterm,
}


# ---------------------------------------------------------------- report


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | sent | answered by status | 200 p50 / p99 ms | 503 p50 / p99 ms | wasted inferences "
        "| peak RSS MB | notes |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        ok = f"{r.ok_p50_ms:.0f} / {r.ok_p99_ms:.0f}" if r.ok_p50_ms == r.ok_p50_ms else "-"
        shed = f"{r.shed_p50_ms:.0f} / {r.shed_p99_ms:.0f}" if r.shed_p50_ms == r.shed_p50_ms else "-"
        wasted = f"{r.wasted:.0f}" if r.wasted == r.wasted else "-"
        rss = f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb == r.peak_rss_mb else "-"
        lines.append(f"| {r.scenario} | {r.sent} | {statuses} | {ok} | {shed} | {wasted} | {rss} | {r.note} |")
    return "\n".join(lines)


def run_all(source: Path, args: argparse.Namespace, photo: bytes) -> list[Row]:
    ctx = Context(source, args.model.resolve(), args.quick, args.client_timeout, photo)
    rows: list[Row] = []
    for name in args.scenarios:
        t0 = time.monotonic()
        print(f"  {name} ...", end="", flush=True, file=sys.stderr)
        rows += SCENARIOS[name](ctx)
        print(f" {time.monotonic() - t0:.0f}s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.model.is_file():
        print(f"robustness: no model at {args.model}; run `python -m bench.export_bench --keep artifacts/bench-vgg16`")
        return 1
    photo = photo_jpeg()
    print(f"model {args.model} ({args.model.stat().st_size / 1e6:.1f} MB); machine: {machine()}")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (other work shares this machine)")
    print(f"python -m bench.robustness {' '.join(argv if argv is not None else sys.argv[1:])}")
    results: dict[str, Any] = {"machine": machine(), "model": str(args.model)}
    sources = [("this checkout", ROOT)] + ([("baseline " + str(args.baseline), args.baseline)] if args.baseline else [])
    for title, source in sources:
        print(f"\n### {title}\n", flush=True)
        rows = run_all(source, args, photo)
        print(table(rows), flush=True)
        print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        results[title] = [{**r.__dict__, "statuses": dict(r.statuses)} for r in rows]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
