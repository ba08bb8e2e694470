"""The students of the real-data experiment: over-realized conv nets trained on a pruned teacher's logits.

:func:`train_students` trains one student per PRNG key, all in one ``jit(vmap(...))`` program per epoch, with the
paper's loss :math:`J=\\tfrac12\\,\\mathbb E_x\\|f^*_L(x)-f_L(x)\\|^2` (Eqn 1, docs/theory.md §1; computed by
:func:`specjax.core.networks.residual_loss`), and evaluates them after every epoch: per conv layer, each teacher
channel's best correlation :math:`\\max_k\\rho_{jk}` (docs/theory.md §3) over activations flattened over (batch, H,
W), its mean over the active teacher channels, eval accuracy and agreement with the teacher. Conv layers are
numbered from 1 (input to output), as in the sweep's results (:mod:`specjax.sweep.schema`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from specjax.core.metrics import correlation
from specjax.core.networks import residual_loss
from specjax.realdata.convnets import ConvNet, Variables, accuracy, conv_channels, init_variables, predict_logits
from specjax.realdata.images import Augmentation, ImageDataset
from specjax.realdata.teacher import make_train_epoch

Array = jax.Array

logger = logging.getLogger(__name__)

STUDENT_OPTIMIZERS = ("adam", "sgd")
#: A teacher channel is active when its activation's standard deviation over the evaluation positions exceeds this.
#: A dead or constant channel has no boundary in the data (Assumption 1 (ii), docs/theory.md §3) and no defined
#: correlation, so it is left out of the per-layer mean.
ACTIVE_STD_THRESHOLD = 1e-6


def layer_key(name: str, layer: int) -> str:
    """The result name of a per-layer array, layers numbered from 1 as in the sweep: ``f"{name}_l{layer}"``."""
    if layer < 1:
        raise ValueError(f"layer: conv layers are numbered from 1, got {layer}")
    return f"{name}_l{layer}"


def student_optimizer(config: Any) -> optax.GradientTransformation:
    """``optax.adam`` or ``optax.sgd`` (momentum ``student_momentum``) at ``student_learning_rate``."""
    if config.student_optimizer == "adam":
        return optax.adam(config.student_learning_rate)
    if config.student_optimizer == "sgd":
        return optax.sgd(config.student_learning_rate, momentum=config.student_momentum or None)
    raise ValueError(
        f"student_optimizer: unknown value {config.student_optimizer!r}; expected one of {STUDENT_OPTIMIZERS}"
    )


def flatten_positions(activations: Array) -> Array:
    """``(N, H, W, C) -> (N * H * W, C)``: every (image, position) pair is one sample, as in the reference."""
    return activations.reshape(-1, activations.shape[-1])


def active_teacher_channels(teacher_hidden: Sequence[Array]) -> tuple[np.ndarray, ...]:
    """Per conv layer, the ``(m_l,)`` mask of channels whose activation varies (:data:`ACTIVE_STD_THRESHOLD`)."""
    return tuple(np.asarray(jnp.std(flatten_positions(h), axis=0) > ACTIVE_STD_THRESHOLD) for h in teacher_hidden)


class EvaluationReference(NamedTuple):
    """What the students are evaluated against; fixed during training.

    Attributes:
      images: ``(N_eval, H, W, C)`` eval images.
      labels: ``(N_eval,)`` their labels.
      correlation_images: ``(N_corr, H, W, C)``, the first eval images, on which :math:`\\rho` is measured.
      teacher_logits: ``(N_eval, classes)``, the teacher's outputs on ``images``.
      teacher_activations: per conv layer ``l = 1 .. L``, ``(N_corr * H_l * W_l, m_l)``, the teacher's activations on
        ``correlation_images`` flattened by :func:`flatten_positions`.
    """

    images: Array
    labels: Array
    correlation_images: Array
    teacher_logits: Array
    teacher_activations: tuple[Array, ...]


class StudentEvaluation(NamedTuple):
    """One evaluation of one student; every field gains a leading ``seeds`` axis under ``vmap``.

    Attributes:
      best_correlation: per conv layer ``l = 1 .. L`` (at index ``l - 1``), ``(m_l,)``: :math:`\\max_k\\rho_{jk}` of
        each teacher channel ``j``.
      mean_best_correlation: ``(L,)``: the mean of each layer's ``best_correlation`` over its active teacher
        channels.
      eval_accuracy: ``()``: student argmax against the labels.
      teacher_agreement: ``()``: student argmax against the teacher's argmax.
      eval_loss: ``()``: :math:`\\tfrac12\\,\\mathbb E_x\\|f^*_L-f_L\\|^2` on the eval split.
    """

    best_correlation: tuple[Array, ...]
    mean_best_correlation: Array
    eval_accuracy: Array
    teacher_agreement: Array
    eval_loss: Array


def train_students(
    config: Any, dataset: ImageDataset, teacher_variables: Variables, student_channels: Sequence[int], keys: Array
) -> dict[str, np.ndarray]:
    """Trains one student per key on the teacher's logits and evaluates them after every epoch.

    The students of all keys run in one ``jit(vmap(...))`` program per epoch; between epochs the host only collects
    :class:`StudentEvaluation` metrics. A student's numbers depend only on its own key.

    Args:
      config: needs ``student_epochs``, ``student_optimizer``, ``student_learning_rate``, ``student_momentum``,
        ``student_augmentation``, ``batch_size``, ``eval_batch_size``, ``correlation_samples``,
        ``conv_implementation``.
      dataset: the data; the students see labels only in the evaluation.
      teacher_variables: the (pruned) teacher :class:`~specjax.realdata.convnets.ConvNet`.
      student_channels: student conv widths ``(n_1, ..., n_L)``.
      keys: ``(seeds,)`` PRNG keys, one per student.

    Returns:
      NumPy arrays, evaluation 0 being at initialisation: ``mean_best_correlation`` ``(seeds, epochs + 1, L)``;
      ``best_correlation_l{l}`` ``(seeds, epochs + 1, m_l)`` (layers from 1); ``eval_accuracy``, ``teacher_agreement``,
      ``eval_loss`` ``(seeds, epochs + 1)``; ``train_loss`` ``(seeds, epochs)``.
    """
    teacher = ConvNet(conv_channels(teacher_variables), implementation=config.conv_implementation)
    student = ConvNet(tuple(student_channels), implementation=config.conv_implementation)
    optimizer = student_optimizer(config)
    train_images, train_labels = jnp.asarray(dataset.train_images), jnp.asarray(dataset.train_labels)
    eval_images, eval_labels = jnp.asarray(dataset.eval_images), jnp.asarray(dataset.eval_labels)
    correlation_images = eval_images[: config.correlation_samples]
    teacher_hidden = teacher.apply(teacher_variables, correlation_images)[1]
    active = active_teacher_channels(teacher_hidden)
    active_counts = [max(int(mask.sum()), 1) for mask in active]
    reference = EvaluationReference(
        eval_images,
        eval_labels,
        correlation_images,
        predict_logits(teacher, teacher_variables, eval_images, config.eval_batch_size),
        tuple(flatten_positions(h) for h in teacher_hidden),
    )

    def loss_fn(variables: Variables, images: Array, labels: Array, teacher_variables: Variables) -> Array:
        del labels  # the students learn from the teacher's logits only
        residual = teacher.apply(teacher_variables, images)[0] - student.apply(variables, images)[0]
        return residual_loss(residual, "half_sse")

    def init(key: Array, sample_images: Array) -> tuple[Variables, Any]:
        variables = init_variables(student, key, sample_images)
        return variables, optimizer.init(variables)

    def evaluate(variables: Variables, reference: EvaluationReference) -> StudentEvaluation:
        logits = predict_logits(student, variables, reference.images, config.eval_batch_size)
        student_hidden = student.apply(variables, reference.correlation_images)[1]
        best = tuple(
            jnp.max(correlation(teacher_acts, flatten_positions(student_acts)), axis=-1)
            for teacher_acts, student_acts in zip(reference.teacher_activations, student_hidden, strict=True)
        )
        mean_best = jnp.stack(
            [jnp.sum(jnp.where(mask, b, 0.0)) / n for mask, b, n in zip(active, best, active_counts, strict=True)]
        )
        residual = reference.teacher_logits - logits
        return StudentEvaluation(
            best_correlation=best,
            mean_best_correlation=mean_best,
            eval_accuracy=accuracy(logits, reference.labels),
            teacher_agreement=accuracy(logits, jnp.argmax(reference.teacher_logits, axis=-1)),
            eval_loss=residual_loss(residual, "half_sse"),
        )

    epoch = make_train_epoch(loss_fn, optimizer, config.batch_size, Augmentation(*config.student_augmentation))
    init_all = jax.jit(jax.vmap(init, in_axes=(0, None)))
    epoch_all = jax.jit(jax.vmap(epoch, in_axes=(0, 0, 0, None, None, None)))
    evaluate_all = jax.jit(jax.vmap(evaluate, in_axes=(0, None)))

    init_keys, train_keys = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
    variables, opt_state = init_all(init_keys, train_images[:1])
    evaluations, train_loss = [evaluate_all(variables, reference)], []
    start = time.perf_counter()
    for index in range(config.student_epochs):
        epoch_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(train_keys, index)
        variables, opt_state, loss = epoch_all(
            variables, opt_state, epoch_keys, train_images, train_labels, teacher_variables
        )
        train_loss.append(loss)
        evaluations.append(evaluate_all(variables, reference))
        elapsed = time.perf_counter() - start
        logger.info(
            "students %s epoch %d/%d: loss %.4f, mean best correlation per layer %s (%.0f s, ETA %.0f s)",
            tuple(student_channels),
            index + 1,
            config.student_epochs,
            float(jnp.mean(loss)),
            [round(float(c), 3) for c in np.asarray(evaluations[-1].mean_best_correlation).mean(axis=0)],
            elapsed,
            elapsed / (index + 1) * (config.student_epochs - index - 1),
        )
    stacked = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs], axis=1), *evaluations)
    results = {
        "mean_best_correlation": stacked.mean_best_correlation,
        "eval_accuracy": stacked.eval_accuracy,
        "teacher_agreement": stacked.teacher_agreement,
        "eval_loss": stacked.eval_loss,
        "train_loss": (
            np.stack([np.asarray(x) for x in train_loss], axis=1)
            if train_loss
            else np.zeros((keys.shape[0], 0), np.float32)
        ),
    }
    for layer, best in enumerate(stacked.best_correlation, start=1):
        results[layer_key("best_correlation", layer)] = best
    return results
