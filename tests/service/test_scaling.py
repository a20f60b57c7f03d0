"""Scaling with the cores: the sizing for given CPU counts and quotas, and N instances answering as one does.

Runs on 2 cores: a bigger machine's choices are checked through the pure sizing
function (and ``open_instances(cpus=16)``, which really opens what a 16-CPU box
would), never through timings.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from core.model import load_model
from core.runtime import cpu_quota
from core.sizing import (
    SPLIT_FROM_CPUS,
    THREADS_PER_INSTANCE,
    front_end_cores,
    plan_serving,
    probe_threads,
    raw_configurations,
    split_threads,
)
from service.batcher import MicroBatcher
from service.instances import open_instances
from service.settings import Settings
from tests.service.conftest import encode, make_settings, serve
from tests.service.modelgen import spatial_contract
from tests.service.test_batcher import Recorder, run

ROOT = Path(__file__).resolve().parents[2]
INT8_VGG16_MS, FP32_VGG16_MS, LIGHT_MS = 100.0, 300.0, 4.0  # CPU-ms per image, orders of magnitude


# ---------------------------------------------------------------- the sizing function


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 6, 7])
def test_small_machines_keep_one_session_with_every_cpu(cpus: int) -> None:
    """Below SPLIT_FROM_CPUS: the layout measured best on 2 vCPUs, whatever the model costs."""
    for cost in (None, LIGHT_MS, INT8_VGG16_MS):
        plan = plan_serving(cpus, cost)
        assert plan.instance_threads == (cpus,)
        assert plan.decoders == max(1, cpus // 2)
        assert plan.latency_threads == 0
        assert front_end_cores(cpus, cost) == 0


@pytest.mark.parametrize(
    ("cpus", "cost", "layout", "decoders"),
    [
        (8, INT8_VGG16_MS, (4, 3), 1),
        (16, INT8_VGG16_MS, (4, 4, 3, 3), 2),
        (16, FP32_VGG16_MS, (4, 4, 3, 3), 2),
        (16, None, (4, 4, 3, 3), 2),
        (32, INT8_VGG16_MS, (4, 4, 4, 4, 4, 4, 4), 4),
        (64, FP32_VGG16_MS, (4,) * 14, 8),
        (16, LIGHT_MS, (4, 4), 8),  # a light model: the front end costs more than inference
    ],
)
def test_big_machines_split_into_instances_and_a_front_end(
    cpus: int, cost: float | None, layout: tuple[int, ...], decoders: int
) -> None:
    plan = plan_serving(cpus, cost)
    assert plan.instance_threads == layout
    assert plan.decoders == decoders
    assert plan.inference_threads + plan.decoders == cpus  # every CPU has one job, none has two
    assert plan.latency_threads == plan.inference_threads  # a lone request gets every inference core
    assert all(t <= THREADS_PER_INSTANCE + 1 for t in plan.instance_threads)
    assert str(cpus) in plan.describe() and "instance" in plan.describe()


def test_front_end_share_follows_the_model_cost() -> None:
    """The lighter the model per image, the more cores decoding needs; a floor and a cap bound it."""
    shares = [front_end_cores(16, ms) for ms in (1.0, 4.0, 16.0, 50.0, 100.0, 1000.0)]
    assert shares == sorted(shares, reverse=True)
    assert shares[0] == 8 and shares[-1] == 2  # at most half the machine, at least one CPU in eight
    assert front_end_cores(SPLIT_FROM_CPUS, 1000.0) == 1


def test_settings_override_each_choice() -> None:
    assert plan_serving(16, INT8_VGG16_MS, instances=2).instance_threads == (7, 7)
    assert plan_serving(16, INT8_VGG16_MS, threads=2).instance_threads == (2,) * 7
    assert plan_serving(16, INT8_VGG16_MS, instances=4, threads=4).instance_threads == (4, 4, 4, 4)
    assert plan_serving(16, INT8_VGG16_MS, instances=4, threads=4).decoders == 1  # all CPUs taken: still one
    assert plan_serving(16, INT8_VGG16_MS, decoders=5).decoders == 5
    assert plan_serving(16, INT8_VGG16_MS, latency_session=False).latency_threads == 0
    assert plan_serving(2, None, threads=1).instance_threads == (1,)  # INTRA_OP_THREADS keeps its old meaning
    assert plan_serving(2, None, instances=2).instance_threads == (1, 1)
    assert plan_serving(2, None, instances=3).instance_threads == (1, 1, 1)  # never zero threads


def test_split_threads_and_the_raw_sweep() -> None:
    assert split_threads(14, 4) == (4, 4, 3, 3)
    assert split_threads(2, 3) == (1, 1, 1)
    assert raw_configurations(2) == [(2,), (1, 1)]
    assert raw_configurations(16) == [(16,), (1,) * 16, (2,) * 8, (4,) * 4, (8, 8)]
    assert probe_threads(2) == 2 and probe_threads(16) == THREADS_PER_INSTANCE and probe_threads(16, 6) == 6


def write_cgroup(root: Path, version: int, quota: int, period: int = 100_000) -> Path:
    if version == 2:
        (root / "cpu.max").write_text("max 100000\n" if quota < 0 else f"{quota} {period}\n")
    else:
        (root / "cpu").mkdir()
        (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


@pytest.mark.parametrize(
    ("version", "quota", "cpus"), [(2, 150_000, 1), (2, 200_000, 2), (1, 100_000, 1), (1, -1, None), (2, -1, None)]
)
def test_plan_from_a_cgroup_quota(tmp_path: Path, version: int, quota: int, cpus: int | None) -> None:
    """A container's quota (v2 cpu.max or v1 cfs files), capped by the affinity mask, sizes the plan."""
    root = write_cgroup(tmp_path, version, quota)
    affinity = len(os.sched_getaffinity(0))
    expected = min(cpus, affinity) if cpus else affinity
    assert cpu_quota(root) == expected
    assert plan_serving(cpu_quota(root)).instance_threads == (expected,)


