"""Input distributions, finite training sets and minibatches (docs/theory.md §7).

A run's data are a pure function of its key: a finite training set (the paper's default, sampled with replacement
each step), or fresh samples every step when ``n_train == 0``; and a separate evaluation set. Batch ``t`` of a run is
drawn with ``fold_in(batch_key, t)``, so it depends only on the global step -- never on how training is chunked.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from specjax.core.networks import RELU, Activation, Hidden, Params, forward

Array = jax.Array

DISTRIBUTIONS = ("gaussian", "uniform")


class Dataset(NamedTuple):
    """One run's data. Arrays carry the run's leading axes when vmapped.

    Attributes:
      x_train: ``(n_train, d)`` training inputs (``n_train = 0`` for fresh samples each step).
      y_train: ``(n_train, C)`` teacher outputs on them, computed once.
      x_eval: ``(n_eval, d)`` evaluation inputs.
      y_eval: ``(n_eval, C)`` teacher outputs.
      teacher_eval: teacher's hidden layers on ``x_eval``, one :class:`~specjax.core.networks.Hidden` per layer.
      batch_key: key from which batch ``t`` is drawn by ``fold_in(batch_key, t)``.
    """

    x_train: Array
    y_train: Array
    x_eval: Array
    y_eval: Array
    teacher_eval: tuple[Hidden, ...]
    batch_key: Array


def sample_inputs(
    key: Array, n: int, d: int, data_std: Array = 1.0, distribution: str = "gaussian", dtype=jnp.float32
) -> Array:
    """``n`` i.i.d. inputs of dimension ``d``.

    ``'gaussian'``: :math:`N(0, s^2 I_d)`; ``'uniform'``: each coordinate :math:`U(-\\sqrt3 s, \\sqrt3 s)` (same
    variance :math:`s^2`). ``s = data_std`` may be a traced array.

    Returns:
      ``(n, d)``.
    """
    s = jnp.asarray(data_std, dtype)
    if distribution == "gaussian":
        return s * jax.random.normal(key, (n, d), dtype)
    if distribution == "uniform":
        return s * jnp.sqrt(jnp.asarray(3.0, dtype)) * jax.random.uniform(key, (n, d), dtype, -1.0, 1.0)
    raise ValueError(f"data: unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")


def make_dataset(
    key: Array,
    teacher: Params,
    *,
    n_train: int,
    n_eval: int,
    d: int,
    data_std: Array,
    distribution: str = "gaussian",
    activation: Activation = RELU,
    x_eval: Array | None = None,
    dtype=jnp.float32,
) -> Dataset:
    """Draws a run's training and evaluation sets and labels them with the teacher once.

    Args:
      key: the run's data key.
      teacher: teacher parameters.
      n_train: training-set size; 0 means fresh samples every step (then ``x_train`` is ``(0, d)``).
      n_eval: evaluation-set size.
      x_eval: optional pre-drawn evaluation inputs (the deep teacher is tuned on them); drawn here if ``None``.
    """
    k_train, k_eval, k_batch = jax.random.split(key, 3)
    if x_eval is None:
        x_eval = sample_inputs(k_eval, n_eval, d, data_std, distribution, dtype)
    x_train = sample_inputs(k_train, n_train, d, data_std, distribution, dtype)
    y_train, _ = forward(teacher, x_train, activation)
    y_eval, teacher_eval = forward(teacher, x_eval, activation)
    return Dataset(x_train, y_train, x_eval, y_eval, teacher_eval, k_batch)


def eval_key(key: Array) -> Array:
    """The key :func:`make_dataset` uses for evaluation inputs, for callers that need them first (deep teacher)."""
    return jax.random.split(key, 3)[1]


def minibatch(
    data: Dataset,
    step: Array,
    batch_size: int,
    teacher: Params,
    *,
    data_std: Array,
    distribution: str = "gaussian",
    activation: Activation = RELU,
) -> tuple[Array, Array]:
    """Batch of global step ``step``: ``(x (B, d), y (B, C))``.

    With a finite training set, ``B`` indices drawn with replacement (``random.choices`` in the reference); with
    ``n_train == 0``, ``B`` fresh inputs labelled by the teacher on the fly.
    """
    k = jax.random.fold_in(data.batch_key, step)
    n_train, d = data.x_train.shape
    if n_train == 0:
        x = sample_inputs(k, batch_size, d, data_std, distribution, data.x_eval.dtype)
        y, _ = forward(teacher, x, activation)
        return x, y
    idx = jax.random.randint(k, (batch_size,), 0, n_train)
    return data.x_train[idx], data.y_train[idx]
