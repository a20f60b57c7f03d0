"""Run the real ``python -m export`` CLI with a fault injected, to prove its checks refuse.

``python tests/export/broken_export.py torch|int8 -- <export args>``:
``torch`` perturbs the PyTorch model after export (ONNX and PyTorch now differ);
``int8`` negates the quantized model's logits before it is measured (accuracy collapses).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import onnx  # noqa: E402
import torch  # noqa: E402

import export.__main__ as cli  # noqa: E402
import export.pipeline as pipeline  # noqa: E402
from export.pipeline import run_export  # noqa: E402


def perturb_last_linear(model: torch.nn.Module) -> None:
    with torch.no_grad():
        [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].weight.add_(0.5)


def negate_logits(proto: onnx.ModelProto) -> None:
    """Route the graph output through a Neg node: top-1 becomes the least likely class."""
    out = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [o + "_pre_neg" if o == out else o for o in node.output]
    proto.graph.node.append(onnx.helper.make_node("Neg", [out + "_pre_neg"], [out]))


if __name__ == "__main__":
    kind, args = sys.argv[1], sys.argv[3:]
    hooks = {"torch": {"model_hook": perturb_last_linear}, "int8": {"int8_hook": negate_logits}}[kind]
    pipeline.run_export = functools.partial(run_export, **hooks)  # main() imports it from here when it runs
    sys.exit(cli.main(args))
