"""Matching, residues, per-sample gradients, the L-shape and the per-run reports (Tian 2020; docs/theory.md §3-5).

Everything takes plain parameter pytrees (:mod:`specjax.core.networks` layout: ``W`` is ``(fan_in, fan_out)``) and
arrays, is pure, and runs under ``jit`` and ``vmap`` -- including :func:`hungarian_match`, which calls SciPy on the
host through ``jax.pure_callback``. Per-run functions are written for one run; add the runs axis with ``vmap``
(:func:`analyze_run` bundles the per-run reports of a sweep).

Hidden layers are indexed ``layer = 0..L-2`` (hidden layer ``l = layer + 1`` of the paper). Correlations are
:func:`specjax.core.metrics.correlation` of post-activations on the evaluation set, ``(m, n)``, teachers by students.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from specjax.core import metrics
from specjax.core.networks import RELU, Activation, Params, forward, squared_error_loss
from specjax.theory import lemma1
from specjax.theory.observers import boundary_observation, boundary_observation_fraction
from specjax.theory.theorem3 import colinear_groups, observer_fan_out_spectrum, prune_students, same_layer_observers
from specjax.theory.theorem5 import PairGeometry, Theorem5Report, pair_geometry, theorem5_report

Array = jax.Array

__all__ = [  # Def. 2 and Theorems 3, 5 live in their own modules; re-exported here for the per-run analysis.
    "GradientMagnitudes",
    "LShape",
    "PairGeometry",
    "RunAnalysis",
    "Theorem3Report",
    "Theorem5Report",
    "analyze_run",
    "best_student_index",
    "best_teacher_index",
    "boundary_observation",
    "boundary_observation_fraction",
    "hungarian_match",
    "l_shape",
    "node_residues",
    "pair_geometry",
    "per_sample_gradient_magnitudes",
    "prune_students",
    "theorem3_report",
    "theorem5_report",
]


# ---------------------------------------------------------------------------------------------------------------
# Matching students to teachers (docs/theory.md §3).


def best_teacher_index(corr: Array) -> Array:
    """Each student's best-matching teacher, :math:`\\arg\\max_j\\rho_{jk}`. ``(..., m, n) -> (..., n)``."""
    return jnp.argmax(corr, axis=-2)


def best_student_index(corr: Array) -> Array:
    """Each teacher's best-matching student, :math:`\\arg\\max_k\\rho_{jk}`. ``(..., m, n) -> (..., m)``."""
    return jnp.argmax(corr, axis=-1)


def _hungarian_host(corr: np.ndarray) -> np.ndarray:
    corr = np.asarray(corr)
    flat = corr.reshape((-1,) + corr.shape[-2:])
    out = np.full(flat.shape[:2], -1, np.int32)
    for run, matrix in enumerate(flat):
        teachers, students = linear_sum_assignment(matrix, maximize=True)
        out[run, teachers] = students
    return out.reshape(corr.shape[:-1])


def hungarian_match(corr: Array) -> Array:
    """One-to-one matching of students to teachers maximising the total correlation (Hungarian algorithm).

    ``scipy.optimize.linear_sum_assignment`` on the host via ``jax.pure_callback``; usable under ``jit`` and
    ``vmap`` (the batch is handed to SciPy in one call and looped there).

    Args:
      corr: ``(..., m, n)`` teacher x student correlations.

    Returns:
      ``(..., m)`` int32: the student matched to each teacher, distinct within a run; ``-1`` for the
      ``m - n`` teachers left unmatched when ``n < m``.
    """
    if not isinstance(corr, jax.core.Tracer):
        # Concrete input: call SciPy directly. (A pure_callback on an array replicated over a multi-device mesh
        # returns a 'maximal device 0' sharding that later eager operations reject.)
        return jnp.asarray(_hungarian_host(np.asarray(corr)))
    result = jax.ShapeDtypeStruct(corr.shape[:-1], jnp.int32)
    return jax.pure_callback(_hungarian_host, result, corr, vmap_method="expand_dims")


