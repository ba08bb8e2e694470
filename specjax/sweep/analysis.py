"""Sweep-level analysis: the theorem reports and L-shape statistics of every run of a shape group at once.

One ``jit(vmap(analyze_run))`` over the group's runs (settings x seeds) at a snapshot epoch, on each run's own
evaluation inputs regenerated from its seed key: no Python loop over runs. Research code calls it through
:meth:`specjax.sweep.SweepResult.analyze`, which returns :func:`analysis_dataset`: the same analyses as one
``xarray.Dataset`` with the dimensions and coordinates of :meth:`~specjax.sweep.SweepResult.to_xarray`.
:func:`analyze_group` is the positional layer underneath (arrays with leading axes ``(settings, seeds)``).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from specjax import config as config_lib
from specjax.core import metrics
from specjax.engine import Spec, eval_inputs, seed_key
from specjax.errors import ArgumentError
from specjax.sweep.named import _show, check_epoch, integer_argument, number_argument
from specjax.sweep.schema import key
from specjax.theory import reports


class GroupAnalysis(NamedTuple):
    """The analyses of every run of one shape group at one snapshot epoch; arrays have leading axes
    ``(settings, seeds)``.

    Attributes:
      over_realization, epoch: which group and snapshot.
      settings: the group's swept grid (one :class:`~specjax.engine.Hparams` of floats per setting).
      runs: :class:`specjax.theory.reports.RunAnalysis` of every run (L-shape per layer, boundary observation,
        Hungarian matching, pair geometry, Theorem 3 report with its hypothesis per student, Theorem 5 report).
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
    spec, unspec = corr > metrics.SPECIALIZED_ABOVE, corr < metrics.UNSPECIALIZED_BELOW
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


def check_analyze_args(
    result, over_realization, epoch=None, samples=None, threshold=metrics.MATCH_THRESHOLD
) -> AnalyzeArgs:
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
    result,
    over_realization: int,
    epoch: int | None = None,
    samples: int | None = None,
    threshold: float = metrics.MATCH_THRESHOLD,
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


#: The node dimension of a sub-report's per-node fields when their length cannot tell (``m == n`` at 1x): the
#: Theorem 3 report is per student, every other one per teacher node.
REPORT_NODE = {"theorem3": "student"}
#: ``long_name`` of the analysis variables; other variables get their name with spaces.
ANALYSIS_LONG_NAMES = {
    "specialization": "student's best correlation",
    "effective_fan_out": "effective fan-out norm",
    "observation_fraction": "boundary observation fraction",
    "matched_student": "matched student (-1: none)",
    "matched_weight_angle": "weight angle of the matched pair",
    "matched_bias_error": "bias error of the matched pair",
    "theorem3_loss_change": "loss change on pruning (Theorem 3)",
    "theorem3_num_unspecialized": "unaligned students (Theorem 3)",
    "specialized": "specialized students",
    "unspecialized": "unspecialized students",
}
ANGLE_UNITS = {"matched_weight_angle": "rad", "theorem5_weight_angle": "rad"}


def _node_dim(prefix: str, values: np.ndarray, m: int, n: int) -> str:
    """``teacher_l1`` or ``student_l1`` for a per-node field of one run, by its length, else :data:`REPORT_NODE`."""
    size = values.shape[2]
    if size == m != n:
        return "teacher_l1"
    if size == n != m:
        return "student_l1"
    return f"{REPORT_NODE.get(prefix, 'teacher')}_l1"


def _flatten(group: GroupAnalysis, m: int, n: int) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """The group's analyses as ``{name: (trailing dims, (settings, seeds, ...) array)}``."""
    out: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    for l, shape in enumerate(group.runs.l_shape, 1):
        out[f"specialization_l{l}"] = ((f"student_l{l}",), np.asarray(shape.specialization))
        out[f"effective_fan_out_l{l}"] = ((f"student_l{l}",), np.asarray(shape.fan_out))
    for field in group.runs._fields:
        value = getattr(group.runs, field)
        if field == "l_shape":
            continue
        parts = value._asdict().items() if hasattr(value, "_asdict") else [(None, value)]
        prefix = {"matched_geometry": "matched"}.get(field, field)
        for sub, array in parts:
            name = prefix if sub is None else f"{prefix}_{sub}"
            array = np.asarray(array)
            extra = array.ndim - 2
            dims = () if extra == 0 else (_node_dim(prefix, array, m, n),)
            dims += tuple(f"{name}_dim{i}" for i in range(1, extra))
            out[name] = (dims, array)
    for l, stats in group.l_shape_stats.items():
        for stat, array in stats.items():
            out[f"{stat}_l{l}"] = ((), np.asarray(array))
    return out


