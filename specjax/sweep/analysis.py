"""Sweep-level analysis: the theorem reports and L-shape statistics of every run of a shape group at once.

One ``jit(vmap(analyze_run))`` over the group's runs (settings x seeds) at a snapshot epoch, on each run's own
evaluation inputs regenerated from its seed key: no Python loop over runs. Research code calls it through
:meth:`specjax.sweep.SweepResult.analyze`.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from specjax import config as config_lib
from specjax.engine import Spec, eval_inputs, seed_key
from specjax.errors import ArgumentError
from specjax.sweep.named import _show, check_epoch, integer_argument, number_argument
from specjax.sweep.schema import key
from specjax.theory import reports

#: L-shape thresholds (Figs. 7/8): a student is specialized above, unspecialized below these best correlations.
SPECIALIZED_ABOVE = 0.95
UNSPECIALIZED_BELOW = 0.6


class GroupAnalysis(NamedTuple):
    """The analyses of every run of one shape group at one snapshot epoch; arrays have leading axes
    ``(settings, seeds)``.

    Attributes:
      over_realization, epoch: which group and snapshot.
      settings: the group's swept grid (one :class:`~specjax.engine.Hparams` of floats per setting).
      runs: :class:`specjax.theory.reports.RunAnalysis` of every run (L-shape per layer, boundary observation,
        Hungarian matching, pair geometry, Theorem 3 and Theorem 5 reports).
      l_shape_stats: per layer ``l`` (from 1), ``{'specialized', 'unspecialized', 'median_fan_out_specialized',
        'median_fan_out_unspecialized', 'fan_out_ratio'}`` each ``(settings, seeds)``.
    """

    over_realization: int
    epoch: int
    settings: tuple
    runs: reports.RunAnalysis
    l_shape_stats: dict[int, dict[str, np.ndarray]]


def l_shape_stats(best_student_corr: np.ndarray, fan_out: np.ndarray) -> dict[str, np.ndarray]:
    """Counts and median fan-outs of specialized / unspecialized students over the last (student) axis.

    Args:
      best_student_corr: ``(..., n)`` each student's best correlation; fan_out: ``(..., n)`` its fan-out size.

    Returns:
      arrays of shape ``(...)``; medians are NaN where a run has no such student.
    """
    corr, size = np.asarray(best_student_corr, float), np.asarray(fan_out, float)
    spec, unspec = corr > SPECIALIZED_ABOVE, corr < UNSPECIALIZED_BELOW
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: runs without such students
        med_spec = np.nanmedian(np.where(spec, size, np.nan), axis=-1)
        med_unspec = np.nanmedian(np.where(unspec, size, np.nan), axis=-1)
    return {
        "specialized": spec.sum(-1),
        "unspecialized": unspec.sum(-1),
        "median_fan_out_specialized": med_spec,
        "median_fan_out_unspecialized": med_unspec,
        "fan_out_ratio": med_unspec / med_spec,
    }


@functools.lru_cache(maxsize=8)
def _program(spec: Spec, samples: int, threshold: float):
    def one(student, teacher, seed_index, data_std, base_seed):
        x = eval_inputs(spec, data_std, seed_key(base_seed, seed_index))
        return reports.analyze_run(student, teacher, x[:samples], spec.activation, threshold, spec.loss)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None)))


class AnalyzeArgs(NamedTuple):
    """:func:`analyze_group`'s arguments, checked: the group's index, the snapshot epoch and its position, the number
    of evaluation inputs and the threshold."""

    group: int
    epoch: int
    snapshot: int
    samples: int
    threshold: float


def check_analyze_args(result, over_realization, epoch=None, samples=None, threshold=0.95) -> AnalyzeArgs:
    """Checks the arguments of an analysis of one group before anything is computed.

    Raises:
      ArgumentError: ``over_realization`` is not one of the sweep's, ``epoch`` not one of its snapshot epochs,
        ``samples`` not an integer in ``2..n_eval`` (a correlation needs two inputs), or ``threshold`` not a number
        in ``[-1, 1]``; the message names the argument and lists its valid values.
    """
    cfg = result.config
    groups = [int(o) for o in cfg.over_realization]
    over_realization = integer_argument("over_realization", over_realization, f"one of {groups}")
    if over_realization not in groups:
        raise ArgumentError(f"over_realization: {_show(over_realization)} is not in the sweep; its values are {groups}")
    g = groups.index(over_realization)
    snaps = [int(e) for e in result.arrays[g]["snapshot_epochs"]]
    epoch = snaps[-1] if epoch is None else check_epoch(epoch, snaps)
    n_eval = int(cfg.n_eval)
    if samples is None:
        samples = n_eval
    else:
        valid = f"evaluation inputs 2..{n_eval}; a correlation needs two"
        samples = integer_argument("samples", samples, valid)
        if not 2 <= samples <= n_eval:
            raise ArgumentError(f"samples: {_show(samples)} is out of range ({valid})")
    threshold = number_argument("threshold", threshold, "a correlation in [-1, 1]")
    if not -1.0 <= threshold <= 1.0:
        raise ArgumentError(f"threshold: {threshold} is out of range (a correlation in [-1, 1])")
    return AnalyzeArgs(g, epoch, snaps.index(epoch), samples, threshold)


def analyze_group(
    result, over_realization: int, epoch: int | None = None, samples: int | None = None, threshold: float = 0.95
) -> GroupAnalysis:
    """Theorem reports and L-shape statistics of every run of one group at a snapshot epoch (default: the last).

    Args:
      result: a :class:`~specjax.sweep.SweepResult`.
      over_realization: the group.
      epoch: a snapshot epoch (``result.arrays[g]['snapshot_epochs']``).
      samples: evaluation inputs used, ``2..n_eval`` (default: all ``n_eval``; fewer is faster).
      threshold: correlation in ``[-1, 1]`` below which a student is unaligned (Theorem 3).

    Raises:
      ArgumentError: an argument is invalid (:func:`check_analyze_args`: the group or epoch is not in the sweep,
        ``samples`` is not in ``2..n_eval``, ``threshold`` is not in ``[-1, 1]``).
    """
    g, epoch, p, samples, threshold = check_analyze_args(result, over_realization, epoch, samples, threshold)
    cfg = result.config
    over_realization = int(cfg.over_realization[g])
    a = result.arrays[g]
    spec = Spec.from_config(cfg, over_realization)
    S, N = a["eval_loss"].shape[:2]
    layers = len(spec.student_widths) - 1

    def params(prefix: str, *index) -> tuple:
        out = []
        for l in range(1, layers + 1):
            W = a[key(f"{prefix}_W", l)][(slice(None), slice(None), *index)]
            b_name = key(f"{prefix}_b", l)
            b = a[b_name][(slice(None), slice(None), *index)] if b_name in a else None
            out.append((W.reshape(S * N, *W.shape[2:]), None if b is None else b.reshape(S * N, *b.shape[2:])))
        return tuple(out)

    seed_index = jnp.tile(jnp.arange(N, dtype=jnp.int32), S)
    data_std = jnp.repeat(jnp.asarray(a["data_std"], spec.float_dtype), N)
    program = _program(spec, samples, threshold)
    runs = program(params("student", p), params("teacher"), seed_index, data_std, cfg.seed)
    runs = jax.tree.map(lambda v: np.asarray(v).reshape(S, N, *np.shape(v)[1:]), jax.device_get(runs))
    stats = {l + 1: l_shape_stats(shape.specialization, shape.fan_out) for l, shape in enumerate(runs.l_shape)}
    return GroupAnalysis(over_realization, epoch, tuple(config_lib.settings_grid(cfg)), runs, stats)
