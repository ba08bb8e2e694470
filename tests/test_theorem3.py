"""Theorem 3 as stated (specjax.theory.theorem3): observers' fan-out rank, co-linear groups, weighted fan-out sum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian_inputs, make_net

from specjax.core import networks
from specjax.errors import ArgumentError
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


def numpy_same_layer_witness(student, x, layer):
    """Def. 2 within one layer by counting, in NumPy: ``[k, k'']`` if ``k''`` is active on samples on both sides of
    ``k``'s boundary. ``(n, n)`` bool."""
    f = np.asarray(x)
    for weights, bias in student[: layer + 1]:
        z = f @ np.asarray(weights) + (0.0 if bias is None else np.asarray(bias))
        f = np.maximum(z, 0.0)
    on = z > 0  # (N, n)
    both = on.T.astype(int) @ on  # [k, k''] = #{k on, k'' on}
    other = (~on).T.astype(int) @ on  # #{k off, k'' on}
    return np.minimum(both, other) > 0


def numpy_spectrum(observers, fan_outs, outputs):
    """Per node: rank (numpy.linalg.matrix_rank) and C-th singular value of the observers' stacked fan-outs."""
    ranks, smallest = [], []
    for mask in observers:
        stacked = np.asarray(fan_outs)[mask].T  # (C, |obs|)
        singular = np.linalg.svd(stacked, compute_uv=False) if mask.any() else np.zeros(0)
        ranks.append(np.linalg.matrix_rank(stacked) if mask.any() else 0)
        smallest.append(np.append(singular, np.zeros(outputs))[outputs - 1])
    return np.array(ranks), np.array(smallest)


def test_two_layer_critical_point_satisfies_hypothesis_and_conclusion():
    """Observers are the students of the same layer: the unaligned pair is observed by the three teacher copies
    (fan-outs V, full rank) and the zero-fan-out node; the zero-fan-out node by the copies and the pair. Rank C = 3
    for all three unaligned nodes, and the smallest singular value is the observers' own, not 1."""
    teacher = make_net(1, (5, 3, 3))
    student = cancelling_student(teacher)
    x = gaussian_inputs(3000, 5)
    report = hypothesis(student, teacher, x, networks.RELU, 0)
    m = 3
    assert np.asarray(report.unaligned).tolist() == [False] * m + [True] * 3
    witness = numpy_same_layer_witness(student, x, 0)
    colinear = np.asarray(report.colinear)
    np.testing.assert_array_equal(report.observers, witness & ~colinear)
    assert not np.asarray(report.observers)[m, m + 1], "the co-linear partner shares k's region: not an observer"
    assert np.asarray(report.observers)[m, :m].all() and np.asarray(report.observers)[m + 2, : m + 2].all()
    ranks, smallest = numpy_spectrum(np.asarray(report.observers), student[1][0], 3)
    np.testing.assert_array_equal(report.fan_out_rank, ranks)
    np.testing.assert_allclose(report.smallest_singular_value, smallest, rtol=EXACT, atol=EXACT)
    np.testing.assert_array_equal(report.fan_out_rank[m:], 3)
    np.testing.assert_allclose(  # the copies' fan-outs are V: its smallest singular value (0.060 here)
        report.smallest_singular_value[m], np.linalg.svd(np.asarray(teacher[1][0]), compute_uv=False)[-1], rtol=EXACT
    )
    assert np.all(np.abs(np.asarray(report.smallest_singular_value[m:]) - 1.0) > 0.05), "not identically 1"
    assert np.asarray(report.hypothesis_holds).tolist() == [False] * m + [True] * 3
    assert colinear[m, m + 1] and colinear[m + 1, m] and colinear.sum() == 6 + 2, "one co-linear pair, the rest alone"
    np.testing.assert_allclose(
        report.group_sum_norm[m : m + 3], 0.0, rtol=EXACT, atol=EXACT, err_msg="sum ||w_hat|| v = 0"
    )
    assert np.all(np.asarray(report.group_norm_sum[m : m + 2]) > 0.5), "while each term is not small"
    np.testing.assert_allclose(
        report.pruned_loss_change[m:], 0.0, rtol=EXACT, atol=EXACT, err_msg="pruning a group costs nothing"
    )
    assert np.all(np.asarray(report.pruned_loss_change[:m]) > 1e-3), "pruning an aligned node costs loss"


