"""Mutated and cut images (seeded): every one gets a 4xx or a prediction, never a 500."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.service.corpus import cases


def mutants(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    seeds = [c.build() for c in cases() if c.status == 200 and not c.skip]
    seeds = [s for s in seeds if len(s) < 20_000]
    out = []
    for i in range(n):
        data = bytearray(seeds[i % len(seeds)])
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            data = data[: int(rng.integers(1, len(data)))]
        out.append(bytes(data))
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt TIFF tags
def test_mutated_images_never_give_500(client: TestClient) -> None:
    statuses: dict[int, int] = {}
    for data in mutants(400):
        r = client.post("/predict", content=data, headers={"content-type": "application/octet-stream"})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code in (200, 400, 413, 415), (r.status_code, r.text)
        assert ("error" in r.json()) == (r.status_code != 200)
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0  # the corpus exercises both outcomes
