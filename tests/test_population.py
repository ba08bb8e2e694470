"""Exact population gradient flow (specjax.theory.population) against the theory (Tian 2020; docs/theory.md §5-6).

Tolerances are stated per assertion: conservation laws are checked through their drift's dependence on the step
(RK4: ~dt^4, GD: ~eta), adaptive integration at rtol 1e-10 to 1e-7, Theorem 7's identity to 1e-8 (relative).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax import engine
from specjax.errors import FlowDivergenceError
from specjax.theory import closed_forms, population

DATA_STD = 1.5


def two_layer(seed, d, width, outputs, output_bias=False, scale=1.0):
    """Bias-free hidden layer, standard normal weights (local seeded NumPy generator, no global state)."""
    rng = np.random.default_rng(seed)
    weights, fan_out = scale * rng.normal(size=(d, width)), scale * rng.normal(size=(width, outputs))
    bias = jnp.asarray(rng.normal(size=outputs)) if output_bias else None
    return ((jnp.asarray(weights), None), (jnp.asarray(fan_out), bias))


@pytest.fixture(scope="module")
def nets():
    """d=5, n=3 students, m=2 teachers, C=2 outputs with output biases: loss falls from ~31 to ~0.17 by t=2."""
    return two_layer(1, 5, 3, 2, True), two_layer(2, 5, 2, 2, True, scale=1.4)


# One jitted adaptive flow shared by several tests: each diffrax compilation costs seconds on a shared CPU.
# The horizon is a traced argument, so one compiled flow serves every horizon.
ADAPTIVE_FLOW = jax.jit(population.make_population_flow(2, "adaptive", rtol=1e-10, atol=1e-12))
RK4_FLOW = jax.jit(population.make_population_flow(2, "rk4", steps_per_record=10, keep_students=True))


def balancedness(student):
    """||w_j||^2 - ||v_j||^2 (Eqn 8), shape (n,)."""
    return np.sum(np.asarray(student[0][0]) ** 2, 0) - np.sum(np.asarray(student[1][0]) ** 2, 1)


def test_rk4_balancedness_drift_shrinks_like_step_to_the_fourth(nets):
    """Drift over t in [0, 1] with dt = 0.05 (one call) versus dt = 0.025 (two calls of a twice-shorter horizon)."""
    student, teacher = nets
    coarse = RK4_FLOW(student, teacher, DATA_STD, 1.0)
    middle = RK4_FLOW(student, teacher, DATA_STD, 0.5)
    fine = RK4_FLOW(jax.tree.map(lambda a: a[-1], middle.students), teacher, DATA_STD, 0.5)
    drifts = [np.abs(record.balancedness[-1] - balancedness(student)).max() for record in (coarse, fine)]
    assert coarse.loss[-1] < 0.05 * coarse.loss[0], "the flow actually moves (loss falls 20x)"
    assert drifts[1] < drifts[0] / 8, f"RK4 drift must shrink ~16x when the step halves (>= 8x); got {drifts}"


def test_adaptive_flow_conserves_balancedness(nets):
    student, teacher = nets
    record = ADAPTIVE_FLOW(student, teacher, DATA_STD, 2.0)
    growth = np.abs(record.weight_norms[-1] ** 2 - record.weight_norms[0] ** 2).max()
    drift = np.abs(record.balancedness - record.balancedness[:1]).max()
    assert growth > 1.0 and drift < 1e-7, f"||w||^2 changes by {growth:.2f}, balancedness drifts {drift:.1e} < 1e-7"


def test_gradient_descent_balancedness_drift_is_proportional_to_step(nets):
    """GD (Euler) to t = 1: drift O(eta) (measured 7.9e-2 / 7.9e-3 for eta = 2e-2 / 2e-3)."""
    student, teacher = nets

    @jax.jit
    def descend(lr, steps):
        def body(_, s):
            velocity = closed_forms.population_negative_gradient(s, teacher, DATA_STD)
            return jax.tree.map(lambda a, b: a + lr * b, s, velocity)

        return jax.lax.fori_loop(0, steps, body, student)

    drifts = [np.abs(balancedness(descend(lr, round(1.0 / lr))) - balancedness(student)).max() for lr in (2e-2, 2e-3)]
    assert 7 < drifts[0] / drifts[1] < 13, f"drift ratio ~10 for a 10x smaller step; got {drifts}"


def test_theorem7_identity_on_simulated_flow():
    """(||w_j|| +- v_j)(t) = (||w_j|| +- v_j)(0) exp(+-int u_j): integrate u_j alongside the flow (rel. 1e-8)."""
    student, teacher = two_layer(3, 5, 3, 1), two_layer(4, 5, 2, 1)

    def field(t, state):
        params, _ = state
        return (
            closed_forms.population_negative_gradient(params, teacher, 1.0),
            closed_forms.node_growth_rate(params, teacher, 1.0),
        )

    save_times = jnp.linspace(0.0, 6.0, 4)
    integrate = jax.jit(lambda s: population.adaptive_integrate(field, (s, jnp.zeros(3)), save_times, 1e-11, 1e-13))
    (params, integral), _ = integrate(student)
    norms = np.linalg.norm(np.asarray(params[0][0]), axis=1)  # (T, n)
    fan_out = np.asarray(params[1][0])[:, :, 0]
    predicted_norm, predicted_fan_out = closed_forms.theorem7_norms(norms[:1], fan_out[:1], integral)
    assert np.abs(norms[-1] - norms[0]).max() > 0.02, "norms change"
    np.testing.assert_allclose(norms, predicted_norm, rtol=1e-8)
    np.testing.assert_allclose(fan_out, predicted_fan_out, rtol=1e-8, atol=1e-10)


def test_theorem7_log_norm_ratio_rate_is_the_flow_derivative_at_balanced_points():
    """d/dt ln(||w_j|| / ||w_j'||) = zeta_j u_j - zeta_j' u_j' (Theorem 7) against central differences of the flow.

    The start is balanced (v_j = zeta_j ||w_j||, conserved by the flow: Eqn 8), so every point of the trajectory is.
    Step h = 1e-4 on a Dormand-Prince solution at rtol 1e-12: measured relative error <= 8.9e-8 (h = 1e-3 gave 4e-6,
    the h^2 truncation), asserted at rtol 1e-6.
    """
    weights = np.asarray(two_layer(3, 5, 3, 1)[0][0])
    signs = np.array([1.0, -1.0, 1.0])
    student = ((jnp.asarray(weights), None), (jnp.asarray((signs * np.linalg.norm(weights, axis=0))[:, None]), None))
    teacher = two_layer(4, 5, 2, 1)
    field = population.population_vector_field(teacher, 1.0)
    centres, h = np.array([0.25, 0.75, 1.5]), 1e-4
    save_times = jnp.asarray(np.sort(np.concatenate([[0.0], centres - h, centres, centres + h])))
    states, _ = jax.jit(lambda s: population.adaptive_integrate(field, s, save_times, 1e-12, 1e-14))(student)
    log_norms = np.log(np.linalg.norm(np.asarray(states[0][0]), axis=1))  # (T, n)
    fan_out = np.asarray(states[1][0])[:, :, 0]
    np.testing.assert_allclose(fan_out, signs * np.exp(log_norms), rtol=1e-9, atol=0, err_msg="stays balanced")
    rates = jax.jit(jax.vmap(closed_forms.node_growth_rate, (0, None, None)))(states, teacher, 1.0)
    for index in range(len(centres)):
        before, centre, after = 2 + 3 * index - 1, 2 + 3 * index, 2 + 3 * index + 1  # save_times: 0, then triples
        ratio_rate = (log_norms[after] - log_norms[before]) / (2 * h)  # d/dt ln ||w_j||, (n,)
        measured = ratio_rate[:, None] - ratio_rate[None, :]
        predicted = closed_forms.theorem7_log_norm_ratio_rate(rates[centre], signs)
        assert np.abs(measured).max() > 0.01, "the norm ratios move"
        np.testing.assert_allclose(measured, predicted, rtol=1e-6, atol=1e-9, err_msg=f"t = {centres[index]}")


def test_one_student_converges_to_one_teacher_from_generic_start():
    teacher = ((jnp.eye(5)[:, :1], None), (jnp.ones((1, 1)), None))
    start = 0.1 * np.array([[-0.6], [0.5], [0.3], [-0.4], [0.35]])  # no special alignment, obtuse to the teacher
    student = ((jnp.asarray(start), None), (jnp.full((1, 1), 0.1), None))
    flow = jax.jit(population.make_population_flow(12, "rk4", steps_per_record=50))
    record = flow(student, teacher, 1.0, 60.0)
    angles = np.asarray(record.angles[:, 0, 0])
    assert angles[0] > 2.0, "obtuse initial angle"
    assert np.all(np.diff(angles) <= 1e-12), "the worst-case ODE: theta decreases while v v* > 0"
    assert angles[-1] < 1e-6 and abs(float(record.loss[-1])) < 1e-12, "converges to the teacher"
    np.testing.assert_allclose(record.weight_norms[-1] * record.fan_out_norms[-1], 1.0, rtol=1e-6)


def test_rk4_matches_adaptive(nets):
    student, teacher = nets
    by_adaptive = ADAPTIVE_FLOW(student, teacher, DATA_STD, 0.2)
    by_rk4 = RK4_FLOW(student, teacher, DATA_STD, 0.2)
    for field in ("angles", "weight_norms", "fan_out_norms", "loss"):
        np.testing.assert_allclose(
            getattr(by_rk4, field),
            getattr(by_adaptive, field),
            rtol=1e-6,
            atol=1e-8,
            err_msg="RK4 (dt = 0.01) and Dormand-Prince (rtol 1e-10) agree to 1e-6",
        )


def test_flow_vmap_over_initial_conditions_equals_single_calls(nets):
    student, teacher = nets
    starts = [student, two_layer(10, 5, 3, 2, True, scale=0.5), two_layer(11, 5, 3, 2, True, scale=0.5)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *starts)
    batched = jax.jit(jax.vmap(RK4_FLOW, (0, None, None, None)))(stacked, teacher, DATA_STD, 1.0)
    assert batched.angles.shape == (3, 3, 3, 2) and batched.weight_norms.shape == (3, 3, 3)
    for i, start in enumerate(starts):
        single = RK4_FLOW(start, teacher, DATA_STD, 1.0)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(np.asarray(a)[i], b, rtol=0, atol=1e-12, err_msg="vmapped = single call")


def sgd_hparams(lr):
    """The comparison's settings by name (no default learning rate or init scale)."""
    values = dict(teacher_polarity=0.0, lr=lr, data_std=1.0, init_scale=0.1, momentum=0.0, weight_decay=0.0)
    return engine.Hparams(**{name: jnp.asarray(value) for name, value in values.items()})


@pytest.mark.slow  # compiling the engine's init + training scan + RK4 takes ~7 s on a shared 2-core CPU
def test_sgd_tracks_the_flow_and_a_diverging_flow_raises():
    """Small-step SGD (batch 16, 20000 samples) and the flow from the same start agree on t = lr * steps.

    Measured (seed 1, lr 1.25e-3, 5 records of 800 steps, loss falls to 0.54x): population loss within 0.35 %
    and angles within 0.017 rad; the same comparison one record apart (time off by 25-100 %) differs by >= 6.0 %
    and >= 0.10 rad, so the tolerances (1 %, 0.05 rad) fail on a real disagreement.
    """
    spec = engine.Spec(
        d=6, teacher_widths=(2,), c=1, over_realization=2, use_bias=False, n_train=20000, n_eval=8, batch_size=16
    )
    compare = jax.jit(population.make_sgd_flow_comparison(spec, 5, 800))
    result = compare(sgd_hparams(1.25e-3), jax.random.key(1))
    np.testing.assert_allclose(result.time, 1.25e-3 * 800 * np.arange(6), rtol=1e-12, atol=0)
    np.testing.assert_allclose(result.flow.time, result.time, rtol=1e-12, atol=0)
    np.testing.assert_allclose(result.sgd.angles[0], result.flow.angles[0], rtol=0, atol=1e-15, err_msg="same start")
    sgd_loss, flow_loss = np.asarray(result.sgd.loss), np.asarray(result.flow.loss)
    assert flow_loss[-1] < 0.6 * flow_loss[0], "the flow moves"
    np.testing.assert_allclose(sgd_loss, flow_loss, rtol=1e-2, atol=0, err_msg="SGD tracks the flow's loss")
    np.testing.assert_allclose(result.sgd.angles, result.flow.angles, rtol=0, atol=0.05, err_msg="and its angles")
    shifted = np.abs(sgd_loss[1:] - flow_loss[:-1]) / flow_loss[:-1]
    shifted_angles = np.abs(np.asarray(result.sgd.angles[1:]) - np.asarray(result.flow.angles[:-1])).max((1, 2))
    assert shifted.min() > 3e-2 and shifted_angles.min() > 0.08, "a time axis off by one record is caught"
    with pytest.raises(ValueError, match="loss increases between records"):  # RK4 step 30: the flow blows up
        jax.block_until_ready(compare(sgd_hparams(30.0), jax.random.key(1)))
    with pytest.raises(ValueError, match="record times must increase"):
        jax.block_until_ready(compare(sgd_hparams(0.0), jax.random.key(1)))
    with pytest.raises(ValueError, match="use_bias"):
        population.make_sgd_flow_comparison(engine.Spec(use_bias=True), 1, 1)


def test_check_flow_descends():
    time = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    loss = np.array([[3.0, 2.0, 2.0], [3.0, 1.0, 0.5]])
    np.testing.assert_array_equal(population.check_flow_descends(time, loss), loss)
    with pytest.raises(FlowDivergenceError, match=r"run 1: 1 at t=1 -> 1.5 at t=2"):
        population.check_flow_descends(time, np.array([[3.0, 2.0, 2.0], [3.0, 1.0, 1.5]]))
    with pytest.raises(FlowDivergenceError, match="loss increases"):
        population.check_flow_descends(time[0], np.array([3.0, np.nan, 1.0]))
