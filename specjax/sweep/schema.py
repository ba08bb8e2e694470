"""The result schema: name, axes, dtype and meaning of every array a sweep records, in one place.

A shape group's results (``results/group<g>.npz``, ``SweepResult.arrays[g]``) are a dict of NumPy arrays with
leading axes ``(setting, seed)``. Per-layer arrays are named ``<name>_l<l>`` with layers numbered **from 1**, the
paper's convention: ``l = 1`` is the lowest hidden layer (the one Theorem 4 specializes), ``l = L`` the output
layer (weights only). :func:`key` builds the names; the sweep, :func:`specjax.sweep.load_results`, the figures and
the named views (:mod:`specjax.sweep.named`) read them through this module.

Axis names: ``setting`` (S, the swept grid), ``seed`` (N), ``eval`` (E evaluation epochs), ``snapshot`` (P
snapshot epochs), ``corr_eval`` (the epochs of the full correlation matrices: snapshots, or every evaluation with
``record_corr='all'``), ``teacher``/``student`` (the nodes of hidden layer ``l``: ``m_l``/``n_l``),
``teacher_in``/``student_in`` (the layer below: ``d`` for ``l = 1``) and ``teacher_out``/``student_out`` (nodes of
layer ``l`` including the output layer), ``leaf`` (the axes of one leaf of a run's final
:class:`~specjax.engine.RunState`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from specjax.errors import StoreError


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """One recorded array.

    Attributes:
      name: the key (per-layer arrays: the base name, stored as ``<name>_l<l>``).
      axes: axis names (see the module docstring).
      kind: NumPy dtype kind: ``'f'`` float, ``'i'`` integer, ``'U'`` text.
      layers: ``None`` (not per layer), ``'hidden'`` (``l = 1 .. L-1``), ``'weights'`` (``l = 1 .. L``) or
        ``'leaves'`` (one array per leaf of a run's :class:`~specjax.engine.RunState`, named ``<name>_<i>``).
      meaning: what the values are, with units.
      bias: only recorded when the networks have biases.
      evaluated: computed by :func:`specjax.engine.run.evaluate` under this name (a tuple per hidden layer for
        ``layers='hidden'``) and recorded by :func:`specjax.sweep.record.record_eval` at each evaluation its history
        axis covers (``eval``: every one; ``corr_eval``: snapshots, or every one with ``record_corr='all'``).
    """

    name: str
    axes: tuple[str, ...]
    kind: str
    layers: str | None = None
    meaning: str = ""
    bias: bool = False
    evaluated: bool = False


S_N = ("setting", "seed")
ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec("eval_epochs", ("eval",), "i", meaning="epochs of the evaluations"),
    ArraySpec("snapshot_epochs", ("snapshot",), "i", meaning="epochs at which parameters are kept"),
    ArraySpec("corr_epochs", ("corr_eval",), "i", meaning="epochs of the full correlation matrices"),
    ArraySpec(
        "eval_loss", (*S_N, "eval"), "f", meaning="eval loss in the training convention (config.loss)", evaluated=True
    ),
    ArraySpec(
        "eval_mse", (*S_N, "eval"), "f", meaning="eval mean squared error over samples and outputs", evaluated=True
    ),
    ArraySpec("train_loss", (*S_N, "eval"), "f", meaning="mean minibatch loss over the interval (NaN at epoch 0)"),
    ArraySpec("grad_norm", (*S_N, "eval"), "f", meaning="mean gradient norm over the interval (NaN at epoch 0)"),
    ArraySpec(
        "best_teacher_corr",
        (*S_N, "eval", "teacher"),
        "f",
        "hidden",
        "best correlation of each teacher node",
        evaluated=True,
    ),
    ArraySpec(
        "best_student_corr",
        (*S_N, "eval", "student"),
        "f",
        "hidden",
        "best correlation of each student node",
        evaluated=True,
    ),
    ArraySpec(
        "fan_out_norm", (*S_N, "eval", "student"), "f", "hidden", "norm of each student node's fan-out", evaluated=True
    ),
    ArraySpec(
        "corr",
        (*S_N, "corr_eval", "teacher", "student"),
        "f",
        "hidden",
        "teacher x student correlation",
        evaluated=True,
    ),
    ArraySpec("student_W", (*S_N, "snapshot", "student_in", "student_out"), "f", "weights", "student weights"),
    ArraySpec("student_b", (*S_N, "snapshot", "student_out"), "f", "weights", "student biases", bias=True),
    ArraySpec("teacher_W", (*S_N, "teacher_in", "teacher_out"), "f", "weights", "teacher weights"),
    ArraySpec("teacher_b", (*S_N, "teacher_out"), "f", "weights", "teacher biases", bias=True),
    ArraySpec("diverged_at", S_N, "i", meaning="step at which the run diverged and was frozen, -1 if never"),
    ArraySpec(
        "final_state",
        (*S_N, "leaf"),
        "",
        "leaves",
        "leaf i (jax.tree.leaves order) of the run's final RunState: student, optimiser state, step, diverged_at; "
        "a grown sweep continues from it (kind per leaf)",
    ),
    ArraySpec("over_realization", (), "i", meaning="student width multiple of the group"),
    ArraySpec("sweep_id", (), "U", meaning="identity hash of the sweep that wrote the file"),
)
SPECS = {a.name: a for a in ARRAYS}
#: The history axes: a per-run array with one of these third axes grows by one entry per evaluation (``eval``),
#: per kept correlation matrix (``corr_eval``) or per snapshot (``snapshot``).
HISTORY_AXES = ("eval", "snapshot", "corr_eval")


def recorded() -> tuple[ArraySpec, ...]:
    """The arrays a sweep records into a wave's history (their third axis is a history axis), in schema order."""
    return tuple(a for a in ARRAYS if len(a.axes) > 2 and a.axes[:2] == S_N and a.axes[2] in HISTORY_AXES)


def recorded_names() -> tuple[str, ...]:
    """The base names of :func:`recorded` (what a checkpoint's history holds; checkpoints store this list)."""
    return tuple(a.name for a in recorded())


def key(name: str, layer: int | None = None) -> str:
    """The array name: ``name`` or, per layer (from 1), ``f"{name}_l{layer}"``; per state leaf ``f"{name}_{leaf}"``.

    Raises:
      KeyError: ``name`` is not in the schema, or a per-layer array is asked without a layer (or vice versa).
    """
    spec = SPECS[name]
    if (spec.layers is None) != (layer is None):
        raise KeyError(f"{name}: {'needs' if spec.layers else 'takes no'} layer number")
    if layer is None:
        return name
    return f"{name}_{int(layer)}" if spec.layers == "leaves" else f"{name}_l{int(layer)}"


def spec_of(array: str) -> ArraySpec | None:
    """The schema entry of a stored array's name (``corr_l1`` -> ``corr``, ``final_state_3`` -> ``final_state``);
    ``None`` for a name the schema does not declare (the swept fields' value arrays)."""
    if array in SPECS:
        return SPECS[array]
    m = re.fullmatch(r"(.+?)_(l?)(\d+)", array)
    spec = SPECS.get(m[1]) if m else None
    if spec is None or spec.layers is None or (spec.layers == "leaves") != (m[2] == ""):
        return None
    return spec


@functools.lru_cache(maxsize=32)
def state_leaves(spec) -> tuple[tuple[tuple[int, ...], str], ...]:
    """Shape and dtype kind of each leaf of one run's :class:`~specjax.engine.RunState` (no runs axis), traced
    with :func:`jax.eval_shape` (nothing computed).

    Args:
      spec: the group's :class:`~specjax.engine.Spec`.
    """
    from specjax.core import teachers
    from specjax.engine.run import HPARAM_DEFAULTS, Hparams, RunState, make_optimizer

    def state():
        dt = jnp.float32  # shapes and dtype kinds do not depend on the width; float64 would need x64 to load results
        student = teachers.gaussian_student(jax.random.key(0), spec.student_widths, 1.0, spec.use_bias, dt)
        hp = Hparams(*(jnp.asarray(HPARAM_DEFAULTS[f], dt) for f in Hparams._fields))
        step = jnp.zeros((), jnp.int32)
        return RunState(student, make_optimizer(spec, hp).init(student), step, step)

    return tuple((tuple(a.shape), np.dtype(a.dtype).kind) for a in jax.tree.leaves(jax.eval_shape(state)))


def has_final_states(arrays) -> bool:
    """Whether a group's arrays keep the runs' final states (sweeps written before they were kept do not: they load,
    but cannot grow)."""
    return key("final_state", 0) in arrays


def expected_shapes(cfg, plan) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every array a group's results hold for a config and its :class:`~specjax.sweep.plan.GroupPlan`.

    Returns:
      ``{key: (shape, dtype kind)}``, swept fields included (one ``(S,)`` float array each).
    """
    from specjax.sweep.plan import eval_epochs, snapshot_epochs

    spec = plan.spec
    E, P = len(eval_epochs(cfg)), len(snapshot_epochs(cfg))
    sizes = {"setting": len(plan.settings), "seed": plan.seeds, "eval": E, "snapshot": P}
    sizes["corr_eval"] = E if cfg.record_corr == "all" else P
    teacher = (spec.d, *spec.teacher_widths, spec.c)
    student = spec.student_widths
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for a in ARRAYS:
        if a.bias and not spec.use_bias:
            continue
        if a.layers == "leaves":
            for i, (leaf, kind) in enumerate(state_leaves(spec)):
                out[key(a.name, i)] = ((sizes["setting"], sizes["seed"], *leaf), kind)
            continue
        layers = {None: [None], "hidden": range(1, len(teacher) - 1), "weights": range(1, len(teacher))}[a.layers]
        for l in layers:
            dims = dict(sizes)
            if l is not None:
                dims |= {"teacher": teacher[l], "student": student[l], "teacher_in": teacher[l - 1]}
                dims |= {"student_in": student[l - 1], "teacher_out": teacher[l], "student_out": student[l]}
            out[key(a.name, l)] = (tuple(dims[x] for x in a.axes), a.kind)
    for f in plan.settings[0]._fields:
        out[f] = ((len(plan.settings),), "f")
    return out


def check_group_arrays(path: Path, arrays: dict[str, np.ndarray], cfg, plan, sweep: str | None) -> None:
    """Checks a group's arrays against the schema (every key, shape and dtype kind) and the sweep identity.

    The ``final_state_<i>`` arrays may be absent all together (results written before they were kept).

    Raises:
      StoreError: naming ``path`` and the first array that is missing, of the wrong shape or dtype, or foreign.
    """
    final = has_final_states(arrays)
    for name, (shape, kind) in expected_shapes(cfg, plan).items():
        if name.startswith("final_state_") and not final:
            continue  # written before final states were kept: loads, cannot grow
        if name not in arrays:
            raise StoreError(f"{path}: missing array {name!r}")
        a = arrays[name]
        if a.shape != shape or a.dtype.kind != kind:
            raise StoreError(
                f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}, "
                f"the sweep writes {shape} of kind {kind!r}"
            )
    if sweep is not None and str(arrays["sweep_id"]) != sweep:
        raise StoreError(f"{path}: results of another sweep (identity {arrays['sweep_id']}, config.json says {sweep})")