def test_two_layer_hypothesis_fails_with_too_few_independent_observers():
    """C = 4 outputs, m = 2 teacher nodes. At this exact critical point (loss 0) the unaligned pair is observed by the
    two teacher copies and the zero-fan-out node (rank 2 < 4), the zero-fan-out node by the copies and the pair, whose
    fan-outs are parallel (rank 3 < 4), and a dead node (never active) by nobody (rank 0); the dead node's fan-out
    is not 0: without the hypothesis the conclusion need not hold."""
    teacher = make_net(1, (5, 2, 4))
    (W, b), (V, c) = cancelling_student(teacher)
    rng = np.random.default_rng(9)
    W = jnp.concatenate([W, jnp.asarray(rng.normal(size=(5, 1)))], axis=1)
    b = jnp.append(b, -100.0)  # never active on the data
    V = jnp.concatenate([V, jnp.asarray(rng.normal(size=(1, 4)))], axis=0)
    student = ((W, b), (V, c))
    x = gaussian_inputs(3000, 5)
    report = hypothesis(student, teacher, x, networks.RELU, 0)
    m = 2
    assert np.asarray(report.unaligned).tolist() == [False] * m + [True] * 4
    np.testing.assert_array_equal(report.num_observers[m:], [3, 3, 4, 0])
    np.testing.assert_array_equal(report.fan_out_rank[m:], [2, 2, 3, 0])
    ranks, smallest = numpy_spectrum(np.asarray(report.observers), V, 4)
    np.testing.assert_array_equal(report.fan_out_rank, ranks)
    np.testing.assert_allclose(report.smallest_singular_value, smallest, rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(report.smallest_singular_value[m:], 0.0, rtol=0, atol=EXACT)
    assert not np.any(report.hypothesis_holds)
    loss = networks.squared_error_loss(student, x, networks.forward(teacher, x)[0])
    np.testing.assert_allclose(loss, 0.0, rtol=0, atol=EXACT, err_msg="an exact critical point")
    assert float(report.group_sum_norm[-1]) > 1.0, "the dead node keeps its fan-out"


def test_random_net_observers_and_spectrum_match_numpy():
    """A generic two-layer net with more students than outputs: same-layer witness, rank and C-th singular value
    against NumPy counting and SVD; the singular values spread (not identically 1)."""
    student, teacher = make_net(4, (6, 9, 4)), make_net(5, (6, 3, 4))
    x = gaussian_inputs(800, 6)
    report = hypothesis(student, teacher, x, networks.RELU, 0)
    observers = numpy_same_layer_witness(student, x, 0) & ~np.asarray(report.colinear)
    np.testing.assert_array_equal(report.observers, observers)
    ranks, smallest = numpy_spectrum(observers, student[1][0], 4)
    np.testing.assert_array_equal(report.fan_out_rank, ranks)
    np.testing.assert_allclose(report.smallest_singular_value, smallest, rtol=EXACT, atol=EXACT)
    assert np.ptp(np.asarray(report.smallest_singular_value)) > 0.05 and np.all(ranks == 4)


def test_conclusion_residual_of_a_perturbed_pair_is_its_weighted_sum():
    teacher = make_net(1, (5, 3, 3))
    (W, b), (V, c) = cancelling_student(teacher)
    V = V.at[3].multiply(1.1)  # the pair no longer cancels
    report = hypothesis(((W, b), (V, c)), teacher, gaussian_inputs(500, 5), networks.RELU, 0)
    w_norm = np.linalg.norm(np.concatenate([np.asarray(W), np.asarray(b)[None]]), axis=0)
    expected = np.linalg.norm(w_norm[3] * np.asarray(V[3]) + w_norm[4] * np.asarray(V[4]))
    np.testing.assert_allclose(report.group_sum_norm[3:5], expected, rtol=EXACT)
    assert expected > 0.05


def test_deep_net_takes_the_top_hidden_layer_only():
    """Below the top hidden layer the fan-outs depend on x: refused in one line. At the top hidden layer of a deeper
    net (an extension) the observers are that layer's nodes and the fan-outs the rows of W_L."""
    student, teacher = make_net(2, (5, 6, 7, 3)), make_net(3, (5, 4, 2, 3))
    x = gaussian_inputs(400, 5)
    with pytest.raises(ArgumentError, match=r"^layer: theorem3_hypothesis takes the top hidden layer \(1\)"):
        theorem3.theorem3_hypothesis(student, teacher, x, networks.RELU, 0)
    report = hypothesis(student, teacher, x, networks.RELU, 1)
    observers = numpy_same_layer_witness(student, x, 1) & ~np.asarray(report.colinear)
    np.testing.assert_array_equal(report.observers, observers)
    ranks, smallest = numpy_spectrum(observers, student[2][0], 3)
    np.testing.assert_array_equal(report.fan_out_rank, ranks)
    np.testing.assert_allclose(report.smallest_singular_value, smallest, rtol=EXACT, atol=EXACT)


def test_theorem3_report_carries_the_hypothesis():
    """reports.theorem3_report (in analyze_run) has the same observers' rank and singular value as
    theorem3_hypothesis at the top hidden layer, and says 'not evaluated' (-1, NaN, false) below it."""
    teacher = make_net(1, (5, 3, 3))
    student = cancelling_student(teacher)
    x = gaussian_inputs(3000, 5)
    full = hypothesis(student, teacher, x, networks.RELU, 0)
    report = reports.theorem3_report(student, teacher, x)
    np.testing.assert_array_equal(report.num_observers, full.num_observers)
    np.testing.assert_array_equal(report.observer_rank, full.fan_out_rank)
    np.testing.assert_allclose(report.smallest_singular_value, full.smallest_singular_value, rtol=EXACT, atol=0)
    np.testing.assert_array_equal(report.hypothesis_holds, full.hypothesis_holds)
    deep_student, deep_teacher = make_net(2, (5, 6, 7, 3)), make_net(3, (5, 4, 2, 3))
    deep = reports.theorem3_report(deep_student, deep_teacher, gaussian_inputs(400, 5), layer=0)
    np.testing.assert_array_equal(deep.observer_rank, -1)
    assert np.isnan(np.asarray(deep.smallest_singular_value)).all() and not np.any(deep.hypothesis_holds)
    np.testing.assert_array_equal(
        deep.num_observers, (numpy_same_layer_witness(deep_student, gaussian_inputs(400, 5), 0)).sum(1)
    )


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
