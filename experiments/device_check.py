"""The device check's measurements (run by experiments/device_check.sh): GPU-relevant tests, the benchmark, compile
time and kernels per SGD step from the compiled HLO, and the paper's two-layer sweep timed end to end.

    python experiments/device_check.py --out DIR [--tiny]

Every phase runs under its own time limit and records what it got (a phase that fails or runs out of time is
recorded as such; the others still run). Writes ``DIR/device_check.json`` and prints a short table last. ``--tiny``
(or ``SPECJAX_DEVICE_CHECK_SCALE=tiny``) shrinks every phase to seconds, for the CPU test of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Per-phase time limits (seconds) at full scale: under 8 minutes in all on an H200, most of it for the sweep (a
#: sweep cut short resumes from its checkpoints when the check runs again with the same --out).
FULL = {
    "tests": 60,
    "bench": 90,
    "kernels": 40,
    "sweep": 270,
    "tests_k": "accelerator or shards_in_any_order or gradient or batch_indices or correlation",
    "test_files": ["tests/test_scaleout.py", "tests/test_train_fast.py"],
    "over_realization": (1, 2, 5, 10),
    "bench_args": ["--quick", "--notorch", "--nojax_loop", "--runs_per_device=192"],
    "kernel_runs": 192,
    "sweep_config": "experiments/configs/two_layer.py",
    "sweep_overrides": [],
}
TINY = {
    "tests": 120,
    "bench": 120,
    "kernels": 60,
    "sweep": 120,
    "tests_k": "assign_shards",
    "test_files": ["tests/test_scaleout.py"],
    "over_realization": (1,),
    "bench_args": [
        "--quick",
        "--notorch",
        "--nojax_loop",
        "--runs_per_device=2",
        "--over_realization=1",
        "--d=8",
        "--m=3",
        "--c=4",
        "--n_train=64",
        "--n_eval=64",
        "--peak_size=64",
    ],  # fmt: skip
    "kernel_runs": 4,
    "sweep_config": "experiments/configs/tiny.py",
    "sweep_overrides": ["--config.over_realization=(1,)", "--config.epochs=2", "--config.seeds=2"],
}


def run_phase(cmd: list[str], limit_s: float, log: Path, env: dict | None = None) -> dict:
    """Runs ``cmd`` with a time limit, its output to ``log``; returns status, seconds and the output's tail."""
    start = time.perf_counter()
    with open(log, "w") as f:
        try:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=limit_s, env=env)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = f"timeout after {limit_s:.0f} s"
    tail = log.read_text(errors="replace").splitlines()[-5:]
    return {"status": status, "seconds": round(time.perf_counter() - start, 1), "log": str(log), "tail": tail}


def hlo_loop_kernels(hlo: str) -> dict[str, int]:
    """Kernels per iteration of the largest ``while`` body in compiled HLO text (the scan over SGD steps):
    ``fusion``, ``custom-call`` (library GEMMs), and every other top-level instruction that launches work."""
    bodies = set(re.findall(r"body=%?([\w.\-]+)", hlo))
    computations = {}
    for m in re.finditer(r"^(?:ENTRY )?%?([\w.\-]+) [^\n]*\{\n(.*?)^\}", hlo, re.S | re.M):
        computations[m.group(1)] = m.group(2)
    free = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all", "opt-barrier"}
    best: dict[str, int] = {}
    for name in bodies & set(computations):
        ops = re.findall(r"=\s*[^=]*?\s([a-z][\w\-]*)\(", computations[name])
        counts = {"fusion": 0, "custom-call": 0, "other": 0}
        for op in ops:
            if op in free:
                continue
            counts[op if op in counts else "other"] += 1
        counts["total"] = counts["fusion"] + counts["custom-call"] + counts["other"]
        if counts["total"] > best.get("total", -1):
            best = counts
    return best


def measure_kernels(cfg: dict, out: dict) -> None:
    """Compile time and kernels per SGD step of the train program, per over-realization and dtype."""
    import jax
    import jax.numpy as jnp

    import specjax
    from specjax.engine import Hparams, Program, Spec, seed_key
    from specjax.sweep.plan import is_accelerator
    from specjax.sweep.run import local_mesh

    specjax.enable_float64()
    runs = cfg["kernel_runs"]
    tiny = cfg is TINY
    for over in cfg["over_realization"]:
        for dtype in ("float32", "float64"):
            widths = dict(d=8, teacher_widths=(3,), c=4, n_train=64, n_eval=64) if tiny else {}
            spec = Spec(over_realization=over, dtype=dtype, cpu_gemm_layout=not is_accelerator(), **widths)
            program = Program(spec, 1000, local_mesh(1))
            keys = jax.vmap(seed_key, (None, 0))(1, jnp.arange(runs))
            hp, keys = program.place((Hparams.broadcast(runs, dtype=dtype), keys))
            teacher, data, state = program.init(hp, keys)
            with jax.default_matmul_precision("highest"):
                t0 = time.perf_counter()
                compiled = program.train.lower(state, teacher, data, hp).compile()
                compile_s = time.perf_counter() - t0
            kernels = hlo_loop_kernels(compiled.as_text())
            out[f"x{over}/{dtype}"] = {"compile_s": round(compile_s, 2), "kernels_per_step": kernels, "runs": runs}