def test_quota_of_sixteen_on_this_machine_is_capped_by_affinity(tmp_path: Path) -> None:
    """A 16-CPU quota cannot give more CPUs than the process may run on."""
    assert cpu_quota(write_cgroup(tmp_path, 2, 1_600_000)) == len(os.sched_getaffinity(0))


def test_affinity_mask_limits_the_plan() -> None:
    """Under taskset-like pinning to one CPU the service plans for one CPU."""
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
        "from core.runtime import cpu_quota; from core.sizing import plan_serving;"
        "print(cpu_quota(), plan_serving(cpu_quota()).instance_threads)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1 (1,)", out.stderr


# ---------------------------------------------------------------- N sessions answer as one


def write_conv_model(path: Path, size: int = 32, seed: int = 0) -> Path:
    """A tiny conv net (Conv 3->8 3x3 + Relu + GAP + Gemm): intra-op threads really split its work."""
    contract = spatial_contract(size)
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["input", "CW", "CB"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["act"]),
        helper.make_node("GlobalAveragePool", ["act"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
    ]
    weights = {
        "CW": rng.normal(0, 0.5, (8, 3, 3, 3)),
        "CB": rng.normal(0, 0.1, 8),
        "W": rng.normal(0, 1, (8, 6)),
        "B": np.zeros(6),
    }
    graph = helper.make_graph(
        nodes,
        "tiny_conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 6])],
        initializer=[numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    model.metadata_props.add(key="image_classifier", value=contract.to_json())
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


@pytest.fixture(scope="module")
def conv_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_conv_model(tmp_path_factory.mktemp("conv") / "model.onnx")


def test_sessions_with_any_thread_split_compute_the_same(conv_model_path: Path) -> None:
    """One session on every core, and 1-thread instances run concurrently, give the same numbers."""
    x = np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32)
    reference = load_model(conv_model_path, 2).probabilities(x)
    instances = [load_model(conv_model_path, t) for t in (1, 1, 1, 4)]
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        for _ in range(20):  # concurrently, as the batcher runs them
            results[i] = instances[i].probabilities(x)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(instances))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert len(results) == len(instances)
    for out in results.values():
        np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
        assert (out.argmax(1) == reference.argmax(1)).all()


def test_open_instances_for_a_simulated_sixteen_cpu_box(conv_model_path: Path) -> None:
    """What a 16-CPU machine would open, really opened here: the plan's instances plus the latency session."""
    instances = open_instances(Settings(model_path=conv_model_path, cpus=16))  # CPUS=16, as a 16-CPU pod sets it
    plan = instances.plan
    assert plan.cpus == 16 and plan.instances >= 2 and plan.inference_threads + plan.decoders == 16
    assert instances.infer_cpu_ms is not None and instances.infer_cpu_ms > 0  # measured, so the share is sized
    assert len(instances.models) == plan.instances and instances.latency is not None
    assert [m.session.get_session_options().intra_op_num_threads for m in instances.models] == list(
        plan.instance_threads
    )
    assert instances.latency.session.get_session_options().intra_op_num_threads == plan.inference_threads
    assert instances.model.contract.labels == spatial_contract().labels


def test_small_box_opens_exactly_one_session(conv_model_path: Path) -> None:
    instances = open_instances(Settings(model_path=conv_model_path), cpus=2)
    assert instances.plan.instance_threads == (2,) and instances.latency is None and instances.sessions == 1
    assert instances.infer_cpu_ms is None  # nothing to size on a small box: startup does not pay for it


def photos(n: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    from PIL import Image

    return [encode(Image.fromarray(rng.integers(0, 256, (40 + i, 56, 3), dtype=np.uint8))) for i in range(n)]


async def post_all(url: str, images: list[bytes]) -> list[dict]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/predict?top_k=6", files={"file": ("x.jpg", img, "image/jpeg")}) for img in images)
        )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json() for r in responses]


