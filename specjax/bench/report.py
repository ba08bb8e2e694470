"""The benchmark's report: sweep-weighted speedups and full-sweep estimates, the printed table, the scaling plot.

The speedups weigh each over-realization like the paper's two-layer sweep (``experiments/configs/two_layer.py``):
:func:`sweep_time` is the time the four equally sized shape groups take at given run-steps/s, and a speedup is the
ratio of two such times.
"""

from __future__ import annotations

import os
from pathlib import Path

RECONSTRUCTED_SWEEP = {"runs_per_group": 6 * 32, "steps": 100 * 1000, "evaluations": 101}


def sweep_time(rates: dict[int, float], eval_s_per_run: dict[int, float] | None = None) -> float:
    """Seconds the two_layer sweep takes at these per-over-realization rates (equal-size groups)."""
    total = 0.0
    for over, rate in rates.items():
        total += RECONSTRUCTED_SWEEP["runs_per_group"] * RECONSTRUCTED_SWEEP["steps"] / rate
        if eval_s_per_run:
            total += RECONSTRUCTED_SWEEP["runs_per_group"] * RECONSTRUCTED_SWEEP["evaluations"] * eval_s_per_run[over]
    return total


def summarise(result: dict, overs: list[int]) -> None:
    """Sweep-weighted speedups and the full-sweep time estimate, from wall-clock and from CPU-time rates."""

    def rates(impl, dtype, field):
        found = {
            r["over_realization"]: r[field]
            for r in result["records"]
            if r["implementation"] == impl and r["dtype"] == dtype
        }
        return found if len(found) == len(overs) else None

    for suffix, field, eval_field in (
        ("", "run_steps_per_s", "eval_s_per_run"),
        ("_cpu", "run_steps_per_cpu_s", "eval_cpu_s_per_run"),
    ):
        for impl, name in (
            ("torch_per_seed_loop", "speedup_vs_per_seed_loop"),
            ("torch_per_seed_loop_threaded", "speedup_vs_per_seed_loop_threaded"),
            ("jax_per_seed_loop", "speedup_vs_jax_per_seed_loop"),
        ):
            name = name + "_by_dtype" + suffix
            result[name] = {}
            for dtype in sorted({r["dtype"] for r in result["records"]}):
                ours, theirs = rates("specjax", dtype, field), rates(impl, dtype, field)
                if ours and theirs:
                    result[name][dtype] = sweep_time(theirs) / sweep_time(ours)
        for dtype in sorted({r["dtype"] for r in result["records"]}):
            ours = rates("specjax", dtype, field)
            evals = {e["over_realization"]: e[eval_field] for e in result["evaluation"] if e["dtype"] == dtype}
            if ours and len(evals) == len(overs) and set(overs) == {1, 2, 5, 10}:
                result.setdefault("full_sweep_estimate_s" + suffix, {})[dtype] = {
                    "training_s": sweep_time(ours),
                    "with_evaluation_s": sweep_time(ours, evals),
                }
    by = result["speedup_vs_per_seed_loop_by_dtype"]
    result["speedup_vs_per_seed_loop"] = by.get("float64", next(iter(by.values()), None))


def machine() -> str:
    import platform

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.processor()} x{os.cpu_count()} ({platform.system()} {platform.release()})"


