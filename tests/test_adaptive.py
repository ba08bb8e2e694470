"""Adaptive seeds (``--target_ci``): seeds grow through the growth path until every setting's Wilson half-width is
within the target or the seed cap is reached; the progress names the settings still too wide."""

import types

import numpy as np
import pytest
from helpers import assert_same_results, small_config

from specjax import sweep
from specjax.config import SWEPT_FIELDS
from specjax.core import metrics
from specjax.engine import make_mesh
from specjax.errors import ConfigError
from specjax.sweep import adaptive


def test_seeds_needed_is_the_smallest_count_that_would_do():
    from scipy.stats import binomtest

    def half(k, n):
        ci = binomtest(int(k), n).proportion_ci(method="wilson")
        return (ci.high - ci.low) / 2

    wide = [adaptive.Width("a", 0.3, (1.0, 0.5))]
    n = adaptive.seeds_needed(wide, 0.1, 8, 1000)
    assert half(n, n) <= 0.1 and half(round(0.5 * n), n) <= 0.1
    assert half(round(0.5 * (n - 1)), n - 1) > 0.1 or half(n - 1, n - 1) > 0.1  # n - 1 would not do
    assert adaptive.seeds_needed(wide, 0.01, 8, 50) == 50  # capped
    assert adaptive.seeds_needed([adaptive.Width("a", 0.3, (1.0,))], 0.3, 8, 50) == 9  # at least one more


def fake_sweep(rates: dict[float, float]):
    """A ``run`` for :func:`adaptive.run_to_target` that trains nothing: each teacher polarity ``p`` covers its two
    teacher nodes in a fraction ``rates[p]`` of the seeds; records the seed counts it was called with."""
    calls = []

    def run(cfg, workdir, overwrite, progress):
        calls.append(cfg.seeds)
        groups = []
        for p, rate in rates.items():
            k = np.full(2, round(rate * cfg.seeds))
            low, high = metrics.wilson_interval(k, cfg.seeds)
            groups.append(
                {**dict.fromkeys(SWEPT_FIELDS, 0.0), "over_realization": 1, "teacher_polarity": p,
                 "success_rate": (k / cfg.seeds).tolist(), "success_rate_ci_half_width": float(np.max(high - low) / 2)}
            )  # fmt: skip
        return types.SimpleNamespace(summary={"groups": groups})

    run.calls = calls
    return run


def test_seeds_grow_until_every_setting_is_narrow_enough(tmp_path):
    run, lines = fake_sweep({0.0: 1.0, 2.0: 0.5}), []
    cfg = small_config(seeds=8)
    result = adaptive.run_to_target(cfg, tmp_path / "wd", 0.2, 100, progress=lines.append, run=run)
    assert run.calls[0] == 8 and run.calls == sorted(run.calls) and len(run.calls) >= 2
    assert all(g["success_rate_ci_half_width"] <= 0.2 for g in result.summary["groups"])
    assert "1x p=2 (" in lines[0] and "1x p=0" not in lines[0] and f"growing seeds 8 -> {run.calls[1]}" in lines[0]
    assert lines[-1].startswith("target_ci 0.2: every setting's 95% Wilson half-width is within 0.2 at")
    assert cfg.seeds == 8  # the caller's config is not changed


def test_the_seed_cap_stops_growth_and_names_the_settings_still_too_wide(tmp_path):
    run, lines = fake_sweep({0.0: 1.0, 2.0: 0.5}), []
    adaptive.run_to_target(small_config(seeds=4), tmp_path / "wd", 0.05, 12, progress=lines.append, run=run)
    assert run.calls == [4, 12]
    assert lines[-1].startswith("target_ci 0.05: seed cap reached (max_seeds=12); 2 of 2 settings still wider: ")
    assert "1x p=2 (0.2" in lines[-1] and "1x p=0 (0.1" in lines[-1]


@pytest.mark.parametrize(
    "target, cap, message",
    [(0.0, 10, r"target_ci: 0\.0 must be"), (0.5, 10, "target_ci"), (0.1, 1, r"max_seeds: 1 must be .* \(2\)")],
)
def test_bad_targets_are_refused_before_anything_runs(tmp_path, target, cap, message):
    run = fake_sweep({0.0: 1.0})
    with pytest.raises(ConfigError, match=message):
        adaptive.run_to_target(small_config(), tmp_path, target, cap, run=run)
    assert run.calls == []


@pytest.mark.slow
def test_adaptive_growth_is_bit_identical_to_a_sweep_with_the_final_seeds(tmp_path):
    mesh = make_mesh(4)
    cfg = small_config(seeds=2, lr=(0.05,))
    lines = []

    def run(c, wd, overwrite, progress):
        return sweep.run_sweep(c, wd, overwrite=overwrite, progress=progress, mesh=mesh)

    result = adaptive.run_to_target(cfg, tmp_path / "grown", 0.3, 5, progress=lines.append, run=run)
    final = result.config.seeds
    assert 2 < final <= 5 and any("[grow x1]" in line for line in lines)
    sweep.run_sweep(small_config(seeds=final, lr=(0.05,)), tmp_path / "fresh", progress=None, mesh=mesh)
    assert_same_results(tmp_path / "grown", tmp_path / "fresh")
    # Re-running the same command carries on from the grown sweep instead of refusing it.
    again = []
    adaptive.run_to_target(cfg, tmp_path / "grown", 0.3, 5, progress=again.append, run=run)
    assert again[0].startswith(f"target_ci 0.3: the workdir holds this sweep grown to {final} seeds")
