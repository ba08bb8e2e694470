"""Lemma 1 (Tian 2020, Eqn 3-4; docs/theory.md §2) against references written in this file.

The references share no code with specjax: a forward pass in ``jax.numpy`` (for autodiff) and in NumPy, the
per-sample fan-out recursion :math:`\\hat V_{l-1}=\\hat V_l\\hat D_l\\hat W_l^\\top` in NumPy, and the reference
code's ``StatsHs`` recursion in PyTorch layout. All in float64; exact identities at rtol 1e-12 (observed ~4e-16).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax.core import networks
from specjax.errors import ArgumentError
from specjax.theory import lemma1, reports, theorem3, theorem5

# Jitted once (activation static): eager dispatch would dominate the test time.
statistics = jax.jit(lemma1.lemma1_statistics, static_argnums=(3, 4))
fan_out_norms_of = jax.jit(lemma1.effective_fan_out_norms, static_argnums=(2,))

EXACT = 1e-12
RTOL = 1e-12
STUDENT_WIDTHS = (6, 9, 7, 5, 4)  # the 4-layer nets of docs/theory.md §2's check
TEACHER_WIDTHS = (6, 4, 3, 3, 4)
NETS = {  # name: (activation, use_bias, negative slope for the test's own forward pass)
    "relu": (networks.RELU, False, 0.0),
    "relu_bias": (networks.RELU, True, 0.0),
    "leaky_bias": (networks.leaky_relu(0.1), True, 0.1),
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
    activation, use_bias, slope = NETS[request.param]
    return make_net(0, STUDENT_WIDTHS, use_bias), make_net(1, TEACHER_WIDTHS, use_bias), activation, slope


def own_forward(params, x, slope, perturbations=None):
    """The test's forward pass in jax.numpy: ``(output, pre-activations per hidden layer)``; optional additive
    perturbations of every pre-activation (output included) for autodiff with respect to them."""

    def affine(layer, f, delta):
        weights, bias = layer
        z = f @ weights
        return z + jnp.broadcast_to(0.0 if bias is None else bias, z.shape) + jnp.broadcast_to(delta, z.shape)

    perturbations = perturbations or (0.0,) * len(params)
    f, pres = x, []
    for layer, delta in zip(params[:-1], perturbations[:-1], strict=True):
        z = affine(layer, f, delta)
        pres.append(z)
        f = jnp.where(z > 0, z, slope * z)
    return affine(params[-1], f, perturbations[-1]), pres


def own_loss(params, x, y, slope):
    """J = mean over samples of 1/2 ||y - f_L(x)||^2."""
    return 0.5 * jnp.mean(jnp.sum((y - own_forward(params, x, slope)[0]) ** 2, axis=-1))


def autodiff_errors(student, teacher, x, slope):
    """g_l = -dJ_x/dz_l by jax.grad with respect to an additive perturbation of every pre-activation."""

    def sample_loss(perturbations, xi):
        r = own_forward(teacher, xi, slope)[0] - own_forward(student, xi, slope, perturbations)[0]
        return 0.5 * jnp.sum(r * r)

    zeros = tuple(jnp.zeros(W.shape[1]) for W, _ in student)
    grads = jax.vmap(lambda xi: jax.grad(sample_loss)(zeros, xi))(x)
    return tuple(-g for g in grads)


def all_errors(student, teacher, x, activation, slope):
    """One compiled program per net: autodiff, Lemma-1 and direct errors, jax.grad of the batch loss, and the
    test's own hidden activations."""
    y = own_forward(teacher, x, slope)[0]
    pres = own_forward(student, x, slope)[1]
    return (
        autodiff_errors(student, teacher, x, slope),
        lemma1.lemma1_errors(student, teacher, x, activation),
        lemma1.backprop_errors(student, teacher, x, activation),
        jax.grad(own_loss)(student, x, y, slope),
        tuple(jnp.where(z > 0, z, slope * z) for z in pres),
    )


@functools.partial(jax.jit, static_argnums=(3, 4))
def errors_and_statistics(student, teacher, x, activation, slope):
    """Both programs fused, so each net compiles once: errors on ``x``, statistics on its first 40 rows."""
    return (
        all_errors(student, teacher, x, activation, slope),
        all_statistics(student, teacher, x[:40], activation),
    )


@pytest.fixture(scope="module")
def computed(nets):
    """:func:`errors_and_statistics` of each net, computed once per net and shared by its tests."""
    student, teacher, activation, slope = nets
    return errors_and_statistics(student, teacher, inputs(), activation, slope)


