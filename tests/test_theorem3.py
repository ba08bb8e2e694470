"""Theorem 3 as stated (specjax.theory.theorem3): observers' fan-out rank, co-linear groups, weighted fan-out sum."""

import jax
import jax.numpy as jnp
import numpy as np
from helpers import gaussian_inputs, make_net

from specjax.core import networks
from specjax.theory import reports, theorem3

EXACT = 1e-12
hypothesis = jax.jit(theorem3.theorem3_hypothesis, static_argnums=(3, 4))


def cancelling_student(teacher, seed=5):
    """The teacher's nodes, an unaligned pair k, k' with w_hat_k' = 2 w_hat_k and v_k' = -v_k / 2, and an unaligned
    node with zero fan-out: an exact critical point (loss 0) where Theorem 3's conclusion holds with co(k) = {k, k'}."""
    (W, b), (V, c) = (tuple(np.asarray(a) for a in layer) for layer in teacher)
    rng = np.random.default_rng(seed)
    w_extra, b_extra, v_extra = rng.normal(size=(W.shape[0], 2)), 0.1 * rng.normal(size=2), rng.normal(size=V.shape[1])
    weights = np.concatenate([W, w_extra[:, :1], 2 * w_extra[:, :1], w_extra[:, 1:]], axis=1)
    bias = np.concatenate([b, b_extra[:1], 2 * b_extra[:1], b_extra[1:]])
    fan_out = np.concatenate([V, v_extra[None], -v_extra[None] / 2, np.zeros((1, V.shape[1]))], axis=0)
    return ((jnp.asarray(weights), jnp.asarray(bias)), (jnp.asarray(fan_out), jnp.asarray(c)))


def test_two_layer_critical_point_satisfies_hypothesis_and_conclusion():
    teacher = make_net(1, (5, 3, 3))
    student = cancelling_student(teacher)
    x = gaussian_inputs(3000, 5)
    report = hypothesis(student, teacher, x, networks.RELU, 0)
    m = 3
    assert np.asarray(report.unaligned).tolist() == [False] * m + [True] * 3
    np.testing.assert_array_equal(report.fan_out_rank, 3, err_msg="top hidden layer: the C outputs observe, rank C")
    np.testing.assert_allclose(report.smallest_singular_value, 1.0, rtol=EXACT)
    assert np.asarray(report.hypothesis_holds).tolist() == [False] * m + [True] * 3
    colinear = np.asarray(report.colinear)
    assert colinear[m, m + 1] and colinear[m + 1, m] and colinear.sum() == 6 + 2, "one co-linear pair, the rest alone"
    np.testing.assert_allclose(
        report.group_sum_norm[m : m + 3], 0.0, rtol=EXACT, atol=EXACT, err_msg="sum ||w_hat|| v = 0"
    )
    assert np.all(np.asarray(report.group_norm_sum[m : m + 2]) > 0.5), "while each term is not small"
    np.testing.assert_allclose(
        report.pruned_loss_change[m:], 0.0, rtol=EXACT, atol=EXACT, err_msg="pruning a group costs nothing"
    )
    assert np.all(np.asarray(report.pruned_loss_change[:m]) > 1e-3), "pruning an aligned node costs loss"


def test_conclusion_residual_of_a_perturbed_pair_is_its_weighted_sum():
    teacher = make_net(1, (5, 3, 3))
    (W, b), (V, c) = cancelling_student(teacher)
    V = V.at[3].multiply(1.1)  # the pair no longer cancels
    report = hypothesis(((W, b), (V, c)), teacher, gaussian_inputs(500, 5), networks.RELU, 0)
    w_norm = np.linalg.norm(np.concatenate([np.asarray(W), np.asarray(b)[None]]), axis=0)
    expected = np.linalg.norm(w_norm[3] * np.asarray(V[3]) + w_norm[4] * np.asarray(V[4]))
    np.testing.assert_allclose(report.group_sum_norm[3:5], expected, rtol=EXACT)
    assert expected > 0.05


def test_deep_hypothesis_fails_with_fewer_upper_nodes_than_outputs_and_rank_matches_numpy():
    student, teacher = make_net(2, (5, 6, 2, 3)), make_net(3, (5, 4, 2, 3))
    x = gaussian_inputs(400, 5)
    report = hypothesis(student, teacher, x, networks.RELU, 0)
    assert np.all(np.asarray(report.fan_out_rank) <= 2) and not np.any(report.hypothesis_holds), "2 observers < C = 3"
    np.testing.assert_array_equal(report.smallest_singular_value, 0.0)
    _, hidden = networks.forward(student, x)
    obs = np.asarray(reports.boundary_observation(hidden[0].pre, hidden[1].post)) > 0
    v_up = np.asarray(student[2][0]).T  # (C, n_up): the upper layer is the top hidden layer, fan-outs W_3^T
    ranks = [np.linalg.matrix_rank(v_up[:, obs[k]]) if obs[k].any() else 0 for k in range(6)]
    np.testing.assert_array_equal(report.fan_out_rank, ranks)


def test_colinear_groups_include_the_bias():
    """Def. 3: w_hat_k' = c w_hat_k with c > 0, bias included. The same filter direction with another bias is not
    co-linear (its boundary is another hyperplane), nor is the opposite augmented weight (c < 0)."""
    u, bias = np.array([0.6, -0.8, 0.0]), 0.5
    weights = np.stack([u, 2 * u, 2 * u, -u], axis=1)  # (d=3, n=4)
    biases = np.array([bias, 2 * bias, -bias, -bias])
    student = ((jnp.asarray(weights), jnp.asarray(biases)), (jnp.ones((4, 2)), None))
    colinear = np.asarray(theorem3.colinear_groups(student, 0, 1e-6))
    expected = np.eye(4, dtype=bool)
    expected[0, 1] = expected[1, 0] = True
    np.testing.assert_array_equal(colinear, expected)
    bias_free = ((jnp.asarray(weights), None), (jnp.ones((4, 2)), None))
    assert np.asarray(theorem3.colinear_groups(bias_free, 0, 1e-6))[:3, :3].all(), "no bias: same direction"
