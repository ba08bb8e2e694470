"""One run as pure functions: its static Spec, swept Hparams, state, initialisation, loss, SGD chunk and evaluation.

A *run* is a pure function of a :class:`Spec` (static: everything that fixes shapes or code paths), its
:class:`Hparams` (array-valued: teacher polarity, learning rate, data std, ...) and its seed key:

* :func:`init_run` builds the teacher, the data and the student (docs/theory.md §7);
* :func:`train_steps` runs ``n`` SGD steps with ``lax.scan`` (batch of step ``t`` from ``fold_in(batch_key, t)``,
  drawn for the whole chunk up front; gradient by :func:`loss_and_grad`; optax update; divergence freezing);
* :func:`evaluate` computes the evaluation record on device (loss, teacher x student correlations, fan-out norms).

The fast path (hand-written backpropagation, batch rows drawn per chunk, the evaluation correlation in one product)
and its measurements are described in docs/performance.md; each piece is tested equal to the plain version.

:class:`specjax.engine.program.Program` jit-compiles these once per :class:`Spec`, vmapped over a leading *runs*
axis and sharded over the devices of a 1-D mesh (axis ``'runs'``). Runs never interact, so a run's numbers do not
depend on the other runs in its block, on the chunk length or on the device count (evaluation numbers can change in
the last bit with the number of runs per device; see docs/design.md). Example (research code)::

    spec = Spec.from_config(cfg, over_realization=5)
    program = Program(spec, chunk_steps=1000)
    keys = jax.vmap(seed_key, (None, 0))(1, jnp.arange(8))
    hp = Hparams.broadcast(8, teacher_polarity=1.0, lr=0.01, data_std=1.5, init_scale=0.005, dtype=spec.dtype)
    teacher, data, state = program.init(hp, keys)
    state, stats = program.train(state, teacher, data, hp)
    record = program.evaluate(state, data)
"""

from __future__ import annotations

import collections
import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from specjax.core import data as data_lib
from specjax.core import networks, teachers

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Spec:
    """Static settings of a shape group. Hashable; a new value compiles a new program.

    Attributes:
      teacher: ``'two_layer'`` or ``'deep'``.
      d, c: input and output dimensions.
      teacher_widths: teacher hidden widths ``(m_1, ..., m_{L-1})``.
      over_realization: student hidden width multiple (``n_l = over_realization * m_l``).
      activation: the hidden :class:`~specjax.core.networks.Activation` (config fields ``activation``, ``slope``).
      use_bias, teacher_bias: network settings (``teacher_bias`` for the two-layer teacher).
      student_init: ``'gaussian'`` (``N(0, init_scale^2)``, zero biases) or ``'uniform'`` (``U(+-1/sqrt(fan_in))``).
      init_last_teacher: ``'none'``, ``'helpful'`` or ``'adversarial'`` (:func:`teachers.steer_to_last_teacher`).
      data, n_train, n_eval, batch_size: data settings (``n_train = 0``: fresh samples each step).
      optimizer: ``'sgd'``, ``'gd'`` (full batch), ``'momentum'`` or ``'adam'``.
      use_weight_decay: chain ``optax.add_decayed_weights`` (rate from :class:`Hparams`).
      lr_boundaries, lr_scales: piecewise-constant schedule, boundaries in steps, cumulative factors.
      loss: ``'half_sse'`` or ``'mse'`` (:func:`networks.squared_error_loss`).
      dtype: ``'float32'`` or ``'float64'``.
      cpu_gemm_layout: lay out the backward pass's transposes for CPU GEMMs (:func:`_transposed`); ``None``:
        when ``jax.default_backend()`` is the CPU at trace time. Numbers are equal either way to rounding.
    """

    teacher: str = "two_layer"
    d: int = 100
    teacher_widths: tuple[int, ...] = (20,)
    c: int = 50
    over_realization: int = 1
    activation: networks.Activation = networks.RELU
    use_bias: bool = True
    teacher_bias: float = -0.1
    student_init: str = "gaussian"
    init_last_teacher: str = "none"
    data: str = "gaussian"
    n_train: int = 10000
    n_eval: int = 10000
    batch_size: int = 16
    optimizer: str = "sgd"
    use_weight_decay: bool = False
    lr_boundaries: tuple[int, ...] = ()
    lr_scales: tuple[float, ...] = ()
    loss: str = "half_sse"
    dtype: str = "float64"
    cpu_gemm_layout: bool | None = None

    @classmethod
    def from_config(cls, cfg, over_realization: int) -> Spec:
        """The spec of one shape group of a validated sweep config."""
        return cls(
            teacher=cfg.teacher,
            d=cfg.d,
            teacher_widths=(cfg.m,) if cfg.teacher == "two_layer" else tuple(cfg.teacher_widths),
            c=cfg.c,
            over_realization=int(over_realization),
            activation=networks.Activation.from_config(cfg.activation, float(cfg.slope)),
            use_bias=bool(cfg.use_bias),
            teacher_bias=float(cfg.teacher_bias),
            student_init=cfg.student_init,
            init_last_teacher=cfg.init_last_teacher,
            data=cfg.data,
            n_train=cfg.n_train,
            n_eval=cfg.n_eval,
            batch_size=cfg.batch_size,
            optimizer=cfg.optimizer,
            use_weight_decay=any(w != 0 for w in cfg.weight_decay),
            lr_boundaries=tuple(e * cfg.steps_per_epoch for e in cfg.lr_schedule_epochs),
            lr_scales=tuple(float(s) for s in cfg.lr_schedule_scales),
            loss=cfg.loss,
            dtype=cfg.dtype,
        )

    @property
    def student_widths(self) -> tuple[int, ...]:
        """``(d, n_1, ..., n_{L-1}, C)``."""
        return (self.d, *(self.over_realization * m for m in self.teacher_widths), self.c)

    @property
    def float_dtype(self):
        return networks.resolve_dtype(self.dtype)


