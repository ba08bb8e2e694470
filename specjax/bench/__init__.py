"""The benchmark: ``python -m specjax.bench`` measures run-steps/s, peak fraction, memory and baselines.

Modules: :mod:`~specjax.bench.measure` (specjax, peak, memory, scaling), :mod:`~specjax.bench.suite`
(:func:`run_bench`), :mod:`~specjax.bench.baselines` (per-seed JAX and PyTorch loops), :mod:`~specjax.bench.report`
(speedups, table, scaling plot); the command line is ``__main__``.
"""

from specjax.bench.measure import BenchOptions
from specjax.bench.suite import run_bench

__all__ = ["BenchOptions", "run_bench"]
