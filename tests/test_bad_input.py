"""Bad input: each case stops with one clear line naming the field or file, a non-zero exit (the command line) or a
``ValueError`` subclass (the library), before any compute, and loses or writes nothing.

The command-line cases run the real ``specjax.sweep`` entry point. To keep them fast, one helper process imports
the package once and forks a fresh child per case (own flags, own stderr, own exit status), instead of paying the
Python + JAX start-up for each. The table of cases is in docs/reliability.md.
"""

import importlib
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from test_resume import TINY, small_config, snapshot, tiny_config

from specjax import config as config_lib
from specjax import store
from specjax.core import metrics
from specjax.core import networks
from specjax import sweep
from specjax.engine import make_mesh

ROOT = Path(__file__).resolve().parents[1]
PROG = "specjax.sweep: error: "

# Runs each argv (a JSON list of lists on stdin) through specjax.sweep.run_cli in a forked child; prints JSON
# [{"rc": exit status, "out": stdout+stderr}, ...].
DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys, traceback
    import specjax.sweep.__main__
    results = []
    for argv in json.load(sys.stdin):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            signal.alarm(120)
            sys.argv = ["specjax.sweep", *argv]
            code = 0
            try:
                specjax.sweep.__main__.run_cli()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as f:
            out = f.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        results.append({"rc": os.waitstatus_to_exitcode(status), "out": out})
    print(json.dumps(results))
    """
)


def run_cli_cases(cases: list[list[str]]) -> list[dict]:
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER], input=json.dumps(cases), capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------------------------------------------
# The command line. Each case: (id, extra argv, regex the one error line must match, how the workdir is set up).
# Workdir kinds: "new" (must still not exist afterwards), or the name of a set-up function below whose folder must
# be unchanged afterwards, file for file and byte for byte.

CLI_CASES = [
    ("lr_not_a_number", ["--config.lr=abc"], r"config\.lr: values must be finite numbers, got 'abc'", "new"),
    ("lr_negative", ["--config.lr=-0.1"], r"config\.lr: values must be > 0, got -0\.1", "new"),
    ("batch_size_zero", ["--config.batch_size=0"], r"config\.batch_size: must be an integer >= 1, got 0", "new"),
    ("seeds_zero", ["--config.seeds=0"], r"config\.seeds: must be an integer >= 1, got 0", "new"),
    ("epochs_not_int", ["--config.epochs=1.5"], r"flag --config\.epochs=1\.5: invalid literal for int", "new"),
    ("data_std_zero", ["--config.data_std=0.0"], r"config\.data_std: values must be > 0, got 0\.0", "new"),
    ("over_realization_zero", ["--config.over_realization=(0,)"], r"config\.over_realization: .* >= 1", "new"),
    ("unknown_activation", ["--config.activation=tanh"], r"config\.activation: unknown value 'tanh'", "new"),
    ("unknown_dtype", ["--config.dtype=float16"], r"config\.dtype: unknown value 'float16'", "new"),
    ("polarity_not_finite", ["--config.teacher_polarity=(0.0,inf)"], r"config\.teacher_polarity: .*finite", "new"),
    ("batch_above_train_set", ["--config.batch_size=512"], r"config\.batch_size: 512 is larger than .*256", "new"),
    ("inconsistent_widths", ["--config.m=1", "--config.c=20"], r"config\.c: c=20 is inconsistent with m=1", "new"),
    ("unknown_field", ["--config.learning_rate=0.1"], r"--config\.learning_rate: unknown config field", "new"),
    ("field_of_a_scalar", ["--config.lr.x=1"], r"--config\.lr\.x: unknown config field", "new"),
    ("too_many_devices", ["--config.num_devices=64"], r"config\.num_devices: 64 requested but only", "new"),
    ("bad_bool_flag", ["--overwrite=maybe"], r"flag --overwrite=maybe: .*Non-boolean", "new"),
    ("stray_argument", ["extra"], r"unexpected argument\(s\) \['extra'\]", "new"),
    ("workdir_is_a_file", [], r"workdir exists and is not a directory", "regular_file"),
    ("workdir_under_a_file", [], r"/sub: workdir cannot be written \(Not a directory\)", "under_regular_file"),
    ("workdir_other_config", [], r"holds a sweep with a different config \(fields \['lr'\]\)", "other_config"),
    ("workdir_not_a_sweep", [], r"not empty \(notes\.txt, results\) and holds no sweep", "foreign_folder"),
    ("workdir_not_a_sweep_overwrite", ["--overwrite"], r"not empty .* and holds no sweep", "foreign_folder"),
    ("workdir_config_json_corrupt", [], r"config\.json: not valid JSON .*--overwrite", "corrupt_config_json"),
    ("checkpoint_garbage", [], r"group0_wave0\.npz: not a readable \.npz file.*delete that file", "garbage_ckpt"),
    ("checkpoint_truncated", [], r"group0_wave0\.npz: not a readable \.npz file", "truncated_ckpt"),
    ("checkpoint_bit_flip", [], r"group0_wave0\.npz: not a readable \.npz file", "flipped_ckpt"),
    ("checkpoint_wrong_arrays", [], r"group0_wave0\.npz: missing array\(s\) \['format'", "foreign_npz_ckpt"),
]

CONFIG_FILE_CASES = [
    ("config_file_missing", "missing.py", None, r"--config: config file not found: .*missing\.py"),
    ("config_file_syntax", "syntax.py", "def get_config(:\n", r"cannot load config file .*syntax\.py \(SyntaxError"),
    ("config_file_no_get_config", "noget.py", "x = 1\n", r"noget\.py defines no get_config\(\)"),
    (
        "config_file_raises",
        "raises.py",
        "def get_config():\n    raise ValueError('boom')\n",
        r"raises\.py \(ValueError: boom\)",
    ),
    ("config_file_not_a_config", "three.py", "def get_config():\n    return 3\n", r"returned int, expected a Config"),
    (
        "config_file_unknown_field",
        "extra.py",
        "from specjax.config import default_config\ndef get_config():\n    c = default_config()\n"
        "    c.learning_rate = 0.1\n    return c\n",
        r"config\.learning_rate: unknown field",
    ),
]


@pytest.fixture(scope="module")
def real_checkpoints(tmp_path_factory):
    """A finished small sweep's workdir (real checkpoints to damage); shares its program with the other tests."""
    wd = tmp_path_factory.mktemp("real")
    sweep.run_sweep(small_config(), wd, progress=None, mesh=make_mesh(4))
    return wd