class SweptField(NamedTuple):
    """The declaration of one swept field: everything else about it derives from this row of :data:`SWEPT`.

    Attributes:
      name: the config field and the :class:`Hparams` attribute.
      default: the paper's value (the config's default is the one-value sequence ``(default,)``).
      label: the short name figures print in legends.
      long_name: the axis label of its coordinate in the named views (CF ``long_name``).
      low: the smallest allowed value; ``low_inclusive``: whether ``low`` itself is allowed (validation).
      doc: what the value is, for docstrings and docs/cli.md's table.
    """

    name: str
    default: float
    label: str
    long_name: str
    low: float
    low_inclusive: bool
    doc: str


#: The swept fields, declared once: :class:`Hparams`, :data:`HPARAM_DEFAULTS`, :data:`HPARAM_LABELS`, the config's
#: defaults, its validation and settings grid (:mod:`specjax.config`), the named views and docs/cli.md's table of
#: swept fields all derive from this table. A new field is one row here plus its use in :func:`init_run` or
#: :func:`train_steps` (``hp.<name>``, a scalar per run).
SWEPT: tuple[SweptField, ...] = (
    SweptField("teacher_polarity", 0.0, "p", "teacher polarity p", 0.0, True, "node j's fan-out / (j+1)^p (Eqn 13)"),
    SweptField("lr", 0.01, "lr", "learning rate", 0.0, False, "learning rate"),
    SweptField("data_std", 1.5, "std", "input standard deviation", 0.0, False, "std of the input distribution"),
    SweptField("init_scale", 0.005, "init", "student initialisation scale", 0.0, True, "std of the Gaussian init"),
    SweptField("momentum", 0.9, "mom", "momentum", 0.0, True, "momentum (optimizer 'momentum')"),
    SweptField("weight_decay", 0.0, "wd", "weight decay", 0.0, True, "decoupled weight decay rate (0 = none)"),
)


class Hparams(collections.namedtuple("Hparams", [f.name for f in SWEPT])):
    """Array-valued settings of runs: the fields a sweep can vary without recompiling, one per row of :data:`SWEPT`.

    Each field has the runs' leading axes (a scalar per run). The sweep config has one sequence field per name
    here (:data:`specjax.config.SWEPT_FIELDS` is ``Hparams._fields``), whose Cartesian product is a group's
    settings axis; :data:`HPARAM_DEFAULTS` are the paper's values (the config's defaults) and
    :data:`HPARAM_LABELS` the short names figures print. A pytree (a namedtuple).

    Attributes (from :data:`SWEPT`):
    """

    __slots__ = ()

    @classmethod
    def broadcast(cls, runs: int, dtype="float64", **values: float) -> Hparams:
        """``runs`` copies of one setting; a field not given takes its value in :data:`HPARAM_DEFAULTS`.

        Raises:
          ValueError: an unknown field, or a value outside its declared bounds (:data:`SWEPT`).
        """
        unknown = set(values) - set(cls._fields)
        if unknown:
            raise ValueError(f"Hparams: unknown field(s) {sorted(unknown)}; expected {cls._fields}")
        merged = HPARAM_DEFAULTS | values
        for f in SWEPT:
            if not in_bounds(f, merged[f.name]):
                raise ValueError(f"Hparams.{f.name}: must be {bounds_text(f)}, got {merged[f.name]!r}")
        dt = networks.resolve_dtype(dtype)
        return cls(**{f: jnp.full((runs,), merged[f], dt) for f in cls._fields})


