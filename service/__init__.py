"""Serving: FastAPI + onnxruntime over the shared ``core`` rule; no torch.

Nothing outside this package imports it: training, export and the benchmarks
stand on ``core`` (contract, decode rule, onnxruntime options) directly.
"""