def test_lemma1_errors_equal_autodiff_backprop(nets, computed):
    student = nets[0]
    expected, lemma, direct, _, _ = computed[0]
    assert len(lemma) == len(student) - 1 and len(direct) == len(student)
    for layer, g in enumerate(expected):
        np.testing.assert_allclose(
            direct[layer], g, rtol=EXACT, atol=EXACT, err_msg=f"direct recursion, layer {layer + 1}"
        )
        if layer < len(lemma):
            np.testing.assert_allclose(
                lemma[layer],
                g,
                rtol=EXACT,
                atol=EXACT,
                err_msg=f"g_l = D_l(A_l f*_l - B_l f_l) to 1e-12, layer {layer + 1}",
            )


def test_weight_gradient_is_outer_product_of_errors(computed):
    """dJ/dW_hat_l = -E[f_hat_{l-1} g_l^T] (docs/theory.md §1), against jax.grad of the test's batch loss."""
    x = inputs()
    _, _, errors, grads, hidden = computed[0]
    layer_inputs = (x,) + tuple(hidden)
    for (grad_w, grad_b), f, g in zip(grads, layer_inputs, errors, strict=True):
        np.testing.assert_allclose(-grad_w, np.asarray(f).T @ np.asarray(g) / x.shape[0], rtol=EXACT, atol=EXACT)
        if grad_b is not None:
            np.testing.assert_allclose(-grad_b, np.asarray(g).mean(0), rtol=EXACT, atol=EXACT)


def reference_stats_hs(student, teacher, student_gates, teacher_gates):
    """The reference code's ``StatsHs._compute_Hs`` (docs/theory.md §2) per sample, PyTorch layout (out x in).

    ``student_gates``/``teacher_gates``: per hidden layer ``(N, n_l)`` gates sigma'(z) (0/1 for ReLU).
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
    """One compiled program per net: statistics, per-sample matrices, fan-out norms and mean alpha."""
    return (
        lemma1.lemma1_statistics(student, teacher, x, activation),
        lemma1.lemma1_matrices(student, teacher, x, activation),
        lemma1.effective_fan_out_norms(student, x, activation),
        lemma1.mean_alpha(student, teacher, x, activation),
    )


def numpy_gates(params, x, slope):
    """sigma'(z_l) per hidden layer from a NumPy forward pass, ``(N, n_l)``."""
    f, gates = np.asarray(x), []
    for weights, bias in params[:-1]:
        z = f @ np.asarray(weights) + (0.0 if bias is None else np.asarray(bias))
        gates.append(np.where(z > 0, 1.0, slope))
        f = np.where(z > 0, z, slope * z)
    return gates


def numpy_fan_outs(params, gates):
    """Per sample, the augmented V_hat_l of every hidden layer, ``(N, C + 1, n_l + 1)``, by the top-down recursion."""

    def augmented(layer):
        weights, bias = (None if a is None else np.asarray(a) for a in layer)
        bias = np.zeros(weights.shape[1]) if bias is None else bias
        top = np.hstack([weights, np.zeros((weights.shape[0], 1))])
        return np.vstack([top, np.append(bias, 1.0)[None]])

    count = gates[0].shape[0]
    fan_out = np.broadcast_to(augmented(params[-1]).T, (count,) + augmented(params[-1]).T.shape)
    result = [fan_out]
    for layer in range(len(params) - 2, 0, -1):
        d_hat = np.hstack([gates[layer], np.ones((count, 1))])  # D_hat of hidden layer layer + 1
        fan_out = (fan_out * d_hat[:, None, :]) @ augmented(params[layer]).T
        result.insert(0, fan_out)
    return result


def test_statistics_equal_reference_recursion_and_per_sample_means(nets, computed):
    student, teacher, _, slope = nets
    x = np.asarray(inputs()[:40])
    stats, matrices, fan_out_norms, mean_alpha = computed[1]
    gates, teacher_gates = numpy_gates(student, x, slope), numpy_gates(teacher, x, slope)
    betas, hs = reference_stats_hs(student, teacher, gates, teacher_gates)
    fan_outs, teacher_fan_outs = numpy_fan_outs(student, gates), numpy_fan_outs(teacher, teacher_gates)
    for layer in range(len(betas)):
        tight = dict(rtol=RTOL, atol=EXACT)
        np.testing.assert_allclose(stats.betas_st[layer], betas[layer], **tight, err_msg="betas_st = StatsHs")
        np.testing.assert_allclose(stats.hs_st[layer], hs[layer], **tight, err_msg="Hs_st = StatsHs")
        v, vt = fan_outs[layer], teacher_fan_outs[layer]
        alpha, beta = np.swapaxes(v, 1, 2) @ vt, np.swapaxes(v, 1, 2) @ v  # per sample A_hat_l, B_hat_l
        np.testing.assert_allclose(matrices.student_teacher[layer], alpha, **tight, err_msg="per-sample A_hat")
        np.testing.assert_allclose(matrices.student_student[layer], beta, **tight, err_msg="per-sample B_hat")
        np.testing.assert_allclose(stats.betas_ss[layer], beta.mean(0), **tight, err_msg="betas_ss")
        d = np.hstack([gates[layer], np.ones((x.shape[0], 1))])
        gated = np.mean(d[:, :, None] * beta * d[:, None, :], 0)
        np.testing.assert_allclose(stats.hs_ss[layer], gated, **tight, err_msg="Hs_ss")
        diag = np.sqrt(np.diag(beta.mean(0))[:-1])
        np.testing.assert_allclose(fan_out_norms[layer], diag, **tight, err_msg="sqrt(E beta_kk)")
        np.testing.assert_allclose(mean_alpha[layer], alpha.mean(0)[:-1, :-1], **tight, err_msg="E alpha")


