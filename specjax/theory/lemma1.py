"""Lemma 1, the recursive gradient rule, vectorised over samples (docs/theory.md §2).

Define top-down, with bias augmentation (hats),

.. math:: \\hat V_L=I_{C+1},\\qquad \\hat V_{l-1}=\\hat V_l\\hat D_l\\hat W_l^\\top,\\qquad
          \\hat W_l=\\begin{bmatrix}W_l&0\\\\b_l^\\top&1\\end{bmatrix},\\quad\\hat D_l=\\mathrm{diag}(D_l,1),

(:math:`\\hat D_L=I`) and the same with stars for the teacher. Then for every sample and hidden layer ``l``
(Eqn 3-4)

.. math:: g_l=\\big[\\hat D_l(\\hat A_l\\hat f^*_l-\\hat B_l\\hat f_l)\\big]_{1..n_l},\\qquad
          \\hat A_l=\\hat V_l^\\top\\hat V^*_l,\\quad\\hat B_l=\\hat V_l^\\top\\hat V_l,

where :math:`g_l=-\\partial J_x/\\partial z_l` is the backpropagated error. Column ``k`` of :math:`\\hat V_l` is node
``k``'s effective fan-out :math:`v_k(x)`; :math:`\\alpha_{kj}=v_k^\\top v^*_j` and
:math:`\\beta_{kk'}=v_k^\\top v_{k'}`.
The last row of every :math:`\\hat V_l` is :math:`[0,\\dots,0,1]` (the constant path), so the top-left blocks of
:math:`\\hat A_l,\\hat B_l` are the unhatted :math:`A_l,B_l` and :math:`\\hat\\beta_{kk}=\\|v_k\\|^2` for ``k < n_l``.

``D_l`` holds :math:`\\sigma'(z_l)`: 0/1 for ReLU, ``{a, 1}`` for leaky ReLU (Lemma 1 holds unchanged). A
non-homogeneous activation (softplus) is refused by :func:`require_homogeneous`.

Layer indexing: hidden layer ``l = 1..L-1`` is entry ``l - 1`` of every returned tuple. Parameters follow
:mod:`specjax.core.networks` (``W`` is ``(fan_in, fan_out)``; a missing bias counts as 0). Every function is pure, has
no per-sample Python loop (samples are vmapped or contracted), and can be vmapped again over runs.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from specjax.core.networks import HOMOGENEOUS_ACTIVATIONS, RELU, Activation, Layer, Params, check_activation, forward
from specjax.errors import ArgumentError

Array = jax.Array


class Lemma1Matrices(NamedTuple):
    """Per-sample Lemma-1 matrices, one entry per hidden layer ``l = 1..L-1``.

    Attributes:
      student_teacher: :math:`\\hat A_l=\\hat V_l^\\top\\hat V^*_l`, each ``(..., n_l + 1, m_l + 1)``.
      student_student: :math:`\\hat B_l=\\hat V_l^\\top\\hat V_l`, each ``(..., n_l + 1, n_l + 1)``.
    """

    student_teacher: tuple[Array, ...]
    student_student: tuple[Array, ...]


class Lemma1Statistics(NamedTuple):
    """Evaluation-set means of the Lemma-1 matrices, as the reference's ``StatsHs`` defines them.

    One entry per hidden layer ``l = 1..L-1``; ``betas_st[l-1]`` is the reference's ``betas_st[l-1]``.

    Attributes:
      betas_st: :math:`\\mathbb E_x\\hat A_l`, each ``(n_l + 1, m_l + 1)``.
      hs_st: :math:`\\mathbb E_x[\\hat D_l\\hat A_l\\hat D^*_l]`, each ``(n_l + 1, m_l + 1)``.
      betas_ss: :math:`\\mathbb E_x\\hat B_l`, each ``(n_l + 1, n_l + 1)``.
      hs_ss: :math:`\\mathbb E_x[\\hat D_l\\hat B_l\\hat D_l]`, each ``(n_l + 1, n_l + 1)``.
    """

    betas_st: tuple[Array, ...]
    hs_st: tuple[Array, ...]
    betas_ss: tuple[Array, ...]
    hs_ss: tuple[Array, ...]


def require_homogeneous(activation: Activation, function: str) -> Activation:
    """``activation`` if it is positively homogeneous, :math:`\\sigma(z)=\\sigma'(z)z` (docs/theory.md §1).

    Lemma 1's :math:`f_l=D_lW_l^\\top f_{l-1}` and every statement built on it (Corollary 1, Theorems 2-5, the L-shape's
    :math:`\\beta_{kk}`) rest on that identity; a smooth activation such as softplus would give numbers that mean
    nothing. Every function of :mod:`specjax.theory` that takes an activation calls this first (at trace time), except
    the plain backpropagation (:func:`backprop_errors`, ``reports.per_sample_gradient_magnitudes``), which holds for
    any activation.

    Raises:
      ArgumentError: one line naming ``activation`` and ``function``.
    """
    if not check_activation(activation).homogeneous:
        raise ArgumentError(
            f"activation: {function} needs a positively homogeneous activation (sigma(z) = sigma'(z) z, on which "
            f"Lemma 1 rests); {activation.name!r} is not; use one of {HOMOGENEOUS_ACTIVATIONS}"
        )
    return activation


def augment_layer(layer: Layer) -> Array:
    """:math:`\\hat W=\\begin{bmatrix}W&0\\\\b^\\top&1\\end{bmatrix}`, shape ``(fan_in + 1, fan_out + 1)``."""
    weights, bias = layer
    fan_in, fan_out = weights.shape[-2:]
    if bias is None:
        bias = jnp.zeros((fan_out,), weights.dtype)
    top = jnp.concatenate([weights, jnp.zeros((fan_in, 1), weights.dtype)], axis=1)
    bottom = jnp.concatenate([bias, jnp.ones((1,), weights.dtype)])[None, :]
    return jnp.concatenate([top, bottom], axis=0)


def append_one(values: Array) -> Array:
    """Appends the constant 1 of the augmentation: ``(..., n) -> (..., n + 1)``.

    Gives :math:`\\hat f=[f;1]` from activations and the diagonal of :math:`\\hat D=\\mathrm{diag}(D,1)` from gates.
    """
    return jnp.concatenate([values, jnp.ones(values.shape[:-1] + (1,), values.dtype)], axis=-1)


def hidden_gates(
    params: Params, x: Array, activation: Activation = RELU
) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """Gates :math:`\\sigma'(z_l)` and activations :math:`f_l` of every hidden layer.

    Args:
      x: ``(..., d)``.

    Returns:
      ``(gates, activations)``, each a tuple of ``(..., n_l)`` arrays for ``l = 1..L-1``.
    """
    require_homogeneous(activation, "hidden_gates")
    _, hidden = forward(params, x, activation)
    return (tuple(activation.gate(h.pre) for h in hidden), tuple(h.post for h in hidden))


def effective_fan_outs(params: Params, gates: tuple[Array, ...]) -> tuple[Array, ...]:
    """The augmented :math:`\\hat V_l` of every hidden layer, from the gates of one sample or a batch.

    Args:
      params: ``L`` layers.
      gates: per hidden layer, :math:`\\sigma'(z_l)` of shape ``(..., n_l)``.

    Returns:
      per hidden layer ``l = 1..L-1``, :math:`\\hat V_l` of shape ``(..., C + 1, n_l + 1)``. The top one,
      :math:`\\hat V_{L-1}=\\hat W_L^\\top`, does not depend on the sample and has shape ``(C + 1, n_{L-1} + 1)``.
    """
    fan_out = augment_layer(params[-1]).T
    result = [fan_out]
    for layer_index in range(len(params) - 2, 0, -1):
        gate_row = append_one(gates[layer_index])[..., None, :]
        fan_out = jnp.broadcast_to(fan_out, gate_row.shape[:-2] + fan_out.shape[-2:])
        gated = fan_out * gate_row
        fan_out = gated @ augment_layer(params[layer_index]).T
        result.insert(0, fan_out)
    return tuple(result)


def lemma1_matrices(student: Params, teacher: Params, x: Array, activation: Activation = RELU) -> Lemma1Matrices:
    """:math:`\\hat A_l(x)` and :math:`\\hat B_l(x)` for every hidden layer and sample.

    Args:
      student, teacher: parameters with the same depth ``L``.
      x: ``(N, d)`` samples (or ``(d,)`` for one).
      activation: hidden activation of both nets.

    Returns:
      :class:`Lemma1Matrices` with arrays ``(N, n_l + 1, m_l + 1)`` and ``(N, n_l + 1, n_l + 1)``. Memory grows as
      ``N n_l^2``; use :func:`lemma1_statistics` for means over large sets.
    """
    require_homogeneous(activation, "lemma1_matrices")
    student_gates, _ = hidden_gates(student, x, activation)
    teacher_gates, _ = hidden_gates(teacher, x, activation)
    batch = x.shape[:-1]
    student_v = effective_fan_outs(student, student_gates)
    teacher_v = effective_fan_outs(teacher, teacher_gates)
    student_v = tuple(jnp.broadcast_to(v, batch + v.shape[-2:]) for v in student_v)
    teacher_v = tuple(jnp.broadcast_to(v, batch + v.shape[-2:]) for v in teacher_v)
    alpha = tuple(jnp.swapaxes(v, -1, -2) @ vt for v, vt in zip(student_v, teacher_v, strict=True))
    beta = tuple(jnp.swapaxes(v, -1, -2) @ v for v in student_v)
    return Lemma1Matrices(alpha, beta)


def lemma1_errors(student: Params, teacher: Params, x: Array, activation: Activation = RELU) -> tuple[Array, ...]:
    """Backpropagated errors from Lemma 1: :math:`g_l=[\\hat D_l(\\hat A_l\\hat f^*_l-\\hat B_l\\hat f_l)]_{1..n_l}`.

    Args:
      x: ``(N, d)``.

    Returns:
      per hidden layer, ``(N, n_l)``. Equal to :func:`backprop_errors` (tested to ~1e-15).
    """
    require_homogeneous(activation, "lemma1_errors")
    matrices = lemma1_matrices(student, teacher, x, activation)
    student_gates, student_acts = hidden_gates(student, x, activation)
    _, teacher_acts = hidden_gates(teacher, x, activation)
    errors = []
    for alpha, beta, gates, f, f_teacher in zip(
        matrices.student_teacher, matrices.student_student, student_gates, student_acts, teacher_acts, strict=True
    ):
        mixed = (alpha @ append_one(f_teacher)[..., None] - beta @ append_one(f)[..., None])[..., 0]
        errors.append((append_one(gates) * mixed)[..., :-1])
    return tuple(errors)


def backprop_errors(student: Params, teacher: Params, x: Array, activation: Activation = RELU) -> tuple[Array, ...]:
    """Backpropagated errors by the direct recursion :math:`g_L=f^*_L-f_L`, :math:`g_{l-1}=D_{l-1}W_lg_l`.

    :math:`g_l=-\\partial J_x/\\partial z_l` with :math:`J_x=\\tfrac12\\|f^*_L(x)-f_L(x)\\|^2` (docs/theory.md §1).
    Plain backpropagation: it holds for any activation, homogeneous or not.

    Args:
      x: ``(..., d)``.

    Returns:
      one array per layer ``l = 1..L``: ``(..., n_l)`` for hidden layers, and the output residual ``(..., C)``
      last.
    """
    out, hidden = forward(student, x, activation)
    error = forward(teacher, x, activation)[0] - out
    errors = [error]
    for layer_index in range(len(student) - 1, 0, -1):
        weights = student[layer_index][0]
        error = (error @ weights.T) * activation.gate(hidden[layer_index - 1].pre)
        errors.insert(0, error)
    return tuple(errors)


def _statistics_sums(
    student: Params, teacher: Params, x: Array, weights: Array, activation: Activation
) -> Lemma1Statistics:
    """Weighted sums over a chunk ``x (B, d)`` with sample weights ``(B,)`` (0 for padding)."""
    student_raw_gates, _ = hidden_gates(student, x, activation)
    teacher_raw_gates, _ = hidden_gates(teacher, x, activation)
    student_v = effective_fan_outs(student, student_raw_gates)
    teacher_v = effective_fan_outs(teacher, teacher_raw_gates)
    student_gates = tuple(append_one(g) for g in student_raw_gates)
    teacher_gates = tuple(append_one(g) for g in teacher_raw_gates)
    total = jnp.sum(weights)
    sums = Lemma1Statistics([], [], [], [])
    for v, vt, gates, gates_t in zip(student_v, teacher_v, student_gates, teacher_gates, strict=True):
        if v.ndim == 2:  # top hidden layer: V_{L-1} = W_L^T is constant, only the gates vary.
            alpha, beta = v.T @ vt, v.T @ v
            weighted = gates * weights[:, None]
            sums.betas_st.append(total * alpha)
            sums.betas_ss.append(total * beta)
            sums.hs_st.append(alpha * (weighted.T @ gates_t))
            sums.hs_ss.append(beta * (weighted.T @ gates))
        else:  # (B, C + 1, n + 1): contract over samples and outputs at once.
            weighted_v = v * weights[:, None, None]
            gated_v = weighted_v * gates[:, None, :]
            sums.betas_st.append(jnp.einsum("bci,bcj->ij", weighted_v, vt))
            sums.betas_ss.append(jnp.einsum("bci,bcj->ij", weighted_v, v))
            sums.hs_st.append(jnp.einsum("bci,bcj->ij", gated_v, vt * gates_t[:, None, :]))
            sums.hs_ss.append(jnp.einsum("bci,bcj->ij", gated_v, v * gates[:, None, :]))
    return Lemma1Statistics(*(tuple(field) for field in sums))


def lemma1_statistics(
    student: Params,
    teacher: Params,
    x: Array,
    activation: Activation = RELU,
    chunk_size: int | None = None,
) -> Lemma1Statistics:
    """Evaluation-set means of :math:`\\hat A_l`, :math:`\\hat B_l` and their gated versions (``betas``/``Hs``).

    Computed without materialising per-sample matrices: :math:`\\mathbb E_x\\hat A_l` is one contraction of the
    per-sample :math:`\\hat V_l` over samples and outputs, and at the top hidden layer :math:`\\hat V_{L-1}` is
    constant, so :math:`\\mathbb E[\\hat D\\hat A\\hat D^*]=\\hat A\\odot\\mathbb E[\\hat d\\hat d^{*\\top}]`.

    Matches the reference's ``StatsHs._compute_Hs`` for ReLU nets (the reference gates ``Hs`` with 0/1 indicators;
    here ``D`` is :math:`\\sigma'`, which is the same for ReLU and is Lemma 1's ``D`` for leaky ReLU).

    Args:
      student, teacher: parameters with the same depth ``L``.
      x: ``(N, d)`` evaluation inputs.
      activation: hidden activation.
      chunk_size: process this many samples at a time with ``lax.scan`` to bound memory (deep nets hold
        ``chunk_size * (C + 1) * n_l`` numbers per layer); ``None`` does all at once.

    Returns:
      :class:`Lemma1Statistics` of means over the ``N`` samples.
    """
    require_homogeneous(activation, "lemma1_statistics")
    count = x.shape[0]
    if chunk_size is None or chunk_size >= count:
        sums = _statistics_sums(student, teacher, x, jnp.ones((count,), x.dtype), activation)
    else:
        chunks = -(-count // chunk_size)
        padding = chunks * chunk_size - count
        padded_x = jnp.concatenate([x, jnp.zeros((padding, x.shape[1]), x.dtype)]).reshape(chunks, chunk_size, -1)
        sample_weights = jnp.concatenate([jnp.ones((count,), x.dtype), jnp.zeros((padding,), x.dtype)])
        sample_weights = sample_weights.reshape(chunks, chunk_size)

        def accumulate(total, chunk):
            part = _statistics_sums(student, teacher, chunk[0], chunk[1], activation)
            return jax.tree.map(jnp.add, total, part), None

        first = _statistics_sums(student, teacher, padded_x[0], sample_weights[0], activation)
        sums, _ = jax.lax.scan(accumulate, first, (padded_x[1:], sample_weights[1:]))
    return jax.tree.map(lambda s: s / count, sums)


def effective_fan_out_norms(student: Params, x: Array, activation: Activation = RELU) -> tuple[Array, ...]:
    """:math:`\\sqrt{\\mathbb E_x\\beta_{kk}(x)}=\\sqrt{\\mathbb E_x\\|v_k(x)\\|^2}` per hidden layer (Fig. 8's y-axis).

    The square root of the diagonal of ``betas_ss`` without its last entry, computed from the diagonal alone
    (cost ``N C n_l`` per layer instead of ``N C n_l^2``). For the top hidden layer (and so for the two-layer
    net) it is the fan-out norm :math:`\\|v_k\\|`.

    Args:
      x: ``(N, d)``.

    Returns:
      per hidden layer, ``(n_l,)``.
    """
    require_homogeneous(activation, "effective_fan_out_norms")
    gates, _ = hidden_gates(student, x, activation)
    norms = []
    for v in effective_fan_outs(student, gates):
        squared = jnp.sum(v[..., :-1] ** 2, axis=-2)
        norms.append(jnp.sqrt(squared if squared.ndim == 1 else jnp.mean(squared, axis=0)))
    return tuple(norms)


def mean_alpha(student: Params, teacher: Params, x: Array, activation: Activation = RELU) -> tuple[Array, ...]:
    """:math:`\\mathbb E_x\\alpha_{kj}(x)=\\mathbb E_x[v_k(x)^\\top v^*_j(x)]` per hidden layer, bias rows dropped.

    The top-left block of ``betas_st`` without the ``Hs`` and student-student work of :func:`lemma1_statistics`.
    For the top hidden layer (two-layer net) it is the constant :math:`W_LW^{*\\top}_L`.

    Args:
      x: ``(N, d)``.

    Returns:
      per hidden layer, ``(n_l, m_l)``.
    """
    require_homogeneous(activation, "mean_alpha")
    student_gates, _ = hidden_gates(student, x, activation)
    teacher_gates, _ = hidden_gates(teacher, x, activation)
    overlaps = []
    for v, vt in zip(
        effective_fan_outs(student, student_gates), effective_fan_outs(teacher, teacher_gates), strict=True
    ):
        v, vt = v[..., :-1, :-1], vt[..., :-1, :-1]
        if v.ndim == 2 and vt.ndim == 2:
            overlaps.append(v.T @ vt)
        else:
            v = jnp.broadcast_to(v, x.shape[:1] + v.shape[-2:])
            vt = jnp.broadcast_to(vt, x.shape[:1] + vt.shape[-2:])
            overlaps.append(jnp.einsum("bci,bcj->ij", v, vt) / x.shape[0])
    return tuple(overlaps)
