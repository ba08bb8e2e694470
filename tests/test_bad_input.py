"""Bad input to the library: each case raises a ``ValueError`` subclass (``SpecjaxError`` for the package's own
refusals) with one clear message naming the field or file, before any compute, and loses or writes nothing.

The same refusals through the command lines are in test_cli.py.
"""

import importlib
import json
import os
import pickle
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import small_config, snapshot, tiny_config

from specjax import config as config_lib
from specjax import store, sweep
from specjax.core import metrics, networks
from specjax.engine import make_mesh


@pytest.fixture(scope="module")
def real_checkpoints(tmp_path_factory):
    """A finished small sweep's workdir (real checkpoints to damage); shares its program with the other tests."""
    wd = tmp_path_factory.mktemp("real")
    sweep.run_sweep(small_config(), wd, progress=None, mesh=make_mesh(4))
    return wd


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------------------------------------------
# The library.


def test_run_sweep_bad_config_writes_nothing(tmp_path):
    wd = tmp_path / "wd"
    for field, value, pattern in (
        ("lr", (0.1, float("nan")), r"config\.lr: values must be finite"),
        ("teacher_polarity", (float("inf"),), r"config\.teacher_polarity: values must be finite"),
        ("n_eval", 1, r"config\.n_eval: must be an integer >= 2 \(a correlation"),
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


@pytest.mark.parametrize("workdir", [None, 123, b"/tmp", ""])
def test_load_results_refuses_a_workdir_that_is_not_a_path(workdir):
    from specjax.errors import ArgumentError

    with pytest.raises(ArgumentError, match=r"^workdir: expected the path of a sweep's folder, got "):
        sweep.load_results(workdir)


def test_load_results_refuses_a_workdir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(store.StoreError, match=rf"^{tmp_path / 'file'}: workdir is not a directory$"):
        sweep.load_results(tmp_path / "file")


def test_load_results_names_the_missing_or_damaged_file(tmp_path, real_checkpoints):
    with pytest.raises(store.StoreError, match=rf"^{tmp_path / 'nowhere'}: workdir not found$"):
        sweep.load_results(tmp_path / "nowhere")
    with pytest.raises(store.StoreError, match=r"config\.json: file not found"):
        sweep.load_results(tmp_path)  # a folder that holds no sweep
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
    with pytest.raises(
        FileNotFoundError, match=r"CIFAR-10 batch not found: .*test_batch"
    ):  # every file, before reading
        loader(folder, train_batch_names=("data_batch_1",))
    (folder / "test_batch").write_bytes(b"")  # present; data_batch_1 is read first
    with pytest.raises(store.StoreError, match=r"data_batch_1: not a CIFAR-10 python batch"):
        loader(folder, train_batch_names=("data_batch_1",))
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(store.StoreError, match=r"data_batch_1: b'data' has shape \(2, 10\); expected \(N, 3072\)"):
        loader(folder, train_batch_names=("data_batch_1",))
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump(os.system, f)  # a pickle that would call a function: refused, never executed
    with pytest.raises(store.StoreError, match=r"data_batch_1: not a CIFAR-10 python batch .*not allowed"):
        loader(folder, train_batch_names=("data_batch_1",))


@pytest.mark.parametrize(
    "value, pattern", [(-1.0, r"must be >= 0, got -1.0"), (float("inf"), r"must be a finite number")]
)
def test_bad_checkpoint_interval_is_refused(value, pattern):
    with pytest.raises(config_lib.ConfigError, match=r"config\.checkpoint_every_s: " + pattern):
        config_lib.validate(tiny_config(checkpoint_every_s=value))