def test_chunked_statistics_equal_one_pass():
    student, teacher = make_net(0, STUDENT_WIDTHS, True), make_net(1, TEACHER_WIDTHS, True)
    x = inputs(50)
    one_pass = statistics(student, teacher, x, networks.RELU, None)
    chunked = statistics(student, teacher, x, networks.RELU, 16)  # 4 chunks, the last padded
    for a, b in zip(jax.tree.leaves(one_pass), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_allclose(a, b, rtol=EXACT, atol=EXACT)


def test_two_layer_alpha_is_fan_out_overlap():
    """Two layers: A_1 = W_2 W_2*^T (no x-dependence) and sqrt(E beta_kk) = ||v_k||."""
    student, teacher = make_net(3, (5, 7, 3), True), make_net(4, (5, 2, 3), True)
    x = inputs(30, 5)
    stats = statistics(student, teacher, x, networks.RELU, None)
    np.testing.assert_allclose(
        stats.betas_st[0][:-1, :-1], np.asarray(student[1][0]) @ np.asarray(teacher[1][0]).T, rtol=EXACT, atol=EXACT
    )
    np.testing.assert_allclose(
        fan_out_norms_of(student, x, networks.RELU)[0], np.linalg.norm(student[1][0], axis=1), rtol=EXACT, atol=EXACT
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
            np.testing.assert_allclose(a[r], b, rtol=EXACT, atol=EXACT, err_msg="vmapped run equals its own call")


REFUSING = {  # every theory function that takes an activation and rests on sigma(z) = sigma'(z) z
    "hidden_gates": lambda s, t, x, a: lemma1.hidden_gates(s, x, a),
    "lemma1_matrices": lemma1.lemma1_matrices,
    "lemma1_errors": lemma1.lemma1_errors,
    "lemma1_statistics": lambda s, t, x, a: lemma1.lemma1_statistics(s, t, x, a),
    "effective_fan_out_norms": lambda s, t, x, a: lemma1.effective_fan_out_norms(s, x, a),
    "mean_alpha": lemma1.mean_alpha,
    "node_residues": reports.node_residues,
    "l_shape": reports.l_shape,
    "theorem3_report": reports.theorem3_report,
    "analyze_run": reports.analyze_run,
    "constant_regions": theorem5.constant_regions,
    "regional_observer_alpha": theorem5.regional_observer_alpha,
    "theorem5_report": theorem5.theorem5_report,
    "theorem3_hypothesis": theorem3.theorem3_hypothesis,
}


@pytest.mark.parametrize("name", list(REFUSING))
def test_theory_functions_refuse_a_non_homogeneous_activation(name):
    """Softplus is smooth: f_l = D_l W_l^T f_{l-1} fails, so Lemma 1 and the theorems would give meaningless numbers.
    Each function refuses it in one line naming the argument and itself, also under jit (the check is at trace time);
    the plain backpropagation, valid for any activation, still runs."""
    student, teacher = make_net(0, (4, 5, 3, 2), True), make_net(1, (4, 3, 2, 2), True)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(16, 4)))
    pattern = rf"^activation: {name} needs a positively homogeneous activation .*'softplus' is not"
    with pytest.raises(ArgumentError, match=pattern) as refused:
        REFUSING[name](student, teacher, x, networks.SOFTPLUS)
    assert "\n" not in str(refused.value)
    with pytest.raises(ArgumentError, match=pattern):
        jax.jit(REFUSING[name], static_argnums=3)(student, teacher, x, networks.SOFTPLUS)
    assert len(lemma1.backprop_errors(student, teacher, x, networks.SOFTPLUS)) == 3
