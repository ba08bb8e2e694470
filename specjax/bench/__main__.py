"""``python -m specjax.bench`` (and ``specjax-bench``): the benchmark's command line over :func:`run_bench`.

    python -m specjax.bench [--quick] [--json=PATH] [--scaling=PNG] [--over_realization=1,2] [--notorch]

Output paths are checked before anything is measured: a ``--json`` or ``--scaling`` path that is a directory, or
whose folder cannot be written, stops the command with one line on stderr and exit status 2. The JSON is written
atomically (:func:`specjax.store.save_json`).
"""

from __future__ import annotations

import time
from pathlib import Path

from specjax.errors import StoreError

PROG = "specjax.bench"


def check_output_path(path: str | Path, what: str) -> Path:
    """Refuses an output file path that is a directory or whose folder cannot be created or written.

    Raises:
      StoreError: naming the path.
    """
    from specjax import store

    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: the {what} path is a directory; give a file name")
    try:
        store.check_writable(path.parent)
    except StoreError:
        raise StoreError(
            f"{path}: the {what} file cannot be written (its folder {path.parent} is not writable)"
        ) from None
    return path


def main(argv: list[str]) -> None:
    """absl main: check the output paths, measure, print the table, write the JSON."""
    from absl import flags

    from specjax import enable_float64, store
    from specjax.bench.measure import BenchOptions
    from specjax.bench.report import print_table
    from specjax.bench.suite import run_bench

    if len(argv) > 1:
        raise StoreError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    json_path = check_output_path(f.json, "--json") if f.json else None
    if f.scaling:
        if Path(f.scaling).suffix != ".png":
            raise StoreError(f"{f.scaling}: --scaling writes a PNG; give a path ending in .png")
        check_output_path(f.scaling, "--scaling")
    options = BenchOptions(
        quick=f.quick,
        over_realization=tuple(int(o) for o in f.over_realization),
        dtypes=tuple(f.dtypes),
        runs_per_device=f.runs_per_device,
        d=f.d,
        m=f.m,
        c=f.c,
        n_train=f.n_train,
        n_eval=f.n_eval,
        torch=f.torch,
        jax_loop=f.jax_loop,
        sweep_rss=f.sweep_rss,
        peak_size=f.peak_size,
        scaling=f.scaling,
        main=f.main,
        large_run=f.large_run,
    )
    enable_float64()
    start = time.perf_counter()
    result = run_bench(options)
    result["bench_seconds"] = time.perf_counter() - start
    print_table(result)
    if json_path is not None:
        store.save_json(json_path, result)
        print(f"wrote {json_path}")


def run_cli() -> None:
    """Entry point of ``python -m specjax.bench`` and the ``specjax-bench`` script."""
    from absl import flags

    from specjax import cli

    cli.configure_cpu_devices()
    flags.DEFINE_bool("quick", False, "Shorter measurements (under 15 minutes on 2 cores).")
    flags.DEFINE_string("json", None, "Write the results here (JSON, atomically).")
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
    flags.DEFINE_string(
        "scaling", None, "Also measure run-steps/s against runs per device and width; plot to this PNG."
    )
    flags.DEFINE_bool("main", True, "Run the main comparison (off: only --scaling / --sweep_rss / --large_run).")
    flags.DEFINE_bool(
        "large_run", True, "Measure one large run (Fig. 8 at paper scale) on one device and split over all devices."
    )
    cli.run(main, PROG, compilation_cache="none")  # compile times are part of what it measures


if __name__ == "__main__":
    run_cli()
