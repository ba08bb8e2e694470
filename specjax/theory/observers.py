"""Definition 2 (observers): the empirical witness on a sample, and the exact decision for Gaussian inputs at layer 1.

Def. 2 of Tian (ICML 2020), docs/theory.md §3: node ``k`` *observes* node ``j`` if
:math:`E_k\\cap\\partial E_j\\cap R\\neq\\emptyset`, where :math:`E_k=\\{\\hat w_k^\\top\\hat f>0\\}` is ``k``'s active
region, :math:`\\partial E_j=\\{\\hat w_j^\\top\\hat f=0\\}` is ``j``'s boundary and ``R`` the data's region.

* :func:`boundary_observation` is the reference code's empirical witness (``compute_boundary_obs``): ``k``'s
  active set holds samples on both sides of ``j``'s boundary.
* :func:`gaussian_observation` decides Def. 2 exactly for the first layer when the inputs have full support
  (Gaussian): an open half-space meets a hyperplane unless the two are parallel and the hyperplane lies on the
  inactive side. The two agree with probability -> 1 as the sample grows (tested).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from specjax.core.networks import Layer

Array = jax.Array

#: Default tolerance of :func:`gaussian_observation` on :math:`\\sin\\angle(w_k,w^*_j)` below which the filters
#: count as parallel: the sine of exactly parallel float64 vectors computes to ~1e-8 (the square root of rounding).
PARALLEL_SINE_TOL = 1e-7


def boundary_observation(teacher_acts: Array, student_acts: Array) -> Array:
    """Boundary observation matrix, the empirical Def. 2 (``compute_boundary_obs`` of the reference code).

    .. math:: \\mathrm{Obs}_{jk}=\\min\\big(\\#\\{i:f^*_j(x_i)>0,f_k(x_i)>0\\},\\
              \\#\\{i:f^*_j(x_i)\\le0,f_k(x_i)>0\\}\\big)

    Student ``k`` sees teacher ``j``'s boundary if its active set holds data on both sides of it.

    Args:
      teacher_acts: ``(N, m)`` teacher activations (pre-activations give the same result).
      student_acts: ``(N, n)``.

    Returns:
      ``(m, n)`` counts (float).
    """
    teacher_on = (teacher_acts > 0).astype(teacher_acts.dtype)
    student_on = (student_acts > 0).astype(teacher_acts.dtype)
    both = teacher_on.T @ student_on
    student_only = jnp.sum(student_on, axis=0)[None, :] - both
    return jnp.minimum(both, student_only)


def boundary_observation_fraction(teacher_acts: Array, student_acts: Array) -> Array:
    """Per teacher, :math:`\\max_k\\mathrm{Obs}_{jk}/N` (the reference's logged quantity). ``-> (m,)``."""
    return jnp.max(boundary_observation(teacher_acts, student_acts), axis=1) / teacher_acts.shape[0]


def gaussian_observation(teacher_layer: Layer, student_layer: Layer, parallel_tol: float = PARALLEL_SINE_TOL) -> Array:
    """Def. 2 at the first layer, decided exactly for inputs with full support (e.g. :math:`N(0,s^2I_d)`).

    Does student ``k``'s active half-space :math:`\\{x:w_k^\\top x+b_k>0\\}` meet teacher ``j``'s boundary
    :math:`\\{x:w^{*\\top}_jx+b^*_j=0\\}`? With :math:`w^*_j\\neq0`:

    * :math:`w_k` not parallel to :math:`w^*_j`: yes (the hyperplane contains points where :math:`w_k^\\top x` takes
      every value);
    * :math:`w_k=c\\,w^*_j` (``c`` any real, ``c = 0`` included): on the hyperplane
      :math:`w_k^\\top x+b_k=b_k-c\\,b^*_j` is constant, so they meet iff :math:`b_k-c\\,b^*_j>0`.

    A teacher node with :math:`w^*_j=0` has no boundary (empty or the whole space): never observed.

    Args:
      teacher_layer: ``(W* (d, m), b* (m,) or None)``.
      student_layer: ``(W (d, n), b (n,) or None)``; a missing bias counts as 0.
      parallel_tol: filters with :math:`\\sin\\angle(w_k,w^*_j)\\le` ``parallel_tol`` count as parallel.

    Returns:
      ``(m, n)`` bool, teachers by students (the layout of :func:`boundary_observation`).
    """
    (teacher_weights, teacher_bias), (weights, bias) = teacher_layer, student_layer
    dtype = weights.dtype
    teacher_bias = jnp.zeros(teacher_weights.shape[-1:], dtype) if teacher_bias is None else teacher_bias
    bias = jnp.zeros(weights.shape[-1:], dtype) if bias is None else bias
    teacher_sq = jnp.sum(teacher_weights**2, axis=0)  # (m,)
    student_sq = jnp.sum(weights**2, axis=0)  # (n,)
    dots = teacher_weights.T @ weights  # (m, n)
    product = teacher_sq[:, None] * student_sq[None, :]
    sine_sq = jnp.maximum(product - dots**2, 0.0)  # ||w*||^2 ||w||^2 sin^2
    parallel = sine_sq <= parallel_tol**2 * product  # also true for w_k = 0 (c = 0)
    safe_teacher_sq = jnp.where(teacher_sq > 0, teacher_sq, 1.0)
    ratio = dots / safe_teacher_sq[:, None]  # c with w_k = c w*_j when parallel
    offset_active = bias[None, :] - ratio * teacher_bias[:, None] > 0
    return (teacher_sq[:, None] > 0) & jnp.where(parallel, offset_active, True)
