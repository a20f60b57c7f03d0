"""Export: checkpoint -> one self-contained, self-describing ONNX file, proven against PyTorch."""
