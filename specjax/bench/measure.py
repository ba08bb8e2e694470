"""Benchmark: specjax against a per-seed loop on the paper's two-layer workload, and against the machine's peak.

``python -m specjax.bench [--quick] --json=PATH`` measures, in one run and on the same machine state:

* **specjax**: run-steps per second of :class:`specjax.engine.run.Program` (``runs_per_device`` runs vmapped per device,
  the runs axis sharded over every device; one XLA CPU device per core, see :func:`specjax.cli.configure_cpu_devices`)
  for float32 and float64 at each over-realization, plus the evaluation's time (10k points) and its share of an
  epoch (1000 steps + one evaluation), and bytes per run (:func:`specjax.sweep.bytes_per_run`);
* **torch per-seed loop**: the reference's hand-written forward/backward loop (``recon_two_layer.py``) in PyTorch,
  one seed after another: :math:`h=\\mathrm{relu}([X,1]W_1)`, :math:`f=[h,1]W_2`, :math:`g=f^*-f`,
  :math:`W\\mathrel{+}=\\eta\\,\\hat f^\\top g/B` with a batch of 16 drawn with replacement from 10k training points.
  *All cores* means one process per core (``torch.set_num_threads(1)``), run at the same time, rates summed -- the
  way one would run a seed list on this machine. Also measured: ``torch_per_seed_loop_1core`` (one such process)
  and ``torch_per_seed_loop_threaded`` (one process with torch's default intra-op threads, one per core: the
  reference's script run as it is, which is what issue 5's 7.7k / 4.2k run-steps/s describe). Needs ``pip install
  torch==2.13.0`` (the ``bench`` extra); skipped with a note otherwise;
* **jax per-seed loop**: the same specjax step function jitted for one run (no vmap), seeds one after another, one
  run in flight per device;
* **peak**: the machine's matmul peak per dtype, a ``(1024, 1024)`` matrix product chain on every device at once;
  the *roofline fraction* of an implementation is its FLOP rate over this peak, with FLOPs per step from
  :func:`specjax.engine.run.flops_per_step`: :math:`2B(2dn+3nC)` -- the forward, weight-gradient and input-gradient
  matrix products (the first layer needs no input gradient); biases, the ReLU, the loss, the batch gather and the
  update are not counted;
* optionally (``--sweep_rss``) the peak resident memory of the full ``two_layer.py`` sweep layout (all 768 runs
  initialised and trained for a few steps in a child process; memory does not depend on the number of steps).

It prints a table and writes JSON: ``records`` (one per implementation x over-realization x dtype, with
``implementation``, ``over_realization``, ``dtype``, ``run_steps_per_s``, ``roofline_fraction``),
``speedup_vs_per_seed_loop`` (float64, specjax over the torch loop, both on all cores, weighted like the sweep:
the ratio of the times the four equally sized shape groups take; ``speedup_vs_per_seed_loop_threaded`` the same
against the threaded single-process loop), ``peak_gflops``, ``evaluation``, ``memory``,
``full_sweep_estimate_s`` and the machine's load while measuring (the numbers are only as quiet as the machine).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Shorter measurements (under 15 minutes on 2 cores).")
flags.DEFINE_string("json", None, "Write the results here (JSON).")
flags.DEFINE_list("over_realization", ["1", "2", "5", "10"], "Over-realizations to measure.")
flags.DEFINE_list("dtypes", ["float32", "float64"], "Dtypes to measure.")
flags.DEFINE_integer("runs_per_device", 0, "Runs vmapped per device (0: the config default, runs_per_block).")
flags.DEFINE_integer("d", 100, "Input dimension (paper: 100).")
flags.DEFINE_integer("m", 20, "Teacher hidden width (paper: 20).")
flags.DEFINE_integer("c", 50, "Output dimension (paper: 50).")
flags.DEFINE_integer("n_train", 10000, "Training-set size (paper: 10000).")
flags.DEFINE_integer("n_eval", 10000, "Evaluation-set size (paper: 10000).")
flags.DEFINE_bool("torch", True, "Measure the PyTorch per-seed loop (skipped with a note if torch is missing).")
flags.DEFINE_bool("jax_loop", True, "Measure the per-seed jitted JAX loop.")
flags.DEFINE_bool("sweep_rss", False, "Measure the peak RSS of the full two_layer sweep layout in a child process.")
flags.DEFINE_integer("peak_size", 1024, "Matrix size of the peak measurement.")
flags.DEFINE_string("scaling", None, "Also measure run-steps/s against runs per device and width; plot to this PNG.")
flags.DEFINE_bool("main", True, "Run the main comparison (off: only --scaling / --sweep_rss).")

RECONSTRUCTED_SWEEP = {"runs_per_group": 6 * 32, "steps": 100 * 1000, "evaluations": 101}


# --------------------------------------------------------------------------------------------------------------
# Timing helpers.


class Rate(NamedTuple):
    """A measured rate: per wall-clock second, and per second of CPU time the process got, times ``cores``.

    On a quiet machine the two agree; when other processes share the cores, ``wall`` drops while ``cpu`` stays
    close to what the code achieves on cores of its own.
    """

    wall: float
    cpu: float


def best_rate(fn, work: float, repeats: int, cores: int) -> Rate:
    """Largest ``work / seconds`` over ``repeats`` calls of ``fn`` (which must block until done), wall and CPU."""
    wall = cpu = 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = max(wall, work / (time.perf_counter() - t0))
        cpu = max(cpu, work / max((time.process_time() - c0) / cores, 1e-9))
    return Rate(wall, cpu)


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages (other processes make the numbers noisy)."""
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------------------------------------------
# Machine peak.


