"""A research session with specjax, as docs/analysis.md walks through it: load a sweep, select, analyse, plot.

    python experiments/analysis_session.py --workdir=runs/quickstart [--out=docs/img/analysis.png]

Runs the quickstart sweep first if the workdir holds no finished sweep (``--tiny`` shrinks it to seconds).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import specjax  # noqa: E402
from specjax.errors import StoreError  # noqa: E402
from specjax.theory import reports  # noqa: E402


def quickstart_config(tiny: bool):
    cfg = specjax.default_config()
    cfg.d, cfg.m, cfg.c = 50, 10, 20
    cfg.over_realization, cfg.teacher_polarity = (1, 5), (0.0, 1.0, 2.0)
    cfg.seeds, cfg.lr, cfg.dtype = 8, (0.02,), "float32"
    cfg.n_train, cfg.n_eval, cfg.epochs, cfg.steps_per_epoch = 10000, 4000, 20, 2000
    if tiny:
        cfg.d, cfg.m, cfg.c, cfg.seeds = 10, 4, 5, 3
        cfg.n_train, cfg.n_eval, cfg.epochs, cfg.steps_per_epoch = 500, 400, 2, 200
    return cfg


def main(workdir: str, out: str, tiny: bool) -> dict:
    # 1. Load (or run) the sweep.
    try:
        result = specjax.load_results(workdir)
    except StoreError:
        result = specjax.run_sweep(quickstart_config(tiny), workdir, progress=None)

    # 2. Select with names, not positions: one xarray Dataset, one pandas table.
    ds = result.to_xarray().squeeze()  # drop the swept fields with one value (lr, data_std, ...)
    df = result.to_dataframe()
    final = df[df.epoch == df.epoch.max()]
    success = final.groupby(["over_realization", "teacher_polarity"])["success_rate_0.95"].mean()
    last = ds.isel(epoch=-1).sel(threshold=0.95)  # success over seeds with its 95 % Wilson interval
    covered, low, high = last.success_rate_l1, last.success_rate_low_l1, last.success_rate_high_l1

    # 3. Analyse: every run of a group at once (an xarray.Dataset with to_xarray's coordinates), and one run in
    # detail.
    widest = max(result.config.over_realization)
    group = result.analyze(over_realization=widest)  # dims: over_realization, teacher_polarity, ..., seed, nodes
    run = result.run(seed=0, over_realization=widest, teacher_polarity=2.0)
    one = reports.analyze_run(run.student(), run.teacher, run.eval_inputs(), run.spec.activation)

    # 4. Plot: coverage per teacher node, and the L-shape of one run.
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, over in enumerate(covered.over_realization.values):
        where = {"over_realization": over, "teacher_polarity": 2.0}
        curve = covered.sel(where)
        x = curve.teacher_l1 + 0.08 * (i - 0.5)  # side by side where the curves coincide (every seed covers)
        lines = left.plot(x, curve, marker="os"[i % 2], mfc="white", label=f"{over}x student")
        left.fill_between(x, low.sel(where), high.sel(where), color=lines[0].get_color(), alpha=0.15)
    left.set(xlabel="teacher node j (weaker to the right)", ylabel="fraction of seeds covered (corr > 0.95)")
    left.set_title("teacher polarity p = 2, last epoch (bands: 95 % Wilson)")
    left.legend()
    shape = one.l_shape[0]
    right.scatter(shape.specialization, shape.fan_out, s=14)
    right.set(xlabel="student's best correlation with a teacher node", ylabel="fan-out norm ||v_k||")
    right.set_title(f"L-shape: {widest}x student, p = 2, seed 0")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)

    numbers = {
        "success": {f"{o}x p={p:g}": round(float(v), 3) for (o, p), v in success.items()},
        "unspecialized_per_run_median": float(group.unspecialized_l1.median()),
        "theorem3_max_loss_change": float(group.theorem3_loss_change.max()),
    }
    print(numbers)
    return numbers


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/quickstart")
    parser.add_argument("--out", default="runs/analysis.png")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long sweep (tests)")
    args = parser.parse_args()
    specjax.enable_float64()
    main(args.workdir, args.out, args.tiny)
