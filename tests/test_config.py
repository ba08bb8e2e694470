"""``config.validate``: every kind of field (choices, integers, sequences, swept numbers, scalars, booleans), the
cross-field checks, unknown fields; the settings grid and the plain-dict round trip; the float64 guard."""

import math
import re
import subprocess
import sys

import ml_collections
import pytest
from helpers import CLI_ENV, ROOT, tiny_config

from specjax import config as config_lib
from specjax.config import ConfigError, validate
from specjax.core.data import DISTRIBUTIONS
from specjax.core.networks import ACTIVATIONS, DTYPES, LOSSES
from specjax.core.teachers import LAST_TEACHER_INIT


def base(**overrides) -> ml_collections.ConfigDict:
    """The tiny config without extra snapshots (so every minimum below is valid on its own), with ``overrides`` of
    any type: not type-safe, as a config file may build it, so that ``validate`` alone has to refuse them."""
    cfg = ml_collections.ConfigDict(tiny_config().to_dict(), type_safe=False)
    for k, v in ({"snapshot_epochs": ()} | overrides).items():
        cfg[k] = v
    return cfg


def refused(field: str, pattern: str, **overrides) -> None:
    with pytest.raises(ConfigError, match=rf"^config\.{field}: {pattern}"):
        validate(base(**overrides))


def test_defaults_and_experiment_configs_are_valid():
    cfg = config_lib.default_config()
    assert validate(cfg) is cfg
    assert validate(base()) is not None
    for name in ("quickstart", "two_layer", "deep", "tiny"):
        path = ROOT / "experiments" / "configs" / f"{name}.py"
        scope: dict = {}
        exec(compile(path.read_text(), str(path), "exec"), scope)
        validate(scope["get_config"]())


def test_not_a_config_dict_and_unknown_fields():
    with pytest.raises(ConfigError, match=r"^config: expected an ml_collections\.ConfigDict, got dict"):
        validate({"lr": (0.1,)})
    cfg = base()
    cfg.learning_rate = 0.1
    cfg.zz_other = 1
    with pytest.raises(ConfigError, match=r"^config\.learning_rate: unknown field$"):  # the first, alphabetically
        validate(cfg)
    with pytest.raises(ConfigError, match=r"^config\.learning_rate: unknown field$"):
        config_lib.from_plain({"learning_rate": 0.1})


CHOICES = {
    "teacher": config_lib.TEACHERS,
    "activation": ACTIVATIONS,
    "student_init": config_lib.STUDENT_INITS,
    "init_last_teacher": LAST_TEACHER_INIT,
    "data": DISTRIBUTIONS,
    "optimizer": config_lib.OPTIMIZERS,
    "loss": LOSSES,
    "dtype": tuple(DTYPES),
    "record_corr": config_lib.RECORD_CORR,
    "matmul_precision": config_lib.MATMUL_PRECISIONS,
}


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_choice_fields_accept_exactly_their_values(field):
    allowed = CHOICES[field]
    assert len(allowed) >= 2
    for value in allowed:
        validate(base(**{field: value}, teacher_widths=(3,)))
    for bad in ("nope", allowed[0].upper(), None, 1):
        refused(field, re.escape(f"unknown value {bad!r}; expected one of {tuple(allowed)!r}") + "$", **{field: bad})


INT_MINIMA = {
    **dict.fromkeys(("d", "m", "c", "batch_size", "epochs", "steps_per_epoch", "eval_every", "seeds"), 1),
    "n_eval": 2,
    **dict.fromkeys(("n_train", "chunk_steps", "num_devices", "seed", "runs_per_block"), 0),
}


@pytest.mark.parametrize("field", sorted(INT_MINIMA))
def test_integer_fields(field):
    low = INT_MINIMA[field]
    validate(base(**{field: low}))
    for bad in (low - 1, -5, float(low + 1), True, str(low + 1), None):
        with pytest.raises(ConfigError, match=rf"^config\.{field}: must be an integer >= {low}\b.*, got {bad!r}$"):
            validate(base(**{field: bad}))


def test_seed_below_two_to_the_32():
    validate(base(seed=2**32 - 1))
    refused("seed", r"must be below 2\*\*32, got 4294967296", seed=2**32)