Hparams.__doc__ = Hparams.__doc__.rstrip() + "".join(f"\n      {f.name}: {f.doc}." for f in SWEPT) + "\n"


def bounds_text(field: SweptField) -> str:
    """The field's bounds as text, e.g. ``'> 0'`` or ``'>= 0'``."""
    return f"{'>=' if field.low_inclusive else '>'} {field.low:g}"


def in_bounds(field: SweptField, value: float) -> bool:
    """Whether ``value`` lies within the field's declared bounds."""
    return value >= field.low if field.low_inclusive else value > field.low


#: The paper's values of the swept fields (docs/theory.md §7's two-layer experiment); the config's defaults.
HPARAM_DEFAULTS: dict[str, float] = {f.name: f.default for f in SWEPT}
#: Short names of the swept fields for figure legends.
HPARAM_LABELS: dict[str, str] = {f.name: f.label for f in SWEPT}


class RunState(NamedTuple):
    """Everything that changes during training (one run; vmapped leading axes in a program).

    Attributes:
      student: student parameters.
      opt_state: optax state.
      step: int32 global step (number of updates attempted).
      diverged_at: int32 step at which the loss or gradient first became non-finite, -1 if never. From then on
        the run is frozen: its parameters and optimiser state stop changing.
    """

    student: networks.Params
    opt_state: optax.OptState
    step: Array
    diverged_at: Array


class ChunkStats(NamedTuple):
    """Sums over the steps of a chunk (per run): minibatch loss, gradient norm, and how many steps counted."""

    loss_sum: Array
    grad_norm_sum: Array
    steps: Array


#: Evaluation-point quantities of one run, computed on device by :func:`evaluate`: ``{schema name: value}``, the
#: names of the arrays :mod:`specjax.sweep.schema` declares ``evaluated``; a per-layer quantity is a tuple with one
#: array per hidden layer (``l = 1, ..., L-1``).
EvalRecord = dict[str, Array | tuple[Array, ...]]


def seed_key(base_seed: int, seed_index: Array) -> Array:
    """The key of seed ``seed_index``: ``fold_in(key(base_seed), seed_index)``; shared by all settings."""
    return jax.random.fold_in(jax.random.key(base_seed), seed_index)


def make_optimizer(spec: Spec, hp: Hparams) -> optax.GradientTransformation:
    """The run's optax optimiser; hyper-parameters are (traced) arrays from ``hp``."""
    lr = hp.lr
    if spec.lr_boundaries:
        lr = optax.piecewise_constant_schedule(hp.lr, dict(zip(spec.lr_boundaries, spec.lr_scales, strict=True)))
    if spec.optimizer in ("sgd", "gd"):
        base = optax.sgd(lr)
    elif spec.optimizer == "momentum":
        base = optax.sgd(lr, momentum=hp.momentum)
    elif spec.optimizer == "adam":
        base = optax.adam(lr)
    else:
        raise ValueError(f"optimizer: unknown value {spec.optimizer!r}")
    if spec.use_weight_decay:
        return optax.chain(optax.add_decayed_weights(hp.weight_decay), base)
    return base


def make_teacher(spec: Spec, hp: Hparams, key: Array, tuning_inputs: Array) -> networks.Params:
    """The run's teacher (two-layer or deep paper teacher)."""
    dt = spec.float_dtype
    if spec.teacher == "two_layer":
        return teachers.two_layer_teacher(
            key, spec.d, spec.teacher_widths[0], spec.c, hp.teacher_polarity, spec.teacher_bias, spec.use_bias, dt
        )
    return teachers.deep_teacher(
        key,
        spec.d,
        spec.teacher_widths,
        spec.c,
        tuning_inputs,
        hp.teacher_polarity,
        activation=spec.activation,
        use_bias=spec.use_bias,
        dtype=dt,
    )


