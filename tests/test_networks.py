"""Networks: shapes, activations, and the SGD gradient identity dJ/dW_l = -f_{l-1} g_l^T (docs/theory.md §1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax.core import networks, teachers


def _net(key, widths, use_bias=True):
    return teachers.gaussian_student(key, widths, 0.5, use_bias, jnp.float64)


@pytest.mark.parametrize("activation", [networks.RELU, networks.leaky_relu(0.1), networks.LINEAR], ids=str)
def test_forward_shapes_and_identity(activation):
    widths = (6, 9, 7, 4)
    params = _net(jax.random.key(0), widths)
    x = jax.random.normal(jax.random.key(1), (5, 6), jnp.float64)
    out, hidden = networks.forward(params, x, activation)
    assert out.shape == (5, 4)
    assert [h.post.shape for h in hidden] == [(5, 9), (5, 7)]
    for h in hidden:  # sigma(z) = sigma'(z) z, the identity the framework rests on
        np.testing.assert_allclose(h.post, activation.gate(h.pre) * h.pre, atol=0)
    assert networks.widths(params) == widths


def test_bias_free_network_has_no_bias_leaves():
    params = _net(jax.random.key(0), (3, 4, 2), use_bias=False)
    assert all(b is None for _, b in params)
    assert len(jax.tree.leaves(params)) == 2


def test_dtype_and_activation_names_are_checked():
    """Known names resolve, unknown ones are refused naming the argument (the float64 guard itself needs a process
    without x64: tests/test_config.py)."""
    assert networks.resolve_dtype("float32") == jnp.float32
    with pytest.raises(ValueError, match="dtype"):
        networks.resolve_dtype("float16")
    with pytest.raises(ValueError, match="activation"):
        networks.Activation.from_config("tanh")


@pytest.mark.parametrize(
    "activation,use_bias", [(networks.RELU, False), (networks.RELU, True), (networks.leaky_relu(0.1), True)]
)
def test_weight_gradient_is_outer_product_of_activation_and_backprop_signal(activation, use_bias):
    """dJ/dW_l = -E[f_{l-1} g_l^T] with g_L = f* - f, g_{l-1} = D_{l-1} W_l g_l; float64, to 1e-13."""
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    widths = (6, 9, 7, 5, 4)
    params = _net(k1, widths, use_bias)
    x = jax.random.normal(k2, (64, 6), jnp.float64)
    y = jax.random.normal(k3, (64, 4), jnp.float64)
    grads = jax.grad(networks.squared_error_loss)(params, x, y, activation)
    out, hidden = networks.forward(params, x, activation)
    g = y - out  # (B, C)
    inputs = [x] + [h.post for h in hidden]
    for l in range(len(params) - 1, -1, -1):
        W, _ = params[l]
        expected_W = -(inputs[l].T @ g) / x.shape[0]
        np.testing.assert_allclose(grads[l][0], expected_W, atol=1e-13)
        if use_bias:
            np.testing.assert_allclose(grads[l][1], -g.mean(0), atol=1e-13)
        if l > 0:
            g = activation.gate(hidden[l - 1].pre) * (g @ W.T)


def test_mse_convention_is_2_over_C_times_half_sse_gradient():
    params = _net(jax.random.key(0), (5, 6, 3))
    x = jax.random.normal(jax.random.key(1), (8, 5), jnp.float64)
    y = jax.random.normal(jax.random.key(2), (8, 3), jnp.float64)
    g_half = jax.grad(networks.squared_error_loss)(params, x, y, convention="half_sse")
    g_mse = jax.grad(networks.squared_error_loss)(params, x, y, convention="mse")
    for a, b in zip(jax.tree.leaves(g_half), jax.tree.leaves(g_mse), strict=True):
        np.testing.assert_allclose(b, a * 2 / 3, rtol=1e-12)


def test_activations_carry_whether_they_are_homogeneous():
    """sigma(z) = sigma'(z) z holds exactly for ReLU, leaky ReLU and linear (homogeneous); softplus is smooth and
    breaks it, and says so."""
    z = jnp.linspace(-3.0, 3.0, 13)
    for activation in (networks.RELU, networks.leaky_relu(0.1), networks.LINEAR):
        assert activation.homogeneous
        np.testing.assert_array_equal(activation(z), activation.gate(z) * z)
    assert not networks.SOFTPLUS.homogeneous and networks.Activation.from_config("softplus") == networks.SOFTPLUS
    np.testing.assert_allclose(networks.SOFTPLUS(z), np.log1p(np.exp(np.asarray(z))), rtol=1e-14)
    np.testing.assert_allclose(networks.SOFTPLUS.gate(z), jax.vmap(jax.grad(networks.SOFTPLUS))(z), rtol=1e-14)
    assert np.abs(networks.SOFTPLUS(z) - networks.SOFTPLUS.gate(z) * z).min() > 0.1, "the identity fails everywhere"