def test_three_instances_answer_identically_to_one_over_http(conv_model_path: Path) -> None:
    """The same 24 images, sent at once, to a one-session service and a three-instance one."""
    images = photos(24)
    with serve(make_settings(conv_model_path, inference_instances=1)) as url:
        single = asyncio.run(post_all(url, images))
        assert httpx.get(f"{url}/v1/model").json()["serving"]["instance_threads"] == [1]
    with serve(make_settings(conv_model_path, inference_instances=3, max_batch_size=4)) as url:
        multi = asyncio.run(post_all(url, images))
        serving = httpx.get(f"{url}/v1/model").json()["serving"]
        metrics = httpx.get(f"{url}/metrics").text
    assert serving["instance_threads"] == [1, 1, 1] and serving["latency_session_threads"] == 3
    assert serving["intra_op_threads"] == 1 and serving["decode_threads"] == 2
    for a, b in zip(single, multi, strict=True):
        assert a["label"] == b["label"]
        assert [s["label"] for s in a["top_k"]] == [s["label"] for s in b["top_k"]]
        np.testing.assert_allclose([s["score"] for s in a["top_k"]], [s["score"] for s in b["top_k"]], atol=2e-6)
    calls = [float(ln.split()[-1]) for ln in metrics.splitlines() if ln.startswith("inference_instance_calls_total")]
    batches = next(float(ln.split()[-1]) for ln in metrics.splitlines() if ln.startswith("inference_batch_size_count"))
    assert calls and sum(calls) == batches  # every onnxruntime call is attributed to one session


# ---------------------------------------------------------------- the batcher with several instances


def test_lone_request_takes_the_latency_session() -> None:
    instances, latency, used = [Recorder(), Recorder()], Recorder(), []

    async def main() -> None:
        batcher = MicroBatcher(instances, 8, 60_000, latency=latency, on_instance=used.append)
        batcher.start()
        try:
            for value in (1.0, 2.0):  # one after the other: each finds every instance idle
                answer = await batcher.submit(np.full((1, 2, 2), value, np.float32))
                assert float(answer.row[0]) == value
        finally:
            await batcher.stop()

    run(main())
    assert latency.sizes == [1, 1] and instances[0].sizes == instances[1].sizes == []
    assert used == ["latency", "latency"]


