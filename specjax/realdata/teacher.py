"""The convolutional teacher of the real-data experiment: one training epoch as a ``lax.scan``, and teacher training.

:func:`make_train_epoch` is shared with the students (:mod:`specjax.realdata.students`): one pass over shuffled,
augmented minibatches as one ``lax.scan``, pure, so that callers ``jit`` and ``vmap`` it. :func:`train_teacher` trains
the teacher :class:`~specjax.realdata.convnets.ConvNet` on the labels with cross-entropy, AdamW and a group lasso
on each channel's fan-out, so that a few strong channels carry the function (the strong teacher nodes of the
paper's Def. 4, docs/theory.md §3), which pruning then keeps. Conv layers are numbered from 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from specjax.realdata.convnets import ConvNet, Variables, accuracy, channel_group_lasso, init_variables, predict_logits
from specjax.realdata.images import (
    NO_AUGMENTATION,
    Augmentation,
    ImageDataset,
    apply_augmentation,
    draw_augmentation,
)

Array = jax.Array

logger = logging.getLogger(__name__)


class TeacherHistory(NamedTuple):
    """What :func:`train_teacher` records.

    Attributes:
      train_loss: ``(teacher_epochs,)`` mean minibatch loss of each epoch.
      eval_accuracy: ``(teacher_epochs + 1,)`` eval accuracy at initialisation, then after each epoch.
    """

    train_loss: np.ndarray
    eval_accuracy: np.ndarray


def make_train_epoch(
    loss_fn: Callable[[Variables, Array, Array, Any], Array],
    optimizer: optax.GradientTransformation,
    batch_size: int,
    augmentation: Augmentation = NO_AUGMENTATION,
) -> Callable[..., tuple[Variables, Any, Array]]:
    """One pass over shuffled minibatches as one ``lax.scan``; pure, to be ``jit``-ed and ``vmap``-ed by the caller.

    The data enter as arguments rather than closed-over constants, which XLA would try to constant-fold.

    Args:
      loss_fn: ``loss_fn(variables, images, labels, context) -> ()`` on a ``(B, H, W, C)`` batch.
      optimizer: the optax transformation.
      batch_size: minibatch size ``B``; each epoch drops the last incomplete batch of its permutation.
      augmentation: applied to every batch (:func:`~specjax.realdata.images.apply_augmentation`).

    Returns:
      ``epoch(variables, opt_state, key, images, labels, context) -> (variables, opt_state, mean_loss)`` with
      ``images`` ``(N, H, W, C)`` and ``labels`` ``(N,)``; ``context`` is passed to ``loss_fn`` unchanged.
    """

    def epoch(variables, opt_state, key, images, labels, context):
        key_order, key_augment = jax.random.split(key)
        steps = images.shape[0] // batch_size
        batches = jax.random.permutation(key_order, images.shape[0])[: steps * batch_size].reshape(steps, batch_size)
        uniforms, noise = draw_augmentation(key_augment, (*batches.shape, *images.shape[1:]), augmentation.noise_std)

        def step(carry, inputs):
            variables, opt_state = carry
            index, step_uniforms, step_noise = inputs
            batch = apply_augmentation(images[index], step_uniforms, step_noise, augmentation)
            loss, grads = jax.value_and_grad(loss_fn)(variables, batch, labels[index], context)
            updates, opt_state = optimizer.update(grads, opt_state, variables)
            return (optax.apply_updates(variables, updates), opt_state), loss

        (variables, opt_state), losses = jax.lax.scan(step, (variables, opt_state), (batches, uniforms, noise))
        return variables, opt_state, jnp.mean(losses)

    return epoch


def train_teacher(config: Any, dataset: ImageDataset, key: Array) -> tuple[Variables, TeacherHistory]:
    """Trains the teacher :class:`~specjax.realdata.convnets.ConvNet` on the labels.

    The loss is :math:`\\mathrm{CE}+\\lambda\\sum_{l,c}\\|v_{l,c}\\|_2`, cross-entropy plus the group lasso on each
    channel's fan-out (:func:`~specjax.realdata.convnets.channel_group_lasso`, ``lambda = teacher_channel_sparsity``),
    minimised by AdamW, whose decoupled weight decay keeps the incoming weights bounded. Together they leave a few
    strong channels per layer, which pruning keeps.

    Args:
      config: needs ``teacher_channels``, ``teacher_epochs``, ``teacher_learning_rate``, ``teacher_weight_decay``,
        ``teacher_channel_sparsity``, ``teacher_augmentation``, ``batch_size``, ``eval_batch_size``,
        ``conv_implementation``.
      dataset: the data.
      key: PRNG key for initialisation, shuffling and augmentation.

    Returns:
      ``(variables, history)``.
    """
    teacher = ConvNet(tuple(config.teacher_channels), implementation=config.conv_implementation)
    key_init, key_epochs = jax.random.split(key)
    train_images, train_labels = jnp.asarray(dataset.train_images), jnp.asarray(dataset.train_labels)
    eval_images, eval_labels = jnp.asarray(dataset.eval_images), jnp.asarray(dataset.eval_labels)
    variables = init_variables(teacher, key_init, train_images[:1])
    optimizer = optax.adamw(config.teacher_learning_rate, weight_decay=config.teacher_weight_decay)
    opt_state = optimizer.init(variables)

    def loss_fn(variables: Variables, images: Array, labels: Array, context: None) -> Array:
        del context
        logits = teacher.apply(variables, images)[0]
        cross_entropy = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
        return cross_entropy + config.teacher_channel_sparsity * channel_group_lasso(variables["params"])

    augmentation = Augmentation(*config.teacher_augmentation)
    epoch = jax.jit(make_train_epoch(loss_fn, optimizer, config.batch_size, augmentation))

    @jax.jit
    def evaluate(variables: Variables, images: Array, labels: Array) -> Array:
        return accuracy(predict_logits(teacher, variables, images, config.eval_batch_size), labels)

    train_loss, eval_accuracy = [], [float(evaluate(variables, eval_images, eval_labels))]
    for index in range(config.teacher_epochs):
        epoch_key = jax.random.fold_in(key_epochs, index)
        variables, opt_state, loss = epoch(variables, opt_state, epoch_key, train_images, train_labels, None)
        train_loss.append(float(loss))
        eval_accuracy.append(float(evaluate(variables, eval_images, eval_labels)))
        logger.info(
            "teacher epoch %d/%d: loss %.4f, eval accuracy %.4f",
            index + 1,
            config.teacher_epochs,
            train_loss[-1],
            eval_accuracy[-1],
        )
    return variables, TeacherHistory(np.asarray(train_loss, np.float32), np.asarray(eval_accuracy, np.float32))
