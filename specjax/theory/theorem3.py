"""Theorem 3 of the paper as stated: observers, their fan-out rank, co-linear groups and the weighted fan-out sum.

Theorem 3 (Tian 2020, Sec. 4): at an SGD critical point, if a student node ``k`` is aligned with no teacher and has
``C`` observers in the layer above whose fan-out vectors, stacked into a ``C x C`` matrix, have full rank, then
:math:`\\sum_{k'\\in\\mathrm{co}(k)}\\|\\hat w_{k'}\\|\\,v_{k'}=0`, where :math:`\\mathrm{co}(k)` is the set of students
co-linear with ``k`` (Def. 3: :math:`\\hat w_{k'}=c\\,\\hat w_k`, :math:`c>0`, bias included), ``k`` included.
:func:`theorem3_hypothesis` measures each ingredient on evaluation inputs; docs/theory.md has the table.

Observers of ``k`` (Def. 2, empirical): nodes of the layer above whose active set holds data on both sides of ``k``'s
boundary (:func:`specjax.theory.reports.boundary_observation` with ``k``'s pre-activation in the teacher's slot).
When the layer above is the (linear) output, every output node observes ``k`` and their fan-outs are the identity.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from specjax.core import metrics
from specjax.core.networks import RELU, Activation, Params, forward, squared_error_loss
from specjax.theory import lemma1
from specjax.theory.reports import boundary_observation, prune_students

Array = jax.Array


class Theorem3Hypothesis(NamedTuple):
    """Theorem 3's hypothesis and conclusion per student of one hidden layer (``n`` students, ``C`` outputs).

    Attributes:
      unaligned: ``(n,)`` bool, best correlation :math:`\\max_j\\rho_{jk}` at most ``threshold``.
      observers: ``(n, n_up)`` bool, upper-layer node ``k'`` observes ``k`` (``n_up = C`` at the top hidden layer).
      fan_out_rank: ``(n,)`` numerical rank of the ``C x |observers|`` matrix of the observers' fan-outs (mean
        effective fan-out :math:`\\mathbb E_xv_{k'}(x)` in deep nets).
      smallest_singular_value: ``(n,)`` its ``C``-th singular value (0 when fewer than ``C`` are non-zero).
      hypothesis_holds: ``(n,)`` bool, ``unaligned`` and rank ``C``.
      colinear: ``(n, n)`` bool, :math:`\\cos\\angle(\\hat w_k,\\hat w_{k'})\\ge1-` ``colinear_tol`` (incl. ``k``).
      group_sum_norm: ``(n,)`` :math:`\\|\\sum_{k'\\in\\mathrm{co}(k)}\\|\\hat w_{k'}\\|v_{k'}\\|`, the residual.
      group_norm_sum: ``(n,)`` :math:`\\sum_{k'\\in\\mathrm{co}(k)}\\|\\hat w_{k'}\\|\\|v_{k'}\\|`, its scale.
      pruned_loss_change: ``(n,)`` loss on ``x`` with the fan-outs of ``co(k)`` zeroed, minus the loss.
    """

    unaligned: Array
    observers: Array
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


def theorem3_hypothesis(
    student: Params,
    teacher: Params,
    x: Array,
    activation: Activation = RELU,
    layer: int = 0,
    threshold: float = metrics.MATCH_THRESHOLD,
    colinear_tol: float = 1e-6,
    rank_tol: float = 1e-8,
    convention: str = "half_sse",
) -> Theorem3Hypothesis:
    """:class:`Theorem3Hypothesis` of hidden layer ``layer`` (0-based) on evaluation inputs ``x (N, d)``.

    Args:
      threshold: a student is unaligned if its best correlation with the teacher layer is ``<= threshold``.
      colinear_tol: co-linearity tolerance on the cosine of augmented weights.
      rank_tol: singular values above ``rank_tol`` times the largest count towards the rank.
      convention: loss convention of the pruning loss change.
    """
    lemma1.require_homogeneous(activation, "theorem3_hypothesis")
    _, hidden = forward(student, x, activation)
    _, teacher_hidden = forward(teacher, x, activation)
    corr = metrics.correlation(teacher_hidden[layer].post, hidden[layer].post)
    unaligned = metrics.best_per_student(corr) <= threshold
    outputs = student[-1][0].shape[-1]
    top = layer == len(student) - 2
    if top:  # the upper layer is the linear output: every output node observes, fan-outs are I_C
        observers = jnp.ones((corr.shape[1], outputs), bool)
        fan_outs = jnp.eye(outputs, dtype=x.dtype)  # (C, n_up)
    else:
        observers = boundary_observation(hidden[layer].pre, hidden[layer + 1].post) > 0  # (n, n_up)
        gates, _ = lemma1.hidden_gates(student, x, activation)
        v_up = lemma1.effective_fan_outs(student, gates)[layer + 1][..., :-1, :-1]  # (N, C, n_up) or (C, n_up)
        fan_outs = v_up if v_up.ndim == 2 else jnp.mean(v_up, axis=0)
    stacked = jnp.where(observers[:, None, :], fan_outs[None, :, :], 0.0)  # (n, C, n_up)
    singular = jnp.linalg.svd(stacked, compute_uv=False)  # (n, min(C, n_up)), descending
    rank = jnp.sum(singular > rank_tol * jnp.maximum(singular[:, :1], jnp.finfo(x.dtype).tiny), axis=1)
    padded = jnp.concatenate([singular, jnp.zeros((singular.shape[0], outputs), singular.dtype)], axis=1)
    smallest = padded[:, outputs - 1]
    colinear = colinear_groups(student, layer, colinear_tol)
    w_norm = jnp.linalg.norm(augmented_weights(student, layer), axis=0)  # (n,)
    fan_out = student[layer + 1][0]  # (n, n_up): row k is node k's fan-out
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
        rank,
        smallest,
        unaligned & (rank == outputs),
        colinear,
        group_sum,
        group_norms,
        pruned - loss,
    )
