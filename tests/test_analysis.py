"""Observers, residues, matching and the Theorem-3 report of specjax.theory.reports (docs/theory.md §3-5).

Exact identities are asserted at rtol 1e-12 (float64), with an absolute floor where the expected value is 0;
combinatorial results (matching, counts) exactly. Theorem 5 and Def. 2 decided exactly: tests/test_theorem5.py.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian_inputs, make_net

from specjax.core import networks
from specjax.theory import reports

EXACT = 1e-12


@pytest.fixture(scope="module")
def two_layer_nets():
    """Teacher m=3, student n=7, d=5, C=3, biases everywhere."""
    return make_net(0, (5, 7, 3)), make_net(1, (5, 3, 3))


def realising_student(teacher, extra_weights, extra_fan_out, scales=(2.0, 0.5, 1.5)):
    """Student whose first ``m`` nodes are the teacher's, rescaled by ``scales`` (w*c, b*c, v*/c): it computes the
    teacher exactly when the extra nodes' fan-outs are zero. Extra nodes appended after."""
    (W, b), (V, c) = teacher
    scales = np.asarray(scales)
    weights = np.concatenate([np.asarray(W) * scales, extra_weights[0]], axis=1)
    bias = np.concatenate([np.asarray(b) * scales, extra_weights[1]])
    fan_out = np.concatenate([np.asarray(V) / scales[:, None], extra_fan_out], axis=0)
    return ((jnp.asarray(weights), jnp.asarray(bias)), (jnp.asarray(fan_out), c))


def test_boundary_observation_matches_definition():
    rng = np.random.default_rng(3)
    teacher_acts, student_acts = np.maximum(rng.normal(size=(50, 3)), 0), np.maximum(rng.normal(size=(50, 4)), 0)
    obs = np.asarray(reports.boundary_observation(teacher_acts, student_acts))
    for j, k in itertools.product(range(3), range(4)):
        inside = np.sum((teacher_acts[:, j] > 0) & (student_acts[:, k] > 0))
        outside = np.sum((teacher_acts[:, j] <= 0) & (student_acts[:, k] > 0))
        assert obs[j, k] == min(inside, outside)
    np.testing.assert_allclose(
        reports.boundary_observation_fraction(teacher_acts, student_acts), obs.max(1) / 50, rtol=EXACT, atol=EXACT
    )


def test_hungarian_match_is_optimal_and_vmappable():
    corr = np.random.default_rng(4).uniform(-1, 1, size=(6, 3, 5))
    matched = np.asarray(jax.jit(jax.vmap(reports.hungarian_match))(jnp.asarray(corr)))
    for c, students in zip(corr, matched, strict=True):
        best = max(itertools.permutations(range(5), 3), key=lambda p: sum(c[i, p[i]] for i in range(3)))
        assert tuple(students) == best, "Hungarian = brute-force optimum"
    wide = np.asarray(reports.hungarian_match(jnp.asarray(corr[0].T)))  # 5 teachers, 3 students
    assert sorted(wide[wide >= 0].tolist()) == [0, 1, 2] and np.sum(wide < 0) == 2, "unmatched teachers get -1"


