"""atalaia's benchmarks: `python -m bench <name>`; figures go to bench/RESULTS.md."""
