"""``python -m bench`` (``make bench``): the numbers in the README, in one run.

1. ``bench.export_bench``: VGG16 (random weights) FP32 vs INT8 onnxruntime
   throughput, keeping both models (with serving metadata) in ``artifacts/bench-vgg16``;
2. ``bench.serve_bench`` on the FP32 model (with the JPEG draft-mode comparison);
3. ``bench.serve_bench`` on the INT8 model;
4. ``bench.instance_memory`` on both: resident memory per added onnxruntime session.

Run one with ``python -m bench.NAME --help``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench import export_bench, instance_memory, serve_bench

KEEP = Path("artifacts/bench-vgg16")


def main() -> int:
    steps = [
        ("export_bench", export_bench.main, ["--keep", str(KEEP)]),
        ("serve_bench FP32", serve_bench.main, ["--model", str(KEEP / "model.onnx"), "--draft"]),
        ("serve_bench INT8", serve_bench.main, ["--model", str(KEEP / "model.int8.onnx")]),
        ("instance_memory FP32", instance_memory.main, ["--model", str(KEEP / "model.onnx")]),
        ("instance_memory INT8", instance_memory.main, ["--model", str(KEEP / "model.int8.onnx")]),
    ]
    for title, run, argv in steps:
        print(f"\n=== {title}: {' '.join(argv)} ===", flush=True)
        if rc := run(argv):
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
