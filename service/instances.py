"""The inference instances: onnxruntime sessions opened to the plan that ``core.sizing`` makes.

The first session is opened before the plan exists: it reads the contract and,
on machines big enough to split, measures what one image costs, which sizes
the share of cores kept for decoding. It is reused as an instance when its
thread count fits the plan. On small machines the plan is one session with
every CPU, so startup is what it always was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from core.model import LoadedModel, load_model
from core.runtime import cpu_quota, memory_mb
from core.sizing import SPLIT_FROM_CPUS, ServingPlan, measure_infer_cpu_ms, plan_serving, probe_threads
from service.settings import Settings
from service.startup import open_model

log = logging.getLogger("service")


@dataclass
class Instances:
    plan: ServingPlan
    models: list[LoadedModel]  # one per instance, in the plan's order
    latency: LoadedModel | None  # the session on all inference cores for lone requests
    infer_cpu_ms: float | None  # measured CPU-ms per image (None where the plan did not need it)
    open_seconds: float  # load + warm-up of every session

    @property
    def model(self) -> LoadedModel:
        """The first instance: its contract is every instance's contract."""
        return self.models[0]

    @property
    def sessions(self) -> int:
        return len(self.models) + (self.latency is not None)


def open_instances(settings: Settings, cpus: int | None = None) -> Instances:
    """Open and warm up every session of the plan for ``cpus`` (default: ``CPUS``, else the CPU quota).

    Raises ``ModelFileError`` or ``ContractError`` (``service.startup.open_model``) for a model
    that cannot serve, before any other session is opened.
    """
    s, cpus = settings, cpus or settings.cpus or cpu_quota()
    start, rss0 = time.perf_counter(), memory_mb(default=0.0)
    providers = s.providers.split(",")

    def open_one(threads: int) -> LoadedModel:
        model = load_model(s.model_path, threads, providers, s.ort_spinning, sha256=first.sha256)  # hashed once
        model.warm_up(s.warmup_rounds)
        return model

    first_threads = probe_threads(cpus, s.intra_op_threads)
    first = open_model(s, first_threads)  # the file and the contract checked once, here
    on_cpu = first.session.get_providers()[0] == "CPUExecutionProvider"
    cost = measure_infer_cpu_ms(first, first_threads) if on_cpu and cpus >= SPLIT_FROM_CPUS else None
    plan = plan_serving(
        cpus,
        cost,
        instances=s.inference_instances or (0 if on_cpu else 1),  # an accelerator batches; one session
        threads=s.intra_op_threads,
        decoders=s.decode_threads,
        latency_session=s.latency_session,
    )
    reuse = plan.instance_threads.index(first_threads) if first_threads in plan.instance_threads else -1
    models = [first if i == reuse else open_one(t) for i, t in enumerate(plan.instance_threads)]
    latency = open_one(plan.latency_threads) if plan.latency_threads else None
    instances = Instances(plan, models, latency, cost, time.perf_counter() - start)
    log.info(
        "serving with %s; %d session(s) opened in %.2fs, +%.0f MB resident",
        plan.describe(),
        instances.sessions,
        instances.open_seconds,
        memory_mb(default=0.0) - rss0,
    )
    return instances
