"""Closed forms of specjax.theory.closed_forms against Monte Carlo and autodiff (docs/theory.md §5 and §6).

Monte Carlo checks use 10^6 float64 samples and pass when every component's z-score
``(MC - closed form) / standard error`` is at most 4 (docs/theory.md §6); exact identities are compared with
``jax.grad``/``jax.jvp`` at rtol 1e-12 (observed errors are ~1e-15).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax.core import networks
from specjax.theory import closed_forms

# Jitted once per module: eager dispatch of the many small ops would dominate the test time.
population_loss = jax.jit(closed_forms.population_loss)
negative_gradient = jax.jit(closed_forms.population_negative_gradient)
loss_grad = jax.jit(jax.grad(closed_forms.population_loss))

MC_SAMPLES = 1_000_000
Z_MAX = 4.0
EXACT = 1e-12
DATA_STD = 1.5
DIM = 8
ANGLES = (0.58, 2.12, 3.06)  # acute, obtuse and nearly opposite (docs/theory.md §6)


def z_scores(samples, expected):
    """Per-component z-score of the sample mean of ``samples (N, ...)`` against ``expected (...)`` (NumPy)."""
    samples = np.asarray(samples)
    mean = samples.mean(axis=0)
    stderr = samples.std(axis=0) / np.sqrt(samples.shape[0])
    return np.abs(mean - np.asarray(expected)) / stderr


@pytest.fixture(scope="module")
def gaussian_inputs():
    """10^6 samples of N(0, s^2 I_8) drawn with jax.random, as a NumPy array for test-side arithmetic."""
    return np.asarray(DATA_STD * jax.random.normal(jax.random.key(0), (MC_SAMPLES, DIM)))


def pair_at_angle(theta, seed, norms=(1.3, 0.7)):
    """Two vectors in R^DIM at angle ``theta`` with the given norms (NumPy)."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(DIM, 2)))
    a = norms[0] * basis[:, 0]
    b = norms[1] * (np.cos(theta) * basis[:, 0] + np.sin(theta) * basis[:, 1])
    return a, b


@pytest.mark.parametrize("theta", ANGLES)
def test_prob_both_active_and_kernel_against_monte_carlo(gaussian_inputs, theta):
    a, b = pair_at_angle(theta, 1)
    assert abs(float(closed_forms.angle(a, b)) - theta) < EXACT
    za, zb = gaussian_inputs @ a, gaussian_inputs @ b
    both = ((za > 0) & (zb > 0)).astype(np.float64)
    assert z_scores(both, closed_forms.prob_both_active(a, b)).max() <= Z_MAX, "P(both active): z <= 4"
    products = np.maximum(za, 0) * np.maximum(zb, 0)
    assert z_scores(products, closed_forms.arccos_kernel(a, b, DATA_STD)).max() <= Z_MAX, "K(a, b): z <= 4"
    gated = gaussian_inputs * ((za > 0) * np.maximum(zb, 0))[:, None]
    expected = closed_forms.kernel_gradient(a, b, DATA_STD)
    assert z_scores(gated, expected).max() <= Z_MAX, "M(a, b) = Theorem 6's A_jk w_k: every component z <= 4"


def test_means_against_monte_carlo(gaussian_inputs):
    a = np.linspace(-1.0, 1.2, DIM)
    za = gaussian_inputs @ a
    assert z_scores(np.maximum(za, 0), closed_forms.mean_relu(a, DATA_STD)).max() <= Z_MAX, "E sigma(a.x): z <= 4"
    gated = gaussian_inputs * (za > 0)[:, None]
    assert z_scores(gated, closed_forms.mean_gated_input(a, DATA_STD)).max() <= Z_MAX, "E[x I]: z <= 4"


def test_theorem6_for_spherical_non_gaussian_inputs():
    """x = R u with R ~ U[0, 3], u uniform on the sphere: factor E||x||^2/d = 3/d (Theorem 6 needs only symmetry)."""
    k_dir, k_radius = jax.random.split(jax.random.key(2))
    directions = np.asarray(jax.random.normal(k_dir, (MC_SAMPLES, DIM)))
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    x = directions * np.asarray(jax.random.uniform(k_radius, (MC_SAMPLES, 1), maxval=3.0))
    w_j, w_k = pair_at_angle(2.12, 3)
    samples = x * ((x @ w_j > 0) * np.maximum(x @ w_k, 0))[:, None]
    expected = closed_forms.theorem6_gated_moment_product(w_j, w_k, 3.0 / DIM)
    assert z_scores(samples, expected).max() <= Z_MAX, "Theorem 6 under spherical symmetry: z <= 4"


