"""Closed forms for the two-layer ReLU net under spherical Gaussian input (docs/theory.md §5 and §6).

Setting: input :math:`x\\sim N(0,s^2I_d)` (``s = data_std``), a bias-free hidden layer and an optional output bias.
The student is :math:`f(x)=\\sum_jv_j\\sigma(w_j^\\top x)+c` and the teacher
:math:`f^*(x)=\\sum_kv^*_k\\sigma(w^{*\\top}_kx)+c^*`, with :math:`v_j\\in\\mathbb R^C`. In the parameter layout of
:mod:`specjax.core.networks` a net is ``((W1 (d, n), None), (W2 (n, C), c (C,) or None))``: column ``j`` of ``W1`` is
:math:`w_j` and row ``j`` of ``W2`` is :math:`v_j`.

With :math:`\\theta=\\angle(a,b)` and :math:`\\bar a=a/\\|a\\|` (docs/theory.md §6 table):

* :math:`P(a^\\top x>0,b^\\top x>0)=(\\pi-\\theta)/2\\pi`;
* :math:`\\mathbb E\\sigma(a^\\top x)=s\\|a\\|/\\sqrt{2\\pi}` and
  :math:`\\mathbb E[x\\mathbb I(a^\\top x>0)]=s\\bar a/\\sqrt{2\\pi}`;
* :math:`K(a,b)=\\mathbb E\\sigma(a^\\top x)\\sigma(b^\\top x)
  =\\frac{s^2\\|a\\|\\|b\\|}{2\\pi}(\\sin\\theta+(\\pi-\\theta)\\cos\\theta)`;
* :math:`M(a,b)=\\mathbb E[x\\mathbb I(a^\\top x>0)\\sigma(b^\\top x)]=\\nabla_aK
  =\\frac{s^2}{2\\pi}[(\\pi-\\theta)b+\\|b\\|\\sin\\theta\\,\\bar a]`
  (Theorem 6's :math:`A_{jk}w_k`).

Numerics (docs/theory.md §6 note). :math:`\\arccos` has an infinite derivative at :math:`\\pm1`, so the naive
kernel gives NaN gradients on the diagonal and for co-linear pairs. Here (i) cosines are clipped to ``[-1, 1]``;
(ii) every angle goes through a double ``where`` (:func:`angle_from_cos`), and every norm and quotient through
:func:`safe_norm`/:func:`_safe_divide`, so no branch ever sees an argument whose derivative is infinite;
(iii) the kernel's angular profile :math:`J(c)=\\sqrt{1-c^2}+(\\pi-\\arccos c)c` carries its exact, finite
derivative :math:`J'(c)=\\pi-\\arccos c` as a ``custom_jvp`` (autodiff of the two terms separately would cancel
two infinities); (iv) self-Gram matrices use the exact diagonal :math:`K(a,a)=s^2\\|a\\|^2/2`, and
:math:`\\theta_{jj}=0` exactly.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from specjax.core.networks import Params

Array = jax.Array

SQRT_2PI = math.sqrt(2.0 * math.pi)


# ---------------------------------------------------------------------------------------------------------------
# Safe elementary pieces.


def safe_norm(a: Array, axis: int = -1) -> Array:
    """Euclidean norm along ``axis`` whose gradient at ``a = 0`` is 0 instead of NaN (double ``where``)."""
    sq = jnp.sum(a * a, axis=axis)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _safe_divide(num: Array, den: Array) -> Array:
    """``num / den`` where ``den != 0``, else 0; gradients stay finite (double ``where``)."""
    nonzero = den != 0
    return jnp.where(nonzero, num / jnp.where(nonzero, den, 1.0), 0.0)


def _cosine(dot: Array, norm_a: Array, norm_b: Array) -> Array:
    """Cosine of the angle from a dot product and the two norms, clipped to ``[-1, 1]`` (0 if a vector is 0)."""
    return jnp.clip(_safe_divide(dot, norm_a * norm_b), -1.0, 1.0)


def angle_from_cos(cos: Array) -> Array:
    """:math:`\\arccos(c)` in :math:`[0,\\pi]`, NaN-free under ``jax.grad`` at :math:`c=\\pm1`.

    Double ``where``: the ``arccos`` branch only ever sees ``|c| < 1``; at ``|c| = 1`` the value is 0 or
    :math:`\\pi` with zero derivative (the angle is not differentiable there; 0 is a subgradient-like choice).
    """
    interior = jnp.abs(cos) < 1.0
    safe_cos = jnp.where(interior, cos, 0.0)
    return jnp.where(interior, jnp.arccos(safe_cos), jnp.where(cos > 0, 0.0, jnp.pi))


def angle(a: Array, b: Array) -> Array:
    """Angle :math:`\\theta=\\angle(a,b)\\in[0,\\pi]` between vectors along the last axis.

    Args:
      a, b: ``(..., d)``, broadcastable.

    Returns:
      ``(...)``.
    """
    return angle_from_cos(_cosine(jnp.sum(a * b, -1), safe_norm(a), safe_norm(b)))


def angle_matrix(weights_a: Array, weights_b: Array) -> Array:
    """All angles between the columns of two filter matrices.

    Args:
      weights_a: ``(d, p)``, columns are vectors :math:`a_j`.
      weights_b: ``(d, q)``.

    Returns:
      ``(p, q)`` matrix of :math:`\\angle(a_j,b_k)`.
    """
    norms_a, norms_b = safe_norm(weights_a, 0), safe_norm(weights_b, 0)
    return angle_from_cos(_cosine(weights_a.T @ weights_b, norms_a[:, None], norms_b[None, :]))


def self_angle_matrix(weights: Array) -> Array:
    """:func:`angle_matrix` of ``weights (d, n)`` with itself, with the diagonal exactly 0. Returns ``(n, n)``."""
    theta = angle_matrix(weights, weights)
    return jnp.where(jnp.eye(weights.shape[1], dtype=bool), 0.0, theta)


@jax.custom_jvp
def _kernel_profile(cos: Array) -> Array:
    """Angular profile :math:`J(c)=\\sin\\theta+(\\pi-\\theta)c`, :math:`\\theta=\\arccos c`.

    :math:`K=\\frac{s^2}{2\\pi}\\|a\\|\\|b\\|J(\\cos\\theta)`.
    """
    theta = angle_from_cos(cos)
    return jnp.sin(theta) + (jnp.pi - theta) * cos


@_kernel_profile.defjvp
def _kernel_profile_jvp(primals, tangents):
    (cos,), (cos_dot,) = primals, tangents
    # J'(c) = -c/sqrt(1-c^2) + c/sqrt(1-c^2) + (pi - arccos c) = pi - arccos c: finite on [-1, 1].
    return _kernel_profile(cos), (jnp.pi - angle_from_cos(cos)) * cos_dot


def overlap_coefficient(theta: Array) -> Array:
    """Overlap coefficient of docs/theory.md §5 (Lotka-Volterra form), elementwise on any shape.

    :math:`\\kappa(\\theta)=\\frac{\\sin\\theta+(\\pi-\\theta)\\cos\\theta}{2\\pi}\\in[0,\\tfrac12]`, so that
    :math:`K(a,b)=s^2\\|a\\|\\|b\\|\\kappa(\\theta)`.
    """
    return (jnp.sin(theta) + (jnp.pi - theta) * jnp.cos(theta)) / (2.0 * jnp.pi)


# ---------------------------------------------------------------------------------------------------------------
# The table of docs/theory.md §6.


def prob_both_active(a: Array, b: Array) -> Array:
    """:math:`P(a^\\top x>0,\\,b^\\top x>0)=(\\pi-\\theta)/2\\pi` for spherically symmetric ``x``.

    Args:
      a, b: ``(..., d)``.

    Returns:
      ``(...)``.
    """
    return (jnp.pi - angle(a, b)) / (2.0 * jnp.pi)


def mean_relu(a: Array, data_std: Array = 1.0) -> Array:
    """:math:`\\mathbb E\\,\\sigma(a^\\top x)=s\\|a\\|/\\sqrt{2\\pi}`. ``(..., d) -> (...)``."""
    return data_std * safe_norm(a) / SQRT_2PI


def mean_gated_input(a: Array, data_std: Array = 1.0) -> Array:
    """:math:`\\mathbb E[x\\,\\mathbb I(a^\\top x>0)]=s\\,\\bar a/\\sqrt{2\\pi}`. ``(..., d) -> (..., d)``."""
    norm = safe_norm(a)[..., None]
    return data_std * _safe_divide(a, norm) / SQRT_2PI


def arccos_kernel(a: Array, b: Array, data_std: Array = 1.0) -> Array:
    """Arc-cosine kernel of degree 1, :math:`K(a,b)=\\mathbb E[\\sigma(a^\\top x)\\sigma(b^\\top x)]`.

    .. math:: K(a,b)=\\frac{s^2\\|a\\|\\|b\\|}{2\\pi}\\big(\\sin\\theta+(\\pi-\\theta)\\cos\\theta\\big)

    Args:
      a, b: ``(..., d)``, broadcastable.
      data_std: ``s``.

    Returns:
      ``(...)``. ``jax.grad`` with respect to ``a`` equals :func:`kernel_gradient` and is NaN-free even at
      ``a = b``.
    """
    norm_a, norm_b = safe_norm(a), safe_norm(b)
    cos = _cosine(jnp.sum(a * b, -1), norm_a, norm_b)
    return data_std**2 / (2.0 * jnp.pi) * norm_a * norm_b * _kernel_profile(cos)


def arccos_kernel_matrix(weights_a: Array, weights_b: Array, data_std: Array = 1.0) -> Array:
    """:math:`K(a_j,b_k)` for all column pairs. ``(d, p), (d, q) -> (p, q)``."""
    norms_a, norms_b = safe_norm(weights_a, 0), safe_norm(weights_b, 0)
    cos = _cosine(weights_a.T @ weights_b, norms_a[:, None], norms_b[None, :])
    return data_std**2 / (2.0 * jnp.pi) * norms_a[:, None] * norms_b[None, :] * _kernel_profile(cos)


def arccos_gram(weights: Array, data_std: Array = 1.0) -> Array:
    """Self-Gram :math:`K(w_j,w_{j'})` of ``weights (d, n)`` with the exact diagonal :math:`s^2\\|w_j\\|^2/2`.

    Returns:
      ``(n, n)``.
    """
    kernel = arccos_kernel_matrix(weights, weights, data_std)
    diagonal = 0.5 * data_std**2 * jnp.sum(weights * weights, axis=0)
    return jnp.where(jnp.eye(weights.shape[1], dtype=bool), jnp.diag(diagonal), kernel)


def theorem6_gated_moment_product(w_j: Array, w_k: Array, input_second_moment: Array = 1.0) -> Array:
    """Theorem 6: :math:`A_{jk}w_k` with :math:`A_{jk}=\\mathbb E[xx^\\top\\mathbb I_j\\mathbb I_k]` (no bias).

    For any spherically symmetric input,

    .. math:: A_{jk}w_k=\\frac{\\mathbb E\\|x\\|^2}{2\\pi d}\\Big[(\\pi-\\theta_{jk})w_k
              +\\|w_k\\|\\sin\\theta_{jk}\\frac{w_j}{\\|w_j\\|}\\Big].

    Args:
      w_j, w_k: ``(..., d)``.
      input_second_moment: :math:`\\mathbb E\\|x\\|^2/d` (``s**2`` for :math:`N(0,s^2I)`).

    Returns:
      ``(..., d)``.
    """
    theta = angle(w_j, w_k)[..., None]
    norm_j, norm_k = safe_norm(w_j)[..., None], safe_norm(w_k)[..., None]
    direction_j = _safe_divide(w_j, norm_j)
    return input_second_moment / (2.0 * jnp.pi) * ((jnp.pi - theta) * w_k + norm_k * jnp.sin(theta) * direction_j)


def kernel_gradient(a: Array, b: Array, data_std: Array = 1.0) -> Array:
    """:math:`M(a,b)=\\mathbb E[x\\,\\mathbb I(a^\\top x>0)\\,\\sigma(b^\\top x)]=\\nabla_aK(a,b)`; ``M(a,a)=s^2a/2``.

    Equal to :func:`theorem6_gated_moment_product` with second moment :math:`s^2`. ``(..., d) -> (..., d)``.
    """
    return theorem6_gated_moment_product(a, b, data_std**2)


def weighted_kernel_gradients(
    weights_a: Array, weights_b: Array, coefficients: Array, data_std: Array = 1.0, same: bool = False
) -> Array:
    """:math:`\\sum_kc_{jk}M(a_j,b_k)` for every ``j``, as a matrix of columns, without forming ``(p, q, d)``.

    .. math:: \\sum_kc_{jk}M(a_j,b_k)=\\frac{s^2}{2\\pi}\\Big[\\sum_kc_{jk}(\\pi-\\theta_{jk})b_k
              +\\bar a_j\\sum_kc_{jk}\\|b_k\\|\\sin\\theta_{jk}\\Big]

    Args:
      weights_a: ``(d, p)``; weights_b: ``(d, q)``; coefficients: ``(p, q)``.
      same: ``weights_b`` is ``weights_a``: the diagonal angles are set to 0 exactly.

    Returns:
      ``(d, p)``.
    """
    theta = self_angle_matrix(weights_a) if same else angle_matrix(weights_a, weights_b)
    norms_a, norms_b = safe_norm(weights_a, 0), safe_norm(weights_b, 0)
    along_b = weights_b @ (coefficients * (jnp.pi - theta)).T
    sine_weights = jnp.sum(coefficients * norms_b[None, :] * jnp.sin(theta), 1)
    along_a = _safe_divide(weights_a, norms_a[None, :]) * sine_weights[None, :]
    return data_std**2 / (2.0 * jnp.pi) * (along_b + along_a)


# ---------------------------------------------------------------------------------------------------------------
# Population loss and gradient of the two-layer net (docs/theory.md §6).


def _unpack(params: Params, name: str) -> tuple[Array, Array, Array | None]:
    (hidden_weights, hidden_bias), (fan_out, output_bias) = params
    if hidden_bias is not None:
        raise ValueError(
            f"{name}: the closed forms need a bias-free hidden layer (docs/theory.md §6); "
            "use Monte Carlo for hidden biases"
        )
    return hidden_weights, fan_out, output_bias


def _output_bias_gap(student_bias: Array | None, teacher_bias: Array | None, outputs: int, dtype) -> Array:
    """:math:`\\Delta c=c^*-c`, shape ``(C,)``; a missing bias counts as 0."""
    gap = jnp.zeros((outputs,), dtype)
    if teacher_bias is not None:
        gap = gap + teacher_bias
    if student_bias is not None:
        gap = gap - student_bias
    return gap


def population_loss(student: Params, teacher: Params, data_std: Array = 1.0) -> Array:
    """Population loss :math:`J=\\tfrac12\\mathbb E\\|f^*(x)-f(x)\\|^2` under :math:`N(0,s^2I)` (docs/theory.md §6).

    .. math:: J=\\tfrac12\\Big[\\sum_{kk'}v^{*\\top}_kv^*_{k'}K^*_{kk'}-2\\sum_{jk}v_j^\\top v^*_kK(w_j,w^*_k)
              +\\sum_{jj'}v_j^\\top v_{j'}K_{jj'}\\Big]+\\Delta c^\\top\\Big(\\sum_kv^*_k\\bar f^*_k
              -\\sum_jv_j\\bar f_j\\Big)+\\tfrac12\\|\\Delta c\\|^2

    Args:
      student: ``((W1 (d, n), None), (W2 (n, C), c (C,) or None))``.
      teacher: ``((W1* (d, m), None), (W2* (m, C), c* (C,) or None))``.
      data_std: ``s``.

    Returns:
      scalar, in the ``'half_sse'`` convention of :func:`specjax.core.networks.squared_error_loss`.
    """
    weights, fan_out, bias = _unpack(student, "student")
    teacher_weights, teacher_fan_out, teacher_bias = _unpack(teacher, "teacher")
    gap = _output_bias_gap(bias, teacher_bias, fan_out.shape[1], fan_out.dtype)
    teacher_teacher = jnp.sum(arccos_gram(teacher_weights, data_std) * (teacher_fan_out @ teacher_fan_out.T))
    student_teacher = jnp.sum(arccos_kernel_matrix(weights, teacher_weights, data_std) * (fan_out @ teacher_fan_out.T))
    student_student = jnp.sum(arccos_gram(weights, data_std) * (fan_out @ fan_out.T))
    mean_output_gap = teacher_fan_out.T @ mean_relu(teacher_weights.T, data_std) - fan_out.T @ mean_relu(
        weights.T, data_std
    )
    return 0.5 * (teacher_teacher - 2.0 * student_teacher + student_student) + gap @ mean_output_gap + 0.5 * gap @ gap


def population_negative_gradient(student: Params, teacher: Params, data_std: Array = 1.0) -> Params:
    """:math:`-\\nabla J` of :func:`population_loss`, in the form of Eqn 9 (docs/theory.md §6).

    .. math:: -\\partial_{w_j}J=\\sum_k(v_j^\\top v^*_k)M(w_j,w^*_k)-\\sum_k(v_j^\\top v_k)M(w_j,w_k)
              +(v_j^\\top\\Delta c)\\,s\\,\\bar w_j/\\sqrt{2\\pi}

    .. math:: -\\partial_{v_j}J=\\sum_kK(w_j,w^*_k)v^*_k-\\sum_kK(w_j,w_k)v_k+\\bar f_j\\Delta c,\\qquad
              -\\partial_cJ=\\Delta c+\\sum_kv^*_k\\bar f^*_k-\\sum_jv_j\\bar f_j

    Args:
      student, teacher: as in :func:`population_loss`.
      data_std: ``s``.

    Returns:
      a pytree shaped like ``student``: ``((dW1 (d, n), None), (dW2 (n, C), dc (C,) or None))``; this is the
      gradient-flow vector field :math:`\\dot{\\mathcal W}`.
    """
    weights, fan_out, bias = _unpack(student, "student")
    teacher_weights, teacher_fan_out, teacher_bias = _unpack(teacher, "teacher")
    gap = _output_bias_gap(bias, teacher_bias, fan_out.shape[1], fan_out.dtype)
    alpha = fan_out @ teacher_fan_out.T  # (n, m): v_j^T v*_k
    beta = fan_out @ fan_out.T  # (n, n): v_j^T v_k
    norms = safe_norm(weights, 0)
    mean_student = data_std * norms / SQRT_2PI  # (n,)
    mean_teacher = mean_relu(teacher_weights.T, data_std)  # (m,)
    d_weights = (
        weighted_kernel_gradients(weights, teacher_weights, alpha, data_std)
        - weighted_kernel_gradients(weights, weights, beta, data_std, same=True)
        + data_std / SQRT_2PI * _safe_divide(weights, norms[None, :]) * (fan_out @ gap)[None, :]
    )
    d_fan_out = (
        arccos_kernel_matrix(weights, teacher_weights, data_std) @ teacher_fan_out
        - arccos_gram(weights, data_std) @ fan_out
        + mean_student[:, None] * gap[None, :]
    )
    d_bias = None
    if bias is not None:
        d_bias = gap + teacher_fan_out.T @ mean_teacher - fan_out.T @ mean_student
    return ((d_weights, None), (d_fan_out, d_bias))


def population_residue(student: Params, teacher: Params, data_std: Array = 1.0) -> Array:
    """Per-node residue :math:`R_j=\\mathbb E[x\\,\\mathbb I_j\\,r^\\top]` in closed form (Eqn 6, docs/theory.md §5).

    .. math:: R_j=\\sum_kM(w_j,w^*_k)v^{*\\top}_k-\\sum_kM(w_j,w_k)v_k^\\top+\\mathbb E[x\\mathbb I_j]\\Delta c^\\top,

    so that :math:`\\dot w_j=R_jv_j` and :math:`\\dot v_j=R_j^\\top w_j`.

    Returns:
      ``(n, d, C)``. Memory :math:`n\\,d\\,(m+n)`; meant for small nets (the flow itself never forms it).
    """
    weights, fan_out, bias = _unpack(student, "student")
    teacher_weights, teacher_fan_out, teacher_bias = _unpack(teacher, "teacher")
    gap = _output_bias_gap(bias, teacher_bias, fan_out.shape[1], fan_out.dtype)
    n = weights.shape[1]
    to_teacher = kernel_gradient(weights.T[:, None, :], teacher_weights.T[None, :, :], data_std)  # (n, m, d)
    to_student = kernel_gradient(weights.T[:, None, :], weights.T[None, :, :], data_std)  # (n, n, d)
    to_student = jnp.where(jnp.eye(n, dtype=bool)[:, :, None], 0.5 * data_std**2 * weights.T[:, None, :], to_student)
    return (
        jnp.einsum("jkd,kc->jdc", to_teacher, teacher_fan_out)
        - jnp.einsum("jkd,kc->jdc", to_student, fan_out)
        + mean_gated_input(weights.T, data_std)[:, :, None] * gap[None, None, :]
    )


# ---------------------------------------------------------------------------------------------------------------
# Theorem 7, the worst-case angle equation and the Lotka-Volterra form (docs/theory.md §5).


def node_growth_rate(student: Params, teacher: Params, data_std: Array = 1.0) -> Array:
    """Theorem 7's :math:`u_j=\\bar w_j^\\top r_j` for scalar output, :math:`r_j=\\mathbb E[x\\mathbb I_jr]`.

    Then :math:`\\frac{d}{dt}\\|w_j\\|=v_ju_j` and :math:`\\dot v_j=\\|w_j\\|u_j` exactly.

    Returns:
      ``(n,)``.

    Raises:
      ValueError: the output dimension is not 1.
    """
    weights, fan_out, _ = _unpack(student, "student")
    if fan_out.shape[1] != 1:
        raise ValueError(f"node_growth_rate: Theorem 7 is stated for C = 1 outputs, got C = {fan_out.shape[1]}")
    residue = population_residue(student, teacher, data_std)[:, :, 0]  # (n, d)
    return jnp.sum(_safe_divide(weights.T, safe_norm(weights, 0)[:, None]) * residue, axis=1)


def theorem7_norms(initial_weight_norm: Array, initial_fan_out: Array, integrated_growth: Array) -> tuple[Array, Array]:
    """Theorem 7's exact identity: :math:`(\\|w_j\\|\\pm v_j)(t)=(\\|w_j\\|\\pm v_j)(0)\\,e^{\\pm\\int_0^tu_j}`.

    Args:
      initial_weight_norm: :math:`\\|w_j(0)\\|`, shape ``(...)``.
      initial_fan_out: scalar fan-out :math:`v_j(0)`, shape ``(...)``.
      integrated_growth: :math:`U_j(t)=\\int_0^tu_j`, shape ``(...)``.

    Returns:
      ``(weight_norm, fan_out)`` predicted at time ``t``, each ``(...)``.
    """
    plus = (initial_weight_norm + initial_fan_out) * jnp.exp(integrated_growth)
    minus = (initial_weight_norm - initial_fan_out) * jnp.exp(-integrated_growth)
    return 0.5 * (plus + minus), 0.5 * (plus - minus)


def theorem7_log_norm_ratio_rate(growth_rate: Array, fan_out_sign: Array) -> Array:
    """:math:`\\frac{d}{dt}\\ln\\frac{\\|w_j\\|}{\\|w_{j'}\\|}=\\zeta_ju_j-\\zeta_{j'}u_{j'}` for balanced nodes.

    Args:
      growth_rate: :math:`u` from :func:`node_growth_rate`, ``(n,)``.
      fan_out_sign: :math:`\\zeta_j=\\mathrm{sign}\\,v_j`, ``(n,)``.

    Returns:
      ``(n, n)``, entry ``(j, j')``.
    """
    drive = fan_out_sign * growth_rate
    return drive[:, None] - drive[None, :]


def worst_case_angle_rate(
    theta: Array,
    weight_norm: Array,
    fan_out: Array,
    teacher_weight_norm: Array,
    teacher_fan_out: Array,
    data_std: Array = 1.0,
) -> Array:
    """One student, one teacher, no bias, ``C = 1`` (docs/theory.md §5, "Worst case"):

    .. math:: \\dot\\theta=-\\frac{s^2\\,v\\,v^*\\|w^*\\|}{2\\pi\\|w\\|}(\\pi-\\theta)\\sin\\theta.

    All arguments are broadcastable arrays; returns :math:`\\dot\\theta` of their broadcast shape.
    """
    return (
        -(data_std**2)
        * fan_out
        * teacher_fan_out
        * teacher_weight_norm
        / (2.0 * jnp.pi * weight_norm)
        * (jnp.pi - theta)
        * jnp.sin(theta)
    )


def lotka_volterra_rate(
    squared_norms: Array,
    fan_out_sign: Array,
    student_angles: Array,
    teacher_angles: Array,
    teacher_fan_out: Array,
    teacher_weight_norms: Array,
    data_std: Array = 1.0,
) -> Array:
    """Competitive Lotka-Volterra form of balanced dynamics (no bias, ``C = 1``; docs/theory.md §5).

    .. math:: \\dot q_j=2s^2\\zeta_jq_j\\Big[\\sum_kv^*_k\\|w^*_k\\|\\kappa(\\theta^*_{jk})
              -\\sum_k\\zeta_k\\kappa(\\theta_{jk})q_k\\Big],\\qquad q_j=\\|w_j\\|^2=v_j^2.

    Args:
      squared_norms: :math:`q`, ``(n,)``.
      fan_out_sign: :math:`\\zeta`, ``(n,)``.
      student_angles: :math:`\\theta_{jk}`, ``(n, n)`` (diagonal 0).
      teacher_angles: :math:`\\theta^*_{jk}`, ``(n, m)``.
      teacher_fan_out: scalar teacher fan-outs :math:`v^*_k`, ``(m,)``.
      teacher_weight_norms: :math:`\\|w^*_k\\|`, ``(m,)``.
      data_std: ``s``.

    Returns:
      :math:`\\dot q`, ``(n,)``; equals :math:`\\frac{d}{dt}\\|w_j\\|^2` and :math:`\\frac{d}{dt}v_j^2` of the
      exact flow.
    """
    resource = overlap_coefficient(teacher_angles) @ (teacher_fan_out * teacher_weight_norms)
    competition = overlap_coefficient(student_angles) @ (fan_out_sign * squared_norms)
    return 2.0 * data_std**2 * fan_out_sign * squared_norms * (resource - competition)
