"""The shared core every stage stands on: the model contract, the image decode and
preprocessing rule, domain errors, and how onnxruntime is opened.

Depends on numpy, Pillow and onnxruntime only: no torch, no web framework, so the
training image, the export step and the slim serve image all carry the same rule.
"""
