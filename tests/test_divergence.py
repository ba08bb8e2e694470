"""Divergence isolation: a run whose loss or gradient becomes non-finite is frozen and flagged, and every other run
sharing its compiled program is bit-identical to a sweep without it."""

import json

import numpy as np
import pytest
from helpers import small_config

from specjax import sweep
from specjax.engine import make_mesh

DIVERGING_LR = 100.0  # with init scale 0.1 and data std 1.5, the weights overflow float64 within a few steps


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    mesh = make_mesh(4)
    wd = tmp_path_factory.mktemp("with_diverging")
    # 2 polarities x 2 learning rates x 2 seeds = 8 runs: one block of 2 runs per device, so the diverging runs
    # share a vmapped batch with healthy ones.
    with_bad = sweep.run_sweep(
        small_config(teacher_polarity=(0.0, 1.0), lr=(0.05, DIVERGING_LR)), wd, progress=None, mesh=mesh
    )
    without = sweep.run_sweep(small_config(teacher_polarity=(0.0, 1.0), lr=(0.05,)), None, progress=None, mesh=mesh)
    return with_bad, without, wd


def test_diverging_runs_are_flagged_with_their_step(sweeps):
    with_bad, _, wd = sweeps
    summary = json.loads((wd / "summary.json").read_text())
    for entry in summary["groups"]:
        if entry["lr"] == DIVERGING_LR:
            assert entry["diverged"] == [True, True]
            assert all(0 <= step < 50 for step in entry["diverged_at"])  # within the first epoch
            assert entry["success_rate"] == [None, None, None]  # no valid seed: NaN, written as null
        else:
            assert entry["diverged"] == [False, False] and entry["diverged_at"] == [-1, -1]
            assert all(v is not None for v in entry["success_rate"] + entry["eval_loss"])
    diverged_at = with_bad.arrays[0]["diverged_at"]  # (settings, seeds)
    np.testing.assert_array_equal(diverged_at >= 0, [[False, False], [True, True], [False, False], [True, True]])


def test_diverged_runs_are_frozen_at_their_last_finite_state(sweeps):
    a = sweeps[0].arrays[0]
    np.testing.assert_array_equal(a["snapshot_epochs"], [0, 2, 4])
    for s in (1, 3):  # the diverging settings
        for key in ("student_W_l1", "student_b_l1", "student_W_l2", "student_b_l2"):
            params = a[key][s]  # (seeds, snapshots, ...)
            assert np.all(np.isfinite(params)), key
            # Diverged in epoch 0-1, so the parameters at epochs 2 and 4 are the same frozen values.
            np.testing.assert_array_equal(params[:, 1], params[:, 2], strict=True)
        assert np.all(np.isnan(a["train_loss"][s][:, 2:]))  # no finite step counted after the freeze
        eval_loss = a["eval_loss"][s]
        np.testing.assert_array_equal(eval_loss[:, 2], eval_loss[:, -1])


def test_other_runs_are_bit_identical_to_a_sweep_without_the_diverging_rate(sweeps):
    with_bad, without, _ = sweeps
    a, b = with_bad.arrays[0], without.arrays[0]
    per_run = [k for k in b if b[k].ndim >= 2 and b[k].shape[:2] == (2, 2)]
    assert {"eval_loss", "train_loss", "corr_l1", "student_W_l1", "teacher_W_l1", "diverged_at"} <= set(per_run)
    for k in per_run:
        for s_with, s_without in ((0, 0), (2, 1)):  # (polarity 0, lr 0.05), (polarity 1, lr 0.05)
            assert a[k][s_with].tobytes() == b[k][s_without].tobytes(), k
