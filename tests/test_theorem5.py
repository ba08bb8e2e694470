"""Theorem 5 as stated (specjax.theory.theorem5) and Def. 2 decided exactly (specjax.theory.observers).

References are computed in this file with NumPy (forward pass, fan-out recursion, region grouping, counting), sharing
no code with specjax. Exact identities at rtol 1e-12 (float64).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian_inputs, make_net

from specjax.core import networks
from specjax.theory import lemma1, observers, theorem5

RTOL = 1e-12
ATOL = 1e-12
report_of = jax.jit(theorem5.theorem5_report, static_argnums=(3, 4))


def numpy_pre_activations(params, x):
    """ReLU forward pass in NumPy: the hidden layers' pre-activations ``(N, n_l)``."""
    f, pres = np.asarray(x), []
    for weights, bias in params[:-1]:
        z = f @ np.asarray(weights) + (0.0 if bias is None else np.asarray(bias))
        pres.append(z)
        f = np.maximum(z, 0.0)
    return pres


def numpy_layer1_fan_outs(params, pres):
    """Per sample, V_1(x) of Lemma 1 without bias rows: V_{L-1} = W_L^T, V_{l-1} = V_l D_l W_l^T. ``(N, C, n_1)``."""
    count = pres[0].shape[0]
    v = np.broadcast_to(np.asarray(params[-1][0]).T, (count,) + np.asarray(params[-1][0]).T.shape)
    for layer in range(len(params) - 2, 0, -1):
        gates = (pres[layer] > 0).astype(float)  # hidden layer layer + 1
        v = (v * gates[:, None, :]) @ np.asarray(params[layer][0]).T
    return v


def numpy_regional_alpha(student, teacher, x, observer_fraction, per_active_count=False):
    """Brute force: group samples by their upper-layer gates, count both sides per region, max |alpha_kj(R)|.

    The witness count is divided by N (Def. 2's fraction of the sample); ``per_active_count`` divides by the
    student's active count in the region instead, a wrong variant the tests use to show they can tell the two apart.
    """
    pres, teacher_pres = numpy_pre_activations(student, x), numpy_pre_activations(teacher, x)
    alpha = np.einsum(
        "icn,icm->inm", numpy_layer1_fan_outs(student, pres), numpy_layer1_fan_outs(teacher, teacher_pres)
    )
    upper = pres[1:] + teacher_pres[1:]  # empty for two layers: one region
    keys = [tuple(np.concatenate([p[i] > 0 for p in upper] or [[]]).tolist()) for i in range(x.shape[0])]
    regions = {}
    for i, key in enumerate(keys):
        regions.setdefault(key, []).append(i)
    student_on, teacher_on = pres[0] > 0, teacher_pres[0] > 0
    best = np.zeros(teacher_on.shape[1])
    for members in regions.values():
        members = np.array(members)
        assert np.ptp(alpha[members], axis=0).max() < 1e-12, "Corollary 1: alpha constant on a region"
        for j in range(teacher_on.shape[1]):
            both = np.sum(student_on[members] & teacher_on[members, j : j + 1], axis=0)
            other = np.sum(student_on[members] & ~teacher_on[members, j : j + 1], axis=0)
            denominator = np.maximum(both + other, 1) if per_active_count else x.shape[0]
            observed = np.minimum(both, other) / denominator > observer_fraction
            if observed.any():
                best[j] = max(best[j], np.abs(alpha[members[0], observed, j]).max())
    return best, len(regions)


def numpy_mean_observer_alpha(student, teacher, x, observer_fraction):
    """The region-averaged version: max |E_x alpha_kj| over the observers of the whole sample."""
    pres, teacher_pres = numpy_pre_activations(student, x), numpy_pre_activations(teacher, x)
    alpha = np.einsum("icn,icm->nm", numpy_layer1_fan_outs(student, pres), numpy_layer1_fan_outs(teacher, teacher_pres))
    student_on, teacher_on = pres[0] > 0, teacher_pres[0] > 0
    both = teacher_on.T.astype(float) @ student_on
    observed = np.minimum(both, student_on.sum(0)[None, :] - both) / x.shape[0] > observer_fraction
    return np.where(observed, np.abs(alpha.T / x.shape[0]), 0.0).max(1)


