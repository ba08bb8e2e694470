"""Lemma 1 (THEORY.md section 2) against autodiff backprop and an independent re-implementation of the reference's
``StatsHs`` recursion. All in float64; exact identities are asserted at 1e-12 (observed: ~4e-16).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax.core import networks
from specjax.theory import lemma1

# Jitted once (activation static): eager dispatch would dominate the test time.
statistics = jax.jit(lemma1.lemma1_statistics, static_argnums=(3, 4))
fan_out_norms_of = jax.jit(lemma1.effective_fan_out_norms, static_argnums=(2,))

EXACT = 1e-12
STUDENT_WIDTHS = (6, 9, 7, 5, 4)  # THEORY.md section 8's 4-layer nets
TEACHER_WIDTHS = (6, 4, 3, 3, 4)
NETS = {  # name: (activation, use_bias)
    "relu": (networks.RELU, False),
    "relu_bias": (networks.RELU, True),
    "leaky_bias": (networks.leaky_relu(0.1), True),
}


def make_net(seed, widths, use_bias):
    """Random net with 1/sqrt(fan_in) weights; local seeded NumPy generator (no global state)."""
    rng = np.random.default_rng(seed)
    return tuple(
        (jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a)), jnp.asarray(0.3 * rng.normal(size=b)) if use_bias else None)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    )


def inputs(count=64, d=6, seed=2):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(count, d)))


@pytest.fixture(scope="module", params=list(NETS))
def nets(request):
    activation, use_bias = NETS[request.param]
    return make_net(0, STUDENT_WIDTHS, use_bias), make_net(1, TEACHER_WIDTHS, use_bias), activation


def autodiff_errors(student, teacher, x, activation):
    """g_l = -dJ_x/dz_l by jax.grad with respect to an additive perturbation of every pre-activation."""

    def sample_loss(perturbations, xi):
        f = xi
        for layer, delta in zip(student[:-1], perturbations[:-1], strict=True):
            f = activation(networks.dense(layer, f) + delta)
        r = networks.apply(teacher, xi, activation) - (networks.dense(student[-1], f) + perturbations[-1])
        return 0.5 * jnp.sum(r * r)

    zeros = tuple(jnp.zeros(W.shape[1]) for W, _ in student)
    grads = jax.vmap(lambda xi: jax.grad(sample_loss)(zeros, xi))(x)
    return tuple(-g for g in grads)


def all_errors(student, teacher, x, activation):
    """One compiled program per net: autodiff, Lemma-1 and direct errors, and jax.grad of the batch loss."""
    y = networks.apply(teacher, x, activation)
    return (
        autodiff_errors(student, teacher, x, activation),
        lemma1.lemma1_errors(student, teacher, x, activation),
        lemma1.backprop_errors(student, teacher, x, activation),
        jax.grad(networks.squared_error_loss)(student, x, y, activation),
        networks.forward(student, x, activation)[1],
    )


@functools.partial(jax.jit, static_argnums=(3,))
def errors_and_statistics(student, teacher, x, activation):
    """Both programs fused, so each net compiles once: errors on ``x``, statistics on its first 40 rows."""
    return (
        all_errors(student, teacher, x, activation),
        all_statistics(student, teacher, x[:40], activation),
    )


@pytest.fixture(scope="module")
def computed(nets):
    """:func:`errors_and_statistics` of each net, computed once per net and shared by its tests."""
    student, teacher, activation = nets
    return errors_and_statistics(student, teacher, inputs(), activation)


def test_lemma1_errors_equal_autodiff_backprop(nets, computed):
    student = nets[0]
    expected, lemma, direct, _, _ = computed[0]
    assert len(lemma) == len(student) - 1 and len(direct) == len(student)
    for layer, g in enumerate(expected):
        np.testing.assert_allclose(direct[layer], g, atol=EXACT, err_msg=f"direct recursion, layer {layer + 1}")
        if layer < len(lemma):
            np.testing.assert_allclose(
                lemma[layer], g, atol=EXACT, err_msg=f"g_l = D_l(A_l f*_l - B_l f_l) to 1e-12, layer {layer + 1}"
            )


def test_weight_gradient_is_outer_product_of_errors(computed):
    """dJ/dW_hat_l = -E[f_hat_{l-1} g_l^T] (THEORY.md section 1), against jax.grad of the batch loss."""
    x = inputs()
    _, _, errors, grads, hidden = computed[0]
    layer_inputs = (x,) + tuple(h.post for h in hidden)
    for (grad_w, grad_b), f, g in zip(grads, layer_inputs, errors, strict=True):
        np.testing.assert_allclose(-grad_w, np.asarray(f).T @ np.asarray(g) / x.shape[0], atol=EXACT)
        if grad_b is not None:
            np.testing.assert_allclose(-grad_b, np.asarray(g).mean(0), atol=EXACT)


def reference_stats_hs(student, teacher, student_gates, teacher_gates):
    """THEORY.md section 2's ``StatsHs._compute_Hs`` per sample, in PyTorch layout (out x in), NumPy loops.

    ``student_gates``/``teacher_gates``: per hidden layer ``(N, n_l)`` 0/1 gates.
    """

    def aug(layer):
        W, b = (np.asarray(a) if a is not None else None for a in layer)
        W_pt = W.T
        b = np.zeros(W_pt.shape[0]) if b is None else b
        top = np.concatenate([W_pt, b[:, None]], axis=1)
        return np.concatenate([top, np.eye(1, W_pt.shape[1] + 1, W_pt.shape[1])], axis=0)

    depth, count = len(student), student_gates[0].shape[0]
    betas = [np.zeros((s.shape[1] + 1, t.shape[1] + 1)) for s, t in zip(student_gates, teacher_gates, strict=True)]
    hs = [np.zeros_like(b) for b in betas]
    for i in range(count):
        H = np.eye(student[-1][0].shape[1] + 1)
        for j in range(depth, 1, -1):  # layer j = L..2, giving hidden layer j - 1
            beta = aug(student[j - 1]).T @ H @ aug(teacher[j - 1])
            gs = np.append(np.asarray(student_gates[j - 2][i]), 1.0)
            gt = np.append(np.asarray(teacher_gates[j - 2][i]), 1.0)
            H = gs[:, None] * beta * gt[None, :]
            betas[j - 2] += beta / count
            hs[j - 2] += H / count
    return betas, hs


def all_statistics(student, teacher, x, activation):
    """One compiled program per net: statistics, per-sample matrices (student with itself), gates, diagonals."""
    return (
        lemma1.lemma1_statistics(student, teacher, x, activation),
        lemma1.lemma1_matrices(student, student, x, activation),
        lemma1.hidden_gates(student, x, activation)[0],
        lemma1.hidden_gates(teacher, x, activation)[0],
        lemma1.effective_fan_out_norms(student, x, activation),
        lemma1.mean_alpha(student, teacher, x, activation),
    )


def test_statistics_equal_reference_recursion_and_per_sample_means(nets, computed):
    student, teacher, activation = nets
    x = inputs()[:40]
    stats, matrices, gates, teacher_gates, fan_out_norms, mean_alpha = computed[1]
    betas, hs = reference_stats_hs(student, teacher, gates, teacher_gates)
    for layer in range(len(betas)):
        np.testing.assert_allclose(stats.betas_st[layer], betas[layer], atol=EXACT, err_msg="betas_st = StatsHs")
        np.testing.assert_allclose(stats.hs_st[layer], hs[layer], atol=EXACT, err_msg="Hs_st = StatsHs")
    for layer, (alpha, beta) in enumerate(zip(matrices.student_teacher, matrices.student_student, strict=True)):
        np.testing.assert_allclose(alpha, beta, atol=EXACT)
        np.testing.assert_allclose(stats.betas_ss[layer], np.mean(beta, 0), atol=EXACT, err_msg="betas_ss")
        d = np.append(np.asarray(gates[layer]), np.ones((x.shape[0], 1)), axis=1)
        gated = np.mean(d[:, :, None] * np.asarray(beta) * d[:, None, :], 0)
        np.testing.assert_allclose(stats.hs_ss[layer], gated, atol=EXACT, err_msg="Hs_ss")
        diag = np.sqrt(np.diag(stats.betas_ss[layer])[:-1])
        np.testing.assert_allclose(
            fan_out_norms[layer], diag, atol=EXACT, err_msg="sqrt(E beta_kk) = diagonal of betas_ss"
        )
        np.testing.assert_allclose(mean_alpha[layer], stats.betas_st[layer][:-1, :-1], atol=EXACT)


def test_chunked_statistics_equal_one_pass():
    student, teacher = make_net(0, STUDENT_WIDTHS, True), make_net(1, TEACHER_WIDTHS, True)
    x = inputs(50)
    one_pass = statistics(student, teacher, x, networks.RELU, None)
    chunked = statistics(student, teacher, x, networks.RELU, 16)  # 4 chunks, the last padded
    for a, b in zip(jax.tree.leaves(one_pass), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_allclose(a, b, atol=EXACT)


def test_two_layer_alpha_is_fan_out_overlap():
    """Two layers: A_1 = W_2 W_2*^T (no x-dependence) and sqrt(E beta_kk) = ||v_k||."""
    student, teacher = make_net(3, (5, 7, 3), True), make_net(4, (5, 2, 3), True)
    x = inputs(30, 5)
    stats = statistics(student, teacher, x, networks.RELU, None)
    np.testing.assert_allclose(
        stats.betas_st[0][:-1, :-1], np.asarray(student[1][0]) @ np.asarray(teacher[1][0]).T, atol=EXACT
    )
    np.testing.assert_allclose(
        fan_out_norms_of(student, x, networks.RELU)[0], np.linalg.norm(student[1][0], axis=1), atol=EXACT
    )


def test_statistics_vmap_over_runs_equals_loop():
    runs = [make_net(10 + r, (5, 6, 4, 3), True) for r in range(3)]
    teacher = make_net(20, (5, 3, 2, 3), True)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *runs)
    x = inputs(20, 5)
    batched = jax.jit(jax.vmap(lemma1.lemma1_statistics, (0, None, None)))(stacked, teacher, x)
    for r, student in enumerate(runs):
        single = statistics(student, teacher, x, networks.RELU, None)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(a[r], b, atol=EXACT, err_msg="vmapped run equals its own call")