@pytest.mark.parametrize(
    "value", [(), (3, 0), (3, -1), (3, 2.0), (3, True), ("3",)], ids=["empty", "zero", "neg", "float", "bool", "str"]
)
def test_teacher_widths(value):
    validate(base(teacher="deep", teacher_widths=(3, 2)))
    refused(
        "teacher_widths", r"must be a non-empty sequence of positive integers", teacher="deep", teacher_widths=value
    )


def test_over_realization_values_are_distinct_integers():
    validate(base(over_realization=(1, 2, 5)))
    validate(base(over_realization=3))  # one value needs no tuple
    for bad in ((), (0,), (1, 1.5), (True,), ("2",)):
        refused("over_realization", r"values must be integers >= 1", over_realization=bad)
    refused("over_realization", r"values must be distinct, got \(2, 1, 2\)", over_realization=(2, 1, 2))


POSITIVE_SWEPT = ("lr", "data_std")


@pytest.mark.parametrize("field", config_lib.SWEPT_FIELDS)
def test_swept_fields(field):
    assert set(POSITIVE_SWEPT) < set(config_lib.SWEPT_FIELDS)
    validate(base(**{field: (0.5, 1.0, 2)}))
    validate(base(**{field: 0.5}))  # one value needs no tuple
    refused(field, r"must hold at least one value", **{field: ()})
    for bad in ("abc", True, None, math.nan, math.inf, -math.inf, [0.1], (0.1,)):
        refused(
            field,
            re.escape(f"values must be finite numbers, got {bad!r}") + "$",
            **{field: (0.5, bad)},
        )
    refused(
        field,
        r"values must be >= 0, got -0\.5" if field not in POSITIVE_SWEPT else r"values must be > 0, got -0\.5",
        **{field: (-0.5,)},
    )
    if field in POSITIVE_SWEPT:
        refused(field, r"values must be > 0, got 0\.0", **{field: (0.0,)})
    else:
        validate(base(**{field: (0.0, 1.0)}))


@pytest.mark.parametrize("field", config_lib.SWEPT_FIELDS)
def test_duplicates_in_a_swept_field_are_refused(field):
    for dup in ((0.5, 0.5), (1, 1.0), (0.5, 2.0, 0.5)):
        with pytest.raises(ConfigError, match=rf"^config\.{field}: values must be distinct \(each would train"):
            validate(base(**{field: dup}))


@pytest.mark.parametrize(
    "field, nonnegative",
    [("teacher_bias", False), ("slope", False), ("memory_budget_gb", True), ("checkpoint_every_s", True)],
)
def test_scalar_fields(field, nonnegative):
    validate(base(**{field: 0.0}))
    validate(base(**{field: 3}))
    for bad in (math.nan, math.inf, "1.0", None, (1.0,)):  # (True: ConfigDict casts it to 1.0 on a float field)
        refused(field, re.escape(f"must be a finite number, got {bad!r}") + "$", **{field: bad})
    if nonnegative:
        refused(field, r"must be >= 0, got -1\.0", **{field: -1.0})
    else:
        validate(base(**{field: -1.0}))


@pytest.mark.parametrize("field", ["use_bias", "checkpoint"])
def test_boolean_fields(field):
    validate(base(**{field: False}))
    for bad in (1, 0, "True", None):
        refused(field, rf"must be True or False, got {bad!r}", **{field: bad})


def test_training_set_batch_and_optimizer():
    refused("batch_size", r"512 is larger than the finite training set \(n_train=256\)", batch_size=512)
    validate(base(batch_size=512, n_train=0))  # fresh samples: any batch size
    validate(base(batch_size=512, optimizer="gd"))  # full batch ignores batch_size
    refused("optimizer", r"'gd' \(full batch\) needs a finite training set \(n_train > 0\)", optimizer="gd", n_train=0)


