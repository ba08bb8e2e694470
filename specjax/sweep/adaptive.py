"""Adaptive seeds: grow a sweep's seeds until every setting's success-rate interval is narrow enough.

``python -m specjax.sweep ... --target_ci=0.05 [--max_seeds=256]`` runs the sweep, then, while some setting's
interval is wider than the target, grows ``seeds`` through the growth path of :mod:`specjax.sweep.grow` (the runs
already trained are reused, only the new seeds train, and the result is bit-identical to a sweep run with the final
seed count from the start) until every setting is within the target or the seed cap is reached.

The interval is the Wilson interval at :data:`specjax.core.metrics.CONFIDENCE` (95 %) of the success rate of each
teacher node over the setting's seeds that did not diverge (``summary.json``: ``success_rate_ci_low/high``); a
setting's width is its widest teacher node's **half-width** ``(high - low) / 2`` (``success_rate_ci_half_width``).
A setting is within the target when that half-width is at most ``target_ci``; a setting without a valid seed never
is. The next seed count is the smallest one at which every setting still too wide would be within the target if its
success rates stayed as measured (Wilson's half-width at the same proportion), at least one more seed and at most
``max_seeds``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax.core import metrics
from specjax.errors import ConfigError, StoreError
from specjax.sweep.progress import ProgressFn

#: Default seed cap of ``--target_ci`` (``--max_seeds``).
DEFAULT_MAX_SEEDS = 256


@dataclasses.dataclass(frozen=True)
class Width:
    """One setting's interval: its label, half-width (NaN: no valid seed) and current success rates per node."""

    label: str
    half_width: float
    rates: tuple[float, ...]


def check_target(target_ci: float, max_seeds: int, seeds: int) -> None:
    """Refuses a target or cap that cannot work, naming the flag.

    Raises:
      ConfigError: ``target_ci`` not in ``(0, 0.5)`` (a half-width of 0.5 spans every rate), ``max_seeds`` below the
        config's ``seeds``.
    """
    if not (isinstance(target_ci, (int, float)) and 0 < target_ci < 0.5):
        raise ConfigError(f"target_ci: {target_ci!r} must be a half-width in (0, 0.5), e.g. 0.05")
    if isinstance(max_seeds, bool) or not isinstance(max_seeds, int) or max_seeds < seeds:
        raise ConfigError(f"max_seeds: {max_seeds!r} must be an integer >= the config's seeds ({seeds})")


def widths(summary: dict) -> list[Width]:
    """Every setting's :class:`Width`, in ``summary['groups']`` order."""
    from specjax.config import setting_label, varying_fields

    groups = summary["groups"]
    varying = varying_fields(groups)
    out = []
    for g in groups:
        half = g.get("success_rate_ci_half_width")
        out.append(
            Width(
                f"{g['over_realization']}x {setting_label(g, varying)}",
                float("nan") if half is None else float(half),
                tuple(float("nan") if r is None else float(r) for r in g["success_rate"]),
            )
        )
    return out


def too_wide(found: list[Width], target_ci: float) -> list[Width]:
    """The settings whose half-width exceeds ``target_ci`` (or that have no interval)."""
    return [w for w in found if not w.half_width <= target_ci]


def seeds_needed(wide: list[Width], target_ci: float, seeds: int, max_seeds: int) -> int:
    """The next seed count: the smallest ``n`` in ``seeds+1 .. max_seeds`` at which every node of every setting in
    ``wide`` would have a Wilson half-width of at most ``target_ci`` at its measured rate (``max_seeds`` if none)."""
    rates = np.array([r for w in wide for r in w.rates if math.isfinite(r)] or [0.5])
    for n in range(seeds + 1, max_seeds + 1):
        if np.all(metrics.wilson_half_width(np.round(rates * n), n) <= target_ci):
            return n
    return max_seeds


def _describe(wide: list[Width], limit: int = 6) -> str:
    shown = [f"{w.label} ({'no valid seed' if math.isnan(w.half_width) else f'{w.half_width:.3f}'})" for w in wide]
    more = f"; and {len(shown) - limit} more" if len(shown) > limit else ""
    return "; ".join(shown[:limit]) + more


def held_seeds(cfg: ml_collections.ConfigDict, workdir: Path) -> int | None:
    """The seed count of a sweep in ``workdir`` that is ``cfg`` grown in seeds only (an earlier ``--target_ci`` run
    of the same command), so that re-running the command carries on from it; ``None`` otherwise."""
    from specjax.sweep.summary import load_config

    if not (workdir / "config.json").exists():
        return None
    try:
        held, _ = load_config(workdir)
    except StoreError:
        return None
    mine, theirs = config_lib.to_plain(cfg), config_lib.to_plain(held)
    mine.pop("seeds"), theirs.pop("seeds")
    return int(held.seeds) if mine == theirs and held.seeds > cfg.seeds else None


def run_to_target(
    cfg: ml_collections.ConfigDict,
    workdir: str | Path,
    target_ci: float,
    max_seeds: int = DEFAULT_MAX_SEEDS,
    overwrite: bool = False,
    progress: ProgressFn | None = print,
    run=None,
):
    """Runs (or resumes) the sweep in ``workdir``, then grows its seeds until every setting's half-width is at most
    ``target_ci`` or ``seeds`` reaches ``max_seeds`` (see the module docstring).

    Args:
      cfg: the sweep's config (not modified); its ``seeds`` is the first round's.
      workdir: the sweep's folder (growth needs one).
      run: ``run(cfg, workdir, overwrite, progress) -> SweepResult`` (default :func:`specjax.sweep.run_sweep`).

    Returns:
      The final :class:`~specjax.sweep.SweepResult`.

    Raises:
      ConfigError: a bad ``target_ci`` or ``max_seeds`` (before anything runs); what ``run_sweep`` raises.
    """
    from specjax.sweep.run import run_sweep

    say = progress or (lambda line: None)
    run = run or (lambda c, w, o, p: run_sweep(c, w, overwrite=o, progress=p))
    check_target(target_ci, max_seeds, cfg.seeds)
    workdir = Path(workdir)
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    held = None if overwrite else held_seeds(cfg, workdir)
    if held is not None:
        say(f"target_ci {target_ci:g}: the workdir holds this sweep grown to {held} seeds; carrying on from there")
        cfg.seeds = held
    result = run(cfg, workdir, overwrite, progress)
    while True:
        wide = too_wide(widths(result.summary), target_ci)
        settings = len(result.summary["groups"])
        if not wide:
            say(
                f"target_ci {target_ci:g}: every setting's 95% Wilson half-width is within {target_ci:g} "
                f"at {cfg.seeds} seeds ({settings} settings)"
            )
            return result
        if cfg.seeds >= max_seeds:
            say(
                f"target_ci {target_ci:g}: seed cap reached (max_seeds={max_seeds}); {len(wide)} of {settings} "
                f"settings still wider: {_describe(wide)}"
            )
            return result
        new = seeds_needed(wide, target_ci, cfg.seeds, max_seeds)
        say(
            f"target_ci {target_ci:g}: {len(wide)} of {settings} settings wider (95% Wilson half-width, widest "
            f"teacher node): {_describe(wide)}; growing seeds {cfg.seeds} -> {new}"
        )
        cfg.seeds = new
        result = run(cfg, workdir, False, progress)
