"""The benchmark's measurements: specjax's run-steps/s, the machine's peak, memory and scaling.

``python -m specjax.bench [--quick] --json=PATH`` (:mod:`specjax.bench.__main__`) measures, in one run and on the
same machine state (the baselines in :mod:`specjax.bench.baselines`, the table and speedups in
:mod:`specjax.bench.report`):

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

import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple


class BenchOptions(NamedTuple):
    """What to measure (the command line's flags, :mod:`specjax.bench.__main__`).

    Attributes:
      quick: shorter measurements.
      over_realization: over-realizations to measure.
      dtypes: dtypes to measure.
      runs_per_device: runs vmapped per device (0: the config default).
      d, m, c, n_train, n_eval: the two-layer workload (the paper's: 100, 20, 50, 10000, 10000).
      torch: measure the PyTorch per-seed loop (skipped with a note if torch is missing).
      jax_loop: measure the per-seed jitted JAX loop.
      sweep_rss: measure the peak RSS of the full two_layer sweep layout in a child process.
      peak_size: matrix size of the peak measurement.
      scaling: also measure run-steps/s against runs per device and width, plotted to this PNG (``None``: no).
      main: run the main comparison (off: only ``scaling`` / ``sweep_rss``).
      large_run: measure one large run (Fig. 8 at paper scale) on one device and split over every device, float32,
        with its fraction of the float32 peak.
    """

    quick: bool = False
    over_realization: Sequence[int] = (1, 2, 5, 10)
    dtypes: Sequence[str] = ("float32", "float64")
    runs_per_device: int = 0
    d: int = 100
    m: int = 20
    c: int = 50
    n_train: int = 10000
    n_eval: int = 10000
    torch: bool = True
    jax_loop: bool = True
    sweep_rss: bool = False
    peak_size: int = 1024
    scaling: str | None = None
    main: bool = True
    large_run: bool = True


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
# specjax.


def paper_spec(options: BenchOptions, over_realization: int, dtype: str):
    """The two-layer workload of ``options`` (the paper's by default) at one over-realization."""
    from specjax.engine.run import Spec

    return Spec(
        d=options.d,
        teacher_widths=(options.m,),
        c=options.c,
        over_realization=over_realization,
        n_train=options.n_train,
        n_eval=options.n_eval,
        dtype=dtype,
    )


def hparams(runs: int, dtype: str):
    """The paper's hyper-parameters (polarity 1, lr 0.01, data std 1.5, init scale 0.005) for ``runs`` runs."""
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
    hp = program.place(hparams(runs, spec.dtype))
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


def large_run_spec():
    """Fig. 8 at paper scale (``specjax/figures/configs/fig8.py``): one deep 10x run, ~0.96 GFLOP per SGD step."""
    from specjax.engine.run import Spec
    from specjax.figures.configs import fig8

    return Spec.from_config(fig8.get_config("paper"), 10)


def measure_large_run(spec, devices_per_run: int, steps: int, repeats: int) -> Rate:
    """Run-steps/s of one run split over ``devices_per_run`` devices (1: one single-threaded device)."""
    import jax
    import jax.numpy as jnp

    from specjax.engine import Program, make_mesh, seed_key

    program = Program(spec, chunk_steps=steps, mesh=make_mesh(devices_per_run, devices_per_run=devices_per_run))
    hp = program.place(hparams(1, spec.dtype))
    teacher, data, state = program.init(hp, program.place(jax.vmap(seed_key, (None, 0))(1, jnp.arange(1))))
    box = {"state": state}

    def train():
        box["state"], stats = program.train(box["state"], teacher, data, hp)
        jax.block_until_ready(stats)

    train()  # compile
    return best_rate(train, steps, repeats, devices_per_run)


# --------------------------------------------------------------------------------------------------------------
# Sweep memory.


def measure_sweep_rss(workdir: Path) -> dict:
    """Peak RSS (MiB) of the full ``two_layer.py`` sweep layout, trained for 2 x 10 steps, in a child process."""
    repo = Path(__file__).resolve().parents[2]  # the checkout: specjax/bench/measure.py -> .
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
# Scaling and the whole benchmark.


def measure_scaling(options: BenchOptions, steps: int, repeats: int, dtype: str = "float64") -> dict:
    """specjax run-steps/s against runs per device (over-realization 1 and 10) and against width (8 runs/device)."""

    import jax

    ndev = len(jax.devices())
    out = {"dtype": dtype, "devices": ndev, "vs_runs": [], "vs_width": []}
    for over in (1, 10):
        for per_device in (1, 2, 4, 8, 16, 32):
            rate = measure_specjax(paper_spec(options, over, dtype), per_device, steps, repeats)["rate"]
            row = {"over_realization": over, "runs": per_device * ndev, "wall": rate.wall, "cpu": rate.cpu}
            out["vs_runs"].append(row)
            print(f"scaling runs: {row}", flush=True)
    for over in (1, 2, 5, 10, 20):
        spec = paper_spec(options, over, dtype)
        rate = measure_specjax(spec, 8, steps, repeats)["rate"]
        row = {"over_realization": over, "width": spec.student_widths[1], "wall": rate.wall, "cpu": rate.cpu}
        out["vs_width"].append(row)
        print(f"scaling width: {row}", flush=True)
    return out