def eval_inputs(spec: Spec, data_std: Array, key: Array) -> Array:
    """The run's evaluation inputs ``(n_eval, d)``, a pure function of its seed key (as :func:`init_run` draws them);
    analyses of a finished run regenerate them from its key."""
    _, _, k_data = jax.random.split(key, 3)
    return data_lib.sample_inputs(data_lib.eval_key(k_data), spec.n_eval, spec.d, data_std, spec.data, spec.float_dtype)


def init_run(spec: Spec, hp: Hparams, key: Array) -> tuple[networks.Params, data_lib.Dataset, RunState]:
    """Builds one run from its seed key: ``k_teacher, k_student, k_data = split(key, 3)``.

    Returns:
      ``(teacher, dataset, state)`` for one run (no leading axes).
    """
    dt = spec.float_dtype
    k_teacher, k_student, k_data = jax.random.split(key, 3)
    x_eval = eval_inputs(spec, hp.data_std, key)
    teacher = make_teacher(spec, hp, k_teacher, x_eval)
    dataset = data_lib.make_dataset(
        k_data,
        teacher,
        n_train=spec.n_train,
        n_eval=spec.n_eval,
        d=spec.d,
        data_std=hp.data_std,
        distribution=spec.data,
        activation=spec.activation,
        x_eval=x_eval,
        dtype=dt,
    )
    if spec.student_init == "gaussian":
        student = teachers.gaussian_student(k_student, spec.student_widths, hp.init_scale, spec.use_bias, dt)
    else:
        student = teachers.uniform_student(k_student, spec.student_widths, spec.use_bias, dt)
    student = teachers.steer_to_last_teacher(student, teacher, spec.init_last_teacher)
    opt_state = make_optimizer(spec, hp).init(student)
    return teacher, dataset, RunState(student, opt_state, jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32))


def loss_fn(spec: Spec, student: networks.Params, x: Array, y: Array) -> Array:
    """Training loss on a batch ``x (B, d)``, ``y (B, C)`` in the spec's convention."""
    return networks.squared_error_loss(student, x, y, spec.activation, spec.loss)


def loss_and_grad(spec: Spec, student: networks.Params, x: Array, y: Array) -> tuple[Array, networks.Params]:
    """:func:`loss_fn` and its gradient by hand-written backpropagation (docs/theory.md §1).

    With :math:`f_0=x`, :math:`z_l=f_{l-1}W_l+b_l`, :math:`f_l=\\sigma(z_l)` and output :math:`f_L`, the error
    signal at the output is :math:`\\delta_L=(f_L-y)/B` (``'half_sse'``) or :math:`2(f_L-y)/(BC)` (``'mse'``); then

    .. math:: \\partial J/\\partial W_l=f_{l-1}^\\top\\delta_l,\\quad
              \\partial J/\\partial b_l=\\textstyle\\sum_i\\delta_{l,i},\\quad
              \\delta_{l-1}=(\\delta_l W_l^\\top)\\odot\\sigma'(z_{l-1}),

    the reference's hand-written :math:`W \\mathrel{+}= \\eta f^\\top g/B` with :math:`g=-B\\delta`. Equal to
    ``jax.value_and_grad(loss_fn)`` to rounding (tested), with :math:`\\sigma'(0)=0` as in PyTorch; on CPU it is
    faster than the automatic transpose for the paper's small shapes (no negations or ``max`` tie-breaking, and
    the transposes laid out for plain GEMMs, see :func:`_transposed`).

    Args:
      x: ``(B, d)`` inputs; y: ``(B, C)`` targets.

    Returns:
      ``(loss, grads)``: scalar loss and a pytree shaped like ``student``.
    """
    out, hidden = networks.forward(student, x, spec.activation)
    residual = y - out  # (B, C)
    batch, outputs = y.shape
    loss = networks.residual_loss(residual, spec.loss)
    delta = residual * (-1.0 / batch if spec.loss == "half_sse" else -2.0 / (batch * outputs))
    layer_inputs = (x, *(h.post for h in hidden))
    cpu = jax.default_backend() == "cpu" if spec.cpu_gemm_layout is None else spec.cpu_gemm_layout
    grads = [None] * len(student)
    for l in reversed(range(len(student))):
        W, b = student[l]
        gemm = cpu and W.size <= _GEMM_LAYOUT_MAX_WEIGHTS
        grads[l] = (_transposed(layer_inputs[l], gemm) @ delta, None if b is None else jnp.sum(delta, axis=0))
        if l > 0:
            back = jnp.transpose(W @ delta.T) if gemm else delta @ W.T
            delta = back * spec.activation.gate(hidden[l - 1].pre)
    return loss, tuple(grads)