def test_a_burst_spreads_over_idle_instances_and_answers_reach_their_owners() -> None:
    gate = threading.Event()
    instances, latency, used = [Recorder(gate), Recorder(gate), Recorder(gate)], Recorder(), []

    async def main() -> list[float]:
        batcher = MicroBatcher(instances, 4, 0, latency=latency, on_instance=used.append)
        batcher.start()
        try:
            with batcher.expect(1):  # someone else is decoding: not alone, so not the latency session
                futures = [
                    asyncio.ensure_future(batcher.submit(np.full((1, 1, 1), float(i), np.float32))) for i in range(9)
                ]
                await asyncio.sleep(0.1)  # every instance now holds a batch (gated)
                gate.set()
                answers = await asyncio.gather(*futures)
        finally:
            await batcher.stop()
        return [float(a.row[0]) for a in answers]

    assert run(main()) == [float(i) for i in range(9)]
    assert latency.sizes == []
    assert sorted(len(i.sizes) > 0 for i in instances) == [True, True, True]  # all three ran a batch
    assert sum(sum(i.sizes) for i in instances) == 9 and max(max(i.sizes) for i in instances) <= 4
    assert set(used) == {"0", "1", "2"}


def test_the_latency_session_never_runs_beside_an_instance() -> None:
    """While an instance holds a batch, a lone newcomer waits for an instance, not the latency session."""
    gate = threading.Event()
    instances, latency = [Recorder(gate), Recorder(gate)], Recorder()

    async def main() -> None:
        batcher = MicroBatcher(instances, 8, 0, latency=latency)
        batcher.start()
        try:
            with batcher.expect(1):
                first = asyncio.ensure_future(batcher.submit(np.zeros((1, 1, 1), np.float32)))
                await asyncio.sleep(0.05)
            second = asyncio.ensure_future(batcher.submit(np.ones((1, 1, 1), np.float32)))
            await asyncio.sleep(0.05)
            gate.set()
            await asyncio.gather(first, second)
        finally:
            await batcher.stop()

    run(main())
    assert latency.sizes == [] and sum(len(i.sizes) for i in instances) == 2


def test_stop_answers_batches_in_flight() -> None:
    gate = threading.Event()
    instances = [Recorder(gate), Recorder(gate)]

    async def main() -> list[object]:
        batcher = MicroBatcher(instances, 8, 0)
        batcher.start()
        with batcher.expect(1):
            futures = [asyncio.ensure_future(batcher.submit(np.zeros((1, 1, 1), np.float32))) for _ in range(2)]
            await asyncio.sleep(0.05)
        threading.Timer(0.1, gate.set).start()
        await batcher.stop()
        return await asyncio.gather(*futures, return_exceptions=True)

    out = run(main())
    assert all(not isinstance(o, BaseException) for o in out)  # finished, not dropped


def test_the_benchmarks_raw_sweep_names_its_winner(conv_model_path: Path) -> None:
    """bench.serve_bench's fair ceiling: every layout at every batch size, the best marked, latency from 1 x all."""
    from bench.serve_bench import raw_sweep

    raw = raw_sweep(conv_model_path, [(2,), (1, 1)], [1, 4], 0.05)
    assert [(r["name"], r["batch"]) for r in raw["rows"]] == [("1x2", 1), ("1x2", 4), ("2x1", 1), ("2x1", 4)]
    assert raw["best"]["img_per_s"] == max(r["img_per_s"] for r in raw["rows"])
    assert raw["single"]["name"] == "1x2" and raw["single"]["batch"] == 1
    assert all(r["img_per_s"] > 0 and r["median_ms"] > 0 for r in raw["rows"])


def test_the_sizing_table_in_the_docs_is_what_the_function_picks() -> None:
    text = (ROOT / "docs" / "service.md").read_text()
    section = text[text.index("## Scaling with the cores") :]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert len(rows) >= 6
    for row in rows:
        cpus, cost, decoders, instances, lone = (c.strip() for c in row.strip("|").split("|"))
        # "any", "100 (VGG16 INT8)", "100 (VGG16 INT8) or 300 (FP32)"
        costs = [None, LIGHT_MS, INT8_VGG16_MS] if cost == "any" else [float(c.split()[0]) for c in cost.split(" or ")]
        n, each = int(instances.split()[0]), instances.split("(")[1].rstrip(")")
        threads = (int(each.split()[0]),) * n if "each" in each else tuple(int(t) for t in each.split("+"))
        for ms in costs:
            plan = plan_serving(int(cpus), ms)
            assert (plan.instance_threads, plan.decoders) == (threads, int(decoders)), row
            assert plan.latency_threads == (0 if lone == "none" else int(lone)), row
