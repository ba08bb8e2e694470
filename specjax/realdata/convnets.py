"""Convolutional teachers and students (Flax Linen) and their structured pruning (the paper's Fig. 13).

:class:`ConvNet` is the reference's ``ModelConv`` without BatchNorm: 3x3 ``VALID`` convolutions with stride 1 and
ReLU, then a linear readout. Teacher and students are the same module with different ``channels``. Its variables are
the usual Flax tree::

    {'params': {'conv1': {'kernel': (3, 3, C_in, C_1), 'bias': (C_1,)}, ...,
                'readout': {'kernel': (H_L * W_L * C_L, classes), 'bias': (classes,)}}}

with the convolution kernel laid out ``(kh, kw, fan_in, fan_out)`` as in ``flax.linen.Conv``. Conv layers are
numbered from 1 (``conv1`` reads the image), as layers are everywhere in specjax; Python sequences indexed by layer
(``channels``, the tuples returned here) hold layer ``l`` at index ``l - 1``.

A conv channel's *fan-out* is the set of weights that read it (:func:`outgoing_weights`); the pruning score of the
reference's ``prune(net, ratios)`` is its mean absolute value (:func:`channel_strength`), the convolutional version
of a strong or weak teacher node (Def. 4, docs/theory.md §3). :func:`prune_channels` keeps the strongest channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from specjax.realdata.images import NUM_CLASSES

Array = jax.Array
Variables = dict[str, Any]

IMPLEMENTATIONS = ("patches", "lax")


class Conv3x3(nn.Module):
    """A 3x3 ``VALID`` convolution with stride 1 and bias, computed as image patches times a matrix.

    Same parameters, initialiser and function as ``nn.Conv(features, (3, 3), padding='VALID')``: ``kernel``
    ``(3, 3, C_in, features)``, ``bias`` ``(features,)``. The patch form exists for speed on CPU: inside a
    ``lax.scan`` (a while loop) XLA:CPU ran ``lax.conv_general_dilated`` about 9x slower than outside one, while a
    matrix product ran at full speed (2-core CPU, 22 training steps of a width-80 network: 4.2 s with the
    convolution, 0.4 s with patches). ``implementation='lax'`` uses the convolution, the better choice on GPUs.

    Attributes:
      features: output channels.
      implementation: ``'patches'`` or ``'lax'``.
    """

    features: int
    implementation: str = "patches"

    @nn.compact
    def __call__(self, images: Array) -> Array:
        """``(B, H, W, C_in) -> (B, H - 2, W - 2, features)``."""
        channels_in = images.shape[-1]
        kernel_shape = (3, 3, channels_in, self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), kernel_shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        if self.implementation == "lax":
            out = jax.lax.conv_general_dilated(
                images, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        elif self.implementation == "patches":
            height, width = images.shape[1] - 2, images.shape[2] - 2
            # Feature order (row offset, column offset, channel) matches the kernel's leading (3, 3, C_in).
            patches = jnp.concatenate(
                [images[:, i : i + height, j : j + width, :] for i in range(3) for j in range(3)], axis=-1
            )
            out = patches @ kernel.reshape(9 * channels_in, self.features)
        else:
            raise ValueError(
                f"implementation: unknown value {self.implementation!r}; expected one of {IMPLEMENTATIONS}"
            )
        return out + bias.reshape(1, 1, 1, self.features)


class ConvNet(nn.Module):
    """3x3 ``VALID`` convolutions with ReLU, then a linear readout (the reference's ``ModelConv``, no BatchNorm).

    Each convolution shrinks the image by 2 pixels per side pair: an 8x8 input gives 6x6, 4x4, 2x2 maps after three
    layers (the paper's CIFAR teacher: 32x32 to 24x24 after four).

    Attributes:
      channels: output channels of each conv layer, input to output, e.g. ``(32, 32, 32)``.
      num_classes: readout dimension.
      implementation: how :class:`Conv3x3` computes (same parameters and function either way).
    """

    channels: Sequence[int]
    num_classes: int = NUM_CLASSES
    implementation: str = "patches"

    @nn.compact
    def __call__(self, images: Array) -> tuple[Array, tuple[Array, ...]]:
        """Logits and every conv layer's post-ReLU activations.

        Args:
          images: ``(B, H, W, C_in)``.

        Returns:
          ``(logits, hidden)``: ``(B, num_classes)`` and, per conv layer ``l = 1 .. L`` (at index ``l - 1``),
          ``(B, H - 2l, W - 2l, channels[l - 1])``.
        """
        hidden = []
        h = images
        for layer, width in enumerate(self.channels, start=1):
            h = nn.relu(Conv3x3(width, self.implementation, name=f"conv{layer}")(h))
            hidden.append(h)
        readout = nn.Dense(self.num_classes, dtype=jnp.float32, param_dtype=jnp.float32, name="readout")
        return readout(h.reshape(h.shape[0], -1)), tuple(hidden)


def conv_channels(variables: Variables) -> tuple[int, ...]:
    """The ``channels`` of the :class:`ConvNet` these variables belong to, read off the kernels."""
    params = variables["params"]
    num_conv = sum(name.startswith("conv") for name in params)
    return tuple(int(params[f"conv{layer}"]["kernel"].shape[-1]) for layer in range(1, num_conv + 1))


def init_variables(module: nn.Module, key: Array, sample_images: Array) -> Variables:
    """Initial variables: LeCun-normal kernels and zero biases, all kernels from one random draw.

    Each kernel is :math:`N(0, 1/\\text{fan-in})` with the fan-in the product of all but its last axis (``9 C_in``
    for a convolution): Flax's default ``lecun_normal``, except untruncated. One ``jax.random.normal`` call instead
    of one per layer keeps compile time short on CPU, where every random-number call site compiles separately
    (about a second each on a busy 2-core machine).

    Args:
      module: the network.
      key: PRNG key.
      sample_images: ``(B, H, W, C)``; only the shape is used.

    Returns:
      Variables with the structure of ``module.init(key, sample_images)``, float32.
    """
    shapes = jax.eval_shape(module.init, key, sample_images)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    sizes = [math.prod(leaf.shape) for _, leaf in leaves]
    draws = jax.random.normal(key, (sum(sizes),), jnp.float32)
    offsets = np.cumsum([0, *sizes])
    values = []
    for (path, leaf), start, stop in zip(leaves, offsets[:-1], offsets[1:], strict=True):
        if path[-1].key == "kernel":
            fan_in = math.prod(leaf.shape[:-1])
            values.append(draws[start:stop].reshape(leaf.shape) / math.sqrt(fan_in))
        else:
            values.append(jnp.zeros(leaf.shape, jnp.float32))
    return jax.tree_util.tree_unflatten(treedef, values)


def outgoing_weights(params: dict[str, Any]) -> tuple[Array, ...]:
    """Each conv channel's outgoing weights, one row per channel: its fan-out :math:`v_j` (docs/theory.md §3).

    For conv layer ``l < L`` the outgoing weights of channel ``c`` are ``conv{l+1}.kernel[:, :, c, :]``. For the
    last conv layer they are the readout rows that read channel ``c`` at every position: flattening NHWC puts the
    channel fastest, so the readout kernel reshapes to ``(H_L * W_L, C_L, classes)``. (The reference's ``prune``
    views its NCHW-flattened readout as ``(classes, -1, C_L)``, which groups weights by position modulo ``C_L``
    rather than by channel; here the grouping is by channel.)

    Args:
      params: the ``'params'`` collection of a :class:`ConvNet` (NumPy or JAX leaves).

    Returns:
      One ``(C_l, fan_out_size)`` array per conv layer ``l = 1 .. L`` (at index ``l - 1``), with
      ``fan_out_size`` ``9 C_{l+1}`` or ``H_L W_L classes``.
    """
    num_conv = sum(name.startswith("conv") for name in params)
    rows = []
    for layer in range(1, num_conv + 1):
        width = params[f"conv{layer}"]["kernel"].shape[-1]
        if layer < num_conv:
            outgoing = jnp.moveaxis(jnp.asarray(params[f"conv{layer + 1}"]["kernel"]), 2, 0)
        else:
            readout = jnp.asarray(params["readout"]["kernel"])
            outgoing = jnp.moveaxis(readout.reshape(-1, width, readout.shape[-1]), 1, 0)
        rows.append(outgoing.reshape(width, -1))
    return tuple(rows)


def channel_strength(variables: Variables) -> tuple[np.ndarray, ...]:
    """Each conv channel's mean :math:`|\\text{outgoing weight}|`, the score of the reference's ``prune``.

    Args:
      variables: a :class:`ConvNet`'s variables.

    Returns:
      One ``(C_l,)`` NumPy array per conv layer; large is a strong node (Def. 4, docs/theory.md §3).
    """
    return tuple(np.asarray(jnp.mean(jnp.abs(rows), axis=1)) for rows in outgoing_weights(variables["params"]))


def channel_group_lasso(params: dict[str, Any]) -> Array:
    """Group-lasso penalty :math:`\\sum_l\\sum_c\\|v_{l,c}\\|_2` on each conv channel's fan-out.

    Added to a teacher's loss it drives whole channels' fan-outs toward zero, so a few strong channels carry the
    function and pruning the weak ones costs little accuracy: a polarised teacher (cf. Eqn 13, docs/theory.md §3).

    Args:
      params: the ``'params'`` collection of a :class:`ConvNet`.

    Returns:
      A scalar.
    """
    return sum(jnp.sum(jnp.sqrt(jnp.sum(rows * rows, axis=1) + 1e-12)) for rows in outgoing_weights(params))


def kept_channel_counts(
    strengths: Sequence[np.ndarray], prune_ratios: Sequence[float] | None = None, min_relative_strength: float = 0.0
) -> tuple[int, ...]:
    """How many channels of each conv layer survive pruning.

    With ``prune_ratios``, the reference's rule: ``C_l - int(C_l * ratio_l)``. Without, the channels whose strength
    is at least ``min_relative_strength`` times the strongest of their layer: the strong teacher nodes, however many
    the training left.

    Args:
      strengths: per conv layer, ``(C_l,)`` channel strengths (:func:`channel_strength`).
      prune_ratios: per conv layer, the fraction of channels removed; ``None`` for the strength rule.
      min_relative_strength: the strength rule's threshold, in ``[0, 1]``.

    Returns:
      One count per layer, each at least 1.
    """
    if prune_ratios is not None:
        if len(prune_ratios) != len(strengths):
            raise ValueError(f"prune_ratios: expected {len(strengths)} entries, got {len(prune_ratios)}")
        return tuple(max(1, s.size - int(s.size * r)) for s, r in zip(strengths, prune_ratios, strict=True))
    if not 0.0 <= min_relative_strength <= 1.0:
        raise ValueError(f"min_relative_strength: expected a value in [0, 1], got {min_relative_strength!r}")
    return tuple(max(1, int(np.sum(s >= min_relative_strength * s.max()))) for s in strengths)


def prune_channels(variables: Variables, keep_counts: Sequence[int]) -> tuple[Variables, tuple[np.ndarray, ...]]:
    """Structured pruning: keeps the ``keep_counts[l]`` strongest channels of each conv layer.

    All scores come from the unpruned network (:func:`channel_strength`), as in the reference's
    ``prune(net, ratios)``. The reference masks the removed channels' outgoing weights; here the channels are removed
    outright, which gives a smaller :class:`ConvNet` computing exactly what the masked network computes. The kept
    channels are ordered strongest first, so teacher channel ``j = 0`` of every layer is its strongest.

    Args:
      variables: a :class:`ConvNet`'s variables.
      keep_counts: channels to keep per conv layer, each in ``[1, C_l]``.

    Returns:
      ``(pruned_variables, kept)``: variables of ``ConvNet(channels=keep_counts)`` and, per layer, the ``(m_l,)``
      indices of the kept channels in the unpruned network.
    """
    strengths = channel_strength(variables)
    if len(keep_counts) != len(strengths):
        raise ValueError(f"keep_counts: expected {len(strengths)} entries, got {len(keep_counts)}")
    kept = []
    for layer, (count, strength) in enumerate(zip(keep_counts, strengths, strict=True), start=1):
        if not 1 <= count <= strength.size:
            raise ValueError(f"keep_counts[{layer - 1}] (conv layer {layer}): expected 1..{strength.size}, got {count}")
        kept.append(np.argsort(-strength, kind="stable")[:count])
    params = jax.tree_util.tree_map(np.asarray, variables["params"])
    pruned = {}
    previous = None
    for layer, index in enumerate(kept, start=1):
        kernel = params[f"conv{layer}"]["kernel"]
        if previous is not None:
            kernel = kernel[:, :, previous, :]
        pruned[f"conv{layer}"] = {
            "kernel": jnp.asarray(kernel[..., index]),
            "bias": jnp.asarray(params[f"conv{layer}"]["bias"][index]),
        }
        previous = index
    readout = params["readout"]["kernel"]
    width = params[f"conv{len(kept)}"]["kernel"].shape[-1]
    readout = readout.reshape(-1, width, readout.shape[-1])[:, previous, :]
    pruned["readout"] = {
        "kernel": jnp.asarray(readout.reshape(-1, readout.shape[-1])),
        "bias": jnp.asarray(params["readout"]["bias"]),
    }
    return {"params": pruned}, tuple(kept)


def predict_logits(module: ConvNet, variables: Variables, images: Array, batch_size: int) -> Array:
    """Logits ``(N, classes)`` of ``images`` ``(N, H, W, C)``, at most ``batch_size`` images per forward pass."""
    if images.shape[0] <= batch_size:
        return module.apply(variables, images)[0]
    return jax.lax.map(lambda image: module.apply(variables, image[None])[0][0], images, batch_size=batch_size)


def accuracy(logits: Array, labels: Array) -> Array:
    """Float32 fraction of rows whose argmax equals ``labels``. ``(N, classes), (N,) -> ()``."""
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
