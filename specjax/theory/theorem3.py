"""Theorem 3 of the paper as stated: same-layer observers, their fan-out rank, co-linear groups, the weighted sum.

Theorem 3 (Tian 2020, Sec. 4; docs/theory.md §4): at an SGD critical point of a two-layer net, if a student node
``k`` is aligned with no teacher and has ``C`` observers whose fan-out vectors, stacked into a ``C x C`` matrix, have
full rank, then :math:`\\sum_{k'\\in\\mathrm{co}(k)}\\|\\hat w_{k'}\\|\\,v_{k'}=0`, where
:math:`\\mathrm{co}(k)` is the set of students co-linear with ``k`` (Def. 3: :math:`\\hat w_{k'}=c\\,\\hat w_k`,
:math:`c>0`, bias included), ``k`` included.

The observers of ``k`` are nodes of **the same layer** (Def. 2): student ``k''`` observes ``k`` when ``k``'s boundary
:math:`\\partial E_k` meets ``k''``'s active region :math:`E_{k''}` on the data. Why they carry the theorem: on
:math:`E_{k''}` the critical point gives
:math:`0=g_{k''}(x)=\\sum_j\\alpha_{k''j}f^*_j(x)-\\sum_{k'}\\beta_{k''k'}f_{k'}(x)`; ReLUs whose kinks cross the
region are linearly independent up to co-linearity, so the coefficient of ``k``'s group vanishes,
:math:`v_{k''}^\\top\\sum_{k'\\in\\mathrm{co}(k)}\\|\\hat w_{k'}\\|v_{k'}=0`, and ``C`` observers whose
fan-outs :math:`v_{k''}` span :math:`\\mathbb R^C` force the sum to 0.

:func:`theorem3_hypothesis` measures each ingredient on evaluation inputs: the empirical Def. 2 witness
(:func:`specjax.theory.observers.boundary_observation` with ``k``'s pre-activation in the boundary slot: ``k''``'s
active set holds samples on both sides of ``k``'s boundary), members of ``co(k)`` left out (they share ``k``'s active
region, which never meets its own boundary); the rank and ``C``-th singular value of the observers' stacked fan-outs
(rows of the next layer's ``W``). The fan-outs are constant only at the top hidden layer, so that is the layer it
takes: the theorem as stated for a two-layer net, and, as an extension the paper does not prove, the top hidden layer
of a deeper one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from specjax.core import metrics
from specjax.core.networks import RELU, Activation, Params, forward, squared_error_loss
from specjax.errors import ArgumentError
from specjax.theory import lemma1
from specjax.theory.observers import boundary_observation

Array = jax.Array


class Theorem3Hypothesis(NamedTuple):
    """Theorem 3's hypothesis and conclusion per student of the top hidden layer (``n`` students, ``C`` outputs).

    Attributes:
      unaligned: ``(n,)`` bool, best correlation :math:`\\max_j\\rho_{jk}` at most ``threshold``.
      observers: ``(n, n)`` bool, entry ``[k, k'']``: student ``k''`` observes student ``k`` (Def. 2's witness,
        ``co(k)`` and ``k`` itself excluded).
      num_observers: ``(n,)`` int, how many students observe ``k``.
      fan_out_rank: ``(n,)`` numerical rank of the ``C x |observers|`` matrix of the observers' fan-outs
        :math:`v_{k''}`.
      smallest_singular_value: ``(n,)`` its ``C``-th singular value (0 when the rank is below ``C``, e.g. fewer than
        ``C`` observers): how far the observers are from losing full rank.
      hypothesis_holds: ``(n,)`` bool, ``unaligned`` and rank ``C``.
      colinear: ``(n, n)`` bool, :math:`\\cos\\angle(\\hat w_k,\\hat w_{k'})\\ge1-` ``colinear_tol`` (incl. ``k``).
      group_sum_norm: ``(n,)`` :math:`\\|\\sum_{k'\\in\\mathrm{co}(k)}\\|\\hat w_{k'}\\|v_{k'}\\|`, the residual.
      group_norm_sum: ``(n,)`` :math:`\\sum_{k'\\in\\mathrm{co}(k)}\\|\\hat w_{k'}\\|\\|v_{k'}\\|`, its scale.
      pruned_loss_change: ``(n,)`` loss on ``x`` with the fan-outs of ``co(k)`` zeroed, minus the loss.
    """

    unaligned: Array
    observers: Array
    num_observers: Array
    fan_out_rank: Array
    smallest_singular_value: Array
    hypothesis_holds: Array
    colinear: Array
    group_sum_norm: Array
    group_norm_sum: Array
    pruned_loss_change: Array


def augmented_weights(student: Params, layer: int = 0) -> Array:
    """:math:`\\hat w_k=[w_k;b_k]` of hidden layer ``layer`` (0-based), ``(fan_in + 1, n)``; no bias counts as 0."""
    weights, bias = student[layer]
    bias = jnp.zeros(weights.shape[-1:], weights.dtype) if bias is None else bias
    return jnp.concatenate([weights, bias[None, :]], axis=0)


def colinear_groups(student: Params, layer: int = 0, colinear_tol: float = 1e-6) -> Array:
    """``(n, n)`` bool: Def. 3 co-linearity, :math:`\\cos\\angle(\\hat w_k,\\hat w_{k'})\\ge 1-` ``colinear_tol``."""
    w_hat = augmented_weights(student, layer)
    unit = w_hat / jnp.maximum(jnp.linalg.norm(w_hat, axis=0, keepdims=True), jnp.finfo(w_hat.dtype).tiny)
    return unit.T @ unit >= 1.0 - colinear_tol


def prune_students(student: Params, pruned: Array, layer: int = 0) -> Params:
    """Zeroes the fan-out (row of the next layer's ``W``) of the students where ``pruned`` ``(n,)`` is true."""
    weights, bias = student[layer + 1]
    weights = jnp.where(pruned[:, None], 0.0, weights)
    return student[: layer + 1] + ((weights, bias),) + student[layer + 2 :]


def same_layer_observers(pre_activations: Array, observer_fraction: float = 0.0) -> Array:
    """Def. 2 within one layer, empirically: ``[k, k'']`` is true if ``k''``'s active samples lie on both sides of
    ``k``'s boundary in more than ``observer_fraction`` of the ``N`` samples each.

    Args:
      pre_activations: ``(N, n)`` pre-activations :math:`\\hat w_k^\\top\\hat f(x_i)` of one layer.

    Returns:
      ``(n, n)`` bool; the diagonal is false (an open region never meets its own boundary).
    """
    witness = boundary_observation(pre_activations, pre_activations)  # (n boundaries, n observers)
    return witness / pre_activations.shape[0] > observer_fraction


def observer_fan_out_spectrum(observers: Array, fan_outs: Array, rank_tol: float = 1e-8) -> tuple[Array, Array]:
    """Rank and ``C``-th singular value of each node's observers' stacked fan-outs.

    Args:
      observers: ``(n, n)`` bool, ``[k, k'']``: ``k''`` observes ``k``.
      fan_outs: ``(n, C)``: row ``k''`` is :math:`v_{k''}`.
      rank_tol: singular values above ``rank_tol`` times the largest count towards the rank.

    Returns:
      ``(rank (n,) int, smallest (n,))``: per ``k``, the numerical rank of
      :math:`[v_{k''}]_{k''\\in\\mathrm{obs}(k)}` (``C x |obs(k)|``) and its ``C``-th singular value (0 below rank
      ``C``). One node at a time (``lax.map``): memory ``O(n C)`` per node, not ``O(n^2 C)``.
    """
    outputs = fan_outs.shape[-1]

    def one(mask):
        singular = jnp.linalg.svd(jnp.where(mask[:, None], fan_outs, 0.0), compute_uv=False)  # (min(n, C),)
        rank = jnp.sum(singular > rank_tol * jnp.maximum(singular[0], jnp.finfo(fan_outs.dtype).tiny))
        padded = jnp.concatenate([singular, jnp.zeros((outputs,), singular.dtype)])
        return rank, jnp.where(rank >= outputs, padded[outputs - 1], 0.0)  # below rank C: 0, not rounding noise

    return jax.lax.map(one, observers)


def theorem3_hypothesis(
    student: Params,
    teacher: Params,
    x: Array,
    activation: Activation = RELU,
    layer: int | None = None,
    threshold: float = metrics.MATCH_THRESHOLD,
    colinear_tol: float = 1e-6,
    rank_tol: float = 1e-8,
    convention: str = "half_sse",
    observer_fraction: float = 0.0,
) -> Theorem3Hypothesis:
    """:class:`Theorem3Hypothesis` of the top hidden layer on evaluation inputs ``x (N, d)``.

    Args:
      layer: 0-based hidden layer; only the top one, ``len(student) - 2`` (the default), whose fan-outs
        :math:`v_k` (rows of ``W_L``) do not depend on ``x``.
      threshold: a student is unaligned if its best correlation with the teacher layer is ``<= threshold``.
      colinear_tol: co-linearity tolerance on the cosine of augmented weights.
      rank_tol: singular values above ``rank_tol`` times the largest count towards the rank.
      convention: loss convention of the pruning loss change.
      observer_fraction: the Def. 2 witness must hold more than this fraction of the ``N`` samples.

    Raises:
      ArgumentError: ``layer`` is not the top hidden layer, or ``activation`` is not homogeneous.
    """
    lemma1.require_homogeneous(activation, "theorem3_hypothesis")
    top = len(student) - 2
    layer = top if layer is None else layer
    if layer != top:
        raise ArgumentError(
            f"layer: theorem3_hypothesis takes the top hidden layer ({top}), whose fan-outs are constant; hidden "
            f"layer {layer} of a {len(student)}-layer student has fan-outs that depend on x"
        )
    _, hidden = forward(student, x, activation)
    _, teacher_hidden = forward(teacher, x, activation)
    corr = metrics.correlation(teacher_hidden[layer].post, hidden[layer].post)
    unaligned = metrics.best_per_student(corr) <= threshold
    colinear = colinear_groups(student, layer, colinear_tol)
    observers = same_layer_observers(hidden[layer].pre, observer_fraction) & ~colinear
    fan_out = student[layer + 1][0]  # (n, C): row k is node k's fan-out v_k
    rank, smallest = observer_fan_out_spectrum(observers, fan_out, rank_tol)
    w_norm = jnp.linalg.norm(augmented_weights(student, layer), axis=0)  # (n,)
    weighted = w_norm[:, None] * fan_out
    group_sum = jnp.linalg.norm(colinear.astype(x.dtype) @ weighted, axis=1)
    group_norms = colinear.astype(x.dtype) @ (w_norm * jnp.linalg.norm(fan_out, axis=1))
    targets = forward(teacher, x, activation)[0]
    loss = squared_error_loss(student, x, targets, activation, convention)
    pruned = jax.vmap(
        lambda mask: squared_error_loss(prune_students(student, mask, layer), x, targets, activation, convention)
    )(colinear)
    return Theorem3Hypothesis(
        unaligned,
        observers,
        jnp.sum(observers, axis=1),
        rank,
        smallest,
        unaligned & (rank == fan_out.shape[-1]),
        colinear,
        group_sum,
        group_norms,
        pruned - loss,
    )
