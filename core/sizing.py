"""How the service splits the CPUs: inference instances, threads per instance, decode threads.

One onnxruntime session with every core does not scale: on a 16-vCPU box the
service reached 0.75x of raw INT8 throughput with a quarter of the machine idle.
Each intra-op step waits for its slowest thread, and with the HTTP and decode
work on the same cores some thread is always pre-empted. So on big machines the
service (1) keeps a share of the cores for the front end (HTTP, JPEG decode,
resize/normalise), sized from how much CPU the model costs per image against
what the front end costs, and (2) runs the inference cores as several
independent sessions ("instances", as Triton's instance groups), each with a
few threads and its own micro-batch in flight, so a pre-empted thread stalls one
instance, not all. A lone request still gets every inference core: one more
session spanning them serves it when all instances are idle.

Below ``SPLIT_FROM_CPUS`` nothing changes: one session with every CPU and
decoding overlapping it (measured best on 2 vCPUs, where reserving a core for
decoding would halve inference).

``plan_serving`` is a pure function of the CPU count, the model's measured cost
and the settings' overrides, so the choices for any machine are testable here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from core.model import LoadedModel

# From this many CPUs the cores are partitioned into front end + several instances.
SPLIT_FROM_CPUS = 8
# Threads per instance on big machines: small enough that a pre-empted thread stalls
# little, large enough that a lone batch still runs in parallel. The benchmark's raw
# sweep (python -m bench.serve_bench) shows which split wins on a given machine.
THREADS_PER_INSTANCE = 4
# CPU-ms per image the service spends outside onnxruntime (HTTP, 640x480 JPEG decode,
# resize/crop/normalise): 55.4 service CPU-ms minus 48.2 raw inference CPU-ms per image,
# INT8 VGG16 on a 2-vCPU Xeon (docs/benchmarks.md), rounded up.
FRONT_END_CPU_MS = 8.0


@dataclass(frozen=True)
class ServingPlan:
    """What the service opens: ``instance_threads[i]`` intra-op threads for instance i."""

    cpus: int
    instance_threads: tuple[int, ...]
    decoders: int
    latency_threads: int  # the extra session for lone requests; 0 = none
    reason: str

    @property
    def instances(self) -> int:
        return len(self.instance_threads)

    @property
    def inference_threads(self) -> int:
        return sum(self.instance_threads)

    def describe(self) -> str:
        split = "+".join(str(t) for t in self.instance_threads)
        lone = f", a {self.latency_threads}-thread session for lone requests" if self.latency_threads else ""
        return (
            f"{self.instances} inference instance(s) ({split} onnxruntime threads){lone}, "
            f"{self.decoders} decode thread(s) on {self.cpus} CPUs: {self.reason}"
        )


def split_threads(cores: int, instances: int) -> tuple[int, ...]:
    """``cores`` threads over ``instances`` as evenly as possible (at least one each)."""
    base, extra = divmod(max(cores, instances), instances)
    return tuple(base + (i < extra) for i in range(instances))


def front_end_cores(cpus: int, infer_cpu_ms: float | None, front_end_cpu_ms: float = FRONT_END_CPU_MS) -> int:
    """Cores kept for HTTP and decoding: the front end's share of the CPU per image, rounded up.

    At least one core in eight (the event loop and the decode pool need a core even for a
    heavy model), at most half the machine. 0 on small machines, where decoding overlaps.
    """
    if cpus < SPLIT_FROM_CPUS:
        return 0
    floor = max(1, cpus // 8)
    if not infer_cpu_ms or infer_cpu_ms <= 0:
        return floor
    share = front_end_cpu_ms / (front_end_cpu_ms + infer_cpu_ms)
    return min(cpus // 2, max(floor, math.ceil(cpus * share)))


def plan_serving(
    cpus: int,
    infer_cpu_ms: float | None = None,
    *,
    instances: int = 0,
    threads: int = 0,
    decoders: int = 0,
    latency_session: bool = True,
    front_end_cpu_ms: float = FRONT_END_CPU_MS,
) -> ServingPlan:
    """The serving layout for ``cpus`` CPUs and a model costing ``infer_cpu_ms`` CPU-ms per image.

    ``instances``, ``threads`` (per instance) and ``decoders`` override the automatic
    choice when non-zero (INFERENCE_INSTANCES, INTRA_OP_THREADS, DECODE_THREADS).
    """
    cpus = max(1, cpus)
    small = cpus < SPLIT_FROM_CPUS
    reserve = front_end_cores(cpus, infer_cpu_ms, front_end_cpu_ms)
    cores = cpus - reserve
    if instances and threads:
        layout, why = (threads,) * instances, "instances and threads as set"
    elif instances:
        layout, why = split_threads(cores, instances), f"{instances} instances as set"
    elif threads:
        n = 1 if small else max(1, cores // threads)
        layout, why = (threads,) * n, f"{threads} threads per instance as set"
    elif small:
        layout, why = (cpus,), f"below {SPLIT_FROM_CPUS} CPUs one session uses them all"
    else:
        layout = split_threads(cores, max(1, round(cores / THREADS_PER_INSTANCE)))
        why = f"about {THREADS_PER_INSTANCE} threads per instance"
    if reserve:
        cost = f"inference {infer_cpu_ms:.0f} CPU-ms/image" if infer_cpu_ms else "inference cost unknown"
        why += f"; {reserve} CPU(s) kept for HTTP and decoding ({cost}, front end ~{front_end_cpu_ms:.0f})"
    if not decoders:
        decoders = max(1, cpus // 2) if small else max(1, cpus - sum(layout))
    latency = sum(layout) if latency_session and len(layout) > 1 else 0
    return ServingPlan(cpus, layout, decoders, latency, why)


def probe_threads(cpus: int, threads: int = 0) -> int:
    """Threads of the first session, opened before the plan exists (it measures the model's cost)."""
    return threads or (cpus if cpus < SPLIT_FROM_CPUS else min(cpus, THREADS_PER_INSTANCE))


def measure_infer_cpu_ms(model: LoadedModel, threads: int, rounds: int = 3) -> float:
    """CPU-ms one image costs: median batch-1 wall time x the session's threads (an upper bound)."""
    x = np.zeros((1, *model.input_shape), dtype=np.float32)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        model.logits(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3 * threads


def raw_configurations(cpus: int) -> list[tuple[int, ...]]:
    """Thread layouts the service may be told to use: one session on every CPU, and N x T for T = 1, 2, 4..."""
    layouts: list[tuple[int, ...]] = [(cpus,)]
    t = 1
    while t < cpus:
        if cpus // t >= 2:
            layouts.append((t,) * (cpus // t))
        t *= 2
    return layouts