@pytest.mark.parametrize("observer_fraction", [0.0, 0.05])
def test_two_layer_regional_alpha_equals_the_fan_out_overlap_of_the_observers(observer_fraction):
    """One region: the theorem's alpha is W_2 W_2*^T over the empirical observers, the former (mean) report."""
    student, teacher = make_net(0, (5, 7, 3)), make_net(1, (5, 3, 3))
    x = gaussian_inputs(2000, 5)
    report = report_of(student, teacher, x, networks.RELU, observer_fraction)
    expected = numpy_mean_observer_alpha(student, teacher, x, observer_fraction)
    assert int(report.num_regions) == 1
    assert np.all(expected > 0.1), "every teacher observed"
    np.testing.assert_allclose(report.observer_alpha, expected, rtol=RTOL, atol=0)
    np.testing.assert_allclose(report.mean_observer_alpha, expected, rtol=RTOL, atol=0)
    np.testing.assert_allclose(report.bound_ratio, report.gradient_bound / expected, rtol=RTOL, atol=0)


def test_deep_regional_alpha_equals_brute_force_and_differs_from_the_mean():
    student, teacher = make_net(2, (5, 6, 3, 3)), make_net(3, (5, 3, 2, 3))
    x = gaussian_inputs(3000, 5)
    report = report_of(student, teacher, x, networks.RELU, 0.0)
    expected, num_regions = numpy_regional_alpha(student, teacher, x, 0.0)
    assert int(report.num_regions) == num_regions > 4
    np.testing.assert_allclose(report.observer_alpha, expected, rtol=RTOL, atol=0)
    mean = numpy_mean_observer_alpha(student, teacher, x, 0.0)
    np.testing.assert_allclose(report.mean_observer_alpha, mean, rtol=RTOL, atol=0)
    # measured: regional 0.159 / 0.195 / 0.073 against region-averaged 0.061 / 0.107 / 0.032
    assert np.all(expected > 1.5 * mean), f"the average over regions dilutes alpha: {expected} vs {mean}"
    positive = mean > 0
    np.testing.assert_allclose(report.bound_ratio, report.gradient_bound / expected, rtol=RTOL, atol=0)
    assert np.all(np.asarray(report.bound_ratio)[positive] < 0.7 * float(report.gradient_bound) / mean[positive]), (
        "the bound uses the regional alpha, not the region-averaged one"
    )


def with_rare_loud_student(student, bias=-2.2, scale=10.0, seed=4):
    """``student`` with one more first-layer node that is rarely active (bias ``bias``, unit filter) and has a fan-out
    ``scale`` times larger than the others: its witness count is a large fraction of its own active samples but a
    small fraction of all N samples."""
    rng = np.random.default_rng(seed)
    (W, b), (W2, b2), *rest = (tuple(None if a is None else np.asarray(a) for a in layer) for layer in student)
    filt = rng.normal(size=(W.shape[0], 1))
    W = np.concatenate([W, filt / np.linalg.norm(filt)], axis=1)
    b = np.append(b, bias)
    W2 = np.concatenate([W2, scale * rng.normal(size=(1, W2.shape[1]))], axis=0)
    layers = ((W, b), (W2, b2), *rest)
    return tuple((jnp.asarray(w), None if c is None else jnp.asarray(c)) for w, c in layers)


@pytest.mark.parametrize("widths", [(5, 6, 3), (5, 6, 3, 3)], ids=["two_layer", "deep"])
def test_regional_alpha_observation_fraction_is_of_all_samples(widths):
    """Def. 2's witness fraction is over the N samples, not over the student's active samples: a rarely active
    student with a large fan-out sees each teacher boundary on a large share of its own (few) samples, which must not
    make it an observer at observer_fraction 0.01."""
    student = with_rare_loud_student(make_net(2, widths))
    teacher = make_net(3, (5, 3) + widths[2:])
    x = gaussian_inputs(3000, 5)
    fraction = 0.01
    report = report_of(student, teacher, x, networks.RELU, fraction)
    expected, _ = numpy_regional_alpha(student, teacher, x, fraction)
    np.testing.assert_allclose(report.observer_alpha, expected, rtol=RTOL, atol=0)
    per_active, _ = numpy_regional_alpha(student, teacher, x, fraction, per_active_count=True)
    assert np.any(per_active > 1.5 * expected), f"the rare loud student would dominate: {per_active} vs {expected}"


