"""Determinism: a run's numbers do not depend on the grid it shares, the chunk length or the device count, and its
training does not depend on the block size. Every comparison is between two different layouts of the same runs,
bit for bit (``tobytes``), except where stated.

What does change numbers (dtype, platform, XLA version and flags) is listed in docs/reliability.md.
"""

import numpy as np
import pytest
from helpers import small_config

from specjax import sweep
from specjax.engine import make_mesh

GRID = dict(teacher_polarity=(0.0, 1.0), lr=(0.05, 0.1))  # 4 settings x 2 seeds = 8 runs
# Accumulated over an evaluation interval; their summation order follows the chunking (see test_chunk_length).
INTERVAL_SUMS = ("train_loss", "grad_norm")
# Reductions over the evaluation set, vectorised across a device's runs: their order follows the block size.
EVAL_REDUCTIONS = ("eval_", "best_teacher_corr_", "best_student_corr_", "corr_")


def per_run(result, setting: int, seed: int) -> dict[str, np.ndarray]:
    """Every array of a run: the entries with leading ``(settings, seeds)`` axes, indexed."""
    a = result.arrays[0]
    S, N = len(result.summary["groups"]), result.config.seeds
    return {k: v[setting, seed] for k, v in a.items() if v.ndim >= 2 and v.shape[:2] == (S, N)}


def assert_bit_identical(x: dict[str, np.ndarray], y: dict[str, np.ndarray], skip=()) -> None:
    assert sorted(x) == sorted(y)
    assert len(x) >= 10
    for k in x:
        if k not in skip:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            assert x[k].tobytes() == y[k].tobytes(), f"{k}: max |diff| {np.max(np.abs(x[k] - y[k]))}"


def rounded(obj, digits: int = 12):
    """``obj`` (a summary) with every float rounded to ``digits`` significant digits."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v, digits) for v in obj]
    return obj


@pytest.fixture(scope="module")
def mesh4():
    return make_mesh(4)


@pytest.fixture(scope="module")
def grid(mesh4):
    """8 runs on 4 devices, 2 runs vmapped per device, chunks of 25 steps."""
    return sweep.run_sweep(small_config(**GRID), None, progress=None, mesh=mesh4)


def test_a_run_does_not_depend_on_the_grid_it_shares(grid, mesh4):
    # Alone: polarity 1, lr 0.1 (setting 3 of the grid), seed 0; padded to a block of 8 copies of itself.
    alone = sweep.run_sweep(small_config(teacher_polarity=(1.0,), lr=(0.1,), seeds=1), None, progress=None, mesh=mesh4)
    assert_bit_identical(per_run(alone, 0, 0), per_run(grid, 3, 0))
    # A smaller grid: the same setting now sits in another block position, next to other runs.
    two = sweep.run_sweep(small_config(teacher_polarity=(0.0, 1.0), lr=(0.1,)), None, progress=None, mesh=mesh4)
    for seed in (0, 1):
        assert_bit_identical(per_run(two, 1, seed), per_run(grid, 3, seed))
        assert_bit_identical(per_run(two, 0, seed), per_run(grid, 1, seed))


def test_block_size(grid, mesh4):
    """Blocks of 4 runs (1 per device, 2 blocks) against the grid's one block of 8 (2 per device): another compiled
    program with another vmap width per device.

    Training is bit-identical: parameters, training statistics and the divergence flags. The evaluation's
    reductions over the evaluation set (losses and the best correlations) are vectorised across the runs a device
    holds, so their summation order follows that width: they agree to rounding (measured: 3e-16 absolute), not bit
    for bit.
    """
    small_blocks = sweep.run_sweep(small_config(**GRID, runs_per_block=1), None, progress=None, mesh=mesh4)
    for s in range(4):
        for seed in range(2):
            x, y = per_run(small_blocks, s, seed), per_run(grid, s, seed)
            reduced = [k for k in x if k.startswith(EVAL_REDUCTIONS)]
            assert {"eval_loss", "best_teacher_corr_l1"} <= set(reduced) and "student_W_l1" not in reduced
            assert_bit_identical(x, y, skip=reduced)
            for k in reduced:
                np.testing.assert_allclose(x[k], y[k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert rounded(small_blocks.summary) == rounded(grid.summary)


def test_device_count(grid):
    """1 device (the 8 runs in 4 blocks of 2) against 4 devices (one block, 2 runs per device)."""
    one = sweep.run_sweep(small_config(**GRID), None, progress=None, mesh=make_mesh(1))
    for s in range(4):
        for seed in range(2):
            assert_bit_identical(per_run(one, s, seed), per_run(grid, s, seed))
    assert one.summary == grid.summary


def test_chunk_length(grid, mesh4):
    """Chunks of 5 steps instead of 25: parameters, evaluations and correlations are bit-identical.

    ``train_loss`` and ``grad_norm`` are interval means of per-step values summed on device within a chunk and on
    the host across chunks, so their summation order follows the chunking: they agree to rounding (1e-12 relative
    in float64), not bit for bit.
    """
    short = sweep.run_sweep(small_config(**GRID, chunk_steps=5), None, progress=None, mesh=mesh4)
    for s in range(4):
        for seed in range(2):
            x, y = per_run(short, s, seed), per_run(grid, s, seed)
            assert_bit_identical(x, y, skip=INTERVAL_SUMS)
            for k in INTERVAL_SUMS:
                np.testing.assert_allclose(x[k], y[k], rtol=1e-12, atol=0)