# Per-run weight matrices up to this many entries get the CPU GEMM layout of :func:`_transposed`. Measured:
# the paper's two-layer student (100 x 20 ... 200 x 50 per run) gains 6-30 %; for the deep 10x student of Fig. 8
# (up to 1000 x 1250) it made no difference beyond run-to-run noise (136-149 vs 145-159 run-steps/s), so large
# matrices keep XLA's default layout.
_GEMM_LAYOUT_MAX_WEIGHTS = 1 << 18


def _transposed(a: Array, materialize: bool) -> Array:
    """``a.T``; on CPU materialised behind an optimisation barrier so the weight-gradient matmul is a plain GEMM.

    XLA's CPU backend otherwise folds the transpose into a batch-contracting ``dot`` that Eigen runs at about half
    the speed of a plain matrix product (profiled: ``f^T delta`` was the largest op of the step). Measured on the
    2-core EPYC, float64, 8 runs per device: +6 % / +30 % / +16 % run-steps/s at over-realization 1 / 5 / 10
    together with writing the back-propagated error as ``(W delta^T)^T``; see docs/performance.md.
    """
    if not materialize:
        return a.T
    return jax.lax.optimization_barrier(jnp.transpose(a))


def chunk_batch_indices(spec: Spec, data: data_lib.Dataset, first_step: Array, n_steps: int) -> Array:
    """Training-set rows of steps ``first_step, ..., first_step + n_steps - 1``, all drawn at once.

    The same numbers as :func:`data.minibatch` draws step by step (``randint(fold_in(batch_key, t), (B,), 0,
    n_train)``), but as one vectorised computation before the scan: on CPU the per-step key derivation is a chain of
    small loops that costs as much as the SGD step of a small network.

    Returns:
      ``(n_steps, B)`` int32 row indices into ``data.x_train``.
    """
    steps = first_step + jnp.arange(n_steps, dtype=first_step.dtype)
    n_train = data.x_train.shape[0]
    draw = lambda t: jax.random.randint(jax.random.fold_in(data.batch_key, t), (spec.batch_size,), 0, n_train)
    return jax.vmap(draw)(steps)


def _tree_where(keep: Array, new, old):
    return jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, old)


def train_steps(
    spec: Spec, n_steps: int, state: RunState, teacher: networks.Params, data: data_lib.Dataset, hp: Hparams
) -> tuple[RunState, ChunkStats]:
    """``n_steps`` optimiser steps of one run, scanned.

    Step ``t`` uses the batch :func:`data.minibatch` draws from ``fold_in(batch_key, t)`` (rows drawn for the whole
    chunk up front by :func:`chunk_batch_indices`; the full training set for ``'gd'``), the gradient of
    :func:`loss_fn` (:func:`loss_and_grad`, equal to docs/theory.md §1's :math:`-f_{l-1}g_l^\\top`), and the optax
    update. A non-finite loss or gradient freezes the run at its last finite state and records ``diverged_at``.
    """
    tx = make_optimizer(spec, hp)
    fresh_samples = spec.n_train == 0

    def batch(step: Array, rows: Array | None) -> tuple[Array, Array]:
        if spec.optimizer == "gd":
            return data.x_train, data.y_train
        if fresh_samples:
            return data_lib.minibatch(
                data,
                step,
                spec.batch_size,
                teacher,
                data_std=hp.data_std,
                distribution=spec.data,
                activation=spec.activation,
            )
        return data.x_train[rows], data.y_train[rows]

    def step(carry, rows):
        state, stats = carry
        x, y = batch(state.step, rows)
        loss, grads = loss_and_grad(spec, state.student, x, y)
        grad_sq = sum(jnp.sum(g * g) for g in jax.tree.leaves(grads))
        updates, opt_state = tx.update(grads, state.opt_state, state.student)
        student = optax.apply_updates(state.student, updates)
        alive = state.diverged_at < 0
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_sq)
        keep = alive & finite
        new_state = RunState(
            student=_tree_where(keep, student, state.student),
            opt_state=_tree_where(keep, opt_state, state.opt_state),
            step=state.step + 1,
            diverged_at=jnp.where(alive & ~finite, state.step, state.diverged_at),
        )
        zero = jnp.zeros((), loss.dtype)
        stats = ChunkStats(
            stats.loss_sum + jnp.where(keep, loss, zero),
            stats.grad_norm_sum + jnp.where(keep, jnp.sqrt(grad_sq), zero),
            stats.steps + keep.astype(jnp.int32),
        )
        return (new_state, stats), None

    dt = spec.float_dtype
    stats0 = ChunkStats(jnp.zeros((), dt), jnp.zeros((), dt), jnp.zeros((), jnp.int32))
    rows = None if spec.optimizer == "gd" or fresh_samples else chunk_batch_indices(spec, data, state.step, n_steps)
    (state, stats), _ = jax.lax.scan(step, (state, stats0), rows, length=n_steps)
    return state, stats


