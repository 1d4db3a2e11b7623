"""Hand-run benchmarks (not run in CI): ``python -m benchmarks.<name> --help``."""