def measure_peak_gflops(dtype: str, size: int, repeats: int) -> Rate:
    """Matmul peak of all devices together: a chain of ``(size, size)`` products on every device at once (GFLOP/s)."""
    import jax
    import jax.numpy as jnp

    from specjax.engine import make_mesh

    mesh = make_mesh()
    ndev = mesh.devices.size
    links = 8
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
    a = jax.device_put(jnp.full((ndev, size, size), 1.0 / size, dtype), sharding)

    @jax.jit
    def chain(a):
        return jax.vmap(lambda m: jax.lax.fori_loop(0, links, lambda _, c: c @ m, m))(a)

    jax.block_until_ready(chain(a))
    flops = ndev * links * 2.0 * size**3
    rate = best_rate(lambda: jax.block_until_ready(chain(a)), flops, repeats, ndev)
    return Rate(rate.wall / 1e9, rate.cpu / 1e9)


# --------------------------------------------------------------------------------------------------------------
# specjax and the per-seed JAX loop.


def paper_spec(over_realization: int, dtype: str):
    """The two-layer paper workload (THEORY.md section 7) at one over-realization."""
    from specjax.engine.run import Spec

    return Spec(
        d=FLAGS.d,
        teacher_widths=(FLAGS.m,),
        c=FLAGS.c,
        over_realization=over_realization,
        n_train=FLAGS.n_train,
        n_eval=FLAGS.n_eval,
        dtype=dtype,
    )


def _hparams(runs: int, dtype: str):
    from specjax.engine.run import Hparams

    return Hparams.broadcast(runs, dtype=dtype, teacher_polarity=1.0, lr=0.01, data_std=1.5, init_scale=0.005)


def measure_specjax(spec, runs_per_device: int, steps: int, repeats: int) -> dict:
    """Run-steps/s of one compiled :class:`Program` chunk and the time of one evaluation, all devices busy."""
    import jax
    import jax.numpy as jnp

    from specjax.engine import Program, seed_key

    program = Program(spec, chunk_steps=steps)
    runs = runs_per_device * program.num_devices
    keys = jax.vmap(seed_key, (None, 0))(1, jnp.arange(runs))
    hp = program.place(_hparams(runs, spec.dtype))
    teacher, data, state = program.init(hp, program.place(keys))
    box = {"state": state}

    def train():
        box["state"], stats = program.train(box["state"], teacher, data, hp)
        jax.block_until_ready(stats)

    def evaluate():
        jax.block_until_ready(program.evaluate(box["state"], data))

    t0 = time.perf_counter()
    train()
    compile_s = time.perf_counter() - t0
    evaluate()
    rate = best_rate(train, runs * steps, repeats, program.num_devices)
    eval_rate = best_rate(evaluate, 1.0, repeats, program.num_devices)
    eval_s, eval_cpu_s = 1.0 / eval_rate.wall, 1.0 / eval_rate.cpu
    epoch_train_s = runs * 1000 / rate.wall
    return {
        "rate": rate,
        "runs": runs,
        "eval_s": eval_s,
        "eval_cpu_s": eval_cpu_s,  # CPU seconds / devices: the wall time on cores of its own
        "eval_share": eval_s / (eval_s + epoch_train_s),
        "eval_share_cpu": eval_cpu_s / (eval_cpu_s + runs * 1000 / rate.cpu),
        "compile_and_first_chunk_s": compile_s,
    }