def analysis_dataset(
    result,
    over_realization: int | None = None,
    epoch: int | None = None,
    samples: int | None = None,
    threshold: float = metrics.MATCH_THRESHOLD,
):
    """:func:`analyze_group` of one group (or of every group, ``over_realization=None``) as an ``xarray.Dataset``.

    Dimensions and coordinates are those of :func:`specjax.sweep.named.to_xarray` -- ``over_realization`` (the
    groups analysed), the swept fields, ``seed``, and the node dimensions ``teacher_l<l>`` / ``student_l<l>``
    (students padded with NaN to the widest group analysed) -- at one snapshot ``epoch`` (a scalar coordinate).
    Variables, each with ``long_name`` in its attrs: per layer ``specialization_l<l>`` and ``effective_fan_out_l<l>``
    ``(..., seed, student_l<l>)`` (the L-shape), ``specialized_l<l>``, ``unspecialized_l<l>``,
    ``median_fan_out_specialized_l<l>``, ``median_fan_out_unspecialized_l<l>``, ``fan_out_ratio_l<l>``
    ``(..., seed)`` (:func:`l_shape_stats`); ``observation_fraction``, ``matched_student``, ``matched_<field>``
    of :class:`~specjax.theory.reports.PairGeometry`, ``theorem5_<field>`` ``(..., seed, teacher_l1)`` or
    ``(..., seed)``; ``theorem3_<field>`` ``(..., seed, student_l1)`` or ``(..., seed)`` (per-student fields of an
    analysed group narrower than the widest are NaN-padded floats).

    Args: as :func:`analyze_group`; ``over_realization=None`` analyses every group.

    Raises:
      SpecjaxError: a group or epoch not in the sweep; xarray missing (names the extra).
    """
    from specjax.sweep import named

    xr = named._require("xarray")
    cfg = result.config
    overs = [int(o) for o in cfg.over_realization]
    wanted = overs if over_realization is None else [over_realization]
    checked = [check_analyze_args(result, o, epoch, samples, threshold) for o in wanted]  # all before any compute
    analysed = [analyze_group(result, o, epoch, samples, threshold) for o in wanted]
    groups = [c.group for c in checked]
    coords = named.sweep_coords(cfg, groups)
    base = tuple(coords)
    m = config_lib.teacher_hidden_widths(cfg)[0]
    flat = [
        _flatten(g, m, result.arrays[i][key("fan_out_norm", 1)].shape[-1])
        for g, i in zip(analysed, groups, strict=True)
    ]
    data_vars = {}
    for name, (dims, _) in flat[0].items():
        arrays = [f[name][1] for f in flat]
        if any(d.startswith("student_l") for d in dims):
            width = max(a.shape[2] for a in arrays)
            arrays = [named._pad(np.moveaxis(a, 2, -1), width) for a in arrays]
            arrays = [np.moveaxis(a, -1, 2) for a in arrays]
            coords.setdefault(dims[0], np.arange(width))
        elif dims:
            coords.setdefault(dims[0], np.arange(arrays[0].shape[2]))
        stacked = np.stack([named._grid(cfg, a) for a in arrays])
        stem, layer = named.split_layer(name)
        long_name = ANALYSIS_LONG_NAMES.get(stem, stem.replace("_", " "))
        attrs = {"long_name": long_name if layer is None else f"{long_name} (layer {layer})"}
        if name in ANGLE_UNITS:
            attrs["units"] = ANGLE_UNITS[name]
        data_vars[name] = ((*base, *dims), stacked, attrs)
    coords["epoch"] = np.asarray(analysed[0].epoch)
    attrs = {**named.dataset_attrs(result), "epoch": analysed[0].epoch, "unaligned_threshold": threshold}
    attrs["samples"] = checked[0].samples
    return named.dataset(xr, cfg, data_vars, coords, attrs)
