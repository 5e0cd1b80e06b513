"""Benchmarks: accuracy (``python -m benchmarks.accuracy``), memory and step time; results in ``results/``."""
