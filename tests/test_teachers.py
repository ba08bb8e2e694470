"""Teacher and student construction as in docs/theory.md §7."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax.core import teachers
from specjax.core.data import sample_inputs


def test_distinct_choice_vectors_are_distinct_nonzero_and_from_the_choices():
    # dim 2 from 9 choices: 80 non-zero vectors exist, so 40 draws collide often and must be redrawn.
    v = np.asarray(teachers.distinct_choice_vectors(jax.random.key(0), 40, 2, dtype=jnp.float64))
    assert len({tuple(r) for r in v}) == 40
    assert not np.any(np.all(v == 0, axis=1))
    assert set(np.unique(v)) <= set(teachers.WEIGHT_CHOICES)


@pytest.mark.parametrize("polarity", [0.0, 1.0, 2.5])
def test_two_layer_teacher_norms_biases_and_polarity(polarity):
    key = jax.random.key(1)
    (W1, b1), (W2, b2) = teachers.two_layer_teacher(key, 100, 20, 50, polarity, dtype=jnp.float64)
    assert W1.shape == (100, 20) and W2.shape == (20, 50)
    np.testing.assert_allclose(np.linalg.norm(W1, axis=0), 1.0, atol=1e-12)  # unit filters, bias excluded
    np.testing.assert_array_equal(b1, -0.1)
    np.testing.assert_array_equal(b2, -0.1)
    (_, _), (W2_sym, _) = teachers.two_layer_teacher(key, 100, 20, 50, 0.0, dtype=jnp.float64)
    # Row i (node i's fan-out) divided by (i+1)^p; same key gives the same draws.
    np.testing.assert_allclose(W2 * (np.arange(1, 21) ** polarity)[:, None], W2_sym, rtol=1e-12)
    assert len({tuple(r) for r in np.asarray(W1.T)}) == 20
    assert len({tuple(c) for c in np.asarray(W2_sym.T)}) == 50  # the c output filters are distinct


def test_deep_teacher_nodes_half_active_and_outputs_standardised():
    x = sample_inputs(jax.random.key(2), 2048, 20, 10.0, dtype=jnp.float64)
    params = teachers.deep_teacher(jax.random.key(3), 20, (12, 15, 9), 7, x, 1.0, dtype=jnp.float64)
    for frac in teachers.hidden_activity(params, x):
        np.testing.assert_allclose(frac, 0.5, atol=1.0 / 2048)  # median tuning: half of the tuning inputs
    from specjax.core.networks import apply

    out = apply(params, x)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-10)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-10)


def test_deep_teacher_polarity_scales_fan_in_of_upper_layers():
    x = sample_inputs(jax.random.key(2), 512, 6, 1.0, dtype=jnp.float64)
    sym = teachers.deep_teacher(jax.random.key(3), 6, (5, 4), 3, x, 0.0, dtype=jnp.float64)
    pol = teachers.deep_teacher(jax.random.key(3), 6, (5, 4), 3, x, 2.0, dtype=jnp.float64)
    np.testing.assert_allclose(sym[0][0], pol[0][0])  # first layer untouched
    # Above the first layer node 0's fan-out is the least scaled: its share of each column grows with p.
    share = lambda W: np.abs(W[0]) / np.abs(W).sum(0)  # noqa: E731
    assert np.all(share(np.asarray(pol[1][0])) >= share(np.asarray(sym[1][0])) - 1e-12)


def test_students_init():
    s = teachers.gaussian_student(jax.random.key(0), (100, 200, 50), 0.005, dtype=jnp.float64)
    assert abs(float(jnp.std(s[0][0])) - 0.005) < 2e-4 and float(jnp.abs(s[0][1]).max()) == 0.0
    u = teachers.uniform_student(jax.random.key(0), (20, 500, 100), dtype=jnp.float64)
    assert float(jnp.abs(u[0][0]).max()) <= 1 / np.sqrt(20) and float(jnp.abs(u[1][0]).max()) <= 1 / np.sqrt(500)


def test_init_helpful_and_adversarial_to_last_teacher():
    teacher = teachers.two_layer_teacher(jax.random.key(0), 10, 4, 3, dtype=jnp.float64)
    student = teachers.gaussian_student(jax.random.key(1), (10, 8, 3), 0.1, dtype=jnp.float64)
    t = np.asarray(teacher[0][0][:, -1])
    helpful = teachers.steer_to_last_teacher(student, teacher, "helpful")[0][0]
    cos = t @ np.asarray(helpful[:, 0]) / np.linalg.norm(helpful[:, 0])
    assert cos == pytest.approx(1.0, abs=1e-12)
    adversarial = np.asarray(teachers.steer_to_last_teacher(student, teacher, "adversarial")[0][0])
    assert np.all(t @ adversarial <= 1e-12)
    np.testing.assert_allclose(np.linalg.norm(adversarial, axis=0), np.linalg.norm(student[0][0], axis=0))
