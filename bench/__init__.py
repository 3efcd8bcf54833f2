"""Benchmarks: every hop of a run against its physical baseline (``python -m bench``)."""