# ---------------------------------------------------------------------------------------------------------------
# Residues (Eqn 6, docs/theory.md §5) and per-sample gradients (Theorem 1, §4).


def node_residues(
    student: Params, teacher: Params, x: Array, activation: Activation = RELU, chunk_size: int = 1024
) -> Array:
    """Per-node residue :math:`R_j=\\mathbb E_x[\\hat f_{L-2}\\,\\sigma'_j\\,r^\\top]` at the top hidden layer (Eqn 6).

    For the two-layer net :math:`\\hat f_0=\\hat x` and :math:`\\sigma'_j=\\mathbb I_j`, the paper's
    :math:`R_j=\\mathbb E[\\hat x\\mathbb I_jr^\\top]`. Because the fan-out :math:`v_j` of a top-layer node is
    constant, :math:`\\dot{\\hat w}_j=R_jv_j` and :math:`\\dot v_j=R_j^\\top\\hat w_j` are exactly the negative
    gradients of the ``'half_sse'`` loss on ``x`` (tested). ``r`` is the output residual, output biases included.

    Args:
      x: ``(N, d)``.
      chunk_size: samples per ``lax.scan`` step (bounds the ``(chunk, n, C)`` intermediate).

    Returns:
      ``(n, fan_in + 1, C)`` with ``fan_in`` the width feeding the top hidden layer (``d`` for two layers).
    """
    lemma1.require_homogeneous(activation, "node_residues")
    count = x.shape[0]
    chunks = -(-count // chunk_size)
    padding = chunks * chunk_size - count
    padded = jnp.concatenate([x, jnp.zeros((padding, x.shape[1]), x.dtype)]).reshape(chunks, chunk_size, -1)
    sample_weights = jnp.concatenate([jnp.ones((count,), x.dtype), jnp.zeros((padding,), x.dtype)])

    def chunk_sum(total, inputs):
        xs, weights = inputs
        out, hidden = forward(student, xs, activation)
        residual = (forward(teacher, xs, activation)[0] - out) * weights[:, None]
        below = xs if len(hidden) == 1 else hidden[-2].post
        gated_residual = activation.gate(hidden[-1].pre)[:, :, None] * residual[:, None, :]
        return total + jnp.einsum("bi,bjc->jic", lemma1.append_one(below), gated_residual), None

    n, fan_in, outputs = student[-1][0].shape[0], student[-2][0].shape[0], student[-1][0].shape[1]
    zeros = jnp.zeros((n, fan_in + 1, outputs), x.dtype)
    total, _ = jax.lax.scan(chunk_sum, zeros, (padded, sample_weights.reshape(chunks, chunk_size)))
    return total / count


class GradientMagnitudes(NamedTuple):
    """Per-sample gradient magnitudes, one entry per layer ``l = 1..L`` (the last is the output).

    Attributes:
      error_sup: :math:`\\|g_l(x)\\|_\\infty`, each ``(N,)`` (Theorem 5's :math:`\\epsilon` is the max of layer 1's).
      weight_gradient_norm: Frobenius norm of the per-sample gradient of layer ``l``'s parameters,
        :math:`\\|\\hat f_{l-1}g_l^\\top\\|=\\|\\hat f_{l-1}\\|\\|g_l\\|` for a layer with a bias and
        :math:`\\|f_{l-1}g_l^\\top\\|=\\|f_{l-1}\\|\\|g_l\\|` for one without, each ``(N,)`` (Theorem 1: all vanish at
        an SGD critical point). Equal to the norm of ``jax.grad`` of the per-sample loss (tested).
    """

    error_sup: tuple[Array, ...]
    weight_gradient_norm: tuple[Array, ...]


def per_sample_gradient_magnitudes(
    student: Params, teacher: Params, x: Array, activation: Activation = RELU
) -> GradientMagnitudes:
    """:class:`GradientMagnitudes` on ``x (N, d)`` from :func:`specjax.theory.lemma1.backprop_errors`."""
    errors = lemma1.backprop_errors(student, teacher, x, activation)
    _, hidden = forward(student, x, activation)
    inputs = (x,) + tuple(h.post for h in hidden)
    sup = tuple(jnp.max(jnp.abs(g), axis=-1) for g in errors)
    norms = tuple(
        jnp.linalg.norm(f if bias is None else lemma1.append_one(f), axis=-1) * jnp.linalg.norm(g, axis=-1)
        for f, g, (_, bias) in zip(inputs, errors, student, strict=True)
    )
    return GradientMagnitudes(sup, norms)


# ---------------------------------------------------------------------------------------------------------------
# L-shape and the Theorem-3/5 reports.


def _correlations(student: Params, teacher: Params, x: Array, activation: Activation) -> tuple[Array, ...]:
    _, hidden = forward(student, x, activation)
    _, teacher_hidden = forward(teacher, x, activation)
    return tuple(metrics.correlation(t.post, s.post) for t, s in zip(teacher_hidden, hidden, strict=True))


class LShape(NamedTuple):
    """Coordinates of Figs. 7/8 for one hidden layer: one point per student.

    Attributes:
      specialization: :math:`\\max_j\\rho_{jk}`, ``(n,)`` (x-axis).
      fan_out: :math:`\\sqrt{\\mathbb E_x\\beta_{kk}}`, ``(n,)`` (y-axis); :math:`\\|v_k\\|` for the two-layer net.
    """

    specialization: Array
    fan_out: Array


def l_shape(student: Params, teacher: Params, x: Array, activation: Activation = RELU) -> tuple[LShape, ...]:
    """:class:`LShape` for every hidden layer, on evaluation inputs ``x (N, d)``."""
    lemma1.require_homogeneous(activation, "l_shape")
    corr = _correlations(student, teacher, x, activation)
    fan_out = lemma1.effective_fan_out_norms(student, x, activation)
    return tuple(LShape(metrics.best_per_student(c), f) for c, f in zip(corr, fan_out, strict=True))


class Theorem3Report(NamedTuple):
    """Theorem 3 / Corollary 2: unspecialized students with enough observers carry no fan-out and can be pruned.

    The hypothesis columns are those of :func:`specjax.theory.theorem3.theorem3_hypothesis` (observers in the same
    layer, Def. 2); they need constant fan-outs, so below the top hidden layer of a deep net ``observer_rank`` is -1,
    ``smallest_singular_value`` NaN and ``hypothesis_holds`` false (not evaluated).

    Attributes:
      unspecialized: ``(n,)`` bool, best correlation :math:`\\max_j\\rho_{jk}` at most ``threshold``.
      specialization: ``(n,)`` best correlation per student.
      fan_out: ``(n,)`` :math:`\\sqrt{\\mathbb E_x\\beta_{kk}}` (:math:`\\|v_k\\|` for two layers).
      num_observers: ``(n,)`` int, students of the same layer observing each one (its co-linear group excluded).
      observer_rank: ``(n,)`` int, rank of the observers' stacked ``C x |observers|`` fan-outs (-1: not evaluated).
      smallest_singular_value: ``(n,)`` their ``C``-th singular value (0 below rank ``C``; NaN: not evaluated).
      hypothesis_holds: ``(n,)`` bool, unspecialized with observer rank ``C``: Theorem 3 then says the student's
        co-linear group's weighted fan-out sum is 0 at a critical point.
      num_unspecialized: scalar count.
      max_unspecialized_fan_out: largest fan-out among them (0 if none).
      eval_loss: loss on ``x`` before pruning.
      pruned_eval_loss: loss with their fan-outs zeroed.
      loss_change: ``pruned_eval_loss - eval_loss``.
    """

    unspecialized: Array
    specialization: Array
    fan_out: Array
    num_observers: Array
    observer_rank: Array
    smallest_singular_value: Array
    hypothesis_holds: Array
    num_unspecialized: Array
    max_unspecialized_fan_out: Array
    eval_loss: Array
    pruned_eval_loss: Array
    loss_change: Array


def theorem3_report(
    student: Params,
    teacher: Params,
    x: Array,
    activation: Activation = RELU,
    layer: int = 0,
    threshold: float = metrics.MATCH_THRESHOLD,
    convention: str = "half_sse",
) -> Theorem3Report:
    """:class:`Theorem3Report` for hidden layer ``layer`` on evaluation inputs ``x (N, d)``.

    Args:
      threshold: a student is unspecialized if its best correlation is ``<= threshold`` (the paper's matched
        criterion is ``> MATCH_THRESHOLD``, 0.95).
      convention: loss convention of :func:`specjax.core.networks.squared_error_loss`.
    """
    lemma1.require_homogeneous(activation, "theorem3_report")
    shape = l_shape(student, teacher, x, activation)[layer]
    unspecialized = shape.specialization <= threshold
    _, hidden = forward(student, x, activation)
    observers = same_layer_observers(hidden[layer].pre) & ~colinear_groups(student, layer)
    if layer == len(student) - 2:  # constant fan-outs: Theorem 3's hypothesis is defined
        fan_outs = student[layer + 1][0]  # (n, C)
        rank, smallest = observer_fan_out_spectrum(observers, fan_outs)
        holds = unspecialized & (rank == fan_outs.shape[-1])
    else:
        rank = jnp.full(unspecialized.shape, -1, jnp.int32)
        smallest = jnp.full(unspecialized.shape, jnp.nan, x.dtype)
        holds = jnp.zeros_like(unspecialized)
    targets = forward(teacher, x, activation)[0]
    eval_loss = squared_error_loss(student, x, targets, activation, convention)
    pruned_loss = squared_error_loss(prune_students(student, unspecialized, layer), x, targets, activation, convention)
    return Theorem3Report(
        unspecialized,
        shape.specialization,
        shape.fan_out,
        jnp.sum(observers, axis=1),
        rank.astype(jnp.int32),
        smallest,
        holds,
        jnp.sum(unspecialized),
        jnp.max(jnp.where(unspecialized, shape.fan_out, 0.0)),
        eval_loss,
        pruned_loss,
        pruned_loss - eval_loss,
    )


class RunAnalysis(NamedTuple):
    """Everything :func:`analyze_run` computes for one run (first hidden layer where a layer is implied).

    Attributes:
      l_shape: per hidden layer :class:`LShape`.
      observation_fraction: ``(m,)`` :func:`boundary_observation_fraction`.
      matched_student: ``(m,)`` :func:`hungarian_match` of the first layer.
      matched_geometry: :class:`PairGeometry` of the matched pairs.
      theorem3: :class:`Theorem3Report`.
      theorem5: :class:`Theorem5Report`.
    """

    l_shape: tuple[LShape, ...]
    observation_fraction: Array
    matched_student: Array
    matched_geometry: PairGeometry
    theorem3: Theorem3Report
    theorem5: Theorem5Report


def analyze_run(
    student: Params,
    teacher: Params,
    x: Array,
    activation: Activation = RELU,
    threshold: float = metrics.MATCH_THRESHOLD,
    convention: str = "half_sse",
) -> RunAnalysis:
    """All per-run analyses of one trained run on its evaluation set ``x (N, d)``; ``vmap`` it over runs.

    Shared forward passes are computed once by XLA under ``jit`` (common-subexpression elimination).
    """
    lemma1.require_homogeneous(activation, "analyze_run")
    _, hidden = forward(student, x, activation)
    _, teacher_hidden = forward(teacher, x, activation)
    corr = metrics.correlation(teacher_hidden[0].post, hidden[0].post)
    matched = hungarian_match(corr)
    return RunAnalysis(
        l_shape(student, teacher, x, activation),
        boundary_observation_fraction(teacher_hidden[0].post, hidden[0].post),
        matched,
        pair_geometry(teacher, student, matched),
        theorem3_report(student, teacher, x, activation, 0, threshold, convention),
        theorem5_report(student, teacher, x, activation),
    )
