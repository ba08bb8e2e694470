"""The engine's fast path (specjax.engine.run): hand-written backprop, chunk batch indices, evaluation correlation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax.core import data as data_lib
from specjax.core import metrics, networks, teachers
from specjax.engine.run import (
    Hparams,
    Spec,
    chunk_batch_indices,
    correlation_to_teacher,
    init_run,
    loss_and_grad,
    loss_fn,
    seed_key,
)

BASE = Spec(d=6, teacher_widths=(4,), c=3, over_realization=2, n_train=64, n_eval=32, batch_size=8)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"loss": "mse"},
        {"activation": networks.leaky_relu(0.1), "use_bias": False},
        {"activation": networks.LINEAR},
        {"activation": networks.SOFTPLUS, "teacher": "deep", "teacher_widths": (5, 4)},
        {"teacher": "deep", "teacher_widths": (5, 4, 3), "student_init": "uniform"},
    ],
    ids=["two_layer", "mse", "leaky_no_bias", "linear", "softplus_deep", "deep"],
)
def test_hand_written_gradient_equals_jax_grad(changes):
    spec = dataclasses.replace(BASE, **changes)
    key_x, key_y, key_w = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(key_x, (spec.batch_size, spec.d))
    y = jax.random.normal(key_y, (spec.batch_size, spec.c))
    student = teachers.uniform_student(key_w, spec.student_widths, spec.use_bias, jnp.float64)
    loss, grads = loss_and_grad(spec, student, x, y)
    loss_ref, grads_ref = jax.value_and_grad(loss_fn, argnums=1)(spec, student, x, y)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-14)
    assert jax.tree.structure(grads) == jax.tree.structure(grads_ref)
    for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-15)


def test_chunk_batch_indices_are_the_minibatch_draws():
    hp = jax.tree.map(lambda a: a[0], Hparams.broadcast(1, data_std=1.5, init_scale=0.1))
    teacher, data, _ = init_run(BASE, hp, seed_key(2, 0))
    rows = chunk_batch_indices(BASE, data, jnp.int32(37), 5)
    assert rows.shape == (5, BASE.batch_size)
    for t in range(5):
        x, y = data_lib.minibatch(data, jnp.int32(37 + t), BASE.batch_size, teacher, data_std=hp.data_std)
        np.testing.assert_array_equal(data.x_train[rows[t]], x)
        np.testing.assert_array_equal(data.y_train[rows[t]], y)


def test_correlation_to_teacher_equals_metrics_correlation():
    key_t, key_s = jax.random.split(jax.random.key(1))
    t = jax.nn.relu(jax.random.normal(key_t, (500, 4)) + 0.3)
    s = jax.nn.relu(jax.random.normal(key_s, (500, 7)) @ jnp.ones((7, 7)) * 0.1 + 1.0)
    s = s.at[:, 3].set(0.0)  # a dead student node: correlation 0 thanks to eps
    np.testing.assert_allclose(correlation_to_teacher(t, s), metrics.correlation(t, s), rtol=1e-12, atol=1e-14)
