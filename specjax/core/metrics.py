"""Specialization metrics on activations (docs/theory.md §3).

All functions are pure ``jax.numpy`` and work under ``jit``/``vmap``; leading axes (runs, evaluations) are added by
the caller with ``vmap`` or broadcast naturally where stated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

#: Correlation thresholds at which the reference code counts matches (docs/theory.md §3).
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: The paper's "matched" criterion (Fig. 9 success rate): best correlation above 0.95 (docs/theory.md §3). Used by the
#: summary, the progress lines and metrics log, the named views, Fig. 12, the theorem reports and the group analysis.
MATCH_THRESHOLD = 0.95
#: The deep reference code's "matched" (``cnt_thres``, Fig. 8's per-layer matched fractions): best correlation above.
DEEP_MATCH_THRESHOLD = 0.9
#: The L-shape's counts (Figs. 7 and 8 numbers, the group analysis): a student is *specialized* when its best
#: correlation is above :data:`SPECIALIZED_ABOVE`, *unspecialized* below :data:`UNSPECIALIZED_BELOW` (neither in
#: between). The paper draws the L-shape without thresholds; these are the ones docs/results.md's numbers use.
SPECIALIZED_ABOVE = 0.9
UNSPECIALIZED_BELOW = 0.8


def correlation(teacher_acts: Array, student_acts: Array, eps: float = 1e-10) -> Array:
    """Normalized correlation :math:`\\rho_{jk}` between teacher and student activations (``act2corrMat``).

    .. math:: \\rho_{jk}=\\frac{\\sum_i\\tilde f^*_j(x_i)\\tilde f_k(x_i)}
              {\\sqrt{\\sum_i\\tilde f^{*2}_j+\\epsilon}\\sqrt{\\sum_i\\tilde f_k^2+\\epsilon}},
       \\quad \\tilde f = f-\\mathrm{mean}_i f.

    Args:
      teacher_acts: ``(N, m)`` post-activations of ``m`` teacher nodes on ``N`` samples.
      student_acts: ``(N, n)`` post-activations of ``n`` student nodes on the same samples.
      eps: the reference's :math:`10^{-10}` regulariser (keeps dead nodes at correlation 0).

    Returns:
      ``(m, n)`` matrix, teachers by students, entries in ``[-1, 1]``.

    Raises:
      ValueError: an argument is not a 2-D floating-point array, or the two disagree on ``N`` (checked on static
        shapes, so also under ``jit``/``vmap``).
    """
    for name, acts in (("teacher_acts", teacher_acts), ("student_acts", student_acts)):
        shape, dtype = getattr(acts, "shape", None), getattr(acts, "dtype", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"{name}: expected a 2-D array (N samples, nodes), got shape {shape}")
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{name}: expected a floating-point array, got dtype {dtype}")
    if teacher_acts.shape[0] != student_acts.shape[0]:
        raise ValueError(
            f"student_acts: {student_acts.shape[0]} samples, but teacher_acts has {teacher_acts.shape[0]} "
            "(both must be activations on the same N inputs)"
        )
    t = teacher_acts - jnp.mean(teacher_acts, axis=0, keepdims=True)
    s = student_acts - jnp.mean(student_acts, axis=0, keepdims=True)
    tn = jnp.sqrt(jnp.sum(t * t, axis=0) + eps)
    sn = jnp.sqrt(jnp.sum(s * s, axis=0) + eps)
    return (t.T @ s) / (tn[:, None] * sn[None, :])


def best_per_teacher(corr: Array) -> Array:
    """:math:`\\max_k\\rho_{jk}`: each teacher's best student correlation. ``(..., m, n) -> (..., m)``."""
    return jnp.max(corr, axis=-1)


def best_per_student(corr: Array) -> Array:
    """Student specialization score :math:`\\max_j\\rho_{jk}` (x-axis of Figs. 7, 8). ``(..., m, n) -> (..., n)``."""
    return jnp.max(corr, axis=-2)


def success_rate(best_teacher_corr, threshold: float = MATCH_THRESHOLD, seed_axis: int = 0, valid=None) -> np.ndarray:
    """Fraction of seeds in which each teacher node is covered (the paper's Fig. 9 quantity).

    Args:
      best_teacher_corr: ``(..., seeds, ..., m)`` best correlation per teacher (NumPy or JAX).
      threshold: correlation threshold (strict).
      seed_axis: which axis holds seeds.
      valid: optional boolean mask broadcastable to ``best_teacher_corr`` without its last axis; seeds marked
        ``False`` (e.g. diverged runs) are left out of the fraction.

    Returns:
      NumPy array with ``seed_axis`` reduced; NaN where no seed is valid.
    """
    hit = np.asarray(best_teacher_corr) > threshold
    if valid is None:
        return hit.mean(axis=seed_axis)
    v = np.broadcast_to(np.asarray(valid)[..., None], hit.shape)
    num = (hit & v).sum(axis=seed_axis)
    den = v.sum(axis=seed_axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


#: Confidence level of the success-rate intervals (summary.json, the Dataset, Fig. 9's bands, ``--target_ci``).
CONFIDENCE = 0.95


def success_counts(best_teacher_corr, threshold: float = MATCH_THRESHOLD, seed_axis: int = 0, valid=None):
    """The counts behind :func:`success_rate`: seeds covering each teacher node, and seeds counted.

    Args: as :func:`success_rate`.

    Returns:
      ``(successes, trials)``, integer NumPy arrays with ``seed_axis`` reduced (``trials`` excludes invalid seeds).
    """
    hit = np.asarray(best_teacher_corr) > threshold
    v = np.ones(hit.shape, bool) if valid is None else np.broadcast_to(np.asarray(valid)[..., None], hit.shape)
    return (hit & v).sum(axis=seed_axis), v.sum(axis=seed_axis)


def wilson_interval(successes, trials, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (``successes`` of ``trials``), elementwise.

    .. math:: \\frac{\\hat p+\\frac{z^2}{2n}\\pm z\\sqrt{\\frac{\\hat p(1-\\hat p)}{n}
              +\\frac{z^2}{4n^2}}}{1+\\frac{z^2}{n}},\\quad z=\\Phi^{-1}\\left(\\tfrac{1+\\text{confidence}}{2}\\right)

    The same interval as ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method='wilson')`` (tested), for
    arrays at once. Unlike the normal approximation it stays inside ``[0, 1]`` and is not empty at 0 or ``n``
    successes, which is where success rates of covered teacher nodes sit.

    Args:
      successes, trials: integer arrays of one shape (broadcastable); ``trials == 0`` gives NaN.

    Returns:
      ``(low, high)`` float64 arrays of the broadcast shape.
    """
    from scipy.stats import norm

    k, n = np.asarray(successes, np.float64), np.asarray(trials, np.float64)
    z = float(norm.ppf(0.5 + confidence / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson_half_width(successes, trials, confidence: float = CONFIDENCE) -> np.ndarray:
    """Half the width of :func:`wilson_interval`, ``(high - low) / 2`` (what ``--target_ci`` bounds); NaN where
    ``trials == 0``."""
    low, high = wilson_interval(successes, trials, confidence)
    return (high - low) / 2
