"""Performance runs: ``python -m benchmarks`` (the gRPC server suite, see README.md) and the bench_* scripts."""