def test_hungarian_match_on_an_array_replicated_over_devices():
    """Results sliced from a run-sharded sweep are replicated over the mesh; matching them eagerly must work."""
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("runs",))
    corr = np.random.default_rng(6).uniform(size=(len(jax.devices()), 3, 5))
    sharded = jax.device_put(jnp.asarray(corr), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs")))
    replicated = sharded[1]
    matched = reports.hungarian_match(replicated)
    assert np.all(np.asarray(matched >= 0)), "the result feeds later eager operations"
    np.testing.assert_array_equal(matched, reports.hungarian_match(jnp.asarray(corr[1])))


@pytest.mark.parametrize("widths", [((5, 7, 3), (5, 3, 3)), ((5, 6, 4, 3), (5, 3, 2, 3))], ids=["two", "three"])
def test_node_residues_give_exact_top_layer_gradients(widths):
    """Eqn 6: -dJ/dw_hat_j = R_j v_j and -dJ/dv_j = R_j^T w_hat_j at the top hidden layer (1e-12)."""
    student, teacher = make_net(0, widths[0]), make_net(1, widths[1])
    x = gaussian_inputs(300, 5)
    residues = jax.jit(reports.node_residues, static_argnums=(3, 4))(student, teacher, x, networks.RELU, 128)
    y = networks.apply(teacher, x)
    grads = jax.jit(jax.grad(networks.squared_error_loss))(student, x, y)
    (W, b), (V, _) = student[-2], student[-1]
    w_hat = np.concatenate([np.asarray(W), np.asarray(b)[None]], axis=0)
    grad_w_hat = np.concatenate([grads[-2][0], grads[-2][1][None]], axis=0)
    np.testing.assert_allclose(np.einsum("jic,jc->ij", residues, V), -grad_w_hat, rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(np.einsum("jic,ij->jc", residues, w_hat), -grads[-1][0], rtol=EXACT, atol=EXACT)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("activation", [networks.RELU, networks.leaky_relu(0.1)], ids=["relu", "leaky"])
@pytest.mark.parametrize("widths", [(5, 7, 3), (5, 6, 4, 3), (5, 6, 5, 4, 3)], ids=["L2", "L3", "L4"])
def test_per_sample_gradient_magnitudes_are_norms_of_per_sample_gradients(widths, activation, use_bias):
    """Per-sample ||dJ_x/dW_hat_l||_F against jax.vmap(jax.grad) of the per-sample loss (bias-free: no [f; 1])."""
    student = make_net(0, widths, use_bias)
    teacher = make_net(1, (widths[0], *(w - 1 for w in widths[1:-1]), widths[-1]), use_bias)
    x = gaussian_inputs(40, widths[0])
    magnitudes = jax.jit(reports.per_sample_gradient_magnitudes, static_argnums=3)(student, teacher, x, activation)

    def sample_grad(xi):
        y = networks.apply(teacher, xi[None], activation)
        return jax.grad(networks.squared_error_loss)(student, xi[None], y, activation)

    per_sample = jax.jit(jax.vmap(sample_grad))(x)
    for layer, (grad_w, grad_b) in enumerate(per_sample):
        squared = np.sum(np.asarray(grad_w) ** 2, (1, 2))
        if use_bias:
            squared = squared + np.sum(np.asarray(grad_b) ** 2, 1)
            np.testing.assert_allclose(
                magnitudes.error_sup[layer], np.abs(grad_b).max(1), rtol=EXACT, err_msg="||g_l||_inf = ||dJ/db_l||_inf"
            )
        np.testing.assert_allclose(magnitudes.weight_gradient_norm[layer], np.sqrt(squared), rtol=EXACT, atol=1e-15)


@pytest.fixture(scope="module")
def realising_with_extras(two_layer_nets):
    """Teacher-realising student plus 4 extra nodes: two with zero fan-out and two carrying fan-out."""
    _, teacher = two_layer_nets
    rng = np.random.default_rng(5)
    extra = (rng.normal(size=(5, 4)), rng.normal(size=4) * 0.1)
    fan_out = np.zeros((4, 3))
    fan_out[2:] = rng.normal(size=(2, 3))
    return teacher, realising_student(teacher, extra, fan_out), realising_student(teacher, extra, 0 * fan_out)


analyze = jax.jit(reports.analyze_run)


def test_theorem3_report_prunes_dead_unspecialized_students(realising_with_extras):
    teacher, _, exact = realising_with_extras
    x = gaussian_inputs(2000, 5)
    report = analyze(exact, teacher, x).theorem3
    assert np.asarray(report.unspecialized).tolist() == [False] * 3 + [True] * 4
    np.testing.assert_allclose(report.specialization[:3], 1.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(report.fan_out[3:], 0.0, rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(
        [report.eval_loss, report.pruned_eval_loss, report.loss_change],
        0.0,
        rtol=EXACT,
        atol=EXACT,
        err_msg="pruning zero-fan-out students leaves the loss at 0",
    )


def test_theorem3_report_measures_pruning_cost(realising_with_extras):
    teacher, noisy, _ = realising_with_extras
    x = gaussian_inputs(2000, 5)
    report = analyze(noisy, teacher, x).theorem3
    targets = networks.apply(teacher, x)
    expected = networks.squared_error_loss(noisy, x, targets)
    np.testing.assert_allclose(report.eval_loss, expected, rtol=EXACT)
    np.testing.assert_allclose(
        report.pruned_eval_loss, 0.0, rtol=EXACT, atol=EXACT, err_msg="pruning the extras restores f*"
    )
    np.testing.assert_allclose(
        report.max_unspecialized_fan_out, np.linalg.norm(noisy[1][0][3:], axis=1).max(), rtol=EXACT
    )


def test_l_shape_and_analyze_run_vmap_equals_loop(two_layer_nets):
    student, teacher = two_layer_nets
    runs = [student, make_net(11, (5, 7, 3)), make_net(12, (5, 7, 3))]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *runs)
    x = gaussian_inputs(500, 5)
    batched = jax.jit(jax.vmap(reports.analyze_run, (0, None, None)))(stacked, teacher, x)
    for r, run in enumerate(runs):
        single = analyze(run, teacher, x)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(
                np.asarray(a)[r], b, rtol=EXACT, atol=EXACT, err_msg="vmapped run equals its own call"
            )
        np.testing.assert_allclose(
            single.l_shape[0].fan_out,
            np.linalg.norm(run[1][0], axis=1),
            rtol=EXACT,
            atol=EXACT,
            err_msg="two-layer L-shape y-axis is ||v_k||",
        )
        matched = np.asarray(single.matched_student)
        assert len(set(matched.tolist())) == 3, "one-to-one"