def test_constant_regions_and_regional_alpha_under_vmap():
    runs = [make_net(10 + r, (5, 6, 3, 3)) for r in range(3)]
    teacher = make_net(3, (5, 3, 2, 3))
    x = gaussian_inputs(500, 5)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *runs)
    batched = jax.jit(jax.vmap(theorem5.regional_observer_alpha, (0, None, None)))(stacked, teacher, x)
    for r, student in enumerate(runs):
        expected, num_regions = numpy_regional_alpha(student, teacher, x, 0.0)
        np.testing.assert_allclose(batched.observer_alpha[r], expected, rtol=RTOL, atol=0)
        assert int(batched.num_regions[r]) == num_regions
        region, _ = theorem5.constant_regions(student, teacher, x)
        alpha = np.asarray(lemma1.lemma1_matrices(student, teacher, x).student_teacher[0])
        for label in np.unique(np.asarray(region)):
            members = np.asarray(region) == label
            assert np.ptp(alpha[members], axis=0).max() < 1e-12, "per-sample Lemma-1 A_1 constant on a region"


def test_pair_geometry_normalises_the_augmented_weight():
    teacher = make_net(1, (5, 3, 3))
    (W, b), _ = teacher
    W, b = np.asarray(W), np.asarray(b)
    order = np.array([2, 0, 1])  # student node i is teacher node order[i], rescaled by 3 (bias included)
    student = ((jnp.asarray(3.0 * W[:, order]), jnp.asarray(3.0 * b[order])), teacher[1])
    geometry = theorem5.pair_geometry(teacher, student, jnp.asarray(np.argsort(order)))
    np.testing.assert_allclose(geometry.weight_angle, 0.0, rtol=0, atol=1e-7)  # arccos near 1: half the digits
    np.testing.assert_allclose(geometry.bias_error, 0.0, rtol=0, atol=ATOL)
    # Rotate teacher 0's filter by 0.3 rad in the plane of filters 0 and 1; move its normalised bias by 0.2.
    u = W[:, 0] / np.linalg.norm(W[:, 0])
    v = W[:, 1] - (W[:, 1] @ u) * u
    v /= np.linalg.norm(v)
    target = b[0] / np.linalg.norm(np.append(W[:, 0], b[0])) + 0.2  # b/||[w; b]|| of the moved node
    bias = target / np.sqrt(1 - target**2)  # b/||[u'; b]|| = target for a unit filter u'
    weights, biases = W.copy(), b.copy()
    weights[:, 0], biases[0] = 4.0 * (np.cos(0.3) * u + np.sin(0.3) * v), 4.0 * bias
    geometry = theorem5.pair_geometry(teacher, ((jnp.asarray(weights), jnp.asarray(biases)), teacher[1]), jnp.arange(3))
    np.testing.assert_allclose(geometry.weight_angle[0], 0.3, rtol=RTOL, atol=0)
    np.testing.assert_allclose(geometry.bias_error[0], 0.2, rtol=RTOL, atol=0)
    bias_free = tuple((w, None) for w, _ in teacher)
    moved = theorem5.pair_geometry(bias_free, ((jnp.asarray(weights), None), teacher[1]), jnp.arange(3))
    np.testing.assert_allclose(moved.bias_error, 0.0, rtol=0, atol=0)


