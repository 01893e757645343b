"""Benchmarks and research runners, outside the installed library: ``python -m benchmarks.<name>``."""
