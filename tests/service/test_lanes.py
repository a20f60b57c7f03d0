"""Small images never queue behind huge ones: large images decode on their own lane."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from PIL import Image

from core.imaging import DecodeOptions
from core.model import load_model
from service.lanes import DecodeLanes
from service.memory import MemoryBudget
from tests.service.conftest import encode

SMALL = encode(Image.new("RGB", (64, 48), (220, 30, 30)), "JPEG")
LARGE = encode(Image.new("RGB", (1200, 1000), (20, 30, 230)), "PNG")  # 1.2 MP: over the 1 MP threshold below


def test_a_small_image_is_decoded_while_the_large_lane_is_busy(rgb_model_path: Path) -> None:
    model = load_model(rgb_model_path, threads=1)
    budget = MemoryBudget(256 * 1024**2)
    lanes = DecodeLanes(threads=1, large_pixels=1_000_000, budget=budget)
    gate = threading.Event()

    async def main() -> list[str]:
        events: list[str] = []
        lanes._large.pool.submit(gate.wait, 10)  # the large lane is busy with someone's huge image
        large = asyncio.ensure_future(lanes.prepare(model, LARGE, DecodeOptions()))
        small = await asyncio.wait_for(lanes.prepare(model, SMALL, DecodeOptions()), 10)
        events.append(f"small {small.tensor.shape}")
        events.append("large still waiting" if not large.done() else "large done")
        gate.set()
        done = await asyncio.wait_for(large, 10)
        events.append(f"large {done.tensor.shape}")
        return events

    try:
        events = asyncio.run(main())
    finally:
        lanes.close()
    assert events == ["small (3, 32, 32)", "large still waiting", "large (3, 32, 32)"]
    assert budget.in_use == 0  # every reservation came back when its decode finished
