"""The paper's teachers and students (docs/theory.md §3 and §7).

Every constructor is a pure function of a PRNG key and array-valued settings (``teacher_polarity``, ``init_scale``,
...), so it can be vmapped over seeds and settings. Shapes are fixed by the integer arguments. Parameters use the
layout of :mod:`specjax.core.networks`: ``W`` is ``(fan_in, fan_out)``; column ``k`` is node ``k``'s filter and row
``k`` of the next layer's ``W`` is node ``k``'s fan-out.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from specjax.core.networks import RELU, Activation, Params, dense
from specjax.errors import ArgumentError

Array = jax.Array

#: The nine weight values of ``init_separate_w`` (docs/theory.md §7: hard-coded before commit ``b06abfb``).
WEIGHT_CHOICES = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
LAST_TEACHER_INIT = ("none", "helpful", "adversarial")


def _size(name: str, value) -> int:
    """``value`` as a Python int if it is an integer >= 1 (bools excluded); otherwise an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name}: must be an integer >= 1, got {value!r}")
    return int(value)


def _sizes(name: str, values, minimum_length: int = 1) -> tuple[int, ...]:
    """A sequence of sizes (each an integer >= 1), named ``name[i]`` in errors."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) < minimum_length:
        raise ArgumentError(f"{name}: expected a sequence of {minimum_length} or more integers >= 1, got {values!r}")
    return tuple(_size(f"{name}[{i}]", v) for i, v in enumerate(values))


def check_distinct_available(
    count: int, dim: int, count_name: str = "count", dim_name: str = "dim", n_choices: int = len(WEIGHT_CHOICES)
) -> None:
    """Refuses ``count`` pairwise-distinct non-zero vectors of length ``dim`` from ``n_choices`` values when fewer
    than ``count`` exist (``n_choices**dim - 1``), which would make the redraw loop run forever.

    ``count_name`` and ``dim_name`` are the caller's names for the two sizes (``m`` and ``d`` for the first layer
    of :func:`two_layer_teacher`), so the message names the argument the caller passed.

    Raises:
      ArgumentError: too few such vectors exist (names ``count_name`` and ``dim_name``).
    """
    available = n_choices**dim - 1 if dim < 32 else None  # 9**32 exceeds any array size
    if available is not None and count > available:
        raise ArgumentError(
            f"{count_name}: {count} pairwise-distinct non-zero filters of length {dim_name}={dim} cannot be drawn "
            f"from {n_choices} weight values (only {available} exist): a teacher layer of {count} nodes needs more "
            f"inputs than {dim_name}={dim}"
        )


def distinct_choice_vectors(
    key: Array, count: int, dim: int, choices: Sequence[float] = WEIGHT_CHOICES, dtype=jnp.float32
) -> Array:
    """``count`` pairwise-distinct, non-zero vectors with i.i.d. entries drawn uniformly from ``choices``.

    The reference's ``init_separate_w``: offending vectors (zero, or equal to an earlier one) are redrawn until none
    is left (Assumption 1 (i): no two teacher nodes co-linear through equality). Written with ``lax.while_loop`` so
    it runs under ``jit`` and ``vmap``.

    Returns:
      ``(count, dim)`` array.

    Raises:
      ArgumentError: ``count`` or ``dim`` is not an integer >= 1, or fewer than ``count`` distinct non-zero vectors
        exist (``count > len(choices)**dim - 1``), which would make the redraw loop run forever.
    """
    count, dim = _size("count", count), _size("dim", dim)
    check_distinct_available(count, dim, n_choices=len(choices))
    table = jnp.asarray(choices, dtype)

    def draw(k):
        return table[jax.random.randint(k, (count, dim), 0, table.shape[0])]

    def offending(v):
        zero = jnp.all(v == 0, axis=1)
        equal = jnp.all(v[:, None, :] == v[None, :, :], axis=-1)
        later_duplicate = jnp.any(jnp.triu(equal, k=1), axis=0)
        return zero | later_duplicate

    def body(carry):
        k, v = carry
        k, sub = jax.random.split(k)
        return k, jnp.where(offending(v)[:, None], draw(sub), v)

    k_loop, k_first = jax.random.split(key)
    _, vectors = jax.lax.while_loop(lambda c: jnp.any(offending(c[1])), body, (k_loop, draw(k_first)))
    return vectors


def polarity_divisor(count: int, teacher_polarity: Array, dtype=jnp.float32) -> Array:
    """Eqn 13 as implemented: node ``i`` (0-based) gets divisor :math:`(i+1)^p`. Returns ``(count,)``."""
    return jnp.arange(1, count + 1, dtype=dtype) ** jnp.asarray(teacher_polarity, dtype)


def two_layer_teacher(
    key: Array,
    d: int,
    m: int,
    c: int,
    teacher_polarity: Array = 0.0,
    teacher_bias: Array = -0.1,
    use_bias: bool = True,
    dtype=jnp.float32,
) -> Params:
    """The two-layer paper teacher of ``recon_two_layer.py`` (docs/theory.md §7).

    * Layer 1: ``m`` pairwise-distinct filters from :data:`WEIGHT_CHOICES`, each normalised to unit norm
      (bias excluded); all hidden biases ``teacher_bias`` (-0.1).
    * Layer 2: fan-outs from ``init_separate_w(c, m)^T`` (not normalised): the ``c`` output filters are distinct;
      row ``i`` (node ``i``'s fan-out :math:`v^*_i`) divided by :math:`(i+1)^p`; output biases ``teacher_bias``.

    Args:
      key: PRNG key.
      d, m, c: input dimension, teacher hidden width, output dimension.
      teacher_polarity: :math:`p\\ge0`; 0 is a symmetric teacher (node 0 is always the strongest).
      teacher_bias: value of every bias.
      use_bias: ``False`` gives a bias-free network (biases ``None``).
      dtype: float dtype.

    Returns:
      ``((W1 (d, m), b1 (m,)), (W2 (m, c), b2 (c,)))``.

    Raises:
      ArgumentError: ``d``, ``m`` or ``c`` is not an integer >= 1, or a layer needs more distinct filters than its
        inputs allow (``m > 9**d - 1`` or ``c > 9**m - 1``); the message names ``d``, ``m`` and ``c``.
    """
    d, m, c = _size("d", d), _size("m", m), _size("c", c)
    check_distinct_available(m, d, "m", "d")
    check_distinct_available(c, m, "c", "m")
    k_filters, k_fan_out = jax.random.split(key)
    filters = distinct_choice_vectors(k_filters, m, d, dtype=dtype)
    filters = filters / jnp.linalg.norm(filters, axis=1, keepdims=True)
    fan_out = distinct_choice_vectors(k_fan_out, c, m, dtype=dtype).T
    fan_out = fan_out / polarity_divisor(m, teacher_polarity, dtype)[:, None]
    bias = jnp.asarray(teacher_bias, dtype)
    b1 = jnp.full((m,), bias, dtype) if use_bias else None
    b2 = jnp.full((c,), bias, dtype) if use_bias else None
    return ((filters.T, b1), (fan_out, b2))


def deep_teacher(
    key: Array,
    d: int,
    hidden_widths: Sequence[int],
    c: int,
    tuning_inputs: Array,
    teacher_polarity: Array = 0.0,
    bias_range: float = 0.5,
    activation: Activation = RELU,
    use_bias: bool = True,
    dtype=jnp.float32,
) -> Params:
    """The deep paper teacher of ``recon_multilayer.py`` (docs/theory.md §7, "Teacher construction").

    1. Every layer's node filters come from :func:`distinct_choice_vectors`; biases :math:`U(-0.5, 0.5)`.
    2. Polarity (``Model.prioritize``): in every layer above the first, the fan-in weight from lower node ``i`` is
       divided by :math:`(i+1)^p` -- node ``i``'s fan-out shrinks with its rank.
    3. ``normalize_layer``: each node's weights and bias divided by the norm of its weights.
    4. ``tune_teacher``: bottom-up, each hidden bias minus the median pre-activation on ``tuning_inputs``, so every
       hidden teacher node is active on half of them.
    5. ``tune_teacher_last_layer``: outputs standardised to mean 0, std 1 on ``tuning_inputs``.

    Args:
      key: PRNG key.
      d: input dimension.
      hidden_widths: teacher hidden widths ``(m_1, ..., m_{L-1})``.
      c: output dimension.
      tuning_inputs: ``(N, d)`` sample used for bias tuning and output standardisation (the reference's eval set).
      teacher_polarity: :math:`p`.
      bias_range: half-width of the initial uniform biases.
      activation: hidden activation.
      use_bias: must be ``True`` for median tuning to make sense; ``False`` skips steps 4-5's bias parts.
      dtype: float dtype.

    Returns:
      ``L`` layers ``(W (fan_in, fan_out), b (fan_out,))``.

    Raises:
      ArgumentError: a size is not an integer >= 1, a layer needs more distinct filters than its inputs allow, or
        ``tuning_inputs`` is not ``(N, d)``; the message names ``d``, ``hidden_widths[i]``, ``c`` or
        ``tuning_inputs``.
    """
    d, c = _size("d", d), _size("c", c)
    dims = (d, *_sizes("hidden_widths", hidden_widths), c)
    names = ("d", *(f"hidden_widths[{i}]" for i in range(len(dims) - 2)), "c")
    for l in range(len(dims) - 1):
        check_distinct_available(dims[l + 1], dims[l], names[l + 1], names[l])
    shape = np.shape(tuning_inputs)
    if len(shape) != 2 or shape[1] != d or shape[0] < 2:
        raise ArgumentError(f"tuning_inputs: expected an array of shape (N >= 2, d={d}), got shape {shape}")
    keys = jax.random.split(key, 2 * (len(dims) - 1))
    layers = []
    for l in range(len(dims) - 1):
        fan_in, fan_out = dims[l], dims[l + 1]
        W = distinct_choice_vectors(keys[2 * l], fan_out, fan_in, dtype=dtype).T
        b = jax.random.uniform(keys[2 * l + 1], (fan_out,), dtype, -bias_range, bias_range)
        if l > 0:
            W = W / polarity_divisor(fan_in, teacher_polarity, dtype)[:, None]
        scale = jnp.linalg.norm(W, axis=0)
        layers.append([W / scale[None, :], b / scale])

    f = tuning_inputs.astype(dtype)
    for layer in layers[:-1]:
        W, b = layer
        if use_bias:
            b = b - jnp.median(f @ W + b[None, :], axis=0)
            layer[1] = b
        f = activation(f @ W + b[None, :])
    W, b = layers[-1]
    out = f @ W + b[None, :]
    std = jnp.std(out, axis=0)
    mean = jnp.mean(out, axis=0)
    layers[-1] = [W / std[None, :], (b - mean) / std]
    return tuple((W, b if use_bias else None) for W, b in layers)


def gaussian_student(
    key: Array, widths: Sequence[int], init_scale: Array = 0.005, use_bias: bool = True, dtype=jnp.float32
) -> Params:
    """Two-layer reference student: weights :math:`N(0, s^2)` with ``s = init_scale``, biases zero.

    Args:
      widths: ``(d, n_1, ..., C)``.

    Raises:
      ArgumentError: ``widths`` is not a sequence of at least two integers >= 1 (names ``widths[i]``).
    """
    widths = _sizes("widths", widths, minimum_length=2)
    keys = jax.random.split(key, len(widths) - 1)
    scale = jnp.asarray(init_scale, dtype)
    return tuple(
        (scale * jax.random.normal(k, (fi, fo), dtype), jnp.zeros((fo,), dtype) if use_bias else None)
        for k, fi, fo in zip(keys, widths[:-1], widths[1:], strict=True)
    )


def uniform_student(key: Array, widths: Sequence[int], use_bias: bool = True, dtype=jnp.float32) -> Params:
    """Deep reference student: PyTorch's default :math:`U(\\pm1/\\sqrt{\\text{fan-in}})` for weights and biases.

    Args:
      widths: ``(d, n_1, ..., C)``.

    Raises:
      ArgumentError: ``widths`` is not a sequence of at least two integers >= 1 (names ``widths[i]``).
    """
    widths = _sizes("widths", widths, minimum_length=2)
    keys = jax.random.split(key, 2 * (len(widths) - 1))
    layers = []
    for l, (fi, fo) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        bound = 1.0 / jnp.sqrt(jnp.asarray(fi, dtype))
        W = jax.random.uniform(keys[2 * l], (fi, fo), dtype, -bound, bound)
        b = jax.random.uniform(keys[2 * l + 1], (fo,), dtype, -bound, bound) if use_bias else None
        layers.append((W, b))
    return tuple(layers)


def steer_to_last_teacher(student: Params, teacher: Params, mode: str) -> Params:
    """Initialisation helpful or adversarial to the last (weakest) teacher node of the first layer.

    * ``'helpful'``: student node 0's first-layer filter is turned onto the last teacher filter, keeping its norm
      (angle 0, the best start).
    * ``'adversarial'``: every student filter with a positive component along the last teacher filter is reflected
      across that filter's orthogonal hyperplane, so every student starts at an obtuse angle to it -- the slow worst
      case of docs/theory.md §5 ("Worst case: slow convergence").
    * ``'none'``: unchanged.

    Raises:
      ArgumentError: ``mode`` is unknown, or the student's first layer does not take the teacher's inputs.
    """
    if mode == "none":
        return student
    if mode not in LAST_TEACHER_INIT:
        raise ArgumentError(f"init_last_teacher: unknown value {mode!r}; expected one of {LAST_TEACHER_INIT}")
    (W, b), rest = student[0], student[1:]
    target = teacher[0][0][:, -1]
    if np.shape(W)[0] != np.shape(target)[0]:
        raise ArgumentError(
            f"student: its first layer has fan_in {np.shape(W)[0]}, the teacher's has {np.shape(target)[0]}"
        )
    unit = target / jnp.linalg.norm(target)
    if mode == "helpful":
        W = W.at[:, 0].set(unit * jnp.linalg.norm(W[:, 0]))
    else:
        along = unit @ W
        W = W - 2.0 * jnp.maximum(along, 0.0)[None, :] * unit[:, None]
    return ((W, b), *rest)


def hidden_activity(params: Params, x: Array, activation: Activation = RELU) -> tuple[Array, ...]:
    """Fraction of inputs on which each hidden node is active (pre-activation > 0); one ``(n_l,)`` per layer."""
    out = []
    f = x
    for layer in params[:-1]:
        z = dense(layer, f)
        out.append(jnp.mean(z > 0, axis=0))
        f = activation(z)
    return tuple(out)
