"""The benchmark scripts behind BENCHMARKS.md and docs/: run each from the repository root as
``python -m benchmarks.NAME ...``; what several of them share is in ``benchmarks.common``."""