def test_kernel_gradient_is_autodiff_and_nan_free():
    a, b = pair_at_angle(1.1, 4)
    a, b = jnp.asarray(a), jnp.asarray(b)
    kernel_grad = jax.jit(jax.grad(closed_forms.arccos_kernel))
    for left, right in ((a, b), (a, a), (a, 2.0 * a), (a, -a), (b, -0.5 * b)):
        grad = kernel_grad(left, right, DATA_STD)
        assert np.all(np.isfinite(grad)), "no NaN at co-linear pairs (custom_jvp profile, double where)"
        np.testing.assert_allclose(
            grad,
            closed_forms.kernel_gradient(left, right, DATA_STD),
            rtol=EXACT,
            atol=EXACT,
            err_msg="grad_a K = M to 1e-12",
        )
    np.testing.assert_allclose(closed_forms.arccos_kernel(a, a, DATA_STD), DATA_STD**2 * np.sum(a * a) / 2, rtol=EXACT)
    np.testing.assert_allclose(
        closed_forms.kernel_gradient(a, a, DATA_STD), DATA_STD**2 * a / 2, rtol=EXACT, atol=EXACT
    )
    np.testing.assert_allclose(closed_forms.kernel_gradient(a, -a, DATA_STD), 0.0, rtol=EXACT, atol=EXACT)


def two_layer(seed, d, width, outputs, output_bias=True):
    """A bias-free-hidden-layer two-layer net with standard normal weights (local seeded NumPy generator)."""
    rng = np.random.default_rng(seed)
    weights, fan_out = rng.normal(size=(d, width)), rng.normal(size=(width, outputs))
    bias = jnp.asarray(0.5 * rng.normal(size=outputs)) if output_bias else None
    return ((jnp.asarray(weights), None), (jnp.asarray(fan_out), bias))


@pytest.fixture(scope="module")
def small_nets():
    """Student (n=3) and teacher (m=2) in d=6 with C=2 outputs and output biases."""
    return two_layer(5, 6, 3, 2), two_layer(6, 6, 2, 2)


def test_population_loss_and_gradient_against_monte_carlo(small_nets):
    student, teacher = small_nets
    x = DATA_STD * jax.random.normal(jax.random.key(7), (MC_SAMPLES, 6))

    @jax.jit
    def per_sample(x):
        out, hidden = networks.forward(student, x)
        r = networks.apply(teacher, x) - out  # (N, C)
        gates = (hidden[0].pre > 0).astype(x.dtype)
        fan_out_error = gates * (r @ student[1][0].T)  # (N, n): I_j v_j^T r
        neg_grad_w = (x[:, :, None] * fan_out_error[:, None, :]).reshape(x.shape[0], -1)
        neg_grad_v = (hidden[0].post[:, :, None] * r[:, None, :]).reshape(x.shape[0], -1)
        return 0.5 * jnp.sum(r * r, 1), jnp.concatenate([neg_grad_w, neg_grad_v, r], axis=1)

    losses, neg_grads = (np.asarray(a) for a in per_sample(x))
    assert z_scores(losses, population_loss(student, teacher, DATA_STD)).max() <= Z_MAX, "loss: z <= 4"
    (dw, _), (dv, dc) = negative_gradient(student, teacher, DATA_STD)
    expected = np.concatenate([np.ravel(dw), np.ravel(dv), dc])
    assert z_scores(neg_grads, expected).max() <= Z_MAX, "-grad J (w, v, c; 20 components): z <= 4"


def assert_gradient_is_autodiff(student, teacher):
    grad = loss_grad(student, teacher, DATA_STD)
    neg = negative_gradient(student, teacher, DATA_STD)
    for g, n in zip(jax.tree.leaves(grad), jax.tree.leaves(neg), strict=True):
        assert np.all(np.isfinite(g)), "jax.grad of the closed-form loss is NaN-free"
        np.testing.assert_allclose(-g, n, rtol=EXACT, atol=EXACT, err_msg="population gradient = -jax.grad(J) to 1e-12")


def test_population_gradient_is_autodiff_of_loss(small_nets):
    student, teacher = small_nets
    assert_gradient_is_autodiff(student, teacher)
    no_bias = (student[0], (student[1][0], None))
    assert_gradient_is_autodiff(no_bias, teacher)


def test_population_gradient_at_colinear_students(small_nets):
    """A student equal to a teacher node, and two identical students: the diagonal and co-linear cases."""
    student, teacher = small_nets
    weights = jnp.stack([teacher[0][0][:, 0], teacher[0][0][:, 0], 2.0 * teacher[0][0][:, 1]], axis=1)
    colinear = ((weights, None), student[1])
    assert_gradient_is_autodiff(colinear, teacher)


def test_student_realising_teacher_is_a_zero_loss_critical_point(small_nets):
    """Student = the teacher's two nodes (one split in two co-linear halves) is a critical point with J = 0."""
    student, teacher = small_nets
    (teacher_weights, _), (teacher_fan_out, teacher_bias) = teacher
    weights = jnp.stack([teacher_weights[:, 0], 2.0 * teacher_weights[:, 1], teacher_weights[:, 1]], axis=1)
    fan_out = jnp.stack([teacher_fan_out[0], 0.25 * teacher_fan_out[1], 0.5 * teacher_fan_out[1]])
    realising = ((weights, None), (fan_out, teacher_bias))
    assert abs(float(population_loss(realising, teacher, DATA_STD))) < EXACT
    for leaf in jax.tree.leaves(negative_gradient(realising, teacher, DATA_STD)):
        np.testing.assert_allclose(leaf, 0.0, rtol=EXACT, atol=EXACT)


