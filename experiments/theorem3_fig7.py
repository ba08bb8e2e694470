"""Theorem 3 as stated on the converged runs of the Fig. 7 sweep: how many unaligned students satisfy the
hypothesis (C observers in the same layer whose fan-outs have rank C), how well-conditioned their observers'
fan-outs are, and the conclusion's residual, at every over-realization of the sweep.

    python experiments/theorem3_fig7.py --workdir=runs/fig7-small [--scale=small]

Runs (or loads) the figure's sweep (``specjax/figures/configs/fig7.py``), then for every run of every group at the
last epoch computes :func:`specjax.theory.theorem3.theorem3_hypothesis` in one ``jit(vmap(...))`` on the run's own
evaluation inputs, in float64. Prints one JSON object.
"""

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

import specjax
from specjax.engine import Spec, eval_inputs, seed_key
from specjax.errors import StoreError
from specjax.figures import load_config
from specjax.sweep.schema import key
from specjax.theory import theorem3


def group_report(result, over: int, threshold: float, colinear_tol: float, samples: int) -> dict:
    cfg = result.config
    g = list(cfg.over_realization).index(over)
    a = result.arrays[g]
    spec = Spec.from_config(cfg, over)
    S, N = a["eval_loss"].shape[:2]
    layers = len(spec.student_widths) - 1

    def params(prefix, *index):
        out = []
        for l in range(1, layers + 1):
            W = np.asarray(a[key(f"{prefix}_W", l)][(slice(None), slice(None), *index)], np.float64)
            b = np.asarray(a[key(f"{prefix}_b", l)][(slice(None), slice(None), *index)], np.float64)
            out.append((W.reshape(S * N, *W.shape[2:]), b.reshape(S * N, *b.shape[2:])))
        return tuple(out)

    def one(student, teacher, seed_index, data_std):
        x = eval_inputs(spec, data_std, seed_key(cfg.seed, seed_index))[:samples].astype(jnp.float64)
        return theorem3.theorem3_hypothesis(
            student, teacher, x, spec.activation, 0, threshold, colinear_tol, convention=spec.loss
        )

    seed_index = jnp.tile(jnp.arange(N, dtype=jnp.int32), S)
    data_std = jnp.repeat(jnp.asarray(a["data_std"], jnp.float32), N)
    h = jax.device_get(jax.jit(jax.vmap(one))(params("student", -1), params("teacher"), seed_index, data_std))
    unaligned = np.asarray(h.unaligned)
    holds = np.asarray(h.hypothesis_holds)
    fails = unaligned & ~holds

    def among(values, mask):
        return np.where(mask, np.asarray(values, float), np.nan)

    def stat(reduce, values):
        return float(reduce(values)) if np.isfinite(values).any() else None

    residual = among(h.group_sum_norm, unaligned)
    return {
        "runs": int(S * N),
        "students": int(unaligned.size),
        "outputs": int(spec.c),
        "median_eval_loss": float(np.median(a["eval_loss"][..., -1])),
        "unaligned": int(unaligned.sum()),
        "hypothesis_holds": int(holds.sum()),
        "median_observers_unaligned": stat(np.nanmedian, among(h.num_observers, unaligned)),
        "min_observers_unaligned": stat(np.nanmin, among(h.num_observers, unaligned)),
        "min_rank_unaligned": stat(np.nanmin, among(h.fan_out_rank, unaligned)),
        "median_smallest_singular_value_unaligned": stat(np.nanmedian, among(h.smallest_singular_value, unaligned)),
        "min_smallest_singular_value_unaligned": stat(np.nanmin, among(h.smallest_singular_value, unaligned)),
        "median_fan_out_norm_aligned": stat(
            np.nanmedian, among(np.linalg.norm(params("student", -1)[-1][0], axis=-1), ~unaligned)
        ),
        "largest_colinear_group_unaligned": stat(np.nanmax, among(np.asarray(h.colinear).sum(-1), unaligned)),
        "max_residual": stat(np.nanmax, residual),
        "median_residual": stat(np.nanmedian, residual),
        "max_residual_hypothesis_holds": stat(np.nanmax, among(h.group_sum_norm, holds)),
        "max_residual_hypothesis_fails": stat(np.nanmax, among(h.group_sum_norm, fails)),
        "max_group_norm_sum": stat(np.nanmax, among(h.group_norm_sum, unaligned)),
        "max_abs_pruned_loss_change": stat(np.nanmax, among(np.abs(h.pruned_loss_change), unaligned)),
    }


def main(workdir: str, scale: str, samples: int) -> dict:
    try:
        result = specjax.load_results(workdir)
    except StoreError:
        result = specjax.run_sweep(load_config("fig7", scale), workdir)
    groups = result.config.over_realization
    report = {
        "scale": scale,
        "threshold": 0.95,
        "colinear_tol": 1e-3,
        "samples": samples,
        **{f"{o}x": group_report(result, o, 0.95, 1e-3, samples) for o in groups},
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/fig7-small")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--samples", type=int, default=4000, help="evaluation inputs per run")
    args = parser.parse_args()
    specjax.enable_float64()
    main(args.workdir, args.scale, args.samples)
