"""The command lines: ``python -m specjax.sweep`` (and the ``specjax-sweep`` script), ``python -m specjax.figures``
and ``python -m specjax.bench`` start without a warning, and every refusal is one line on stderr naming the field or
path, exit status 2, nothing on stdout, and nothing in the workdir changed (every entry, its bytes and mode).

Most cases run through :func:`helpers.run_module_cases`: one process imports the package once and forks a child per
case that runs the module exactly as ``python -m`` does. A few run as real ``python -m`` subprocesses (and the
console script) to prove the forked form behaves the same. The table of cases is in docs/reliability.md.
"""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CLI_ENV, ROOT, TINY, assert_refusal, listing, run_module, run_module_cases, tiny_config

from specjax import config as config_lib
from specjax import store
from specjax.sweep.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEYS
from specjax.sweep.schema import recorded_names
from specjax.sweep.workdir import sweep_id, workdir_lock

SWEEP = "specjax.sweep"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def tiny_workdir(wd: Path, **overrides) -> Path:
    """A folder that holds the tiny config (what the command line resolves), as a sweep would have left it."""
    wd.mkdir(parents=True)
    cfg = tiny_config(**overrides)
    store.save_json(wd / "config.json", {"config": config_lib.to_plain(cfg), "sweep_id": sweep_id(cfg)})
    (wd / "checkpoints").mkdir()
    (wd / "results").mkdir()
    write(wd / "summary.json", '{"groups": []}\n')
    return wd


def checkpoint_bytes(sweep: str) -> bytes:
    """A well-formed checkpoint file (every identity key, 80 kB of state) of the sweep with identity ``sweep``."""
    arrays = {k: np.array(0) for k in CHECKPOINT_KEYS} | {"format": np.array(CHECKPOINT_FORMAT)}
    arrays |= {"sweep_id": np.array(sweep), "recorded": np.array(recorded_names())}
    arrays |= {"state/0/0": np.arange(10_000, dtype=np.float64)}
    return npz_bytes(arrays)


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def damaged_checkpoint(base: Path, damage) -> Path:
    wd = tiny_workdir(base / "wd")
    good = checkpoint_bytes(sweep_id(tiny_config()))
    (wd / "checkpoints" / "group0_wave0.npz").write_bytes(damage(good))
    return wd


