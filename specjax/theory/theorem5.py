"""Theorem 5 (noisy specialization) as stated: regional alpha on Corollary-1 regions, bias-included normalisation.

Theorem 5 of Tian (ICML 2020), docs/theory.md §4: under Assumption 1, with per-sample gradient
:math:`\\|g_1(x)\\|_\\infty\\le\\epsilon` on the training region, for a teacher node ``j`` of layer 1 with a constant
region ``R`` (Corollary 1) and an observer ``k`` (:math:`\\partial E^*_j\\cap E_k\\cap R\\neq\\emptyset`,
:math:`|\\alpha_{kj}(R)|` bounded away from 0), some student ``k'`` has
:math:`\\sin\\tilde\\theta_{jk'}=O(\\epsilon/|\\alpha_{kj}(R)|)` and
:math:`|b^*_j-b_{k'}|=O(\\epsilon/|\\alpha_{kj}(R)|)`, both nodes
normalised to :math:`\\|\\hat w\\|=1` (augmented weight, bias included; docs/theory.md §3).

:math:`\\alpha_{kj}(x)=v_k(x)^\\top v^*_j(x)` at layer 1 depends on ``x`` only through the gates of layers
``2..L-1`` of both nets (Corollary 1): those gate patterns cut the input space into regions on which it is constant.
:func:`regional_observer_alpha` finds the regions the evaluation samples fall in, decides on each region whether
``k`` observes ``j`` (Def. 2 restricted to the region: ``k``'s active samples in ``R`` lie on both sides of ``j``'s
boundary) and takes :math:`\\alpha_{kj}(R)` from the per-sample Lemma-1 matrices (docs/theory.md §2). For a two-layer
net there is one region and the result is :math:`\\max_k|\\alpha_{kj}|` over the empirical observers.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from specjax.core import metrics
from specjax.core.networks import RELU, Activation, Params, forward
from specjax.theory import lemma1
from specjax.theory.observers import boundary_observation

Array = jax.Array


class PairGeometry(NamedTuple):
    """First-layer geometry of teacher-student pairs (Def. 3; Theorem 5's split :math:`\\hat w=[\\tilde w;b]`).

    Attributes:
      weight_angle: bias-free angle :math:`\\tilde\\theta` between :math:`w^*_j` and :math:`w_k`, ``(m,)``.
      bias_error: :math:`|b^*_j/\\|\\hat w^*_j\\|-b_k/\\|\\hat w_k\\||`, ``(m,)``: both nodes normalised to unit
        augmented weight :math:`\\|\\hat w\\|=\\|[w;b]\\|=1`, bias included, as Theorem 5 normalises them.
    """

    weight_angle: Array
    bias_error: Array


def pair_geometry(teacher: Params, student: Params, student_index: Array) -> PairGeometry:
    """:class:`PairGeometry` of teacher node ``j`` and first-layer student node ``student_index[j]``.

    Args:
      teacher, student: parameters; only the first layers ``(W (d, m), b)`` and ``(W (d, n), b)`` are used (the
        only layer whose nodes share an input space). A missing bias counts as 0.
      student_index: ``(m,)`` int, e.g. from :func:`specjax.theory.reports.hungarian_match`; entries ``-1`` give NaN.

    Returns:
      :class:`PairGeometry` with ``(m,)`` arrays.

    Raises:
      ValueError: (concrete ``student_index`` only) an entry outside ``-1 .. n-1``. Under ``jit``/``vmap`` such an
        entry gives NaN, never another student's geometry.
    """
    (teacher_weights, teacher_bias), (weights, bias) = teacher[0], student[0]
    n = weights.shape[-1]
    if not isinstance(student_index, jax.core.Tracer):
        bad = np.asarray(student_index)
        bad = bad[(bad < -1) | (bad >= n)]
        if bad.size:
            raise ValueError(f"student_index: {bad.tolist()} out of range; the student layer has {n} nodes (-1 = none)")
    dtype = weights.dtype
    teacher_bias = jnp.zeros(teacher_weights.shape[-1:], dtype) if teacher_bias is None else teacher_bias
    bias = jnp.zeros(weights.shape[-1:], dtype) if bias is None else bias
    valid = (student_index >= 0) & (student_index < n)
    chosen = jnp.where(valid, student_index, 0)
    matched_weights, matched_bias = weights[:, chosen], bias[chosen]  # (d, m), (m,)
    teacher_norm = jnp.linalg.norm(teacher_weights, axis=0)
    student_norm = jnp.linalg.norm(matched_weights, axis=0)
    cos = jnp.sum(teacher_weights * matched_weights, 0) / (teacher_norm * student_norm)
    weight_angle = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    teacher_offset = teacher_bias / jnp.sqrt(teacher_norm**2 + teacher_bias**2)
    student_offset = matched_bias / jnp.sqrt(student_norm**2 + matched_bias**2)
    bias_error = jnp.abs(teacher_offset - student_offset)
    nan = jnp.full_like(weight_angle, jnp.nan)
    return PairGeometry(jnp.where(valid, weight_angle, nan), jnp.where(valid, bias_error, nan))


def constant_regions(student: Params, teacher: Params, x: Array, activation: Activation = RELU) -> tuple[Array, Array]:
    """The Corollary-1 regions of layer 1 that the samples fall in.

    Two samples share a region when every node of layers ``2..L-1`` of the student and of the teacher has the same
    gate (:math:`z>0` or not) on both; then :math:`\\hat A_1`, :math:`\\hat B_1` are equal on them.

    Args:
      x: ``(N, d)``.

    Returns:
      ``(region (N,) int32 in [0, count), count)``; a net with one hidden layer has one region.
    """
    lemma1.require_homogeneous(activation, "constant_regions")
    _, hidden = forward(student, x, activation)
    _, teacher_hidden = forward(teacher, x, activation)
    bits = [h.pre > 0 for h in hidden[1:]] + [h.pre > 0 for h in teacher_hidden[1:]]
    count = x.shape[0]
    if not bits:
        return jnp.zeros((count,), jnp.int32), jnp.ones((), jnp.int32)
    signature = jnp.concatenate(bits, axis=1)
    width = signature.shape[1]
    signature = jnp.pad(signature, ((0, 0), (0, -width % 32)))  # pack 32 gates per uint32 word
    shifts = jnp.arange(32, dtype=jnp.uint32)
    packed = signature.reshape(count, -1, 32).astype(jnp.uint32) << shifts[None, None, :]
    words = jnp.sum(packed, axis=-1, dtype=jnp.uint32)
    _, region = jnp.unique(words, axis=0, return_inverse=True, size=count, fill_value=0)
    region = region.reshape(count).astype(jnp.int32)
    return region, jnp.max(region) + 1


class RegionalAlpha(NamedTuple):
    """Theorem 5's :math:`\\alpha` per teacher node of layer 1, on the regions where it is observed.

    Attributes:
      observer_alpha: ``(m,)`` :math:`\\max|\\alpha_{kj}(R)|` over students ``k`` and regions ``R`` in which ``k``
        observes ``j`` (0 if none).
      observer: ``(m,)`` the student ``k`` attaining it (-1 if none).
      num_regions: scalar, number of distinct regions on the samples.
    """

    observer_alpha: Array
    observer: Array
    num_regions: Array


def regional_observer_alpha(
    student: Params,
    teacher: Params,
    x: Array,
    activation: Activation = RELU,
    observer_fraction: float = 0.0,
) -> RegionalAlpha:
    """:class:`RegionalAlpha` on evaluation inputs ``x (N, d)``.

    In region ``R``, student ``k`` observes teacher ``j`` if
    :math:`\\min(\\#\\{i\\in R:f^*_j>0,f_k>0\\},\\#\\{i\\in R:f^*_j\\le0,f_k>0\\})/N>` ``observer_fraction``
    (:func:`specjax.theory.observers.boundary_observation` restricted to ``R``); :math:`\\alpha_{kj}(R)` is the
    per-sample :math:`v_k(x)^\\top v^*_j(x)` of layer 1 (:func:`specjax.theory.lemma1.effective_fan_outs`) at a sample
    of ``R`` (constant on ``R``). Memory ``O(N C (n + m))``: the teachers are processed one at a time.
    """
    lemma1.require_homogeneous(activation, "regional_observer_alpha")
    count = x.shape[0]
    region, num_regions = constant_regions(student, teacher, x, activation)
    segments = count if len(student) > 2 else 1  # static bound on the number of regions
    _, hidden = forward(student, x, activation)
    _, teacher_hidden = forward(teacher, x, activation)
    active = (hidden[0].pre > 0).astype(x.dtype)  # (N, n)
    teacher_on = (teacher_hidden[0].pre > 0).astype(x.dtype)  # (N, m)
    student_gates, _ = lemma1.hidden_gates(student, x, activation)
    teacher_gates, _ = lemma1.hidden_gates(teacher, x, activation)
    fan_outs = lemma1.effective_fan_outs(student, student_gates)[0][..., :-1, :-1]  # (N, C, n) or (C, n)
    teacher_fan_outs = lemma1.effective_fan_outs(teacher, teacher_gates)[0][..., :-1, :-1]  # (N, C, m) or (C, m)
    representative = jax.ops.segment_min(jnp.arange(count), region, segments)  # (S,) first sample of each region
    representative = jnp.clip(representative, 0, count - 1)  # empty segments: any sample (never observed)
    region_fan_outs = fan_outs if fan_outs.ndim == 2 else fan_outs[representative]  # (C, n) or (S, C, n)
    total = jax.ops.segment_sum(active, region, segments)  # (S, n)

    def one_teacher(j):
        on_side = jax.ops.segment_sum(active * teacher_on[:, j][:, None], region, segments)  # (S, n)
        observed = jnp.minimum(on_side, total - on_side) / count > observer_fraction
        teacher_column = jnp.take(teacher_fan_outs, j, axis=-1)  # (..., C)
        if teacher_column.ndim == 1:
            alpha = jnp.broadcast_to(teacher_column @ region_fan_outs, (segments, active.shape[1]))
        else:
            alpha = jnp.einsum("sc,scn->sn", teacher_column[representative], region_fan_outs)
        magnitude = jnp.where(observed, jnp.abs(alpha), -1.0)  # (S, n)
        best = jnp.max(magnitude, axis=0)  # (n,)
        k = jnp.argmax(best)
        return jnp.maximum(best[k], 0.0), jnp.where(best[k] >= 0, k, -1)

    alpha, observer = jax.lax.map(one_teacher, jnp.arange(teacher_on.shape[1]))
    return RegionalAlpha(alpha, observer.astype(jnp.int32), num_regions)


class Theorem5Report(NamedTuple):
    """Theorem 5 (noisy specialization), first hidden layer: per teacher ``j``, the achieved alignment next to the
    bound's ingredients. The theorem predicts ``sin_angle`` and ``bias_error`` of order ``bound_ratio``.

    Attributes:
      best_student: ``(m,)`` student of highest correlation with teacher ``j``.
      correlation: ``(m,)`` that correlation.
      weight_angle, sin_angle, bias_error: ``(m,)`` :class:`PairGeometry` of the pair and :math:`\\sin\\tilde\\theta`.
      gradient_bound: scalar :math:`\\epsilon=\\max_x\\|g_1(x)\\|_\\infty` on ``x``.
      observer_alpha: ``(m,)`` :math:`\\max|\\alpha_{kj}(R)|` over observers ``k`` and regions ``R``
        (:func:`regional_observer_alpha`): the theorem's :math:`\\alpha`.
      mean_observer_alpha: ``(m,)`` :math:`\\max|\\mathbb E_x\\alpha_{kj}(x)|` over the observers of the whole sample
        (:math:`\\mathrm{Obs}_{jk}/N>` ``observer_fraction``): equal to ``observer_alpha`` for two layers, a
        region average (possibly cancelling) for deep nets.
      bound_ratio: ``(m,)`` :math:`\\epsilon/|\\alpha|` with the regional :math:`\\alpha` (inf where no observer).
      num_regions: scalar, Corollary-1 regions among the samples.
    """

    best_student: Array
    correlation: Array
    weight_angle: Array
    sin_angle: Array
    bias_error: Array
    gradient_bound: Array
    observer_alpha: Array
    mean_observer_alpha: Array
    bound_ratio: Array
    num_regions: Array


def theorem5_report(
    student: Params,
    teacher: Params,
    x: Array,
    activation: Activation = RELU,
    observer_fraction: float = 0.0,
) -> Theorem5Report:
    """:class:`Theorem5Report` on evaluation inputs ``x (N, d)`` (standing in for the training region)."""
    lemma1.require_homogeneous(activation, "theorem5_report")
    _, hidden = forward(student, x, activation)
    _, teacher_hidden = forward(teacher, x, activation)
    corr = metrics.correlation(teacher_hidden[0].post, hidden[0].post)
    best = jnp.argmax(corr, axis=-1)
    geometry = pair_geometry(teacher, student, best)
    epsilon = jnp.max(jnp.abs(lemma1.backprop_errors(student, teacher, x, activation)[0]))
    observed = boundary_observation(teacher_hidden[0].post, hidden[0].post) / x.shape[0] > observer_fraction
    alpha = lemma1.mean_alpha(student, teacher, x, activation)[0]  # (n, m)
    mean_observer_alpha = jnp.max(jnp.where(observed, jnp.abs(alpha.T), 0.0), axis=1)
    regional = regional_observer_alpha(student, teacher, x, activation, observer_fraction)
    positive = regional.observer_alpha > 0
    ratio = jnp.where(positive, epsilon / jnp.where(positive, regional.observer_alpha, 1.0), jnp.inf)
    return Theorem5Report(
        best,
        jnp.max(corr, axis=1),
        geometry.weight_angle,
        jnp.sin(geometry.weight_angle),
        geometry.bias_error,
        epsilon,
        regional.observer_alpha,
        mean_observer_alpha,
        ratio,
        regional.num_regions,
    )