def test_chunks_evaluations_and_snapshots_must_line_up():
    validate(base(chunk_steps=25))  # divides 50 steps per epoch x 1
    refused("chunk_steps", r"30 must divide the evaluation interval 50 ", chunk_steps=30)
    validate(base(eval_every=2, chunk_steps=100))
    refused("eval_every", r"3 must divide epochs=4", eval_every=3)
    validate(base(snapshot_epochs=(0, 2, 4)))
    for bad in ((5,), (-1,), (True,), (2.0,)):
        refused("snapshot_epochs", r"must be evaluation epochs in \[0, 4\]", snapshot_epochs=bad)
    refused("snapshot_epochs", r"must be evaluation epochs", snapshot_epochs=(1,), eval_every=2)


def test_learning_rate_schedule():
    validate(base(lr_schedule_epochs=(1, 3), lr_schedule_scales=(0.5, 0.1)))
    refused("lr_schedule_scales", r"needs one factor per entry", lr_schedule_epochs=(1, 3), lr_schedule_scales=(0.5,))
    for bad in ((3, 1), (1, 1), (0,), (True,), (1.5,)):
        refused(
            "lr_schedule_epochs",
            r"must be increasing positive integers",
            lr_schedule_epochs=bad,
            lr_schedule_scales=(0.5,) * len(bad),
        )
    for bad in ((0.0,), (-1.0,), (math.inf,), (math.nan,), (True,)):
        refused("lr_schedule_scales", r"factors must be > 0", lr_schedule_epochs=(1,), lr_schedule_scales=bad)


def test_teacher_widths_the_construction_cannot_realise():
    validate(base(d=1, m=8, c=4))  # 9**1 - 1 = 8 distinct non-zero filters of length 1
    refused("m", r"m=9 is inconsistent with d=1: .* only 8 exist", d=1, m=9)
    refused("c", r"c=20 is inconsistent with m=1", m=1, c=20)
    refused(
        "teacher_widths",
        r"teacher_widths\[1\]=90 is inconsistent with teacher_widths\[0\]=2",
        teacher="deep",
        teacher_widths=(2, 90),
        c=4,
    )


def test_settings_grid_and_plain_round_trip():
    cfg = base(teacher_polarity=(0.0, 1.0), lr=(0.05, 0.1, 0.2))
    grid = config_lib.settings_grid(cfg)
    assert len(grid) == 6
    assert [(s.teacher_polarity, s.lr) for s in grid[:4]] == [(0.0, 0.05), (0.0, 0.1), (0.0, 0.2), (1.0, 0.05)]
    assert all(type(v) is float for s in grid for v in s)
    plain = config_lib.to_plain(cfg)
    assert plain["lr"] == [0.05, 0.1, 0.2] and plain["over_realization"] == [1, 2]
    back = config_lib.from_plain(plain)
    assert back.to_dict() == cfg.to_dict() and back.lr == (0.05, 0.1, 0.2)
    assert config_lib.teacher_hidden_widths(cfg) == (3,)
    assert config_lib.teacher_hidden_widths(base(teacher="deep", teacher_widths=(5, 4))) == (5, 4)
    assert config_lib.total_steps(cfg) == 200


def test_float64_is_refused_in_a_process_without_x64():
    """conftest.py switches x64 on for every test, so the guard is exercised in a fresh interpreter without it."""
    code = f"""
import jax, pytest
from specjax.core import networks
from specjax import sweep
from specjax.config import ConfigError
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from helpers import tiny_config
assert not jax.config.jax_enable_x64
assert networks.resolve_dtype("float32") is not None
with pytest.raises(ValueError, match=r"^dtype: float64 needs jax_enable_x64"):
    networks.resolve_dtype("float64")
with pytest.raises(ConfigError, match=r"^config\\.dtype: float64 needs jax_enable_x64"):
    sweep.run_sweep(tiny_config(), None, progress=None)
print("guarded")
"""
    env = {**CLI_ENV, "JAX_ENABLE_X64": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["guarded"]


def test_from_plain_names_a_field_of_the_wrong_type():
    for values, pattern in (
        ({"lr": "abc"}, r"^config\.lr: 'abc' is of type str, expected tuple \(default \(0\.01,\)\)$"),
        ({"epochs": 1.5}, r"^config\.epochs: 1\.5 is of type float, expected int \(default 100\)$"),
        ({"teacher": 1}, r"^config\.teacher: 1 is of type int, expected str"),
    ):
        with pytest.raises(ConfigError, match=pattern):
            config_lib.from_plain(values)
