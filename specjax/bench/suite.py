"""The whole benchmark: :func:`run_bench` runs the measurements, the baselines and the summary a config asks for."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from specjax.bench.measure import (
    BenchOptions,
    Rate,
    large_run_spec,
    load_average,
    measure_large_run,
    measure_peak_gflops,
    measure_scaling,
    measure_specjax,
    measure_sweep_rss,
    paper_spec,
)


def run_bench(options: BenchOptions) -> dict:
    """Every measurement ``options`` asks for; returns the JSON-ready result (printed by
    :func:`specjax.bench.report.print_table`)."""
    import jax

    from specjax import sweep as sweep_lib
    from specjax.bench import baselines, report
    from specjax.config import default_config
    from specjax.engine import flops_per_step

    steps = 250 if options.quick else 1000
    repeats = 3 if options.quick else 5
    baseline_steps = 1500 if options.quick else 5000
    runs_per_device = options.runs_per_device or default_config().runs_per_block or 8
    overs = [int(o) for o in options.over_realization]
    ndev = len(jax.devices())
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": report.machine(),
        "devices": ndev,
        "runs_per_device": runs_per_device,
        "chunk_steps": steps,
        "load_average_start": load_average(),
        "records": [],
        "peak_gflops": {},
        "evaluation": [],
        "memory": [],
        "notes": [],
    }
    have_torch = options.torch and baselines.torch_available()
    if options.torch and not have_torch:
        result["notes"].append("torch is not installed: the per-seed PyTorch baseline was skipped (pip install torch)")
    for dtype in options.dtypes if options.main else []:
        peak = measure_peak_gflops(dtype, options.peak_size, repeats)
        result["peak_gflops"][dtype] = peak.wall
        result.setdefault("peak_gflops_cpu", {})[dtype] = peak.cpu
        print(f"[{dtype}] peak {peak.wall:.1f} GFLOP/s on {ndev} devices ({peak.cpu:.1f} per CPU-s)", flush=True)
        for over in overs:
            spec = paper_spec(options, over, dtype)
            fl = flops_per_step(spec)

            def record(impl, rate: Rate, fl=fl, peak=peak, over=over, dtype=dtype):
                rec = {
                    "implementation": impl,
                    "over_realization": over,
                    "dtype": dtype,
                    "run_steps_per_s": rate.wall,
                    "gflops": rate.wall * fl / 1e9,
                    "roofline_fraction": rate.wall * fl / 1e9 / peak.wall,
                    "run_steps_per_cpu_s": rate.cpu,
                    "roofline_fraction_cpu": rate.cpu * fl / 1e9 / peak.cpu,
                }
                result["records"].append(rec)
                print(
                    f"[{dtype}] x{over:<2d} {impl:26s} {rate.wall:10,.0f} run-steps/s {rec['gflops']:6.1f} GFLOP/s "
                    f"{100 * rec['roofline_fraction']:5.1f}% of peak | per CPU-s: {rate.cpu:10,.0f} "
                    f"{100 * rec['roofline_fraction_cpu']:5.1f}%",
                    flush=True,
                )

            sj = measure_specjax(spec, runs_per_device, steps, repeats)
            record("specjax", sj["rate"])
            result["evaluation"].append(
                {
                    "over_realization": over,
                    "dtype": dtype,
                    "runs": sj["runs"],
                    "eval_s": sj["eval_s"],
                    "eval_s_per_run": sj["eval_s"] / sj["runs"],  # wall time one run adds, devices in parallel
                    "eval_cpu_s_per_run": sj["eval_cpu_s"] / sj["runs"],
                    "eval_share_of_epoch": sj["eval_share"],
                    "eval_share_of_epoch_cpu": sj["eval_share_cpu"],
                    "compile_and_first_chunk_s": sj["compile_and_first_chunk_s"],
                }
            )
            result["memory"].append(
                {"over_realization": over, "dtype": dtype, "bytes_per_run": sweep_lib.bytes_per_run(spec)}
            )
            if options.jax_loop:
                record("jax_per_seed_loop", baselines.measure_jax_loop(spec, steps, repeats))
            if have_torch:
                record("torch_per_seed_loop", baselines.measure_torch(spec, baseline_steps, ndev))
                record("torch_per_seed_loop_1core", baselines.measure_torch(spec, baseline_steps, 1))
                record("torch_per_seed_loop_threaded", baselines.measure_torch(spec, baseline_steps, 1, threads=0))
    report.summarise(result, overs)
    if options.large_run:
        result["large_run"] = large_run(result, options, repeats)
    if options.scaling:
        result["scaling"] = measure_scaling(options, steps, repeats)
        report.plot_scaling(result["scaling"], options.scaling)
        print(f"wrote {options.scaling}", flush=True)
    if options.sweep_rss:
        with tempfile.TemporaryDirectory() as tmp:
            result["sweep_rss"] = measure_sweep_rss(Path(tmp) / "two_layer")
        print(f"sweep peak RSS: {result['sweep_rss']}", flush=True)
    result["load_average_end"] = load_average()
    return result


def large_run(result: dict, options: BenchOptions, repeats: int) -> list[dict]:
    """One large run (Fig. 8 at paper scale, float32) on one device and split over all of them, each with its
    GFLOP/s and fraction of the float32 peak of all devices measured in this benchmark (one device's large
    matrix-product rate times the number of devices, i.e. of cores on CPU)."""
    import jax

    from specjax.engine import flops_per_step

    if "float32" not in result["peak_gflops"]:
        peak = measure_peak_gflops("float32", options.peak_size, repeats)
        result["peak_gflops"]["float32"] = peak.wall
        result.setdefault("peak_gflops_cpu", {})["float32"] = peak.cpu
    peak, peak_cpu = result["peak_gflops"]["float32"], result["peak_gflops_cpu"]["float32"]
    spec = large_run_spec()
    fl = flops_per_step(spec)
    steps = 50 if options.quick else 200
    ndev = len(jax.devices())
    out = []
    for devices in sorted({1, ndev}):
        rate = measure_large_run(spec, devices, steps, repeats)
        rec = {
            "devices_per_run": devices,
            "run_steps_per_s": rate.wall,
            "gflops": rate.wall * fl / 1e9,
            "peak_fraction": rate.wall * fl / 1e9 / peak,
            "peak_fraction_cpu": rate.cpu * fl / 1e9 / peak_cpu,
            "flops_per_step": fl,
        }
        out.append(rec)
        print(
            f"[float32] one Fig. 8 paper-scale run on {devices} device(s): {rate.wall:6.1f} run-steps/s "
            f"{rec['gflops']:6.1f} GFLOP/s {100 * rec['peak_fraction']:5.1f}% of the {ndev}-device peak "
            f"{peak:.1f} GFLOP/s",
            flush=True,
        )
    return out
