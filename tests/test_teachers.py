"""Teacher and student construction as in docs/theory.md §7."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax.core import teachers
from specjax.core.data import sample_inputs
from specjax.errors import ArgumentError


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


@pytest.mark.slow
def test_deep_teacher_nodes_half_active_and_outputs_standardised():
    x = sample_inputs(jax.random.key(2), 2048, 20, 10.0, dtype=jnp.float64)
    params = teachers.deep_teacher(jax.random.key(3), 20, (12, 15, 9), 7, x, 1.0, dtype=jnp.float64)
    for frac in teachers.hidden_activity(params, x):
        np.testing.assert_allclose(frac, 0.5, atol=1.0 / 2048)  # median tuning: half of the tuning inputs
    from specjax.core.networks import apply

    out = apply(params, x)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-10)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-10)


@pytest.mark.slow
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


KEY = jax.random.key(0)
X3 = np.ones((8, 3))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: teachers.two_layer_teacher(KEY, 1, 20, 3), r"m: 20 pairwise-distinct non-zero filters of length d=1 "),
        (lambda: teachers.two_layer_teacher(KEY, 5, 1, 20), r"c: 20 pairwise-distinct .* of length m=1 .*only 8"),
        (lambda: teachers.two_layer_teacher(KEY, 0, 2, 3), r"d: must be an integer >= 1, got 0$"),
        (lambda: teachers.two_layer_teacher(KEY, 3, -1, 3), r"m: must be an integer >= 1, got -1$"),
        (lambda: teachers.two_layer_teacher(KEY, 3, 2.5, 3), r"m: must be an integer >= 1, got 2.5$"),
        (lambda: teachers.two_layer_teacher(KEY, 3, 2, True), r"c: must be an integer >= 1, got True$"),
        (lambda: teachers.deep_teacher(KEY, 1, (20,), 3, X3[:, :1]), r"hidden_widths\[0\]: 20 .* length d=1 "),
        (lambda: teachers.deep_teacher(KEY, 3, (4, 0), 3, X3), r"hidden_widths\[1\]: must be an integer >= 1, got 0$"),
        (lambda: teachers.deep_teacher(KEY, 3, 4, 3, X3), r"hidden_widths: expected a sequence of 1 or more integers"),
        (
            lambda: teachers.deep_teacher(KEY, 3, (4,), 3, np.ones((8, 5))),
            r"tuning_inputs: .*\(N >= 2, d=3\), .*\(8, 5\)",
        ),
        (lambda: teachers.gaussian_student(KEY, (3,)), r"widths: expected a sequence of 2 or more integers >= 1"),
        (lambda: teachers.gaussian_student(KEY, (3, -1, 2)), r"widths\[1\]: must be an integer >= 1, got -1$"),
        (lambda: teachers.uniform_student(KEY, (3, 1.5, 2)), r"widths\[1\]: must be an integer >= 1, got 1.5$"),
        (
            lambda: teachers.steer_to_last_teacher(
                teachers.gaussian_student(KEY, (5, 4, 2)), teachers.two_layer_teacher(KEY, 3, 2, 2), "helpful"
            ),
            r"student: its first layer has fan_in 5, the teacher's has 3$",
        ),
        (lambda: teachers.distinct_choice_vectors(KEY, 20, 1), r"count: 20 .* length dim=1 "),
    ],
    ids=[
        "m_vs_d",
        "c_vs_m",
        "d_zero",
        "m_negative",
        "m_float",
        "c_bool",
        "deep_width_vs_d",
        "deep_width_zero",
        "deep_widths_int",
        "deep_tuning_shape",
        "student_one_width",
        "student_negative",
        "uniform_float",
        "steer_shape",
        "generic_names",
    ],
)
def test_constructors_refuse_bad_sizes_naming_their_own_arguments(build, message):
    with pytest.raises(ArgumentError, match=message):
        build()
