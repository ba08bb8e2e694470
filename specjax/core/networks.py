"""Pure-functional fully connected networks (docs/theory.md §1).

A layer is a pair ``(W, b)`` with ``W`` of shape ``(fan_in, fan_out)`` -- column ``k`` of ``W`` is node ``k``'s
incoming filter, as in the paper's :math:`W_l=[w_{l,1},\\dots,w_{l,n_l}]` -- and ``b`` of shape ``(fan_out,)``, or
``None`` for a bias-free layer. A network is a tuple of layers, input to output. The last layer is linear
(:math:`D_L=I`); every hidden layer applies the activation.

Only rank-1 inputs ``x`` of shape ``(d,)`` need to be considered by a reader: every function here also accepts any
number of leading batch axes, ``(..., d)``, because the layers are matrix products over the last axis.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
Layer = tuple[Array, Array | None]
Params = tuple[Layer, ...]

ACTIVATIONS = ("relu", "leaky_relu", "linear", "softplus")
#: The activations with :math:`\sigma(cz)=c\,\sigma(z)` for :math:`c>0`, equivalently :math:`\sigma(z)=\sigma'(z)z`:
#: the identity Lemma 1 and every theorem built on it rest on (docs/theory.md §1). Softplus is smooth, not homogeneous.
HOMOGENEOUS_ACTIVATIONS = ("relu", "leaky_relu", "linear")
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


class Hidden(NamedTuple):
    """One hidden layer's values on a batch.

    Attributes:
      pre: pre-activations :math:`z_l = W_l^\\top f_{l-1} + b_l`, shape ``(..., n_l)``.
      post: activations :math:`f_l = \\sigma(z_l)`, shape ``(..., n_l)``.
    """

    pre: Array
    post: Array


def resolve_dtype(dtype: str | jnp.dtype) -> jnp.dtype:
    """Maps ``'float32'``/``'float64'`` to a JAX dtype; float64 requires ``jax_enable_x64``.

    Raises:
      ValueError: unknown dtype, or float64 asked for while x64 is off (switch it on with
        :func:`specjax.enable_float64` before any array is created).
    """
    name = jnp.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"dtype: unknown value {name!r}; expected one of {tuple(DTYPES)}")
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype: float64 needs jax_enable_x64; call specjax.enable_float64() (or "
            "jax.config.update('jax_enable_x64', True)) before creating any array"
        )
    return jnp.dtype(DTYPES[name])


@dataclasses.dataclass(frozen=True)
class Activation:
    """The hidden activation :math:`\\sigma` as one hashable value (a static argument under ``jit``).

    Attributes:
      name: ``'relu'``, ``'leaky_relu'``, ``'linear'`` or ``'softplus'`` (:math:`\\log(1+e^z)`, smooth).
      slope: negative-side slope ``a`` of the leaky ReLU; 0 for the others (:meth:`from_config` drops it).
      homogeneous: (property) whether :math:`\\sigma(z)=\\sigma'(z)z`, which Lemma 1 and the theorems need; the
        theory functions refuse an activation without it.

    Registered as a pytree without leaves, so it can be passed through ``jit``/``vmap`` like any argument and is
    always static. Use the constants :data:`RELU`, :data:`LINEAR` and :func:`leaky_relu`.
    """

    name: str = "relu"
    slope: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in ACTIVATIONS:
            raise ValueError(f"activation: unknown value {self.name!r}; expected one of {ACTIVATIONS}")
        if not isinstance(self.slope, (int, float)) or not math.isfinite(self.slope):
            raise ValueError(f"slope: expected a finite number, got {self.slope!r}")
        if self.name != "leaky_relu" and self.slope != 0:
            raise ValueError(f"slope: only 'leaky_relu' takes a slope, got {self.slope!r} for {self.name!r}")
        object.__setattr__(self, "slope", float(self.slope))

    @classmethod
    def from_config(cls, name: str, slope: float = 0.0) -> Activation:
        """The activation of the config fields ``activation`` and ``slope`` (the slope counts for leaky ReLU only).

        Raises:
          ValueError: unknown ``name`` (message names the field ``activation``) or a non-finite ``slope``.
        """
        if name not in ACTIVATIONS:
            raise ValueError(f"activation: unknown value {name!r}; expected one of {ACTIVATIONS}")
        return cls(name, float(slope) if name == "leaky_relu" else 0.0)

    @property
    def homogeneous(self) -> bool:
        """Whether :math:`\\sigma(z)=\\sigma'(z)z` (positive homogeneity): true for ReLU, leaky ReLU and linear."""
        return self.name in HOMOGENEOUS_ACTIVATIONS

    def __call__(self, z: Array) -> Array:
        """:math:`\\sigma(z)` elementwise: ``max(z, 0)``, ``z`` or ``a z`` below 0 (leaky), ``z`` (linear), or
        :math:`\\log(1+e^z)` (softplus)."""
        if self.name == "relu":
            return jnp.maximum(z, 0)
        if self.name == "leaky_relu":
            return jnp.where(z > 0, z, self.slope * z)
        if self.name == "softplus":
            return jax.nn.softplus(z)
        return z

    def gate(self, z: Array) -> Array:
        """:math:`\\sigma'(z)`, the diagonal of :math:`D_l` (:math:`\\sigma'(0)=0` for ReLU, ``a`` for leaky).

        Entries are in ``{0, 1}`` for ReLU, ``{a, 1}`` for leaky ReLU and ``1`` for linear, so that
        :math:`\\sigma(z)=\\sigma'(z)z` (:attr:`homogeneous`); the logistic sigmoid :math:`1/(1+e^{-z})` for softplus,
        where that identity fails.
        """
        if self.name == "relu":
            return (z > 0).astype(z.dtype)
        if self.name == "leaky_relu":
            return jnp.where(z > 0, 1.0, self.slope).astype(z.dtype)
        if self.name == "softplus":
            return jax.nn.sigmoid(z)
        return jnp.ones_like(z)


jax.tree_util.register_pytree_node(Activation, lambda a: ((), (a.name, a.slope)), lambda aux, _: Activation(*aux))

#: ReLU, the paper's activation.
RELU = Activation("relu")
#: The identity (a linear network).
LINEAR = Activation("linear")
#: Softplus :math:`\\log(1+e^z)`, a smooth activation: not homogeneous, so the theory functions refuse it.
SOFTPLUS = Activation("softplus")


def leaky_relu(slope: float) -> Activation:
    """Leaky ReLU with negative-side slope ``slope``."""
    return Activation("leaky_relu", slope)


def check_activation(activation: Activation) -> Activation:
    """Returns ``activation`` or raises ``ValueError`` if it is not an :class:`Activation` (e.g. a bare name)."""
    if not isinstance(activation, Activation):
        raise ValueError(
            f"activation: unknown value {activation!r}; expected an Activation (networks.RELU, "
            "networks.leaky_relu(a), networks.LINEAR, networks.SOFTPLUS or Activation.from_config(name, slope))"
        )
    return activation


def dense(layer: Layer, x: Array) -> Array:
    """``x @ W + b`` for ``x`` of shape ``(..., fan_in)``; returns ``(..., fan_out)``."""
    W, b = layer
    z = x @ W
    return z if b is None else z + jnp.expand_dims(b, tuple(range(z.ndim - b.ndim)))


def forward(params: Params, x: Array, activation: Activation = RELU) -> tuple[Array, tuple[Hidden, ...]]:
    """Forward pass :math:`f_l = \\sigma(W_l^\\top f_{l-1} + b_l)`, :math:`f_L = W_L^\\top f_{L-1} + b_L`.

    Args:
      params: ``L`` layers, input to output.
      x: inputs, shape ``(..., d)``.
      activation: the hidden activation :math:`\\sigma`.

    Returns:
      ``(out, hidden)``: ``out`` of shape ``(..., C)`` and one :class:`Hidden` per hidden layer
      (``L - 1`` of them), each with arrays of shape ``(..., n_l)``.

    Raises:
      ValueError: ``params`` is not a non-empty sequence of ``(W, b)`` layers with matching widths, ``x`` is not a
        floating-point array whose last axis is ``d``, or ``activation`` is not an :class:`Activation`. Shapes are
        static, so the check also runs (once, at trace time) under ``jit`` and ``vmap``.
    """
    check_params_and_inputs(params, x)
    check_activation(activation)
    hidden = []
    f = x
    for layer in params[:-1]:
        z = dense(layer, f)
        f = activation(z)
        hidden.append(Hidden(z, f))
    return dense(params[-1], f), tuple(hidden)


def check_params_and_inputs(params: Params, x: Array) -> None:
    """Raises ``ValueError`` naming the argument if ``params`` and ``x`` cannot go through :func:`forward`.

    Checks: ``params`` is a non-empty sequence of ``(W, b)`` pairs; ``W`` is at least 2-D with ``W.shape[-2]``
    equal to the previous layer's width (``d`` for the first); ``b`` is ``None`` or has last axis ``W.shape[-1]``;
    ``x`` is a floating-point array of shape ``(..., d)``.
    """
    if not isinstance(params, (tuple, list)) or not params:
        raise ValueError(f"params: expected a non-empty sequence of (W, b) layers, got {type(params).__name__}")
    x_shape, x_dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if x_shape is None or x_dtype is None:
        raise ValueError(f"x: expected an array of shape (..., d), got {type(x).__name__}")
    if not jnp.issubdtype(x_dtype, jnp.floating):
        raise ValueError(f"x: expected a floating-point array, got dtype {x_dtype}")
    width, width_name = (x_shape[-1] if len(x_shape) else None), "x.shape[-1]"
    for l, layer in enumerate(params):
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            raise ValueError(f"params[{l}]: expected a (W, b) pair, got {type(layer).__name__}")
        W, b = layer
        w_shape = getattr(W, "shape", None)
        if w_shape is None or len(w_shape) < 2:
            raise ValueError(f"params[{l}] W: expected an array of shape (fan_in, fan_out), got shape {w_shape}")
        if w_shape[-2] != width:
            raise ValueError(
                f"params[{l}] W: shape {tuple(w_shape)} needs fan_in {w_shape[-2]}, but {width_name} is {width}"
            )
        if b is not None and tuple(getattr(b, "shape", ()))[-1:] != (w_shape[-1],):
            raise ValueError(
                f"params[{l}] b: shape {tuple(getattr(b, 'shape', ()))} does not end in fan_out {w_shape[-1]}"
            )
        width, width_name = w_shape[-1], f"params[{l}] fan_out"


def apply(params: Params, x: Array, activation: Activation = RELU) -> Array:
    """Network output only, shape ``(..., C)``; see :func:`forward`."""
    return forward(params, x, activation)[0]


def widths(params: Params) -> tuple[int, ...]:
    """Layer widths ``(d, n_1, ..., n_{L-1}, C)`` read off the weight shapes."""
    return (params[0][0].shape[-2],) + tuple(W.shape[-1] for W, _ in params)


def fan_out_norms(params: Params) -> tuple[Array, ...]:
    """Per hidden layer, each node's fan-out weight norm :math:`\\|v_k\\|` (docs/theory.md §3).

    The fan-out of hidden node ``k`` in layer ``l`` is row ``k`` of ``W_{l+1}`` (bias excluded). For the two-layer
    net this is exactly the y-axis of the paper's Fig. 7.

    Returns:
      one array of shape ``(n_l,)`` per hidden layer.
    """
    return tuple(jnp.linalg.norm(W, axis=-1) for W, _ in params[1:])


def squared_error_loss(
    params: Params, x: Array, y: Array, activation: Activation = RELU, convention: str = "half_sse"
) -> Array:
    """Batch loss between targets ``y`` (teacher outputs) and the network on ``x``.

    ``convention='half_sse'`` is the paper's :math:`J=\\tfrac12\\,\\mathbb E_x\\|f^*_L-f_L\\|^2` (batch mean of half the
    squared norm); ``'mse'`` is PyTorch's ``nn.MSELoss`` used by the deep reference, the mean over batch *and* outputs
    (its gradient is ``2/C`` times the other's).

    Args:
      x: ``(B, d)``; y: ``(B, C)``.
    Returns:
      scalar loss.
    """
    return residual_loss(y - apply(params, x, activation), convention)


LOSSES = ("half_sse", "mse")


def residual_loss(residual: Array, convention: str = "half_sse") -> Array:
    """The squared-error loss of residuals ``y - f(x)``, the one place its formula is written.

    ``'half_sse'``: :math:`\\tfrac1{2B}\\sum_i\\|r_i\\|^2` (the paper's :math:`J`, Eqn 1); ``'mse'``:
    :math:`\\tfrac1{BC}\\sum_{i,c}r_{ic}^2` (the reference code's ``nn.MSELoss``; ``half_sse = C/2 * mse``).

    Args:
      residual: ``(B, C)`` (any leading axes before ``C`` are averaged).
    Returns:
      scalar loss.
    """
    if convention == "half_sse":
        return 0.5 * jnp.mean(jnp.sum(residual * residual, axis=-1))
    if convention == "mse":
        return jnp.mean(residual * residual)
    raise ValueError(f"loss: unknown value {convention!r}; expected one of {LOSSES}")