def test_residue_gives_both_gradients(small_nets):
    """Eqn 6: dw_j/dt = R_j v_j and dv_j/dt = R_j^T w_j."""
    student, teacher = small_nets
    residue = jax.jit(closed_forms.population_residue)(student, teacher, DATA_STD)
    (dw, _), (dv, _) = negative_gradient(student, teacher, DATA_STD)
    np.testing.assert_allclose(np.einsum("jdc,jc->dj", residue, student[1][0]), dw, rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(np.einsum("jdc,dj->jc", residue, student[0][0]), dv, rtol=EXACT, atol=EXACT)


@pytest.fixture(scope="module")
def scalar_nets():
    """C = 1, no biases: the setting of Theorem 7, the worst-case angle ODE and the Lotka-Volterra form."""
    return two_layer(8, 6, 3, 1, False), two_layer(9, 6, 2, 1, False)


def test_theorem7_rates(scalar_nets):
    """d/dt ||w_j|| = v_j u_j and dv_j/dt = ||w_j|| u_j, for any r_j (exact identity). The log-norm-ratio rate at
    balanced points is tested against the simulated flow in tests/test_population.py."""
    student, teacher = scalar_nets
    (dw, _), (dv, _) = negative_gradient(student, teacher, DATA_STD)
    weights, fan_out = np.asarray(student[0][0]), np.asarray(student[1][0][:, 0])
    norms = np.linalg.norm(weights, axis=0)
    growth = jax.jit(closed_forms.node_growth_rate)(student, teacher, DATA_STD)
    np.testing.assert_allclose(np.sum(weights * dw, 0) / norms, fan_out * growth, rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(dv[:, 0], norms * growth, rtol=EXACT, atol=EXACT)


def test_worst_case_angle_rate_is_the_flow_derivative():
    """One student, one teacher: theta-dot from jax.jvp of the angle along the exact flow (rel. 1e-10)."""
    student = ((jnp.array([[0.3], [-0.8], [0.2], [0.1]]), None), (jnp.array([[0.7]]), None))
    teacher = ((jnp.array([[1.0], [0.2], [-0.3], [0.5]]), None), (jnp.array([[1.4]]), None))
    velocity = negative_gradient(student, teacher, DATA_STD)
    angle_of = lambda w: closed_forms.angle(w[:, 0], teacher[0][0][:, 0])
    theta, theta_dot = jax.jit(lambda w, dw: jax.jvp(angle_of, (w,), (dw,)))(student[0][0], velocity[0][0])
    predicted = closed_forms.worst_case_angle_rate(
        float(theta), np.linalg.norm(student[0][0]), 0.7, np.linalg.norm(teacher[0][0]), 1.4, DATA_STD
    )
    np.testing.assert_allclose(theta_dot, predicted, rtol=1e-10)


def test_lotka_volterra_rate_at_balanced_point(scalar_nets):
    """With v_j = zeta_j ||w_j||: d/dt ||w_j||^2 = d/dt v_j^2 = the Lotka-Volterra right-hand side (1e-12)."""
    student, teacher = scalar_nets
    weights, teacher_weights = np.asarray(student[0][0]), np.asarray(teacher[0][0])
    signs = np.array([1.0, -1.0, 1.0])
    fan_out = signs * np.linalg.norm(weights, axis=0)
    balanced = ((student[0][0], None), (jnp.asarray(fan_out[:, None]), None))
    (dw, _), (dv, _) = negative_gradient(balanced, teacher, DATA_STD)

    @jax.jit
    def rate_of(weights, teacher_weights, teacher_fan_out):
        return closed_forms.lotka_volterra_rate(
            jnp.sum(weights**2, 0),
            signs,
            closed_forms.self_angle_matrix(weights),
            closed_forms.angle_matrix(weights, teacher_weights),
            teacher_fan_out,
            jnp.linalg.norm(teacher_weights, axis=0),
            DATA_STD,
        )

    rate = rate_of(weights, teacher_weights, teacher[1][0][:, 0])
    np.testing.assert_allclose(2 * np.sum(weights * dw, 0), rate, rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(2 * fan_out * dv[:, 0], rate, rtol=EXACT, atol=EXACT)


def test_closed_forms_vmap_equals_loop(small_nets):
    student, teacher = small_nets
    scales = np.array([0.5, 1.0, 2.0])
    students = jax.tree.map(lambda a: jnp.asarray(scales.reshape((-1,) + (1,) * a.ndim) * np.asarray(a)), student)
    batched = jax.jit(jax.vmap(closed_forms.population_loss, (0, None, None)))(students, teacher, DATA_STD)
    looped = [
        population_loss(jax.tree.map(lambda a, s=s: jnp.asarray(s * np.asarray(a)), student), teacher, DATA_STD)
        for s in scales
    ]
    np.testing.assert_allclose(batched, looped, rtol=1e-13)
