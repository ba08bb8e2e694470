"""Wall time of one sweep run several ways on this machine, side by side: one process, two ``jax.distributed``
processes, two array-job shards at once, two shards one after the other; checks all give identical results.

    python experiments/scaleout_timing.py [--workdir=/tmp/scaleout] [--epochs=10]

The workload is experiments/configs/quickstart.py (48 runs, float32) with ``--epochs``. Each variant runs with the
programs' own core layout (``specjax.cli.cpu_layout``: one process takes every core; two ``jax.distributed``
processes on this machine take half each; concurrent shards are given ``--cpus`` = half), and two variants
repeat the old layout in which every process took every core as a device (``XLA_FLAGS`` forcing the count), which
oversubscribes the machine. The first (untimed) sweeps fill JAX's persistent compilation cache, so no variant pays
for compiling. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "configs" / "quickstart.py"


def sweep_cmd(workdir: Path, epochs: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "specjax.sweep", f"--config={CONFIG}", f"--config.epochs={epochs}",
            f"--workdir={workdir}", f"--compilation_cache={workdir.parent / 'cache'}", *extra]  # fmt: skip


def run_all(cmds: list[list[str]], devices: int | None = None) -> float:
    """Starts every command at once, each with ``devices`` CPU devices forced by ``XLA_FLAGS`` (``None``: the
    program's own layout); returns the wall time until all exit."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    start = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"{' '.join(p.args)} failed: {err.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/specjax_scaleout")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    base = Path(args.workdir)
    shutil.rmtree(base, ignore_errors=True)
    cores = os.cpu_count() or 2
    half = max(1, cores // 2)
    run_all([sweep_cmd(base / "warm", args.epochs)])  # compile once, into the shared cache
    run_all([sweep_cmd(base / "warm-half", args.epochs, "--num_shards=2", f"--shard_index={i}") for i in (0, 1)], half)
    for i in (0, 1):
        run_all([sweep_cmd(base / "warm-seq", args.epochs, "--num_shards=2", f"--shard_index={i}")])

    def dist() -> list[str]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return [f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2"]

    times = {}
    times["one process"] = run_all([sweep_cmd(base / "one", args.epochs)])
    d = dist()
    times["two processes"] = run_all([sweep_cmd(base / "procs", args.epochs, *d, f"--process_id={i}") for i in (0, 1)])
    d = dist()
    times["two processes, every core each (old)"] = run_all(
        [sweep_cmd(base / "procs-all", args.epochs, *d, f"--process_id={i}") for i in (0, 1)], cores
    )
    shard = [
        sweep_cmd(base / "shards", args.epochs, "--num_shards=2", f"--shard_index={i}", f"--cpus={half}")
        for i in (0, 1)
    ]
    times["two shards at once"] = run_all(shard)
    shard = [sweep_cmd(base / "shards-all", args.epochs, "--num_shards=2", f"--shard_index={i}") for i in (0, 1)]
    times["two shards at once, every core each (old)"] = run_all(shard, cores)
    seq = [sweep_cmd(base / "seq", args.epochs, "--num_shards=2", f"--shard_index={i}") for i in (0, 1)]
    times["two shards in turn"] = run_all([seq[0]]) + run_all([seq[1]])

    import numpy as np

    from specjax import sweep

    ref = sweep.load_results(base / "one")
    differ = []
    for name, folder in zip(times, ("one", "procs", "procs-all", "shards", "shards-all", "seq"), strict=True):
        got = sweep.load_results(base / folder)
        same = got.summary == ref.summary and all(
            np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f")
            for a, b in zip(got.arrays, ref.arrays, strict=True)
            for k in a
        )
        if not same:
            differ.append(name)
    print(
        f"quickstart x {args.epochs} epochs on {cores} cores ({time.strftime('%Y-%m-%d %H:%M')}, load average "
        f"{os.getloadavg()[0]:.1f}); results " + (f"DIFFER in: {', '.join(differ)}" if differ else "identical")
    )
    for name, t in times.items():
        print(f"  {name:42s} {t:7.1f} s  ({t / times['one process']:.2f}x one process)")
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