def evaluate(spec: Spec, state: RunState, data: data_lib.Dataset) -> EvalRecord:
    """Evaluation record of one run on its evaluation set (docs/theory.md §3 quantities).

    Every key is the name of an array :mod:`specjax.sweep.schema` declares ``evaluated``, which the sweep records
    (a new quantity is one entry here and its row in the schema):

    * ``eval_loss``: loss in the run's training convention (``Spec.loss``), scalar;
    * ``eval_mse``: mean over samples and outputs of the squared error (the reference code's logged loss, which the
      paper's Fig. 10 plots; ``half_sse = C/2 * mse``), scalar;
    * per hidden layer ``l``: ``corr`` ``(m_l, n_l)`` teacher x student correlation of activations,
      ``best_teacher_corr`` ``(m_l,)`` and ``best_student_corr`` ``(n_l,)`` its maxima over students and teachers,
      ``fan_out_norm`` ``(n_l,)`` the student fan-out weight norms.
    """
    out, hidden = networks.forward(state.student, data.x_eval, spec.activation)
    r = data.y_eval - out
    corr = tuple(correlation_to_teacher(t.post, s.post) for t, s in zip(data.teacher_eval, hidden, strict=True))
    return {
        "eval_loss": networks.residual_loss(r, spec.loss),
        "eval_mse": networks.residual_loss(r, "mse"),
        "best_teacher_corr": tuple(jnp.max(c, axis=-1) for c in corr),
        "best_student_corr": tuple(jnp.max(c, axis=-2) for c in corr),
        "fan_out_norm": networks.fan_out_norms(state.student),
        "corr": corr,
    }


def correlation_to_teacher(teacher_acts: Array, student_acts: Array, eps: float = 1e-10) -> Array:
    """:func:`metrics.correlation` in the evaluation's layout: the centred teacher side times the raw student side,
    minus the rank-1 term that centring the student side would remove.

    .. math:: \\rho_{jk}=\\frac{\\sum_i u_{ij}f_{ik}-\\big(\\sum_iu_{ij}\\big)\\bar f_k}
              {\\sqrt{\\|\\tilde f_k\\|^2+\\epsilon}},\\qquad
              u_j=\\frac{\\tilde f^*_j}{\\sqrt{\\|\\tilde f^*_j\\|^2+\\epsilon}},\\quad \\tilde f=f-\\mathrm{mean}_if,

    equal to the fully centred product in exact arithmetic (:math:`\\sum_i\\tilde f_{ik}u_{ij}=\\sum_if_{ik}u_{ij}-
    \\bar f_k\\sum_iu_{ij}`). Subtracting the computed :math:`\\sum_iu_{ij}` removes the rounding of the teacher's
    centring, which the raw product multiplies by the student's mean (9.5e-5 off ``numpy.corrcoef`` in float32 for a
    node with mean/std 500 without it). What remains is the float32 rounding of the product itself, about
    :math:`\\epsilon_{32}\\,|\\bar f_k|/\\sigma_k`: measured 1.5-2.2e-5 at mean/std 500, 1.4e-6 at 25, 1e-8 on
    ordinary ReLU nodes (mean/std < 1); 3e-14 in float64 (tests/test_metrics.py). It avoids materialising a centred
    copy of the student activations, which made the evaluation 20-30 % slower (``python -m specjax.bench``,
    docs/performance.md).

    Args:
      teacher_acts: ``(N, m)``; student_acts: ``(N, n)``.

    Returns:
      ``(m, n)`` correlation matrix.
    """
    t = teacher_acts - jnp.mean(teacher_acts, axis=0, keepdims=True)
    t_unit = t / jnp.sqrt(jnp.sum(t * t, axis=0, keepdims=True) + eps)
    s_mean = jnp.mean(student_acts, axis=0)
    s_norm = jnp.sqrt(jnp.sum(jnp.square(student_acts - s_mean[None, :]), axis=0) + eps)
    raw = t_unit.T @ student_acts
    return (raw - jnp.sum(t_unit, axis=0)[:, None] * s_mean[None, :]) / s_norm[None, :]
