"""Serving: FastAPI + onnxruntime, numpy/Pillow preprocessing, no torch.

Importing this package must stay cheap and torch-free: training imports
``service.imaging`` and ``service.contract`` so that both stages decode and
describe images by one rule.
"""
