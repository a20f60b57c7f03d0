"""Benchmarks: they print numbers (with the machine); they are never timed assertions in tests."""
