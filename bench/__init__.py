"""Benchmarks of Gamify: `python -m bench.run [--quick] [--only NAME]` (see BENCHMARKS.md).

Not part of the test suite. Every figure is measured next to its baseline in the same run, on
the same machine; results go to ``bench/results/`` as markdown and JSON.
"""
