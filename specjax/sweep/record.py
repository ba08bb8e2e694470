"""Stage 3 of a sweep, the record: each evaluation's numbers kept on the host, and a group's result arrays.

Names, axes and dtypes follow :mod:`specjax.sweep.schema`.
"""

from __future__ import annotations

import jax
import numpy as np

from specjax import config as config_lib
from specjax.sweep.plan import GroupPlan, eval_epochs, snapshot_epochs
from specjax.sweep.schema import key, recorded


class History:
    """Host-side record of a wave: per evaluation scalars and vectors, per snapshot matrices and parameters."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None):
        self.arrays: dict[str, list[np.ndarray]] = {}
        if arrays:
            for k, v in arrays.items():
                self.arrays[k] = list(v)

    def append(self, name: str, value: np.ndarray) -> None:
        self.arrays.setdefault(name, []).append(np.asarray(value))

    def stacked(self) -> dict[str, np.ndarray]:
        """Arrays with the evaluation/snapshot axis first."""
        return {k: np.stack(v) for k, v in self.arrays.items()}

    @property
    def evaluations(self) -> int:
        return len(self.arrays.get("eval_loss", ()))


def record_eval(history: History, record, student, stats, cfg, is_snapshot: bool) -> None:
    """Appends one evaluation of a wave's runs (host arrays with a leading runs axis) to ``history``.

    Every array the schema declares ``evaluated`` is taken from ``record`` by its name (per hidden layer ``l`` from
    the ``l``-th entry, kept as ``<name>_l<l>``): at every evaluation for the ``eval`` axis, at snapshots (every
    evaluation with ``record_corr='all'``) for ``corr_eval``.

    Args:
      record: the runs' :data:`~specjax.engine.EvalRecord` (``{schema name: array or per-layer tuple}``).
      student: the runs' student parameters.
      stats: the :class:`~specjax.engine.ChunkStats` summed over the interval, or ``None`` at epoch 0.
      is_snapshot: keep parameters (and correlation matrices) at this evaluation.
    """
    keep = {"eval": True, "corr_eval": is_snapshot or cfg.record_corr == "all", "snapshot": is_snapshot}
    for spec in recorded():
        if not spec.evaluated or not keep[spec.axes[2]]:
            continue
        value = record[spec.name]
        per_layer = enumerate(value, start=1) if spec.layers == "hidden" else [(None, value)]
        for l, v in per_layer:
            history.append(key(spec.name, l), v)
    if stats is None:
        nan = np.full(record["eval_loss"].shape, np.nan, record["eval_loss"].dtype)
        history.append("train_loss", nan)
        history.append("grad_norm", nan)
    else:
        steps = np.maximum(stats.steps, 1)
        history.append("train_loss", np.where(stats.steps > 0, stats.loss_sum / steps, np.nan))
        history.append("grad_norm", np.where(stats.steps > 0, stats.grad_norm_sum / steps, np.nan))
    if is_snapshot:
        for l, (W, b) in enumerate(student, start=1):
            history.append(key("student_W", l), W)
            if b is not None:
                history.append(key("student_b", l), b)


def wave_result(
    history: History, teachers: list, diverged_at: list[np.ndarray], states: list | None = None
) -> dict[str, np.ndarray]:
    """A wave's history with the runs axis first, plus its teachers' parameters, ``diverged_at`` and the runs' final
    states (``final_state_<i>``, one array per :class:`~specjax.engine.RunState` leaf).

    Args:
      teachers: per block, the teacher parameters (host arrays, leading runs axis).
      diverged_at: per block, ``(block,)`` int arrays.
      states: per block, the final :class:`~specjax.engine.RunState` (host arrays, leading runs axis).
    """
    out = {k: np.moveaxis(v, 0, 1) for k, v in history.stacked().items()}
    for l in range(len(teachers[0])):
        out[key("teacher_W", l + 1)] = np.concatenate([t[l][0] for t in teachers])
        if teachers[0][l][1] is not None:
            out[key("teacher_b", l + 1)] = np.concatenate([t[l][1] for t in teachers])
    out["diverged_at"] = np.concatenate(diverged_at)
    if states is not None:
        for i, leaves in enumerate(zip(*(jax.tree.leaves(s) for s in states), strict=True)):
            out[key("final_state", i)] = np.concatenate([np.asarray(leaf) for leaf in leaves])
    return out


def group_arrays(cfg, plan: GroupPlan, waves: list[dict[str, np.ndarray]], sweep: str) -> dict[str, np.ndarray]:
    """Concatenates a group's waves, drops padding and reshapes runs to ``(settings, seeds)``.

    Returns:
      the arrays of :func:`specjax.sweep.schema.expected_shapes`, plus one ``(S,)`` array per swept field.
    """
    S, N = len(plan.settings), plan.seeds
    merged = {k: np.concatenate([w[k] for w in waves])[: plan.runs] for k in waves[0]}
    out = {k: v.reshape(S, N, *v.shape[1:]) for k, v in merged.items()}
    out["eval_epochs"] = eval_epochs(cfg)
    out["snapshot_epochs"] = snapshot_epochs(cfg)
    out["corr_epochs"] = eval_epochs(cfg) if cfg.record_corr == "all" else snapshot_epochs(cfg)
    out["over_realization"] = np.array(plan.over_realization)
    out["sweep_id"] = np.array(sweep)
    for f in config_lib.SWEPT_FIELDS:
        out[f] = np.array([getattr(s, f) for s in plan.settings])
    return out