def sweep_summary(workdir: Path) -> dict:
    """Progress of the timed sweep from its metrics log: evaluations logged and the last rates."""
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rates = {}
    for rec in lines:
        key = f"x{rec['over_realization']}"
        rates[key] = max(rates.get(key, 0.0), rec["run_steps_per_s"])
    return {"evaluations_logged": len(lines), "run_steps_per_s_by_group": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/specjax_device_check"))
    parser.add_argument("--tiny", action="store_true", default=os.environ.get("SPECJAX_DEVICE_CHECK_SCALE") == "tiny")
    args = parser.parse_args()
    cfg = TINY if args.tiny else FULL
    out = Path(args.out).resolve()  # the phases run in the repository root
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result: dict = {"scale": "tiny" if args.tiny else "full", "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    import jax

    result["backend"] = jax.default_backend()
    result["devices"] = [str(d) for d in jax.local_devices()]
    result["jax"] = jax.__version__

    # 1. Tests that make sense on a GPU: the accelerator plan, shards, sharding, the hand-written gradient.
    cmd = [py, "-m", "pytest", "-q", "-x", *cfg["test_files"], "-k", cfg["tests_k"], "-p", "no:cacheprovider"]
    result["tests"] = run_phase(cmd, cfg["tests"], out / "tests.log", env)

    # 2. The benchmark on this device (run-steps/s per over-realization, float32 and float64).
    bench_json = out / "bench.json"
    cmd = [py, "-m", "specjax.bench", *cfg["bench_args"], f"--json={bench_json}"]
    result["bench"] = run_phase(cmd, cfg["bench"], out / "bench.log", env)
    if bench_json.exists():
        result["bench"]["result"] = json.loads(bench_json.read_text())

    # 3. Compile time and kernels per SGD step of the train program (compiled HLO).
    start = time.perf_counter()
    kernels: dict = {}
    try:
        measure_kernels(cfg, kernels)
        result["kernels"] = {"status": "ok", "by_group": kernels}
    except Exception as e:  # noqa: BLE001 -- record and go on to the sweep
        result["kernels"] = {"status": f"error: {type(e).__name__}: {e}", "by_group": kernels}
    result["kernels"]["seconds"] = round(time.perf_counter() - start, 1)

    # 4. The paper's two-layer sweep (768 runs x 1e5 steps, float64, 10k-point evaluation every epoch), timed.
    workdir = out / "sweep"
    cmd = [
        py,
        "-m",
        "specjax.sweep",
        f"--config={cfg['sweep_config']}",
        *cfg["sweep_overrides"],
        f"--workdir={workdir}",
    ]
    result["sweep"] = run_phase(cmd, cfg["sweep"], out / "sweep.log", env)
    result["sweep"].update(sweep_summary(workdir))
    result["sweep"]["finished"] = (workdir / "summary.json").exists()

    (out / "device_check.json").write_text(json.dumps(result, indent=1, default=str))
    print_table(result, out / "device_check.json")


def print_table(result: dict, path: Path) -> None:
    print(f"\ndevice check ({result['scale']} scale) on {result['backend']}: {', '.join(result['devices'][:2])}")
    for phase in ("tests", "bench", "kernels", "sweep"):
        r = result[phase]
        print(f"  {phase:8s} {r['status']:24.24s} {r['seconds']:8.1f} s")
    for name, k in result["kernels"]["by_group"].items():
        per = k["kernels_per_step"]
        print(f"  {name:12s} compile {k['compile_s']:6.2f} s | kernels/step {per.get('total', '?')} "
              f"(fusion {per.get('fusion', '?')}, custom-call {per.get('custom-call', '?')})")  # fmt: skip
    for group, rate in result["sweep"].get("run_steps_per_s_by_group", {}).items():
        print(f"  sweep {group:6s} {rate:14,.0f} run-steps/s")
    print(f"  sweep finished: {result['sweep']['finished']} in {result['sweep']['seconds']:.1f} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
