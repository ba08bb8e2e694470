"""Helpers shared by the tests: the tiny configs, workdir snapshots, and running command lines cheaply.

Test files import from here, never from one another (``from test_resume import ...`` would run that file's module
code, fixtures and imports a second time under another name).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ml_collections

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "configs" / "tiny.py"
#: This pytest-xdist worker's name (``gw0``, ...; ``main`` without xdist): each worker keeps its own compilation
#: caches, since JAX writes cache entries in place and one worker could read another's half-written entry.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
#: Environment of command-line subprocesses: no inherited fake-device flags, unbuffered output, and their persistent
#: compilation cache in pytest's cache folder (not the user's ~/.cache/specjax).
CLI_ENV = {
    **os.environ,
    "XLA_FLAGS": "",
    "PYTHONUNBUFFERED": "1",
    "JAX_COMPILATION_CACHE_DIR": str(ROOT / ".pytest_cache" / "jax_cli" / WORKER),
}


def tiny_config(**overrides) -> ml_collections.ConfigDict:
    """experiments/configs/tiny.py (what ``--config=experiments/configs/tiny.py`` resolves) with ``overrides``."""
    spec = importlib.util.spec_from_file_location("tiny_config", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.get_config()
    for k, v in overrides.items():
        cfg[k] = v
    return cfg


def small_config(**overrides) -> ml_collections.ConfigDict:
    """One shape group, 2 learning rates x 2 seeds, 4 epochs in chunks of 25 steps; with the 4-device mesh, the same
    compiled program in the determinism, divergence, bad-input and resume tests (programs are shared within a
    process)."""
    base = dict(over_realization=(1,), teacher_polarity=(0.0,), seeds=2, epochs=4, chunk_steps=25, runs_per_block=2)
    return tiny_config(**(base | overrides))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (relative path -> bytes and modification time), to prove nothing was changed."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def listing(folder: Path) -> dict[str, tuple[str, bytes | None, int]]:
    """Every entry under ``folder`` and ``folder`` itself, links included (path -> kind, bytes of files, mode bits,
    modification time of files); ``{}`` if it does not exist. Stricter than :func:`snapshot`: a folder created or
    removed, or a mode changed, shows too."""
    if not os.path.lexists(folder):
        return {}
    out = {}
    for p in [folder, *sorted(folder.rglob("*"))]:
        st = p.lstat()
        kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
        data = p.read_bytes() if kind == "file" else None
        out[str(p.relative_to(folder))] = (kind, data, st.st_mode, st.st_mtime_ns if kind == "file" else 0)
    return out


# Runs each argv (a JSON list of lists on stdin) as ``python -m <module> <argv>`` in a child forked from one process
# that imported the package (and JAX) once; each child gets its own flags, stdout, stderr and exit status. The module
# is run with ``runpy`` exactly as ``python -m`` does, so a start-up warning (runpy's RuntimeWarning when the
# package imported its own ``__main__``) shows as it would. Prints JSON [{"rc", "stdout", "stderr"}, ...].
_DRIVER = textwrap.dedent(
    """
    import importlib, json, os, runpy, signal, sys, tempfile, traceback
    module, cases = json.load(sys.stdin)
    importlib.import_module(module.rsplit(".", 1)[0] if module.endswith(".__main__") else module)
    results = []
    for argv in cases:
        out_file, err_file = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        pid = os.fork()
        if pid == 0:
            os.dup2(out_file.fileno(), 1)
            os.dup2(err_file.fileno(), 2)
            signal.alarm(120)
            sys.argv = [module, *argv]
            code = 0
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        texts = []
        for f in (out_file, err_file):
            f.seek(0)
            texts.append(f.read().decode(errors="replace"))
            f.close()
        results.append({"rc": os.waitstatus_to_exitcode(status), "stdout": texts[0], "stderr": texts[1]})
    print(json.dumps(results))
    """
)


def run_module_cases(module: str, cases: list[list[str]], timeout: float = 600) -> list[dict]:
    """Runs ``python -m module *argv`` for every argv of ``cases``, paying Python's and JAX's start-up once.

    Returns:
      one ``{"rc": exit status, "stdout": str, "stderr": str}`` per case, in order.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps([module, cases]),
        capture_output=True,
        text=True,
        env=CLI_ENV,
        cwd=ROOT,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_module(module: str, argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m module *argv`` in a fresh interpreter, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, *argv], capture_output=True, text=True, env=CLI_ENV, cwd=ROOT, timeout=timeout
    )


def assert_refusal(rc: int, stdout: str, stderr: str, prog: str, pattern: str) -> None:
    """A command-line refusal: exit status 2, nothing on stdout, one line ``<prog>: error: ...`` on stderr that
    matches ``pattern`` (a regular expression), and no warning or traceback."""
    import re

    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2, (rc, stdout, stderr)
    assert stdout == "", stdout
    assert len(lines) == 1, stderr  # one line: no traceback, no warning
    assert "RuntimeWarning" not in stderr, stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert re.search(pattern, lines[0]), (pattern, lines[0])


def assert_groups_close(a: dict, b: dict, rtol: float, atol: float) -> None:
    """Two results files' arrays: the same keys, numbers equal to ``rtol``/``atol``, text (the sweep identity) equal."""
    import numpy as np

    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.kind in "US":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def assert_same_results(a: Path, b: Path) -> None:
    """Every array of ``results/*.npz`` and the whole of ``summary.json`` are bit-identical."""
    import numpy as np

    from specjax import store

    names = sorted(p.name for p in (a / "results").glob("*.npz"))
    assert names and names == sorted(p.name for p in (b / "results").glob("*.npz"))
    for name in names:
        x, y = store.load_npz(a / "results" / name), store.load_npz(b / "results" / name)
        assert sorted(x) == sorted(y), name
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, (name, k)
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name}:{k}", strict=True)
            assert x[k].tobytes() == y[k].tobytes(), f"{name}:{k} differs in its bits (NaN payload or -0.0)"
    assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()


def make_net(seed: int, widths, use_bias: bool = True) -> tuple:
    """A random net with layer widths ``widths`` from a local seeded NumPy generator (no global state)."""
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    return tuple(
        (jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a)), jnp.asarray(0.3 * rng.normal(size=b)) if use_bias else None)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    )


def gaussian_inputs(count: int, d: int, seed: int = 7):
    """``(count, d)`` standard normal inputs from a local seeded generator."""
    import jax.numpy as jnp
    import numpy as np

    return jnp.asarray(np.random.default_rng(seed).normal(size=(count, d)))


def assert_same_sweep_results(a, b) -> None:
    """Two in-memory :class:`~specjax.sweep.SweepResult`: every array and the whole summary equal bit for bit."""
    import numpy as np

    assert a.summary == b.summary
    assert len(a.arrays) == len(b.arrays)
    for x, y in zip(a.arrays, b.arrays, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            assert np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f"), k


class Interrupt(Exception):
    """Raised by :func:`interrupt_after`'s progress function to stop a sweep in-process."""


def interrupt_after(lines: int, seen: list | None = None):
    """A progress function that records lines in ``seen`` and raises :class:`Interrupt` at the ``lines``-th."""
    seen = [] if seen is None else seen

    def progress(line: str) -> None:
        seen.append(line)
        if len(seen) >= lines:
            raise Interrupt(line)

    return progress