def test_theorem5_report_at_the_teacher_and_elsewhere():
    teacher = make_net(1, (5, 3, 3))
    (W, b), (V, c) = (tuple(np.asarray(a) for a in layer) for layer in teacher)
    scales = np.array([2.0, 0.5, 1.5])
    extra = np.random.default_rng(5).normal(size=(5, 2))
    exact = (
        (jnp.asarray(np.concatenate([W * scales, extra], 1)), jnp.asarray(np.append(b * scales, [0.0, 0.0]))),
        (jnp.asarray(np.concatenate([V / scales[:, None], np.zeros((2, 3))])), jnp.asarray(c)),
    )
    x = gaussian_inputs(2000, 5)
    report = report_of(exact, teacher, x, networks.RELU, 0.0)
    np.testing.assert_allclose(report.gradient_bound, 0.0, rtol=0, atol=ATOL, err_msg="epsilon = 0 at the teacher")
    np.testing.assert_allclose(report.sin_angle, 0.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(report.bias_error, 0.0, rtol=0, atol=ATOL)
    assert np.asarray(report.best_student).tolist() == [0, 1, 2]
    student = make_net(0, (5, 7, 3))
    report = report_of(student, teacher, x, networks.RELU, 0.0)
    errors = np.asarray(lemma1.backprop_errors(student, teacher, x)[0])
    np.testing.assert_allclose(report.gradient_bound, np.abs(errors).max(), rtol=RTOL, atol=0)


def test_gaussian_observation_cases():
    """Parallel filters decide by the offset on the hyperplane; other pairs always meet; w* = 0 has no boundary."""
    w_star = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]).T  # (d=3, m=2)
    b_star = np.array([0.5, 0.0])
    # students: 2 w*_0 with b = 2 (on the hyperplane x_0 = -0.5: 2 * -0.5 + 2 = 1 > 0 -> meets),
    # 2 w*_0 with b = 0.5 (-1 + 0.5 < 0 -> not), -w*_0 with b = -0.4 (0.5 - 0.4 > 0 -> meets),
    # w = 0 with b = 1 (active everywhere) and b = -1 (never), and a generic filter (meets both).
    w = np.array([[2.0, 0, 0], [2.0, 0, 0], [-1.0, 0, 0], [0, 0, 0], [0, 0, 0], [0.3, -0.2, 0.9]]).T
    b = np.array([2.0, 0.5, -0.4, 1.0, -1.0, -5.0])
    decided = np.asarray(observers.gaussian_observation((jnp.asarray(w_star), jnp.asarray(b_star)), (w, b)))
    assert decided[0].tolist() == [True, False, True, True, False, True]
    assert decided[1].tolist() == [True, True, True, True, False, True], "w_k not parallel to w*_1, or w_k = 0"
    zero_teacher = (jnp.zeros((3, 1)), jnp.zeros(1))
    assert not np.asarray(observers.gaussian_observation(zero_teacher, (w, b))).any()


def test_gaussian_observation_agrees_with_the_empirical_witness_as_samples_grow():
    """Nested Gaussian samples: the empirical witness (data on both sides within E_k) converges to the exact answer."""
    rng = np.random.default_rng(11)
    d, m = 3, 4
    w_star, b_star = rng.normal(size=(d, m)), 0.5 * rng.normal(size=m)
    generic = rng.normal(size=(d, 6))
    generic /= np.linalg.norm(generic, axis=0)
    w = np.concatenate([generic, 1.5 * w_star[:, :2], -w_star[:, 2:3], np.zeros((d, 1))], axis=1)
    b = np.concatenate([[-1.8, -2.2, -2.0, 0.0, 1.0, -1.5], 1.5 * b_star[:2] + [1.0, -1.0], [-b_star[2] - 0.3], [0.5]])
    exact = np.asarray(observers.gaussian_observation((jnp.asarray(w_star), jnp.asarray(b_star)), (w, b)))
    assert exact.any() and not exact.all(), "both answers occur"
    x = np.asarray(jax.random.normal(jax.random.key(3), (1_000_000, d)))
    fractions = []  # measured: 0.8, 0.875, 0.95, 1.0, 1.0
    for count in (100, 1_000, 10_000, 100_000, 1_000_000):
        witness = np.asarray(observers.boundary_observation(x[:count] @ w_star + b_star, x[:count] @ w + b)) > 0
        assert not np.any(witness & ~exact), "a witness is never wrong (data on both sides implies a meeting)"
        fractions.append(float(np.mean(witness == exact)))
    assert np.all(np.diff(fractions) >= 0) and fractions[0] < 0.85, f"agreement grows from small samples: {fractions}"
    assert fractions[-1] == 1.0, f"agreement -> 1: {fractions}"