def print_table(result: dict) -> None:
    """The human-readable summary."""
    print()
    print(
        f"{'implementation':26s} {'dtype':8s} {'over':>4s} {'run-steps/s':>12s} {'GFLOP/s':>8s} {'% peak':>7s}"
        f" {'per CPU-s':>10s} {'% peak':>7s}"
    )
    for r in result["records"]:
        print(
            f"{r['implementation']:26s} {r['dtype']:8s} {r['over_realization']:4d} {r['run_steps_per_s']:12,.0f} "
            f"{r['gflops']:8.1f} {100 * r['roofline_fraction']:6.1f}% {r['run_steps_per_cpu_s']:10,.0f} "
            f"{100 * r['roofline_fraction_cpu']:6.1f}%"
        )
    print(f"peak GFLOP/s: { {k: round(v, 1) for k, v in result['peak_gflops'].items()} }")
    for e in result["evaluation"]:
        print(
            f"evaluation {e['dtype']} x{e['over_realization']}: {1e3 * e['eval_s']:.1f} ms for {e['runs']} runs, "
            f"{100 * e['eval_share_of_epoch']:.1f}% of an epoch ({100 * e['eval_share_of_epoch_cpu']:.1f}% per CPU-s)"
        )
    for mrec in result["memory"]:
        print(f"bytes per run {mrec['dtype']} x{mrec['over_realization']}: {mrec['bytes_per_run'] / 2**20:.1f} MiB")
    for suffix, what in (("", "wall clock"), ("_cpu", "per CPU-second")):
        print(f"[{what}] speedup vs per-seed torch loop, all cores, sweep-weighted: ", end="")
        print({k: round(v, 1) for k, v in result["speedup_vs_per_seed_loop_by_dtype" + suffix].items()})
        print(f"[{what}] speedup vs per-seed torch loop, one process with torch's threads: ", end="")
        print({k: round(v, 1) for k, v in result["speedup_vs_per_seed_loop_threaded_by_dtype" + suffix].items()})
        print(f"[{what}] speedup vs per-seed jax loop: ", end="")
        print({k: round(v, 1) for k, v in result["speedup_vs_jax_per_seed_loop_by_dtype" + suffix].items()})
        for dtype, est in result.get("full_sweep_estimate_s" + suffix, {}).items():
            print(
                f"[{what}] full two_layer sweep estimate {dtype}: {est['training_s'] / 60:.1f} min training, "
                f"{est['with_evaluation_s'] / 60:.1f} min with per-epoch evaluation"
            )
    for r in result.get("large_run", []):
        print(
            f"one Fig. 8 paper-scale run (float32) on {r['devices_per_run']} device(s): {r['run_steps_per_s']:.1f} "
            f"run-steps/s, {r['gflops']:.1f} GFLOP/s, {100 * r['peak_fraction']:.1f}% of the float32 peak "
            f"({100 * r['peak_fraction_cpu']:.1f}% per CPU-s)"
        )
    print(f"load average start {result['load_average_start']} end {result['load_average_end']}")
    for note in result["notes"]:
        print(f"note: {note}")


def plot_scaling(scaling: dict, path: str) -> None:
    """Two panels: run-steps/s against runs (log-log) and against student width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker below)

    fig, (ax_runs, ax_width) = plt.subplots(1, 2, figsize=(10, 4))
    for over, color in ((1, "C0"), (10, "C3")):
        rows = [r for r in scaling["vs_runs"] if r["over_realization"] == over]
        runs = [r["runs"] for r in rows]
        ax_runs.plot(runs, [r["cpu"] for r in rows], "o-", color=color, label=f"x{over}, per CPU-second")
        ax_runs.plot(runs, [r["wall"] for r in rows], "o--", color=color, alpha=0.5, label=f"x{over}, wall clock")
    ax_runs.set(xscale="log", yscale="log", xlabel=f"runs in the program ({scaling['devices']} devices)")
    ax_runs.set(ylabel="run-steps / s", title=f"vs number of runs ({scaling['dtype']})")
    ax_runs.legend(fontsize=8)
    rows = scaling["vs_width"]
    widths = [r["width"] for r in rows]
    ax_width.plot(widths, [r["cpu"] for r in rows], "o-", color="C2", label="per CPU-second")
    ax_width.plot(widths, [r["wall"] for r in rows], "o--", color="C2", alpha=0.5, label="wall clock")
    ax_width.set(xscale="log", yscale="log", xlabel="student width n (teacher m=20)", ylabel="run-steps / s")
    ax_width.set(title=f"vs width (8 runs per device, {scaling['dtype']})")
    ax_width.legend(fontsize=8)
    for ax, ticks in ((ax_runs, runs), (ax_width, widths)):
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    from specjax.figures.plots import save

    save(fig, Path(path).with_suffix(""), formats=("png",))  # atomic: a temporary file, renamed
