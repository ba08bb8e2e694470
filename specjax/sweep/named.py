"""Named views of a sweep's results: one xarray Dataset, a tidy pandas table, and single runs by setting and seed.

The positional arrays of :mod:`specjax.sweep.schema` become labelled ones: a dimension per swept field (the config
field names: ``over_realization``, ``teacher_polarity``, ``lr``, ``data_std``, ``init_scale``, ``momentum``,
``weight_decay``; length-1 fields included, so sweeps of one kind have the same dimensions -- ``.squeeze()`` drops
them -- except a field the other settings make irrelevant, :func:`specjax.config.inapplicable_fields`, such as
``momentum`` under plain SGD, which is left out when it holds one value), ``seed``, ``epoch``, and per hidden layer
``l`` the node dimensions ``teacher_l<l>`` and ``student_l<l>`` (students padded with NaN to the widest group).
Variables and coordinates carry the CF attributes ``long_name`` (and ``units`` where a quantity has units), so
``DataArray.plot()`` labels its axes. xarray and pandas are the optional extra ``specjax[analysis]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from specjax import config as config_lib
from specjax.core import metrics
from specjax.engine import SWEPT, Hparams, Spec, eval_inputs, seed_key
from specjax.errors import ArgumentError, SpecjaxError
from specjax.sweep.schema import ARRAYS, S_N, SPECS, key

#: The per-evaluation scalars of each run: every array the schema declares with axes ``(setting, seed, eval)``.
SCALARS = tuple(a.name for a in ARRAYS if a.axes == (*S_N, "eval"))
#: Per-layer per-evaluation vectors (the schema's hidden-layer arrays with axes ``(setting, seed, eval, node)``), and
#: the node dimension they run over.
VECTORS = {
    a.name: a.axes[3] for a in ARRAYS if a.layers == "hidden" and a.axes[:3] == (*S_N, "eval") and len(a.axes) == 4
}


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SpecjaxError(
            f"{module} is not installed: named results need the analysis extra (pip install 'specjax[analysis]')"
        ) from None


#: CF attributes of the coordinates (xarray's plots label an axis ``long_name [units]``; dimensionless quantities
#: carry no ``units``).
COORD_ATTRS: dict[str, dict[str, str]] = {
    "over_realization": {"long_name": "over-realization (student width / teacher width)"},
    **{f.name: {"long_name": f.long_name} for f in SWEPT},  # the swept fields' declaration
    "seed": {"long_name": "seed index"},
    "epoch": {"long_name": "epoch"},
    "threshold": {"long_name": "correlation threshold"},
}
#: ``long_name`` of the variables of :func:`to_xarray` (per-layer ones without their ``_l<l>`` suffix).
LONG_NAMES = {
    "eval_loss": "evaluation loss",
    "eval_mse": "evaluation MSE",
    "train_loss": "training loss",
    "grad_norm": "gradient norm",
    "best_teacher_corr": "teacher node's best correlation",
    "best_student_corr": "student node's best correlation",
    "fan_out_norm": "fan-out norm",
    "diverged_at": "divergence step",
    "diverged": "diverged",
    "success": "teacher node covered",
    "success_rate": "success rate",
    "success_rate_low": "success rate, Wilson lower bound",
    "success_rate_high": "success rate, Wilson upper bound",
    "valid_seeds": "seeds counted",
}


def _swept_values(cfg) -> dict[str, list[float]]:
    return {f: [float(v) for v in config_lib._as_tuple(cfg, f)] for f in config_lib.SWEPT_FIELDS}


def named_fields(cfg) -> dict[str, list[float]]:
    """The swept fields that are dimensions of the named views, and their values: every swept field but one that
    :func:`specjax.config.inapplicable_fields` names and that holds a single value."""
    skip = set(config_lib.inapplicable_fields(cfg))
    return {f: v for f, v in _swept_values(cfg).items() if not (f in skip and len(v) == 1)}


def _grid(cfg, a: np.ndarray) -> np.ndarray:
    """Splits a group array's leading settings axis into one axis per named swept field (product order, last
    fastest; a field left out has one value, so the product is the same)."""
    shape = [len(v) for v in named_fields(cfg).values()]
    return a.reshape(*shape, *a.shape[1:])


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    """Pads the last axis with NaN to ``width``."""
    out = np.full((*a.shape[:-1], width), np.nan, np.float64)
    out[..., : a.shape[-1]] = a
    return out


def split_layer(name: str) -> tuple[str, int | None]:
    """``'fan_out_norm_l2'`` -> ``('fan_out_norm', 2)``; a name without a ``_l<digits>`` suffix -> ``(name, None)``."""
    base, _, layer = name.rpartition("_l")
    return (base, int(layer)) if base and layer.isdigit() else (name, None)


def _node_attrs(dim: str) -> dict[str, str]:
    kind, layer = split_layer(dim)
    return {"long_name": f"{kind} node (layer {layer})"}


def dataset(xr, cfg, data_vars: dict, coords: dict, attrs: dict) -> Any:
    """An ``xarray.Dataset`` with the CF attributes of :data:`COORD_ATTRS` on its coordinates and a ``long_name``
    on every variable (:data:`LONG_NAMES`, else the name with spaces)."""
    out = {}
    for name, (dims, values, var_attrs) in data_vars.items():
        base, layer = split_layer(name)
        long_name = LONG_NAMES.get(base, base.replace("_", " "))
        if layer is not None:
            long_name += f" (layer {layer})"
        out[name] = (dims, values, {"long_name": long_name, **var_attrs})
    labelled = {}
    for dim, values in coords.items():
        coord_attrs = COORD_ATTRS.get(dim) or (_node_attrs(dim) if split_layer(dim)[1] is not None else {})
        labelled[dim] = (dim, values, dict(coord_attrs)) if np.ndim(values) == 1 else (values)
    return xr.Dataset(out, coords=labelled, attrs=attrs)


def sweep_coords(cfg, groups: list[int]) -> dict[str, Any]:
    """The coordinates shared by :func:`to_xarray` and :meth:`SweepResult.analyze`: ``over_realization`` (the
    given groups' values), the named swept fields (:func:`named_fields`) and ``seed``."""
    return {
        "over_realization": [int(cfg.over_realization[g]) for g in groups],
        **named_fields(cfg),
        "seed": np.arange(cfg.seeds),
    }


def dataset_attrs(result) -> dict[str, Any]:
    """The sweep identity and its fixed (not swept, applicable) settings, as Dataset attrs."""
    cfg = result.config
    skip = {*config_lib.SWEPT_FIELDS, "over_realization", *config_lib.inapplicable_fields(cfg)}
    fixed = {k: v for k, v in config_lib.to_plain(cfg).items() if k not in skip}
    return {
        "sweep_id": str(result.arrays[0].get("sweep_id", "")),
        "match_threshold": metrics.MATCH_THRESHOLD,
        "confidence": metrics.CONFIDENCE,
        **{k: (str(v) if isinstance(v, list) else v) for k, v in fixed.items()},
    }


def _success(best: np.ndarray, diverged: np.ndarray, seed_axis: int) -> dict[str, np.ndarray]:
    """Per run and over seeds, whether each teacher node is covered at each threshold.

    Args:
      best: ``(..., seed, epoch, m)`` best correlation per teacher node.
      diverged: ``(..., seed)``.

    Returns:
      ``success`` ``(..., seed, epoch, m, threshold)`` (1 / 0, NaN for a diverged run); ``success_rate``,
      ``success_rate_low``, ``success_rate_high`` (Wilson, :data:`specjax.core.metrics.CONFIDENCE`) and
      ``valid_seeds`` ``(..., epoch, m, threshold)``, over the seeds that did not diverge.
    """
    hit = best[..., None] > np.asarray(metrics.THRESHOLDS)
    valid = np.broadcast_to(~diverged[..., None, None, None], hit.shape)
    k, n = (hit & valid).sum(seed_axis), valid.sum(seed_axis)
    low, high = metrics.wilson_interval(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    success = np.where(valid, hit, np.nan)
    return {"success": success, "success_rate": rate, "success_rate_low": low, "success_rate_high": high,
            "valid_seeds": n}  # fmt: skip


def to_xarray(result) -> Any:
    """One ``xarray.Dataset`` for the whole sweep (see the module docstring for dimensions).

    Variables (:data:`SCALARS` and :data:`VECTORS`, from the schema): ``eval_loss``, ``eval_mse``, ``train_loss``,
    ``grad_norm`` ``(over_realization, <swept>, seed, epoch)``; per hidden layer ``best_teacher_corr_l<l>``
    ``(..., epoch, teacher_l<l>)``, ``best_student_corr_l<l>`` and ``fan_out_norm_l<l>`` ``(..., epoch,
    student_l<l>)``; ``diverged_at`` and ``diverged`` ``(..., seed)``;
    per hidden layer the success of each teacher node at each threshold of :data:`specjax.core.metrics.THRESHOLDS`
    (coordinate ``threshold``): ``success_l<l>`` ``(..., seed, epoch, teacher_l<l>, threshold)`` (1 if the node's
    best correlation exceeds the threshold in that run, 0 if not, NaN for a diverged run), and over seeds
    ``success_rate_l<l>`` with its Wilson interval ``success_rate_low_l<l>``, ``success_rate_high_l<l>`` at
    ``attrs['confidence']`` and ``valid_seeds_l<l>`` ``(over_realization, <swept>, epoch, teacher_l<l>,
    threshold)``. Each variable has ``long_name`` (and ``units`` where it has units) and ``meaning`` in its attrs;
    the dataset's attrs hold the sweep identity and the fixed settings that apply.
    """
    xr = _require("xarray")
    cfg = result.config
    groups = list(range(len(result.arrays)))
    coords = sweep_coords(cfg, groups)
    base = tuple(coords)
    first = result.arrays[0]
    layers = len(config_lib.teacher_hidden_widths(cfg))
    coords["epoch"] = first["eval_epochs"].astype(int)
    coords["threshold"] = np.asarray(metrics.THRESHOLDS)
    data_vars: dict[str, Any] = {}
    for name in SCALARS:
        stacked = np.stack([_grid(cfg, a[name]) for a in result.arrays])
        data_vars[name] = ((*base, "epoch"), stacked, {"meaning": SPECS[name].meaning})
    div = np.stack([_grid(cfg, a["diverged_at"]) for a in result.arrays])
    for l in range(1, layers + 1):
        for name, node in VECTORS.items():
            k = key(name, l)
            width = max(a[k].shape[-1] for a in result.arrays)
            stacked = np.stack([_pad(_grid(cfg, a[k]), width) for a in result.arrays])
            dim = f"{node}_l{l}"
            coords.setdefault(dim, np.arange(width))
            data_vars[k] = ((*base, "epoch", dim), stacked, {"meaning": SPECS[name].meaning, "layer": l})
        best = data_vars[key("best_teacher_corr", l)][1]
        teacher = f"teacher_l{l}"
        for name, values in _success(best, div >= 0, len(base) - 1).items():
            dims = (*base, "epoch", teacher, "threshold") if name == "success" else (*base[:-1], "epoch", teacher,
                                                                                    "threshold")  # fmt: skip
            data_vars[f"{name}_l{l}"] = (dims, values, {"layer": l})
    data_vars["diverged_at"] = (base, div, {"meaning": SPECS["diverged_at"].meaning, "units": "step"})
    data_vars["diverged"] = (base, div >= 0, {"meaning": "the run diverged (non-finite loss or gradient)"})
    data_vars["eval_loss"][2]["units"] = f"{cfg.loss} convention"
    return dataset(xr, cfg, data_vars, coords, dataset_attrs(result))


def to_dataframe(result) -> Any:
    """A tidy ``pandas.DataFrame``: one row per run and evaluation.

    Columns: ``over_realization``, the swept fields (:func:`named_fields`: as the Dataset's dimensions), ``seed``,
    ``epoch``, ``eval_loss``, ``eval_mse``, ``train_loss``, ``grad_norm``, ``success_rate_<t>`` for each threshold
    ``t`` of :data:`specjax.core.metrics.THRESHOLDS` (the fraction of layer-1 teacher nodes whose best correlation
    exceeds ``t`` in that run), ``diverged``.
    """
    pd = _require("pandas")
    frames = []
    for a in result.arrays:
        S, N, E = a["eval_loss"].shape
        idx = np.indices((S, N, E)).reshape(3, -1)
        s, n, e = idx
        cols: dict[str, Any] = {"over_realization": np.full(s.size, int(a["over_realization"]))}
        for f in named_fields(result.config):
            cols[f] = a[f][s]
        cols["seed"], cols["epoch"] = n, a["eval_epochs"][e]
        for name in SCALARS:
            cols[name] = a[name].reshape(-1)
        best = a[key("best_teacher_corr", 1)].reshape(S * N * E, -1)
        for t in metrics.THRESHOLDS:
            cols[f"success_rate_{t:g}"] = np.mean(best > t, axis=-1)
        cols["diverged"] = (a["diverged_at"] >= 0)[s, n]
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)


@dataclasses.dataclass(frozen=True)
class RunView:
    """One run of a sweep, ready for :mod:`specjax.theory` (``analysis(student, teacher, x)``).

    Attributes:
      settings: the run's over-realization, swept values and seed.
      spec: its static settings.
      teacher: teacher parameters (``W`` is ``(fan_in, fan_out)``).
      snapshots: ``{epoch: student parameters}`` at the snapshot epochs.
      key: the run's seed key (everything random in the run derives from it).
    """

    settings: dict[str, float]
    spec: Spec
    teacher: tuple
    snapshots: dict[int, tuple]
    key: jax.Array

    def student(self, epoch: int | None = None) -> tuple:
        """Student parameters at a snapshot epoch (default: the last).

        Raises:
          ArgumentError: ``epoch`` is not a snapshot epoch (names the ones kept).
        """
        epoch = max(self.snapshots) if epoch is None else check_epoch(epoch, list(self.snapshots))
        return self.snapshots[epoch]

    def eval_inputs(self) -> jax.Array:
        """The run's evaluation inputs ``(n_eval, d)``, regenerated exactly from its key (as training drew them)."""
        return eval_inputs(self.spec, self.settings["data_std"], self.key)


def _scalar(value):
    """A 0-d NumPy or JAX array as its Python scalar (``ds.seed[1].values`` selects a seed); anything else as is."""
    if not isinstance(value, (str, bytes)) and hasattr(value, "item") and np.ndim(value) == 0:
        return value.item()
    return value


def _show(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a huge argument still gives a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_real(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def integer_argument(name: str, value, valid: str) -> int:
    """``value`` as an ``int`` if it is an integral number (``2`` or ``2.0``; not ``2.7``, ``True``, ``'2'``, NaN).

    Raises:
      ArgumentError: ``value`` is not integral; the message names ``name`` and the ``valid`` values.
    """
    value = _scalar(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if _is_real(value) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise ArgumentError(f"{name}: expected an integer ({valid}), got {_show(value)}")


def number_argument(name: str, value, valid: str) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool, a string or NaN).

    Raises:
      ArgumentError: ``value`` is not a finite number; the message names ``name`` and the ``valid`` values.
    """
    value = _scalar(value)
    if not _is_real(value) or not math.isfinite(value):
        raise ArgumentError(f"{name}: expected a number ({valid}), got {_show(value)}")
    return float(value)


def value_index(values: Sequence[float], wanted, field: str) -> int:
    """Position of ``wanted`` in a swept field's ``values`` (equal to 1e-12 relative).

    Raises:
      ArgumentError: ``wanted`` is not a finite number or not one of ``values`` (names ``field``, lists ``values``).
    """
    number = number_argument(field, wanted, f"one of {list(values)}")
    matches = [i for i, v in enumerate(values) if np.isclose(v, number, rtol=1e-12, atol=0)]
    if not matches:
        raise ArgumentError(f"{field}: {_show(_scalar(wanted))} is not in the sweep; its values are {list(values)}")
    return matches[0]


def check_seed(seed, seeds: int) -> int:
    """``seed`` as an ``int`` if it is a seed index of a sweep with ``seeds`` seeds; else an :class:`ArgumentError`."""
    valid = f"a seed index 0..{seeds - 1}"
    seed = integer_argument("seed", seed, valid)
    if not 0 <= seed < seeds:
        raise ArgumentError(f"seed: {_show(seed)} is out of range; the sweep has seeds 0..{seeds - 1}")
    return seed


def check_epoch(epoch, snapshots: Sequence[int]) -> int:
    """``epoch`` as an ``int`` if it is one of the ``snapshots`` epochs; else an :class:`ArgumentError` listing them."""
    kept = sorted(int(e) for e in snapshots)
    epoch = integer_argument("epoch", epoch, f"a snapshot epoch, one of {kept}")
    if epoch not in kept:
        raise ArgumentError(f"epoch: {_show(epoch)} is not a snapshot epoch; kept: {kept}")
    return epoch


def select_run(result, seed: int, **settings: float) -> RunView:
    """The run with the given seed index and setting values (a field with one value in the sweep may be omitted).

    Raises:
      ArgumentError: a seed that is not an integer in range, an unknown field, a value that is not a number or that
        the sweep does not hold, or a field with several values left out (names the field and its values).
    """
    cfg = result.config
    seed = check_seed(seed, cfg.seeds)
    swept = {"over_realization": [int(o) for o in cfg.over_realization], **_swept_values(cfg)}
    unknown = set(settings) - set(swept)
    if unknown:
        raise ArgumentError(f"unknown setting(s) {sorted(unknown)}; the swept fields are {list(swept)}")
    chosen = {}
    for field, values in swept.items():
        if field not in settings:
            if len(values) > 1:
                raise ArgumentError(f"{field}: the sweep holds {values}; say which")
            chosen[field] = 0
        else:
            chosen[field] = value_index(values, settings[field], field)
    g = chosen.pop("over_realization")
    a = result.arrays[g]
    shape = [len(v) for v in _swept_values(cfg).values()]
    s = int(np.ravel_multi_index([chosen[f] for f in config_lib.SWEPT_FIELDS], shape))
    hp = Hparams(*(float(a[f][s]) for f in config_lib.SWEPT_FIELDS))
    spec = Spec.from_config(cfg, cfg.over_realization[g])
    n_layers = len(spec.student_widths) - 1

    def params(prefix: str, *index) -> tuple:
        layers = []
        for l in range(1, n_layers + 1):
            W = a[key(f"{prefix}_W", l)][(s, seed, *index)]
            b_key = key(f"{prefix}_b", l)
            layers.append((W, a[b_key][(s, seed, *index)] if b_key in a else None))
        return tuple(layers)

    snaps = {int(ep): params("student", p) for p, ep in enumerate(a["snapshot_epochs"])}
    return RunView(
        settings={"over_realization": int(cfg.over_realization[g]), **hp._asdict(), "seed": seed},
        spec=spec,
        teacher=params("teacher"),
        snapshots=snaps,
        key=seed_key(cfg.seed, seed),
    )
