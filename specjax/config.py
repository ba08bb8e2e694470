"""Sweep configuration: defaults, validation, and the split into shape groups and swept settings.

A sweep is described by one ``ml_collections.ConfigDict`` (experiment files in ``experiments/configs/`` start from
:func:`default_config`). Its fields fall into three kinds:

* **shape-fixing** (:data:`SHAPE_FIELDS`): changing them changes array shapes, so each value gets its own compiled
  program (a *shape group*): ``over_realization`` (a sequence).
* **swept** (:data:`SWEPT_FIELDS`): sequences of values; their Cartesian product forms the *settings* axis of a
  shape group and is vmapped: ``teacher_polarity``, ``lr``, ``data_std``, ``init_scale``, ``momentum``,
  ``weight_decay``. Declared once, in :data:`specjax.engine.run.SWEPT` (name, default, label, bounds, doc): their
  defaults, validation, the settings grid and docs/cli.md's table (:func:`swept_fields_markdown`) derive from it.
* **static scalars**: everything else (widths, batch size, steps, dtype, optimiser, ...).

Results have leading axes ``(settings, seeds)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import ml_collections

from specjax.core.data import DISTRIBUTIONS
from specjax.core.networks import ACTIVATIONS, DTYPES, LOSSES
from specjax.core.teachers import LAST_TEACHER_INIT, WEIGHT_CHOICES
from specjax.engine.run import HPARAM_LABELS, SWEPT, Hparams, SweptField, bounds_text, in_bounds
from specjax.errors import ConfigError

SHAPE_FIELDS = ("over_realization",)
#: The swept fields' names: declared once, in :data:`specjax.engine.run.SWEPT` (the fields of :class:`Hparams`).
SWEPT_FIELDS: tuple[str, ...] = Hparams._fields
TEACHERS = ("two_layer", "deep")
STUDENT_INITS = ("gaussian", "uniform")
OPTIMIZERS = ("sgd", "gd", "momentum", "adam")
RECORD_CORR = ("snapshots", "all")
#: ``jax.default_matmul_precision`` values for float32 matmuls (``'highest'``: full float32 on every backend).
MATMUL_PRECISIONS = ("highest", "high", "default")


def default_config() -> ml_collections.ConfigDict:
    """All fields with the paper's two-layer defaults (docs/theory.md §7, ``recon_two_layer.py``)."""
    c = ml_collections.ConfigDict()
    # Problem.
    c.teacher = "two_layer"  # 'two_layer' (recon_two_layer.py) or 'deep' (recon_multilayer.py)
    c.d = 100  # input dimension
    c.m = 20  # two-layer teacher hidden width
    c.teacher_widths = (50, 75, 100, 125)  # deep teacher hidden widths, input to output
    c.c = 50  # output dimension C
    c.over_realization = (1, 2, 5, 10)  # student width = over_realization x teacher width (shape groups)
    c.teacher_bias = -0.1  # two-layer teacher biases
    c.activation = "relu"
    c.slope = 0.1  # leaky-ReLU negative slope
    c.use_bias = True
    c.student_init = "gaussian"  # 'gaussian' N(0, init_scale^2), zero bias; 'uniform' +-1/sqrt(fan_in)
    c.init_last_teacher = "none"  # 'none', 'helpful', 'adversarial'
    # Data.
    c.data = "gaussian"  # 'gaussian' or 'uniform'
    c.n_train = 10000  # 0 = fresh samples every step
    c.n_eval = 10000
    # Optimisation.
    c.optimizer = "sgd"  # 'sgd', 'gd' (full batch), 'momentum', 'adam'
    c.lr_schedule_epochs = ()  # piecewise-constant: at these epochs ...
    c.lr_schedule_scales = ()  # ... multiply the learning rate by these factors
    c.loss = "half_sse"  # 'half_sse' = 0.5 ||y* - y||^2 batch mean; 'mse' = mean over batch and outputs
    c.batch_size = 16
    c.epochs = 100
    c.steps_per_epoch = 1000
    c.eval_every = 1  # epochs between evaluation points
    c.chunk_steps = 0  # steps per compiled scan call; 0 = one evaluation interval
    # Seeds.
    c.seeds = 32  # number of seeds
    c.seed = 1  # base seed
    # Numerics and layout.
    c.dtype = "float64"
    c.runs_per_block = 0  # runs vmapped together per device; 0 = auto: 8 on CPU, a group's runs in one block on GPU/TPU
    c.matmul_precision = "highest"  # float32 matmuls ('highest': no TF32/bf16 passes on GPU/TPU; no effect on CPU)
    c.num_devices = 0  # 0 = all devices
    c.devices_per_run = 0  # devices each run is split over (its nodes); 0 = auto: 1 (measured faster on CPU)
    c.memory_budget_gb = 0.0  # runs whose data exceed this train in waves; 0 = auto: 8 on CPU, 80% of a GPU/TPU
    c.record_corr = "snapshots"  # full correlation matrices at 'snapshots' only, or at 'all' evaluations
    c.snapshot_epochs = ()  # extra epochs (besides first and last) at which parameters and correlations are kept
    c.checkpoint = True  # checkpoint between chunks (resume by re-running)
    c.checkpoint_every_s = 60.0  # at most one checkpoint per this many seconds (0: after every chunk)
    # Swept (engine.run.SWEPT): one-value sequences of the paper's values.
    for f in SWEPT:
        c[f.name] = (f.default,)
    return c


