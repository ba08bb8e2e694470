"""The numbers behind the paper's figures, computed from sweep result arrays (NumPy; docs/theory.md §3, §5).

Every function takes the arrays of :func:`specjax.sweep.group_arrays` (leading axes ``(settings, seeds)``; ``S``
settings, ``N`` seeds, ``E`` evaluations, ``P`` snapshots, ``m`` teacher and ``n`` student nodes; array names from
:func:`specjax.sweep.schema.key`, layers numbered from 1) and returns plain NumPy arrays or JSON-friendly dicts.
Plots (:mod:`specjax.figures.plots`, :mod:`specjax.figures.plots_dynamics`) and the tests of
:mod:`specjax.figures.drivers` read the same numbers, so a figure and the claim it supports cannot drift apart.

The JAX function here, :func:`expected_fan_out_norms`, is Fig. 8's y-axis for deep networks:
:math:`\\sqrt{\\mathbb E_x\\beta_{kk}(x)}` with :math:`\\beta_{kk}=\\|v_k(x)\\|^2` from Lemma 1's recursion.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from specjax.core import data as data_lib
from specjax.core import metrics, networks
from specjax.engine.run import seed_key
from specjax.sweep.schema import key
from specjax.theory import lemma1

#: A student "focuses" on a teacher (Fig. 11) when its correlation to that teacher is its largest and above this.
FOCUS_THRESHOLD = 0.6


def setting_index(arrays: dict[str, np.ndarray], **values: float) -> int:
    """Index along the settings axis of the setting whose swept fields equal ``values`` (e.g. teacher_polarity=1).

    Raises:
      KeyError: no setting (or more than one) matches.
    """
    mask = np.ones(arrays["teacher_polarity"].shape, bool)
    for field, value in values.items():
        mask &= np.isclose(arrays[field], value)
    hits = np.flatnonzero(mask)
    if hits.size != 1:
        raise KeyError(f"{hits.size} settings match {values}")
    return int(hits[0])


# ----------------------------------------------------------------------------------------------------------------
# Fig. 7 and 8: specialization score vs fan-out size (L-shape, Theorem 3 / Corollary 2).


def l_shape_stats(best_student_corr: np.ndarray, fan_out: np.ndarray) -> dict[str, float]:
    """Summary of an L-shape scatter: how many students are (un)specialized and how large their fan-outs are.

    Args:
      best_student_corr: ``(...,)`` each student's :math:`\\max_j\\rho_{jk}`.
      fan_out: same shape, its fan-out size (:math:`\\|v_k\\|` or :math:`\\sqrt{\\mathbb E_x\\beta_{kk}}`).

    Returns:
      ``students``, ``specialized`` / ``unspecialized`` counts (corr above
      :data:`specjax.core.metrics.SPECIALIZED_ABOVE` / below :data:`~specjax.core.metrics.UNSPECIALIZED_BELOW`),
      their median fan-outs (NaN if none) and ``fan_out_ratio`` = median unspecialized / median specialized (small
      for an L-shape).
    """
    corr = np.asarray(best_student_corr, float).ravel()
    size = np.asarray(fan_out, float).ravel()
    spec, unspec = corr > metrics.SPECIALIZED_ABOVE, corr < metrics.UNSPECIALIZED_BELOW

    def median(mask):
        return float(np.median(size[mask])) if mask.any() else float("nan")

    out = {
        "students": int(corr.size),
        "specialized": int(spec.sum()),
        "unspecialized": int(unspec.sum()),
        "median_fan_out_specialized": median(spec),
        "median_fan_out_unspecialized": median(unspec),
    }
    out["fan_out_ratio"] = out["median_fan_out_unspecialized"] / out["median_fan_out_specialized"]
    return out


def expected_fan_out_norms(
    params: networks.Params, x: jax.Array, activation: networks.Activation = networks.RELU, chunk: int = 128
) -> tuple[jax.Array, ...]:
    """:math:`\\sqrt{\\mathbb E_x\\beta_{kk}(x)}=\\sqrt{\\mathbb E_x\\|v_{l,k}(x)\\|^2}` for every hidden node (Fig. 8).

    :func:`specjax.theory.lemma1.effective_fan_out_norms` (Lemma 1's top-down recursion for the effective fan-outs
    :math:`v_{l,k}(x)`, docs/theory.md §2) over ``chunk`` samples at a time, so that memory stays at
    ``chunk * C * n_l`` floats for the paper's 1250-wide layers; chunk means of :math:`\\beta_{kk}` are averaged.

    Args:
      params: network, ``L`` layers (``W`` of shape ``(n_{l-1}, n_l)``).
      x: ``(N, d)`` inputs over which the expectation is taken; ``chunk`` must divide ``N``.
      activation: the network's activation.

    Returns:
      one ``(n_l,)`` array per hidden layer, input to output.
    """
    num = x.shape[0]
    if num % chunk:
        raise ValueError(f"chunk: {chunk} must divide the number of samples {num}")

    def chunk_beta(xc):
        return tuple(n * n for n in lemma1.effective_fan_out_norms(params, xc, activation))

    betas = jax.lax.map(chunk_beta, x.reshape(num // chunk, chunk, x.shape[1]))
    return tuple(jnp.sqrt(jnp.mean(b, axis=0)) for b in betas)


def deep_eval_inputs(cfg, seed_index: int, data_std: float, samples: int) -> jax.Array:
    """The first ``samples`` evaluation inputs of seed ``seed_index`` of a sweep (the same draw as
    :func:`specjax.engine.run.init_run`), shape ``(samples, d)``."""
    k_data = jax.random.split(seed_key(cfg.seed, jnp.asarray(seed_index, jnp.int32)), 3)[2]
    dtype = networks.resolve_dtype(cfg.dtype)
    x = data_lib.sample_inputs(data_lib.eval_key(k_data), cfg.n_eval, cfg.d, data_std, cfg.data, dtype)
    return x[:samples]


def snapshot_params(arrays: dict[str, np.ndarray], setting: int, seed: int, snapshot: int) -> networks.Params:
    """Student parameters of one run at snapshot ``snapshot`` (index into ``snapshot_epochs``)."""
    layers = []
    l = 1
    while key("student_W", l) in arrays:
        W = arrays[key("student_W", l)][setting, seed, snapshot]
        b = arrays.get(key("student_b", l))
        layers.append((jnp.asarray(W), None if b is None else jnp.asarray(b[setting, seed, snapshot])))
        l += 1
    return tuple(layers)


def deep_l_shape(
    cfg, arrays: dict[str, np.ndarray], setting: int = 0, seed: int = 0, samples: int = 1024
) -> dict[str, np.ndarray]:
    """Fig. 8's points for one run at every snapshot: per hidden layer ``l``, ``best_corr_l{l}`` and
    ``fan_out_l{l}`` = :math:`\\sqrt{\\mathbb E_x\\beta_{kk}}`, both ``(P, n_l)``; ``epochs (P,)``.

    The expectation is over the run's first ``samples`` evaluation inputs (the reference averages ``betas_ss`` over
    its 10240 evaluation points); correlations are the sweep's, on the whole evaluation set.
    """
    x = deep_eval_inputs(cfg, seed, float(arrays["data_std"][setting]), samples)
    chunk = max(c for c in (256, 128, 64, 32, 16, 8, 4, 2, 1) if samples % c == 0)
    epochs = arrays["snapshot_epochs"]
    activation = networks.Activation.from_config(cfg.activation, cfg.slope)
    fn = jax.jit(lambda p, xs: expected_fan_out_norms(p, xs, activation, chunk))
    per_snapshot = [fn(snapshot_params(arrays, setting, seed, p), x) for p in range(len(epochs))]
    layers = len(per_snapshot[0])
    corr_at = np.searchsorted(arrays["corr_epochs"], epochs)
    out = {"epochs": np.asarray(epochs)}
    for l in range(1, layers + 1):
        corr = arrays[key("corr", l)][setting, seed][corr_at]  # (P, m_l, n_l)
        out[f"best_corr_l{l}"] = corr.max(axis=-2)
        out[f"fan_out_l{l}"] = np.stack([np.asarray(s[l - 1]) for s in per_snapshot])
    return out


def layer_success_by_snapshot(
    arrays: dict[str, np.ndarray], threshold: float = metrics.DEEP_MATCH_THRESHOLD, setting: int = 0
) -> np.ndarray:
    """Fraction of teacher nodes matched (best correlation above ``threshold``, the deep code's ``cnt_thres``), per
    snapshot and hidden layer, mean over seeds: ``(P, layers)``."""
    at = np.searchsorted(arrays["eval_epochs"], arrays["snapshot_epochs"])
    rates = []
    l = 1
    while key("best_teacher_corr", l) in arrays:
        best = arrays[key("best_teacher_corr", l)][setting][:, at]  # (N, P, m_l)
        rates.append((best > threshold).mean(axis=(0, 2)))
        l += 1
    return np.stack(rates, axis=-1)


# ----------------------------------------------------------------------------------------------------------------
# Fig. 9 and 10: success rate and loss over seeds.


def success_table(arrays: dict[str, np.ndarray], eval_index: int = -1) -> np.ndarray:
    """Success rate per setting and teacher node at one evaluation (diverged runs left out): ``(S, m)``."""
    best = arrays[key("best_teacher_corr", 1)][:, :, eval_index]  # (S, N, m)
    valid = arrays["diverged_at"] < 0
    return metrics.success_rate(best, seed_axis=1, valid=valid)


def log_mse_stats(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over non-diverged seeds of :math:`\\log_{10}` of ``eval_mse`` (the mean over samples and outputs
    of the squared residual, the reference code's logged loss), each ``(S, E)``."""
    loss = np.asarray(arrays["eval_mse"])
    valid = (arrays["diverged_at"] < 0)[..., None] & np.isfinite(loss)
    logs = np.where(valid, np.log10(np.maximum(loss, 1e-300)), np.nan)
    return np.nanmean(logs, axis=1), np.nanstd(logs, axis=1)


# ----------------------------------------------------------------------------------------------------------------
# Fig. 11 and 12: dynamics of the correlations.


def teacher_strength(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Each teacher node's fan-out norm :math:`\\|v^*_j\\|` (Def. 4, two-layer teacher): ``(S, N, m)``."""
    return np.linalg.norm(arrays[key("teacher_W", 2)], axis=-1)


def first_epoch_above(best_teacher_corr: np.ndarray, epochs: np.ndarray, threshold: float) -> np.ndarray:
    """Epoch of the first evaluation at which each teacher's best correlation exceeds ``threshold`` (``inf`` if
    never).

    Args:
      best_teacher_corr: ``(..., E, m)``.
      epochs: ``(E,)`` evaluation epochs.
    Returns:
      ``(..., m)`` float epochs.
    """
    above = best_teacher_corr > threshold
    first = np.argmax(above, axis=-2)
    return np.where(above.any(axis=-2), np.asarray(epochs, float)[first], np.inf)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-D samples (ties broken by order; ``inf`` ranks last)."""
    ra = np.argsort(np.argsort(np.asarray(a), kind="stable"), kind="stable")
    rb = np.argsort(np.argsort(np.asarray(b), kind="stable"), kind="stable")
    return float(np.corrcoef(ra, rb)[0, 1])


def strength_order_stats(
    best_teacher_corr: np.ndarray,
    strength: np.ndarray,
    epochs: np.ndarray,
    threshold: float = metrics.MATCH_THRESHOLD,
    group: int = 5,
) -> dict[str, float]:
    """How much earlier strong teachers are matched than weak ones (Fig. 12's claim).

    Args:
      best_teacher_corr: ``(N, E, m)`` one setting's best correlation per teacher.
      strength: ``(N, m)`` teacher fan-out norms.
      epochs: ``(E,)``.
      threshold: correlation that counts as matched.
      group: how many strongest / weakest teachers per seed to compare.

    Returns:
      ``median_epoch_strongest`` / ``median_epoch_weakest`` (median over seeds and the ``group`` strongest / weakest
      teachers of the first epoch above ``threshold``; ``inf`` if more than half never get there),
      ``matched_strongest`` / ``matched_weakest`` (fractions matched by the end), and ``spearman``: the rank
      correlation, pooled over seeds after ranking within each seed, between strength rank (0 = strongest) and
      time-to-match rank (positive: stronger teachers are matched earlier).
    """
    first = first_epoch_above(best_teacher_corr, epochs, threshold)  # (N, m)
    order = np.argsort(-strength, axis=-1)  # strongest first
    ranked = np.take_along_axis(first, order, axis=-1)
    strong, weak = ranked[:, :group], ranked[:, -group:]
    strength_rank = np.argsort(np.argsort(-strength, axis=-1), axis=-1)  # 0 = strongest
    time_rank = np.argsort(np.argsort(first, axis=-1, kind="stable"), axis=-1, kind="stable")
    return {
        "median_epoch_strongest": float(np.median(strong)),
        "median_epoch_weakest": float(np.median(weak)),
        "matched_strongest": float(np.isfinite(strong).mean()),
        "matched_weakest": float(np.isfinite(weak).mean()),
        "spearman": rank_correlation(strength_rank.ravel(), time_rank.ravel()),
    }


def focus_shifts(corr: np.ndarray, epochs: np.ndarray, threshold: float = FOCUS_THRESHOLD) -> list[dict]:
    """Students whose focus moves from one teacher to another during training (Fig. 11, "focus shifting").

    A student's focus at an evaluation is the teacher it correlates with most, if that correlation exceeds
    ``threshold`` (else none). A shift is recorded when a student's focus at the end differs from a focus it held for
    at least two consecutive evaluations earlier, and its correlation to that earlier teacher has dropped by at least
    0.2 from its peak.

    Args:
      corr: ``(E, m, n)`` one run's correlation matrices at every evaluation.
      epochs: ``(E,)``.
      threshold: minimum correlation of a focus.

    Returns:
      one dict per shifting student: ``student``, ``from_teacher``, ``to_teacher`` (0 = strongest by index),
      ``from_peak`` (peak correlation to the first teacher), ``epoch_left`` (first evaluation after the last one
      focused on it).
    """
    best = corr.max(axis=1)  # (E, n)
    focus = np.where(best > threshold, corr.argmax(axis=1), -1)  # (E, n)
    shifts = []
    for k in range(corr.shape[2]):
        final = focus[-1, k]
        if final < 0:
            continue
        held = (focus[:-1, k] == focus[1:, k]) & (focus[:-1, k] >= 0) & (focus[:-1, k] != final)
        if not held.any():
            continue
        first = int(focus[np.flatnonzero(held)[0], k])
        peak = float(corr[:, first, k].max())
        if peak - corr[-1, first, k] < 0.2:
            continue
        last_on = int(np.flatnonzero(focus[:, k] == first)[-1])
        shifts.append(
            {
                "student": k,
                "from_teacher": first,
                "to_teacher": int(final),
                "from_peak": peak,
                "epoch_left": float(epochs[min(last_on + 1, len(epochs) - 1)]),
            }
        )
    return shifts


def summarize_focus_shifts(shifts_per_seed: Sequence[list[dict]], strength: np.ndarray) -> dict[str, int]:
    """Counts of :func:`focus_shifts` over seeds: ``total``, ``to_weaker`` and ``to_stronger`` (by the teachers'
    fan-out norms ``strength``, ``(N, m)``)."""
    to_weaker = to_stronger = 0
    for seed, shifts in enumerate(shifts_per_seed):
        for s in shifts:
            weaker = strength[seed, s["to_teacher"]] < strength[seed, s["from_teacher"]]
            to_weaker += int(weaker)
            to_stronger += int(not weaker)
    return {"total": to_weaker + to_stronger, "to_weaker": to_weaker, "to_stronger": to_stronger}
