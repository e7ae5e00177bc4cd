"""The parts of `tools/bench.py`: one module per row of the benchmark table, and their helpers."""