def _fail(field: str, msg: str) -> None:
    raise ConfigError(f"config.{field}: {msg}")


def _as_tuple(cfg, field: str) -> tuple:
    value = cfg[field]
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _check_choice(cfg, field: str, allowed: Sequence[str]) -> None:
    if cfg[field] not in allowed:
        _fail(field, f"unknown value {cfg[field]!r}; expected one of {tuple(allowed)}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_int(cfg, field: str, minimum: int, why: str = "") -> None:
    v = cfg[field]
    if not _is_int(v) or v < minimum:
        _fail(field, f"must be an integer >= {minimum}{why}, got {v!r}")


def _is_finite_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _check_numbers(cfg, field: str, nonnegative: bool = False) -> None:
    """A scalar field: a finite real number (``nonnegative``: >= 0)."""
    v = cfg[field]
    if not _is_finite_number(v):
        _fail(field, f"must be a finite number, got {v!r}")
    if nonnegative and v < 0:
        _fail(field, f"must be >= 0, got {v!r}")


def _check_swept(cfg, field: SweptField) -> None:
    """A swept field: a non-empty sequence (or one number) of distinct finite numbers within its declared bounds."""
    values = _as_tuple(cfg, field.name)
    if not values:
        _fail(field.name, "must hold at least one value")
    for v in values:
        if not _is_finite_number(v):
            _fail(field.name, f"values must be finite numbers, got {v!r}")
        if not in_bounds(field, v):
            _fail(field.name, f"values must be {bounds_text(field)}, got {v!r}")
    if len(set(values)) != len(values):  # after the type checks: every value is a hashable number
        _fail(field.name, f"values must be distinct (each would train the same runs twice), got {values!r}")


def validate(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Checks every field; raises :class:`ConfigError` naming the first bad one. Returns ``cfg``.

    Nothing is computed or written before this passes: :func:`specjax.sweep.run_sweep` and the command line call
    it first.
    """
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(f"config: expected an ml_collections.ConfigDict, got {type(cfg).__name__}")
    unknown = sorted(set(cfg.keys()) - set(default_config().keys()))
    if unknown:
        _fail(unknown[0], "unknown field")
    _check_choice(cfg, "teacher", TEACHERS)
    _check_choice(cfg, "activation", ACTIVATIONS)
    _check_choice(cfg, "student_init", STUDENT_INITS)
    _check_choice(cfg, "init_last_teacher", LAST_TEACHER_INIT)
    _check_choice(cfg, "data", DISTRIBUTIONS)
    _check_choice(cfg, "optimizer", OPTIMIZERS)
    _check_choice(cfg, "loss", LOSSES)
    _check_choice(cfg, "dtype", tuple(DTYPES))
    _check_choice(cfg, "record_corr", RECORD_CORR)
    for field in (
        "d",
        "m",
        "c",
        "batch_size",
        "epochs",
        "steps_per_epoch",
        "eval_every",
        "seeds",
    ):
        _check_int(cfg, field, 1)
    _check_int(cfg, "n_eval", 2, " (a correlation over fewer evaluation points is undefined)")
    for field in ("n_train", "chunk_steps", "num_devices", "devices_per_run", "seed", "runs_per_block"):
        _check_int(cfg, field, 0)
    widths = _as_tuple(cfg, "teacher_widths")
    if not widths or any(not _is_int(w) or w < 1 for w in widths):
        _fail("teacher_widths", f"must be a non-empty sequence of positive integers, got {widths!r}")
    over = _as_tuple(cfg, "over_realization")
    if not over or any(not _is_int(o) or o < 1 for o in over):
        _fail("over_realization", f"values must be integers >= 1, got {over!r}")
    if len(set(over)) != len(over):
        _fail("over_realization", f"values must be distinct, got {over!r}")
    for f in SWEPT:
        _check_swept(cfg, f)
    for field in ("teacher_bias", "slope"):
        _check_numbers(cfg, field)
    _check_numbers(cfg, "memory_budget_gb", nonnegative=True)
    _check_choice(cfg, "matmul_precision", MATMUL_PRECISIONS)
    _check_numbers(cfg, "checkpoint_every_s", nonnegative=True)
    for field in ("use_bias", "checkpoint"):
        if not isinstance(cfg[field], bool):
            _fail(field, f"must be True or False, got {cfg[field]!r}")
    if cfg.seed >= 2**32:
        _fail("seed", f"must be below 2**32, got {cfg.seed!r}")
    if cfg.n_train > 0 and cfg.batch_size > cfg.n_train and cfg.optimizer != "gd":
        _fail("batch_size", f"{cfg.batch_size} is larger than the finite training set (n_train={cfg.n_train})")
    if cfg.optimizer == "gd" and cfg.n_train == 0:
        _fail("optimizer", "'gd' (full batch) needs a finite training set (n_train > 0)")
    if cfg.chunk_steps and (cfg.steps_per_epoch * cfg.eval_every) % cfg.chunk_steps:
        _fail(
            "chunk_steps",
            f"{cfg.chunk_steps} must divide the evaluation interval "
            f"{cfg.steps_per_epoch * cfg.eval_every} (steps_per_epoch x eval_every)",
        )
    if cfg.epochs % cfg.eval_every:
        _fail("eval_every", f"{cfg.eval_every} must divide epochs={cfg.epochs}")
    sched_e, sched_s = _as_tuple(cfg, "lr_schedule_epochs"), _as_tuple(cfg, "lr_schedule_scales")
    if len(sched_e) != len(sched_s):
        _fail("lr_schedule_scales", f"needs one factor per entry of lr_schedule_epochs {sched_e!r}")
    if any(not _is_int(e) or e < 1 for e in sched_e) or list(sched_e) != sorted(set(sched_e)):
        _fail("lr_schedule_epochs", f"must be increasing positive integers, got {sched_e!r}")
    if any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < math.inf for s in sched_s):
        _fail("lr_schedule_scales", f"factors must be > 0, got {sched_s!r}")
    snaps = _as_tuple(cfg, "snapshot_epochs")
    if any(not _is_int(e) or e < 0 or e > cfg.epochs or e % cfg.eval_every for e in snaps):
        _fail("snapshot_epochs", f"must be evaluation epochs in [0, {cfg.epochs}], got {snaps!r}")
    _check_widths_realizable(cfg)
    return cfg


def _check_widths_realizable(cfg: ml_collections.ConfigDict) -> None:
    """Refuses teacher widths the paper's construction cannot realise.

    Each teacher layer draws ``fan_out`` pairwise-distinct non-zero filters of length ``fan_in`` from the nine
    weight choices (:func:`specjax.core.teachers.distinct_choice_vectors`), which exist only if
    ``fan_out <= 9**fan_in - 1``; otherwise the rejection loop would never end.
    """
    choices = len(WEIGHT_CHOICES)
    if cfg.teacher == "two_layer":
        layers = [("m", cfg.m, "d", cfg.d), ("c", cfg.c, "m", cfg.m)]
    else:
        dims = (cfg.d, *cfg.teacher_widths, cfg.c)
        names = ("d", *(f"teacher_widths[{i}]" for i in range(len(cfg.teacher_widths))), "c")
        layers = [(names[i + 1], dims[i + 1], names[i], dims[i]) for i in range(len(dims) - 1)]
    for out_name, fan_out, in_name, fan_in in layers:
        if fan_in < 32 and fan_out > choices**fan_in - 1:  # 9**32 - 1 exceeds any array size
            field = out_name.split("[")[0]
            _fail(
                field,
                f"{out_name}={fan_out} is inconsistent with {in_name}={fan_in}: a teacher layer needs {fan_out} "
                f"distinct non-zero filters of length {fan_in} from {choices} weight values, and only "
                f"{choices**fan_in - 1} exist",
            )


def settings_grid(cfg: ml_collections.ConfigDict) -> list[Hparams]:
    """The Cartesian product of the swept fields, in field order (last field fastest); each point an
    :class:`~specjax.engine.Hparams` of Python floats (``setting._asdict()`` gives a dict)."""
    return [Hparams(*combo) for combo in itertools.product(*(map(float, _as_tuple(cfg, f)) for f in SWEPT_FIELDS))]


def teacher_hidden_widths(cfg: ml_collections.ConfigDict) -> tuple[int, ...]:
    """Teacher hidden widths: ``(m,)`` for the two-layer teacher, ``teacher_widths`` for the deep one."""
    return (cfg.m,) if cfg.teacher == "two_layer" else tuple(cfg.teacher_widths)


def total_steps(cfg: ml_collections.ConfigDict) -> int:
    return cfg.epochs * cfg.steps_per_epoch


def to_plain(cfg: ml_collections.ConfigDict) -> dict:
    """JSON-friendly dict of the config (tuples become lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.to_dict().items()}


def from_plain(values: dict) -> ml_collections.ConfigDict:
    """Rebuilds a config from :func:`to_plain`'s dict, over the defaults (sequence fields stay tuples).

    Raises:
      ConfigError: an unknown field, or a value of another type than the field's default (names the field).
    """
    cfg = default_config()
    for k, v in values.items():
        if k not in cfg:
            _fail(k, "unknown field")
        try:
            cfg[k] = tuple(v) if isinstance(v, list) else v
        except TypeError:
            _fail(k, f"{v!r} is of type {type(v).__name__}, expected {type(cfg[k]).__name__} (default {cfg[k]!r})")
    return cfg


def setting_label(group: dict, varying: Sequence[str]) -> str:
    """Legend label of a setting (a dict with the swept fields' values, e.g. a ``summary.json`` group) from the
    swept fields that take several values, by their labels (:data:`specjax.engine.run.HPARAM_LABELS`)."""
    return ", ".join(f"{HPARAM_LABELS[f]}={group[f]:g}" for f in varying) or "run"


def varying_fields(groups: Sequence[dict]) -> list[str]:
    """Swept fields that take more than one value across ``groups`` (teacher polarity always shown)."""
    out = [f for f in SWEPT_FIELDS if len({g[f] for g in groups}) > 1]
    return out or ["teacher_polarity"]


def swept_fields_markdown() -> str:
    """docs/cli.md's table of the swept fields, generated from :data:`specjax.engine.run.SWEPT` (a test checks the
    file holds exactly this)."""
    rows = ["| field | default | values | legend | meaning |", "|---|---|---|---|---|"]
    for f in SWEPT:
        rows.append(f"| `{f.name}` | ({f.default!r},) | {bounds_text(f)} | {f.label} | {f.doc} |")
    return "\n".join(rows) + "\n"


def inapplicable_fields(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Config fields the sweep's other settings make irrelevant (named views leave them out of coordinates, attrs
    and plot titles): ``momentum`` unless ``optimizer='momentum'``, ``init_scale`` for the uniform student
    initialisation, ``teacher_widths`` for the two-layer teacher, ``m`` and ``teacher_bias`` for the deep one,
    ``slope`` unless the activation is ``'leaky_relu'``."""
    out = []
    if cfg.optimizer != "momentum":
        out.append("momentum")
    if cfg.student_init != "gaussian":
        out.append("init_scale")
    out += ["teacher_widths"] if cfg.teacher == "two_layer" else ["m", "teacher_bias"]
    if cfg.activation != "leaky_relu":
        out.append("slope")
    return tuple(out)