def tiny_workdir(wd: Path, **overrides) -> Path:
    """A folder that holds the tiny config (what the CLI resolves), as a sweep would have left it."""
    wd.mkdir(parents=True)
    store.save_json(wd / "config.json", {"config": config_lib.to_plain(tiny_config(**overrides))})
    (wd / "checkpoints").mkdir()
    (wd / "results").mkdir()
    write(wd / "summary.json", '{"groups": []}\n')
    return wd


def set_up(kind: str, base: Path, real: Path) -> Path:
    """Creates the workdir of a case; returns the path passed as --workdir."""
    if kind == "new":
        return base / "wd"
    if kind == "regular_file":
        return write(base / "a_file", "keep me\n")
    if kind == "under_regular_file":
        return write(base / "a_file", "keep me\n") / "sub"
    if kind == "other_config":
        return tiny_workdir(base / "wd", lr=(0.2,))
    if kind == "foreign_folder":
        write(base / "wd" / "notes.txt", "mine\n")
        write(base / "wd" / "results" / "thesis.npz", "precious\n")
        return base / "wd"
    if kind == "corrupt_config_json":
        wd = tiny_workdir(base / "wd")
        write(wd / "config.json", '{"config": {"lr": [0.1')
        return wd
    wd = tiny_workdir(base / "wd")
    ckpt0 = wd / "checkpoints" / "group0_wave0.npz"
    good0 = (real / "checkpoints" / "group0_wave0.npz").read_bytes()
    if kind == "garbage_ckpt":
        ckpt0.write_bytes(b"\x00garbage" * 100)
    elif kind == "truncated_ckpt":
        ckpt0.write_bytes(good0[: len(good0) * 2 // 3])
    elif kind == "flipped_ckpt":
        damaged = bytearray(good0)
        damaged[len(damaged) // 2] ^= 0xFF  # inside an array's data: caught by the zip CRC
        ckpt0.write_bytes(bytes(damaged))
    elif kind == "foreign_npz_ckpt":
        np.savez(ckpt0, weights=np.zeros(3))
    else:
        raise AssertionError(kind)
    return wd


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory, real_checkpoints):
    """Runs every command-line case once; maps case id to (rc, output, workdir that must not appear, snapshot of the
    case's folder before)."""
    root = tmp_path_factory.mktemp("cli")
    argvs, meta = [], {}
    for case_id, extra, _, kind in CLI_CASES:
        base = root / case_id
        base.mkdir()
        wd = set_up(kind, base, real_checkpoints)
        meta[case_id] = (wd if kind == "new" else None, snapshot(base))
        argvs.append([f"--config={TINY}", f"--workdir={wd}", *extra])
    for case_id, name, text, _ in CONFIG_FILE_CASES:
        base = root / case_id
        base.mkdir()
        path = base / name
        if text is not None:
            write(path, text)
        meta[case_id] = (base / "wd", snapshot(base))
        argvs.append([f"--config={path}", f"--workdir={base / 'wd'}"])
    argvs.append([f"--config={TINY}"])  # no --workdir
    out = run_cli_cases(argvs)
    results = {case_id: (r["rc"], r["out"], *meta[case_id]) for case_id, r in zip(meta, out, strict=False)}
    results["workdir_missing"] = (out[-1]["rc"], out[-1]["out"], None, None)
    return results, root


def check_one_line(rc: int, out: str, pattern: str) -> None:
    lines = [line for line in out.splitlines() if line.strip()]
    assert rc == 2, out
    assert len(lines) == 1, out  # one line, no traceback
    assert lines[0].startswith(PROG), lines[0]
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("case_id", [c[0] for c in CLI_CASES + CONFIG_FILE_CASES])
def test_cli_bad_input(cli_results, case_id):
    results, root = cli_results
    rc, out, wd, before = results[case_id]
    pattern = dict((c[0], c[2]) for c in CLI_CASES) | dict((c[0], c[3]) for c in CONFIG_FILE_CASES)
    check_one_line(rc, out, pattern[case_id])
    assert snapshot(root / case_id) == before  # nothing written, nothing lost
    if wd is not None:
        assert not wd.exists()  # not even created


def test_cli_missing_workdir(cli_results):
    rc, out, _, _ = cli_results[0]["workdir_missing"]
    check_one_line(rc, out, r"flag --workdir=None: Flag --workdir must have a value")


# ----------------------------------------------------------------------------------------------------------------
# The library.


def test_run_sweep_bad_config_writes_nothing(tmp_path):
    wd = tmp_path / "wd"
    for field, value, pattern in (
        ("lr", (0.1, float("nan")), r"config\.lr: values must be finite"),
        ("teacher_polarity", (float("inf"),), r"config\.teacher_polarity: values must be finite"),
        ("n_eval", 0, r"config\.n_eval: must be an integer >= 1"),
        ("n_train", -1, r"config\.n_train: must be an integer >= 0, got -1"),
        ("teacher_widths", (3, 0), r"config\.teacher_widths: must be a non-empty sequence of positive integers"),
    ):
        with pytest.raises(config_lib.ConfigError, match=pattern):
            sweep.run_sweep(small_config(**{field: value}), wd, progress=None)
        assert not wd.exists()
    deep = small_config(teacher="deep", d=2, teacher_widths=(100,), c=4)
    with pytest.raises(config_lib.ConfigError, match=r"config\.teacher_widths: teacher_widths\[0\]=100 .* d=2"):
        sweep.run_sweep(deep, wd, progress=None)
    with pytest.raises(config_lib.ConfigError, match=r"config: expected an ml_collections\.ConfigDict, got dict"):
        sweep.run_sweep({"lr": 0.1}, wd, progress=None)
    assert not wd.exists()


def test_run_sweep_damaged_checkpoint_stops_before_compute_and_keeps_everything(tmp_path, real_checkpoints):
    wd = tmp_path / "wd"
    for name in ("config.json", "summary.json", "results/group0.npz", "checkpoints/group0_wave0.npz"):
        write(wd / name, "").write_bytes((real_checkpoints / name).read_bytes())
    ckpt = wd / "checkpoints" / "group0_wave0.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:-100])  # the zip directory is at the end
    before = snapshot(wd)
    with pytest.raises(store.StoreError, match=r"group0_wave0\.npz: not a readable \.npz file.*--overwrite"):
        sweep.run_sweep(small_config(), wd, progress=None, mesh=make_mesh(4))
    assert snapshot(wd) == before


def test_store_never_unpickles(tmp_path):
    path = tmp_path / "results.npz"
    np.savez(path, eval_loss=np.array([object()], dtype=object))  # an object array is stored as a pickle
    with pytest.raises(store.StoreError, match=r"results\.npz: not a readable \.npz file .*pickle"):
        store.load_npz(path)
    pickled = tmp_path / "payload.npz"
    pickled.write_bytes(pickle.dumps({"eval_loss": [1.0]}))
    with pytest.raises(store.StoreError, match=r"payload\.npz: not a readable \.npz file"):
        store.load_npz(pickled)
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(store.StoreError, match=r"single\.npz: .*not an \.npz archive"):
        store.load_npz(npy)
    with pytest.raises(store.StoreError, match=r"missing\.npz: file not found"):
        store.load_npz(tmp_path / "missing.npz")
    with pytest.raises(store.StoreError, match=r"results\.npz: array 'x' has dtype object"):
        store.save_npz(path, {"x": np.array([None], dtype=object)})


def test_load_results_names_the_missing_or_damaged_file(tmp_path, real_checkpoints):
    with pytest.raises(store.StoreError, match=r"nowhere/config\.json: file not found"):
        sweep.load_results(tmp_path / "nowhere")
    wd = tmp_path / "wd"
    for name in ("config.json", "summary.json", "results/group0.npz"):
        write(wd / name, "").write_bytes((real_checkpoints / name).read_bytes())
    assert len(sweep.load_results(wd).arrays) == 1
    (wd / "results" / "group0.npz").unlink()
    with pytest.raises(store.StoreError, match=r"results/group0\.npz: file not found"):
        sweep.load_results(wd)
    np.savez(wd / "results" / "group0.npz", something_else=np.zeros(2))
    with pytest.raises(store.StoreError, match=r"group0\.npz: missing array 'eval_epochs'"):
        sweep.load_results(wd)
    write(wd / "config.json", json.dumps({"config": {"lr": [-1.0]}}))
    with pytest.raises(store.StoreError, match=r"config\.json: config\.lr: values must be > 0"):
        sweep.load_results(wd)


def test_store_write_to_unwritable_place_names_the_file(tmp_path):
    blocker = write(tmp_path / "blocker", "x")
    with pytest.raises(store.StoreError, match=r"blocker/out\.json: cannot write"):
        store.save_json(blocker / "out.json", {"a": 1})
    with pytest.raises(store.StoreError, match=r"blocker/sub: workdir cannot be written"):
        store.check_writable(blocker / "sub")
    assert blocker.read_text() == "x"


@pytest.mark.parametrize(
    "teacher_acts, student_acts, pattern",
    [
        (jnp.ones(5), jnp.ones((5, 2)), r"teacher_acts: expected a 2-D array \(N samples, nodes\), got shape \(5,\)"),
        (jnp.ones((5, 3)), jnp.ones((4, 2)), r"student_acts: 4 samples, but teacher_acts has 5"),
        (
            jnp.ones((5, 3), jnp.int32),
            jnp.ones((5, 2)),
            r"teacher_acts: expected a floating-point array, got dtype int32",
        ),
        (jnp.ones((5, 3)), [[1.0, 2.0]] * 5, r"student_acts: expected a 2-D array .* got shape None"),
    ],
)
def test_correlation_rejects_wrong_shapes_and_dtypes(teacher_acts, student_acts, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.correlation(teacher_acts, student_acts)


def _params(widths, bias=True):
    return tuple(
        (jnp.ones((a, b)), jnp.zeros((b,)) if bias else None) for a, b in zip(widths[:-1], widths[1:], strict=True)
    )


@pytest.mark.parametrize(
    "params, x, pattern",
    [
        (
            _params((4, 3, 2)),
            jnp.ones((7, 5)),
            r"params\[0\] W: shape \(4, 3\) needs fan_in 4, but x\.shape\[-1\] is 5",
        ),
        (_params((4, 3, 2)), jnp.ones((7, 4), jnp.int32), r"x: expected a floating-point array, got dtype int32"),
        (
            (*_params((4, 3)), (jnp.ones((2, 2)), None)),
            jnp.ones((7, 4)),
            r"params\[1\] W: shape \(2, 2\) needs fan_in 2, but params\[0\] fan_out is 3",
        ),
        (((jnp.ones((4, 3)), jnp.zeros(2)),), jnp.ones(4), r"params\[0\] b: shape \(2,\) does not end in fan_out 3"),
        ((), jnp.ones(4), r"params: expected a non-empty sequence of \(W, b\) layers"),
        ((jnp.ones((4, 3)),), jnp.ones(4), r"params\[0\]: expected a \(W, b\) pair"),
        (_params((4, 2)), [1.0, 2.0, 3.0, 4.0], r"x: expected an array of shape \(\.\.\., d\), got list"),
    ],
)
def test_forward_rejects_wrong_shapes_and_dtypes(params, x, pattern):
    with pytest.raises(ValueError, match=pattern):
        networks.forward(params, x)


def test_forward_rejects_unknown_activation():
    with pytest.raises(ValueError, match=r"activation: unknown value 'tanh'"):
        networks.forward(_params((4, 2)), jnp.ones(4), activation="tanh")


def test_forward_checks_also_fire_under_jit_and_vmap():
    import jax

    with pytest.raises(ValueError, match=r"needs fan_in 4, but x\.shape\[-1\] is 5"):
        jax.jit(jax.vmap(lambda x: networks.apply(_params((4, 2)), x)))(jnp.ones((3, 5)))


# ----------------------------------------------------------------------------------------------------------------
# Dataset paths (the CIFAR-10 loader, written alongside this file: tested where present).


def load_cifar10():
    """``load_cifar10`` from wherever the image-data module puts it; skips the test where it does not exist yet."""
    for module in ("specjax.realdata.images", "specjax.realdata.experiment"):
        try:
            return importlib.import_module(module).load_cifar10
        except (ImportError, AttributeError):
            continue
    pytest.skip("no CIFAR-10 loader in this tree")


def test_cifar10_directory_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 directory not found: .*nowhere"):
        load_cifar10()(tmp_path / "nowhere")


def test_cifar10_batches_missing_or_in_the_wrong_format(tmp_path):
    loader = load_cifar10()
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 batch not found: .*data_batch_1"):
        loader(folder)
    (folder / "data_batch_1").write_bytes(b"this is not a pickle")
    with pytest.raises(ValueError, match=r"data_batch_1: not a CIFAR-10 python batch"):
        loader(folder, train_batch_names=("data_batch_1",))
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"data_batch_1: b'data' has shape \(2, 10\); expected \(N, 3072\)"):
        loader(folder, train_batch_names=("data_batch_1",))
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump(os.system, f)  # a pickle that would call a function: refused, never executed
    with pytest.raises(ValueError, match=r"data_batch_1: not a CIFAR-10 python batch .*not allowed"):
        loader(folder, train_batch_names=("data_batch_1",))


@pytest.mark.parametrize(
    "value, pattern", [(-1.0, r"must be >= 0, got -1.0"), (float("inf"), r"must be a finite number")]
)
def test_bad_checkpoint_interval_is_refused(value, pattern):
    with pytest.raises(config_lib.ConfigError, match=r"config\.checkpoint_every_s: " + pattern):
        config_lib.validate(tiny_config(checkpoint_every_s=value))
