"""Stage 5 of a sweep, the summary: ``summary.json``, the :class:`SweepResult`, and reading a finished sweep back."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax import store
from specjax.core import metrics
from specjax.errors import ArgumentError, ConfigError, StoreError
from specjax.sweep import named
from specjax.sweep.checkpoint import shard_dir, shard_folders, shard_result_paths
from specjax.sweep.plan import GroupPlan, eval_epochs, plan_groups
from specjax.sweep.schema import check_group_arrays, key


@dataclasses.dataclass
class SweepResult:
    """What :func:`specjax.sweep.run_sweep` returns and :func:`load_results` reads back.

    Attributes:
      config: the resolved config.
      arrays: one dict per shape group of NumPy arrays with leading axes ``(settings, seeds)``; names, axes and
        dtypes in :mod:`specjax.sweep.schema`.
      summary: the content of ``summary.json`` (``groups``: one entry per over-realization x setting).
      workdir: where files were written, or ``None``.
    """

    config: ml_collections.ConfigDict
    arrays: list[dict[str, np.ndarray]]
    summary: dict
    workdir: Path | None

    def to_xarray(self):
        """One ``xarray.Dataset`` of the whole sweep, named dimensions (:func:`specjax.sweep.named.to_xarray`)."""
        return named.to_xarray(self)

    def to_dataframe(self):
        """A tidy ``pandas.DataFrame``, one row per run and evaluation (:func:`specjax.sweep.named.to_dataframe`)."""
        return named.to_dataframe(self)

    def analyze(self, over_realization: int | None = None, epoch: int | None = None, samples: int | None = None):
        """Theorem reports and L-shape statistics of every run of a group (``None``: of every group), vmapped, as
        one ``xarray.Dataset`` with the dimensions and coordinates of :meth:`to_xarray`
        (:func:`specjax.sweep.analysis.analysis_dataset`; the positional arrays: ``analyze_group``; an invalid
        argument raises ``ArgumentError`` naming it)."""
        from specjax.sweep.analysis import analysis_dataset

        return analysis_dataset(self, over_realization, epoch, samples)

    def run(self, seed: int, **settings: float) -> named.RunView:
        """One run by setting values and seed index: its teacher, students, eval inputs (:class:`named.RunView`;
        an invalid argument raises ``ArgumentError`` naming it and its valid values)."""
        return named.select_run(self, seed, **settings)


def summarize(cfg, plans: list[GroupPlan], arrays: list[dict[str, np.ndarray]]) -> dict:
    """``summary.json`` content: one entry per (over-realization, setting).

    ``eval_loss`` is in the training convention (``config.loss``), ``eval_mse`` the mean over samples and outputs
    (the reference code's logged loss; for ``half_sse``, ``eval_loss = C/2 * eval_mse``); both at the last
    evaluation, one value per seed. ``success_rate`` (per teacher node, at the last evaluation, diverged seeds left
    out) comes with its Wilson interval at ``confidence`` (:func:`specjax.core.metrics.wilson_interval`):
    ``success_rate_ci_low`` and ``success_rate_ci_high`` per teacher node, and ``success_rate_ci_half_width``, the
    widest node's half-width ``(high - low) / 2`` (the quantity ``--target_ci`` bounds), over ``valid_seeds`` seeds.
    """
    groups = []
    for plan, a in zip(plans, arrays, strict=True):
        layers = len(plan.spec.teacher_widths)
        for s, setting in enumerate(plan.settings):
            diverged = a["diverged_at"][s] >= 0
            valid = ~diverged
            best = a[key("best_teacher_corr", 1)][s]  # (N, E, m)
            by_eval = metrics.success_rate(best, valid=valid[:, None])
            low, high = metrics.wilson_interval(*metrics.success_counts(best[:, -1], valid=valid))
            groups.append(
                {
                    "over_realization": plan.over_realization,
                    **setting._asdict(),
                    "seeds": plan.seeds,
                    "success_rate": by_eval[-1].tolist(),
                    "success_rate_ci_low": low.tolist(),
                    "success_rate_ci_high": high.tolist(),
                    "success_rate_ci_half_width": float(np.max(high - low) / 2) if valid.any() else float("nan"),
                    "valid_seeds": int(valid.sum()),
                    "success_rate_by_eval": by_eval.tolist(),
                    "success_rate_by_threshold": {
                        f"{t:g}": metrics.success_rate(best[:, -1], t, valid=valid).tolist() for t in metrics.THRESHOLDS
                    },
                    "success_rate_by_layer": [
                        metrics.success_rate(a[key("best_teacher_corr", l)][s][:, -1], valid=valid).tolist()
                        for l in range(1, layers + 1)
                    ],
                    "eval_loss": a["eval_loss"][s, :, -1].tolist(),
                    "eval_mse": a["eval_mse"][s, :, -1].tolist(),
                    "diverged": diverged.tolist(),
                    "diverged_at": a["diverged_at"][s].tolist(),
                }
            )
    return {
        "eval_epochs": eval_epochs(cfg).tolist(),
        "threshold": metrics.MATCH_THRESHOLD,
        "confidence": metrics.CONFIDENCE,
        "groups": groups,
    }


def load_config(workdir: str | Path) -> tuple[ml_collections.ConfigDict, str | None]:
    """The validated config a workdir's ``config.json`` holds, and its sweep identity.

    Raises:
      StoreError: the file is missing, unreadable, or holds fields a sweep never writes (names the file and field).
    """
    cfg_path = Path(workdir) / "config.json"
    held = store.load_json(cfg_path)
    if not isinstance(held.get("config"), dict):
        raise StoreError(f"{cfg_path}: holds no 'config' object")
    try:
        cfg = config_lib.validate(config_lib.from_plain(held["config"]))
    except (ConfigError, TypeError, ValueError, AttributeError) as e:
        raise StoreError(f"{cfg_path}: {' '.join(str(e).split())}") from None
    ident = held.get("sweep_id")
    return cfg, ident if isinstance(ident, str) else None


def _existing_workdir(workdir) -> Path:
    """``workdir`` as a ``Path`` to an existing folder; refuses anything else in one line naming it."""
    if not isinstance(workdir, (str, os.PathLike)) or str(workdir) == "":
        raise ArgumentError(f"workdir: expected the path of a sweep's folder, got {workdir!r}")
    workdir = Path(workdir)
    if not workdir.exists():
        raise StoreError(f"{workdir}: workdir not found")
    if not workdir.is_dir():
        raise StoreError(f"{workdir}: workdir is not a directory")
    return workdir


def load_results(workdir: str | Path) -> SweepResult:
    """Reads a finished sweep back from its workdir: the same config, arrays and summary ``run_sweep`` returned.

    Every results file is checked against the result schema (each array's presence, shape and dtype) and the
    sweep's identity.

    Raises:
      ArgumentError: ``workdir`` is not a path.
      StoreError: the workdir does not exist or is not a folder; a file is missing, truncated, corrupted or not
        what this sweep writes (names the file and field); for an unfinished sharded sweep, which shards are missing.
    """
    workdir = _existing_workdir(workdir)
    cfg, ident = load_config(workdir)
    if not (workdir / "summary.json").exists():
        missing = missing_shards(workdir, cfg)
        if missing:
            raise StoreError(f"{workdir}: the sharded sweep is unfinished: {missing}")
    summary = store.load_json(workdir / "summary.json")
    if not isinstance(summary.get("groups"), list):
        raise StoreError(f"{workdir / 'summary.json'}: holds no 'groups' list")
    plans = plan_groups(cfg, 1)
    arrays = []
    for plan in plans:
        path = workdir / "results" / f"group{plan.index}.npz"
        a = store.load_npz(path)
        check_group_arrays(path, a, cfg, plan, ident)
        arrays.append(a)
    expected = sum(len(p.settings) for p in plans)
    if len(summary["groups"]) != expected:
        raise StoreError(
            f"{workdir / 'summary.json'}: holds {len(summary['groups'])} groups, the config has {expected}"
        )
    return SweepResult(cfg, arrays, summary, workdir)


def missing_shards(workdir: str | Path, cfg: ml_collections.ConfigDict | None = None) -> str | None:
    """Which shards of a sharded sweep have not finished, as a sentence; ``None`` if the workdir has no shards.

    With ``cfg``, a shard marked finished whose results files are gone (deleted, moved) is named with the command
    that retrains it.
    """
    workdir = Path(workdir)
    parts = []
    for n in sorted({count for _, count in shard_folders(workdir)}):
        unfinished, lost = [], []
        for i in range(n):
            if not (shard_dir(workdir, (i, n)) / "done.json").exists():
                unfinished.append(i)
            elif cfg is not None:
                gone = [p for p in shard_result_paths(workdir, cfg, (i, n)) if not p.exists()]
                if gone:
                    lost.append(
                        f"shard {i} of {n} finished but its results file(s) {', '.join(map(str, gone))} are "
                        f"missing: re-run that shard (--num_shards={n} --shard_index={i}) to retrain them"
                    )
        if unfinished:
            parts.append(f"shard(s) {', '.join(map(str, unfinished))} of {n} have not finished")
        parts += lost
        if not unfinished and not lost:
            parts.append(f"all {n} shards finished but their results were not merged (re-run any shard)")
    return "; ".join(parts) or None