def measure_jax_loop(spec, steps: int, repeats: int) -> Rate:
    """Run-steps/s of a jitted single-run :func:`train_steps` (no vmap), one run in flight per device."""
    import functools

    import jax
    import jax.numpy as jnp

    from specjax.engine.run import init_run, seed_key, train_steps

    devices = jax.devices()
    hp = jax.tree.map(lambda a: a[0], _hparams(1, spec.dtype))
    init = jax.jit(functools.partial(init_run, spec))
    step = jax.jit(functools.partial(train_steps, spec, steps), donate_argnums=(0,))
    runs = []
    for i, dev in enumerate(devices):
        teacher, data, state = jax.device_put(init(hp, seed_key(1, jnp.int32(i))), dev)
        runs.append([state, teacher, data, jax.device_put(hp, dev)])

    def one_round():
        for r in runs:
            r[0], _ = step(*r)
        jax.block_until_ready([r[0] for r in runs])

    one_round()
    return best_rate(one_round, len(devices) * steps, repeats, len(devices))


# --------------------------------------------------------------------------------------------------------------
# PyTorch per-seed loop (the reference's hand-written two-layer SGD).


def torch_worker(
    d: int, m: int, c: int, n: int, n_train: int, dtype: str, steps: int, seed: int, threads: int = 1
) -> tuple[int, float, float]:
    """One process: the reference loop for ``steps`` iterations. Returns ``(steps, wall s, CPU s)``.

    ``threads``: torch intra-op threads; 0 keeps torch's default (one per core, how the reference runs unmodified).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    dt = torch.float64 if dtype == "float64" else torch.float32
    batch, lr = 16, 0.01
    ones = torch.ones(n_train, 1, dtype=dt)
    x_train = torch.cat([torch.randn(n_train, d, dtype=dt) * 1.5, ones], 1)  # [X, 1]
    teacher_w1 = torch.randn(d + 1, m, dtype=dt)
    teacher_w2 = torch.randn(m + 1, c, dtype=dt)
    y_train = torch.cat([torch.relu(x_train @ teacher_w1), ones], 1) @ teacher_w2
    w1 = torch.randn(d + 1, n, dtype=dt) * 0.005
    w2 = torch.randn(n + 1, c, dtype=dt) * 0.005
    ones_b = torch.ones(batch, 1, dtype=dt)

    rows = range(n_train)

    def run(k):
        nonlocal w1, w2
        for _ in range(k):
            idx = torch.tensor(random.choices(rows, k=batch))  # the reference's sampling with replacement
            x, y = x_train[idx], y_train[idx]
            h = torch.relu(x @ w1)
            h1 = torch.cat([h, ones_b], 1)
            g2 = y - h1 @ w2  # f* - f
            _loss = 0.5 * (g2 * g2).sum() / batch
            g1 = (g2 @ w2[:-1].T) * (h > 0)
            w2 += lr * (h1.T @ g2) / batch
            w1 += lr * (x.T @ g1) / batch

    run(20)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    run(steps)
    return steps, time.perf_counter() - t0, time.process_time() - c0


def measure_torch(spec, steps: int, processes: int, threads: int = 1) -> Rate:
    """Run-steps/s of ``processes`` concurrent torch loops with ``threads`` threads each (summed; 0: torch default)."""
    ctx = multiprocessing.get_context("spawn")
    n = spec.student_widths[1]
    args = (spec.d, spec.teacher_widths[0], spec.c, n, spec.n_train, spec.dtype, steps)
    per_process = [(*args, seed, threads) for seed in range(processes)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        results = list(pool.map(torch_worker, *zip(*per_process, strict=True)))
    return Rate(sum(k / w for k, w, _ in results), sum(k / c for k, _, c in results))


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------------
# Sweep memory.


def measure_sweep_rss(workdir: Path) -> dict:
    """Peak RSS (MiB) of the full ``two_layer.py`` sweep layout, trained for 2 x 10 steps, in a child process."""
    repo = Path(__file__).resolve().parent.parent
    cmd = [
        sys.executable,
        "-m",
        "specjax.sweep",
        f"--config={repo / 'experiments/configs/two_layer.py'}",
        f"--workdir={workdir}",
        "--config.epochs=2",
        "--config.steps_per_epoch=10",
        "--config.checkpoint=False",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=repo)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"], "command": " ".join(cmd)}
    return {"peak_rss_mib": max(after, before) / 1024, "seconds": seconds, "command": " ".join(cmd)}


# --------------------------------------------------------------------------------------------------------------
# Scaling.


def measure_scaling(steps: int, repeats: int, dtype: str = "float64") -> dict:
    """specjax run-steps/s against runs per device (over-realization 1 and 10) and against width (8 runs/device)."""

    import jax

    ndev = len(jax.devices())
    out = {"dtype": dtype, "devices": ndev, "vs_runs": [], "vs_width": []}
    for over in (1, 10):
        for per_device in (1, 2, 4, 8, 16, 32):
            rate = measure_specjax(paper_spec(over, dtype), per_device, steps, repeats)["rate"]
            row = {"over_realization": over, "runs": per_device * ndev, "wall": rate.wall, "cpu": rate.cpu}
            out["vs_runs"].append(row)
            print(f"scaling runs: {row}", flush=True)
    for over in (1, 2, 5, 10, 20):
        spec = paper_spec(over, dtype)
        rate = measure_specjax(spec, 8, steps, repeats)["rate"]
        row = {"over_realization": over, "width": spec.student_widths[1], "wall": rate.wall, "cpu": rate.cpu}
        out["vs_width"].append(row)
        print(f"scaling width: {row}", flush=True)
    return out


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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------------------
# Driver.


def sweep_time(rates: dict[int, float], eval_s_per_run: dict[int, float] | None = None) -> float:
    """Seconds the two_layer sweep takes at these per-over-realization rates (equal-size groups)."""
    total = 0.0
    for over, rate in rates.items():
        total += RECONSTRUCTED_SWEEP["runs_per_group"] * RECONSTRUCTED_SWEEP["steps"] / rate
        if eval_s_per_run:
            total += RECONSTRUCTED_SWEEP["runs_per_group"] * RECONSTRUCTED_SWEEP["evaluations"] * eval_s_per_run[over]
    return total


def run_bench(quick: bool) -> dict:
    """Every measurement; returns the JSON-ready result."""
    import jax

    from specjax import sweep as sweep_lib
    from specjax.config import default_config
    from specjax.engine import flops_per_step

    steps = 250 if quick else 1000
    repeats = 3 if quick else 5
    baseline_steps = 1500 if quick else 5000
    runs_per_device = FLAGS.runs_per_device or default_config().runs_per_block or 8
    overs = [int(o) for o in FLAGS.over_realization]
    ndev = len(jax.devices())
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": _machine(),
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
    have_torch = FLAGS.torch and torch_available()
    if FLAGS.torch and not have_torch:
        result["notes"].append("torch is not installed: the per-seed PyTorch baseline was skipped (pip install torch)")
    for dtype in FLAGS.dtypes if FLAGS.main else []:
        peak = measure_peak_gflops(dtype, FLAGS.peak_size, repeats)
        result["peak_gflops"][dtype] = peak.wall
        result.setdefault("peak_gflops_cpu", {})[dtype] = peak.cpu
        print(f"[{dtype}] peak {peak.wall:.1f} GFLOP/s on {ndev} devices ({peak.cpu:.1f} per CPU-s)", flush=True)
        for over in overs:
            spec = paper_spec(over, dtype)
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
            if FLAGS.jax_loop:
                record("jax_per_seed_loop", measure_jax_loop(spec, steps, repeats))
            if have_torch:
                record("torch_per_seed_loop", measure_torch(spec, baseline_steps, ndev))
                record("torch_per_seed_loop_1core", measure_torch(spec, baseline_steps, 1))
                record("torch_per_seed_loop_threaded", measure_torch(spec, baseline_steps, 1, threads=0))
    _summarise(result, overs)
    if FLAGS.scaling:
        result["scaling"] = measure_scaling(steps, repeats)
        plot_scaling(result["scaling"], FLAGS.scaling)
        print(f"wrote {FLAGS.scaling}", flush=True)
    if FLAGS.sweep_rss:
        with tempfile.TemporaryDirectory() as tmp:
            result["sweep_rss"] = measure_sweep_rss(Path(tmp) / "two_layer")
        print(f"sweep peak RSS: {result['sweep_rss']}", flush=True)
    result["load_average_end"] = load_average()
    return result


def _summarise(result: dict, overs: list[int]) -> None:
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


def _machine() -> str:
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
    print(f"load average start {result['load_average_start']} end {result['load_average_end']}")
    for note in result["notes"]:
        print(f"note: {note}")


def main(argv: list[str]) -> None:
    from specjax import enable_float64

    if len(argv) > 1:
        raise ValueError(f"unexpected argument(s) {argv[1:]}")
    enable_float64()
    t0 = time.perf_counter()
    result = run_bench(FLAGS.quick)
    result["bench_seconds"] = time.perf_counter() - t0
    print_table(result)
    if FLAGS.json:
        Path(FLAGS.json).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.json).write_text(json.dumps(result, indent=1))
        print(f"wrote {FLAGS.json}")


def run_cli() -> None:
    """Entry point of ``python -m specjax.bench``."""
    from specjax import cli

    cli.configure_cpu_devices()
    cli.run(main, "specjax.bench")


if __name__ == "__main__":
    run_cli()