def flip_a_bit(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF  # inside the state array's data: caught by the zip CRC
    return bytes(damaged)


def set_up(kind: str, base: Path) -> Path:
    """Creates the folder of a case under ``base``; returns the path passed as ``--workdir``."""
    if kind == "new":
        return base / "wd"
    if kind == "regular_file":
        return write(base / "a_file", "keep me\n")
    if kind == "under_regular_file":
        return write(base / "a_file", "keep me\n") / "sub"
    if kind == "name_too_long":
        return base / ("x" * 300)
    if kind == "read_only":
        (base / "ro").mkdir()
        (base / "ro").chmod(0o500)
        return base / "ro" / "wd"
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
    if kind == "figure_path_is_a_directory":
        wd = tiny_workdir(base / "wd")
        (wd / "success_rate.pdf").mkdir()
        write(wd / "success_rate.pdf" / "inside.txt", "mine\n")
        return wd
    if kind == "locked":
        return tiny_workdir(base / "wd")
    damages = {
        "garbage_ckpt": lambda good: b"\x00garbage" * 100,
        "truncated_ckpt": lambda good: good[: len(good) * 2 // 3],
        "flipped_ckpt": flip_a_bit,
        "foreign_npz_ckpt": lambda good: npz_bytes({"weights": np.zeros(3)}),
        "other_sweep_ckpt": lambda good: checkpoint_bytes("0123456789abcdef"),
    }
    return damaged_checkpoint(base, damages[kind])


# Each case: (id, extra argv, regex the one error line must match, how the folder is set up). Kind "new": the
# workdir must still not exist afterwards; every case's folder must be unchanged, entry for entry, byte for byte.
SWEEP_CASES = [
    ("cpus_zero", ["--cpus=0"], r"flag --cpus=0: 0 is not a positive integer", "new"),
    ("devices_per_run_3", ["--config.devices_per_run=3"], r"config\.devices_per_run: 3 does not divide the \d", "new"),
    ("lr_not_a_number", ["--config.lr=abc"], r"config\.lr: values must be finite numbers, got 'abc'", "new"),
    ("lr_negative", ["--config.lr=-0.1"], r"config\.lr: values must be > 0, got -0\.1", "new"),
    ("lr_duplicated", ["--config.lr=(0.1,0.1)"], r"config\.lr: values must be distinct", "new"),
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
    ("log_file_is_a_directory", ["--log_file=LOG"], r"/log: cannot open the log file \(Is a directory\)", "new"),
    (
        "coordinator_alone",
        ["--coordinator_address=localhost:1"],
        r"--coordinator_address: needs --num_processes",
        "new",
    ),
    ("shard_overwrite", ["--num_shards=2", "--overwrite"], r"overwrite: a shard cannot discard", "new"),
    ("target_ci_too_wide", ["--target_ci=0.5"], r"target_ci: 0\.5 must be a half-width in \(0, 0\.5\)", "new"),
    ("max_seeds_below_seeds", ["--target_ci=0.1", "--max_seeds=2"], r"max_seeds: 2 must be .*seeds \(3\)", "new"),
    ("target_ci_sharded", ["--target_ci=0.1", "--num_shards=2"], r"target_ci: grows the seeds .* one process", "new"),
    ("workdir_is_a_file", [], r"a_file: workdir exists and is not a directory", "regular_file"),
    ("workdir_under_a_file", [], r"/sub: workdir cannot be written \(Not a directory\)", "under_regular_file"),
    ("workdir_name_too_long", [], r"x{300}.*File name too long", "name_too_long"),
    ("workdir_other_config", [], r"holds a sweep with a different config \(fields \['lr'\]\)", "other_config"),
    ("workdir_not_a_sweep", [], r"not empty \(notes\.txt, results\) and holds no sweep", "foreign_folder"),
    ("workdir_not_a_sweep_overwrite", ["--overwrite"], r"not empty .* and holds no sweep", "foreign_folder"),
    ("workdir_config_json_corrupt", [], r"config\.json: not valid JSON .*--overwrite", "corrupt_config_json"),
    ("workdir_locked", [], r"/wd: workdir is in use by another running sweep", "locked"),
    (
        "figure_path_is_a_directory",
        [],
        r"success_rate\.pdf: the figure's path is a directory",
        "figure_path_is_a_directory",
    ),
    ("checkpoint_garbage", [], r"group0_wave0\.npz: not a readable \.npz file.*delete that file", "garbage_ckpt"),
    ("checkpoint_truncated", [], r"group0_wave0\.npz: not a readable \.npz file", "truncated_ckpt"),
    ("checkpoint_bit_flip", [], r"group0_wave0\.npz: not a readable \.npz file", "flipped_ckpt"),
    ("checkpoint_wrong_arrays", [], r"group0_wave0\.npz: missing array\(s\) \['format'", "foreign_npz_ckpt"),
    ("checkpoint_other_sweep", [], r"group0_wave0\.npz: checkpoint belongs to another sweep", "other_sweep_ckpt"),
]
if os.geteuid() != 0:  # root writes into read-only folders
    SWEEP_CASES.append(
        ("workdir_read_only", [], r"/ro/wd: workdir cannot be written \(Permission denied\)", "read_only")
    )

#: The cases whose refusal comes after the flags are parsed, where ``--dry_run`` could take another path: each is run
#: again with it (the config-value cases are refused by the same validation before ``--dry_run`` is looked at).
DRY_CASES = [
    c[0]
    for c in SWEEP_CASES
    if c[3] != "new"
    or c[0] in ("too_many_devices", "log_file_is_a_directory", "shard_overwrite", "target_ci_sharded", "cpus_zero")
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
def sweep_results(tmp_path_factory):
    """Runs every ``specjax.sweep`` case once; maps case id to (result, workdir that must not appear, listing of the
    case's folder before)."""
    root = tmp_path_factory.mktemp("sweep_cli")
    argvs, meta, locked = [], {}, None
    for case_id, extra, _, kind in SWEEP_CASES:
        base = root / case_id
        base.mkdir()
        wd = set_up(kind, base)
        if kind == "locked":
            locked = wd
        extra = [a.replace("LOG", str(base / "log")) for a in extra]
        if case_id == "log_file_is_a_directory":
            (base / "log").mkdir()
        meta[case_id] = (wd if kind in ("new", "read_only") else None, listing(base))
        argvs.append([f"--config={TINY}", f"--workdir={wd}", *extra])
    for case_id, name, text, _ in CONFIG_FILE_CASES:
        base = root / case_id
        base.mkdir()
        path = base / name
        if text is not None:
            write(path, text)
        meta[case_id] = (base / "wd", listing(base))
        argvs.append([f"--config={path}", f"--workdir={base / 'wd'}"])
    argvs.append([f"--config={TINY}"])  # no --workdir
    with workdir_lock(locked):  # held by this process, as by another running sweep
        out = run_module_cases(SWEEP, argvs)
    results = {case_id: (r, *meta[case_id]) for case_id, r in zip(meta, out[:-1], strict=True)}
    results["workdir_missing"] = (out[-1], None, None)
    argv_of = dict(zip(meta, argvs, strict=False))
    yield results, root, argv_of, locked
    for path in root.rglob("ro"):
        path.chmod(0o700)


@pytest.fixture(scope="module")
def dry_results(sweep_results):
    """The :data:`DRY_CASES` again with ``--dry_run``, in the same folders (each refusal left its folder as it was);
    maps case id to the result."""
    _, _, argv_of, locked = sweep_results
    with workdir_lock(locked):
        out = run_module_cases(SWEEP, [[*argv_of[case_id], "--dry_run"] for case_id in DRY_CASES])
    return dict(zip(DRY_CASES, out, strict=True))


PATTERNS = {c[0]: c[2] for c in SWEEP_CASES} | {c[0]: c[3] for c in CONFIG_FILE_CASES}


@pytest.mark.slow
@pytest.mark.parametrize("case_id", DRY_CASES)
def test_dry_run_refuses_what_the_command_refuses(sweep_results, dry_results, case_id):
    """Issue 19.10: ``--dry_run`` takes the command's checks (flags, log file, devices, workdir, lock, checkpoints):
    the same one line on stderr and exit status 2 (the plan may come first on stdout), and nothing written. Slow:
    ``tests/test_dryrun.py`` checks a sample of these in the default suite."""
    results, root, _, _ = sweep_results
    real, dry = results[case_id][0], dry_results[case_id]
    assert dry["rc"] == 2 and dry["stderr"] == real["stderr"], (real, dry)
    assert listing(root / case_id) == results[case_id][2]  # the dry run wrote nothing either


@pytest.mark.parametrize("case_id", list(PATTERNS))
def test_sweep_refusal(sweep_results, case_id):
    results, root, _, _ = sweep_results
    r, wd, before = results[case_id]
    assert_refusal(r["rc"], r["stdout"], r["stderr"], SWEEP, PATTERNS[case_id])
    assert listing(root / case_id) == before  # nothing written, nothing lost, no mode changed
    if wd is not None:
        assert not wd.exists()  # not even created


def test_sweep_missing_workdir(sweep_results):
    r, _, _ = sweep_results[0]["workdir_missing"]
    assert_refusal(r["rc"], r["stdout"], r["stderr"], SWEEP, r"flag --workdir=None: Flag --workdir must have a value")


@pytest.mark.slow
def test_python_m_and_the_console_script_refuse_alike(tmp_path):
    """The real ``python -m specjax.sweep`` and ``specjax-sweep`` (no forking): same status, same single line, and
    the forked form (every other case here) gives the same."""
    argv = [f"--config={TINY}", f"--workdir={tmp_path / 'wd'}", "--config.lr=-1.0"]
    pattern = r"config\.lr: values must be > 0, got -1\.0$"
    module = run_module(SWEEP, argv)
    assert_refusal(module.returncode, module.stdout, module.stderr, SWEEP, pattern)
    script = Path(sys.executable).parent / "specjax-sweep"
    if not script.exists():
        script = shutil.which("specjax-sweep")
    assert script, "the specjax-sweep console script is not installed (pip install -e .)"
    proc = subprocess.run([str(script), *argv], capture_output=True, text=True, env=CLI_ENV, cwd=ROOT, timeout=300)
    assert (proc.returncode, proc.stdout, proc.stderr) == (module.returncode, module.stdout, module.stderr)
    forked = run_module_cases(SWEEP, [argv])[0]
    assert (forked["rc"], forked["stdout"], forked["stderr"]) == (module.returncode, module.stdout, module.stderr)
    assert not (tmp_path / "wd").exists()


@pytest.mark.parametrize(
    "module, argv, pattern",
    [
        ("specjax.figures", ["--figure=99", "--workdir=WD"], r"flag --figure=99: value should be one of"),
        ("specjax.bench", ["extra"], r"unexpected argument\(s\) \['extra'\]"),
    ],
)
def test_figures_and_bench_start_without_warning_and_refuse_in_one_line(tmp_path, module, argv, pattern):
    argv = [a.replace("WD", str(tmp_path / "wd")) for a in argv]
    proc = run_module(module, argv)
    assert_refusal(proc.returncode, proc.stdout, proc.stderr, module, pattern)
    assert list(tmp_path.iterdir()) == []


FIG7 = ["--figure=7", "--scale=test"]
FIGURES_CASES = [
    ("unknown_figure", ["--figure=99"], r"flag --figure=99: value should be one of", "new"),
    ("unknown_scale", ["--figure=7", "--scale=huge"], r"flag --scale=huge: value should be one of", "new"),
    ("stray_argument", ["--figure=7", "--scale=test", "extra"], r"unexpected argument\(s\) \['extra'\]", "new"),
    ("config_file_given", ["--figure=7", "--config=x.py"], r"--config: chosen by --figure and --scale", "new"),
    ("unknown_field", ["--figure=7", "--config.learning_rate=1"], r"--config\.learning_rate: unknown config", "new"),
    ("data_directory_not_13", ["--figure=7", "--data_directory=x"], r"--data_directory applies to", "new"),
    ("workdir_is_a_file", ["--figure=7", "--scale=test"], r"a_file: .*(not a directory|cannot be written)", "file"),
    ("damaged_results", FIG7, r"fig7-test/results/group0\.npz: not a readable \.npz file", "damaged_results"),
    (
        "results_of_another_config",
        FIG7,
        r"fig7-test: holds results of a different config \(fields \['seeds'\]\)",
        "other",
    ),
    ("results_folder_is_a_file", FIG7, r"fig7-test: the results folder's path is a file", "results_file"),
]
BENCH_CASES = [
    ("stray_argument", ["extra"], r"unexpected argument\(s\) \['extra'\]"),
    ("not_an_integer", ["--d=abc"], r"flag --d=abc: invalid literal for int"),
    ("unknown_flag", ["--nonsense=1"], r"Unknown command line flag 'nonsense'"),
]


def fig7_results(directory: Path, kind: str) -> None:
    """Figure 7's results folder at the test scale: a finished sweep's files with a damaged results file, or the
    results of another config, or a file in the folder's place."""
    from specjax.figures.cache import load_config

    if kind == "results_file":
        write(directory, "not a folder\n")
        return
    cfg = load_config("fig7", "test")
    if kind == "other":
        cfg.seeds += 1
    directory.mkdir(parents=True)
    store.save_json(directory / "config.json", {"config": config_lib.to_plain(cfg), "sweep_id": sweep_id(cfg)})
    write(directory / "summary.json", '{"groups": []}\n')
    write(directory / "results" / "group0.npz", "PK\x03\x04 torn")


def test_figures_refusals(tmp_path):
    argvs, meta = [], []
    for case_id, extra, _, kind in FIGURES_CASES:
        base = tmp_path / case_id
        base.mkdir()
        wd = write(base / "a_file", "keep me\n") if kind == "file" else base / "wd"
        if kind in ("damaged_results", "other", "results_file"):
            fig7_results(wd / "fig7-test", kind)
        argvs.append([f"--workdir={wd}", *extra])
        meta.append((base, listing(base)))
    for (case_id, _, pattern, _), r, (base, before) in zip(
        FIGURES_CASES, run_module_cases("specjax.figures", argvs), meta, strict=True
    ):
        assert_refusal(r["rc"], r["stdout"], r["stderr"], "specjax.figures", pattern), case_id
        assert listing(base) == before, case_id


def test_bench_refusals(tmp_path):
    out = run_module_cases("specjax.bench", [[*argv, f"--json={tmp_path / 'b.json'}"] for _, argv, _ in BENCH_CASES])
    for (case_id, _, pattern), r in zip(BENCH_CASES, out, strict=True):
        assert_refusal(r["rc"], r["stdout"], r["stderr"], "specjax.bench", pattern), case_id
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", [SWEEP, "specjax.figures", "specjax.bench", "specjax.report"])
def test_help_starts_without_warning(module):
    r = run_module_cases(module, [["--helpshort"]])[0]
    assert r["rc"] in (0, 1), r  # absl exits with status 1 after printing the help
    assert r["stderr"] == "", r["stderr"]  # no RuntimeWarning from runpy, no other warning
    assert f"{module}" in r["stdout"] or "flags" in r["stdout"].lower(), r["stdout"][:500]
