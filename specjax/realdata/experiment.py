"""The convolutional teacher-student experiment on real images (the paper's Fig. 13; THEORY.md section 7).

The paper pre-trains a 4-layer convolutional teacher on CIFAR-10, prunes it to its strong channels
(``prune(net, ratios)`` in the reference), and trains over-realized students on the teacher's logits. Fig. 13 shows,
per layer, the mean over teacher channels of each channel's best student correlation :math:`\\max_k\\rho_{jk}`,
rising during training, with eval accuracy. :func:`run_conv_experiment` runs that pipeline on the 8x8 handwritten
digits that scikit-learn ships (no download), or on CIFAR-10 read from a directory the user gives:

1. data (:mod:`specjax.realdata.images`): NHWC images standardised per channel;
2. teacher: a :class:`~specjax.realdata.convnets.ConvNet` (3x3 ``VALID`` convolutions, ReLU, linear readout) trained by
   :func:`train_teacher` with cross-entropy, AdamW and a group lasso on each channel's fan-out, so that a few
   strong channels carry the function;
3. pruning (:func:`~specjax.realdata.convnets.prune_channels`): per conv layer, keep the channels with the largest mean
   :math:`|\\text{outgoing weight}|`, the strong teacher nodes of Def. 4 (THEORY.md section 3);
4. students: the same architecture, ``over_realization`` times the kept channels per layer, trained by
   :func:`train_students` on the pruned teacher's logits with the paper's loss
   :math:`J=\\tfrac12\\,\\mathbb E_x\\|f^*_L(x)-f_L(x)\\|^2` (THEORY.md section 1); the seeds of one width share one
   ``jit(vmap(...))`` program and every epoch is one ``lax.scan``;
5. after every epoch, per conv layer, the mean over *active* teacher channels of :math:`\\max_k\\rho_{jk}`, where
   :math:`\\rho` is :func:`specjax.core.metrics.correlation` of activations flattened over (batch, H, W) (THEORY.md
   section 3), plus eval accuracy (student argmax against the labels) and agreement with the teacher's argmax.

Keys are threaded explicitly and nothing uses global random state; every array is float32. Plots are in
:mod:`specjax.realdata.plot`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from specjax.core.metrics import correlation
from specjax.realdata.convnets import (
    IMPLEMENTATIONS,
    ConvNet,
    Variables,
    accuracy,
    channel_group_lasso,
    channel_strength,
    conv_channels,
    init_variables,
    kept_channel_counts,
    predict_logits,
    prune_channels,
)
from specjax.realdata.images import (
    NO_AUGMENTATION,
    Augmentation,
    ImageDataset,
    apply_augmentation,
    draw_augmentation,
    load_cifar10,
    load_digits,
)

Array = jax.Array

logger = logging.getLogger(__name__)

DATASETS = ("digits", "cifar10")
STUDENT_OPTIMIZERS = ("adam", "sgd")
#: A teacher channel is active when its activation's standard deviation over the evaluation positions exceeds this.
#: A dead or constant channel has no boundary in the data (Assumption 1 (ii), THEORY.md section 3) and no defined
#: correlation, so it is left out of the per-layer mean.
ACTIVE_STD_THRESHOLD = 1e-6


@dataclasses.dataclass(frozen=True)
class ConvExperimentConfig:
    """Settings of :func:`run_conv_experiment`; any object with these attributes (an ml_collections ``ConfigDict``,
    say) works as well.

    Attributes:
      dataset: ``'digits'`` (scikit-learn, no download) or ``'cifar10'`` (read from ``data_directory``).
      data_directory: folder of the CIFAR-10 python batches; unused for digits.
      eval_fraction: held-out share of the digits.
      teacher_channels: teacher conv widths before pruning, input to output.
      teacher_epochs, teacher_learning_rate, teacher_weight_decay: AdamW training of the teacher.
      teacher_channel_sparsity: weight :math:`\\lambda` of the fan-out group lasso in the teacher's loss.
      teacher_augmentation, student_augmentation: :class:`~specjax.realdata.images.Augmentation` of every training
        batch. The paper's CIFAR students use crops with padding 4 and flips; the digit students use 1-pixel shifts
        and Gaussian noise of std 0.3 (mirrored digits are not digits, but the teacher labels any input, and the
        wider input distribution shows more of each teacher boundary: in a one-seed 30-epoch trial at 5x, the
        first layer's mean best correlation ended at 0.85 with it and 0.82 without).
      prune_ratios: per conv layer, the fraction of channels removed (the reference's rule), or ``None`` to keep
        the channels at least ``prune_min_relative_strength`` times as strong as their layer's strongest.
      over_realizations: student width multipliers of the kept teacher channels.
      num_seeds: students per over-realization.
      student_epochs, student_optimizer, student_learning_rate, student_momentum: student training (optax).
      batch_size: minibatch size of teacher and students.
      eval_batch_size: images per forward pass when computing eval logits.
      correlation_samples: the first this-many eval images give the activations behind :math:`\\rho`.
      conv_implementation: ``'patches'`` (fast on CPU) or ``'lax'`` (use on GPU); see
        :class:`~specjax.realdata.convnets.Conv3x3`.
    """

    dataset: str = "digits"
    data_directory: str | None = None
    eval_fraction: float = 0.2
    teacher_channels: tuple[int, ...] = (32, 32, 32)
    teacher_epochs: int = 30
    teacher_learning_rate: float = 2e-3
    teacher_weight_decay: float = 1e-2
    teacher_channel_sparsity: float = 3e-2
    teacher_augmentation: Augmentation = NO_AUGMENTATION
    student_augmentation: Augmentation = Augmentation(pad=1, noise_std=0.3)
    prune_ratios: tuple[float, ...] | None = None
    prune_min_relative_strength: float = 0.1
    over_realizations: tuple[int, ...] = (1, 2, 5)
    num_seeds: int = 2
    student_epochs: int = 20
    student_optimizer: str = "adam"
    student_learning_rate: float = 3e-3
    student_momentum: float = 0.0
    batch_size: int = 64
    eval_batch_size: int = 512
    correlation_samples: int = 1024
    conv_implementation: str = "patches"


#: Named scales. ``small``: about a minute and a half on 2 CPU cores; ``paper``: a wider teacher, 1/2/5/10x, more
#: seeds, 100 epochs; ``cifar10``: the paper's own setting (4 conv layers of 64 channels, crop-and-flip students),
#: which needs ``data_directory`` and, realistically, a GPU (set ``conv_implementation='lax'`` there).
CONV_EXPERIMENT_SCALES = {
    "small": ConvExperimentConfig(),
    "paper": ConvExperimentConfig(
        teacher_channels=(64, 64, 64),
        teacher_epochs=60,
        over_realizations=(1, 2, 5, 10),
        num_seeds=4,
        student_epochs=100,
    ),
    "cifar10": ConvExperimentConfig(
        dataset="cifar10",
        teacher_channels=(64, 64, 64, 64),
        teacher_epochs=60,
        teacher_augmentation=Augmentation(pad=4, flip=True),
        student_augmentation=Augmentation(pad=4, flip=True),
        over_realizations=(1, 2, 5, 10),
        num_seeds=4,
        student_epochs=100,
        eval_batch_size=500,
        correlation_samples=256,
    ),
}


def check_conv_config(config: Any) -> None:
    """Raises ``ValueError`` naming the first field of ``config`` that :func:`run_conv_experiment` cannot use."""
    if config.dataset not in DATASETS:
        raise ValueError(f"dataset: unknown value {config.dataset!r}; expected one of {DATASETS}")
    if config.dataset == "cifar10" and not config.data_directory:
        raise ValueError("data_directory: required for dataset='cifar10'")
    if config.student_optimizer not in STUDENT_OPTIMIZERS:
        raise ValueError(
            f"student_optimizer: unknown value {config.student_optimizer!r}; expected one of {STUDENT_OPTIMIZERS}"
        )
    if config.conv_implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"conv_implementation: unknown value {config.conv_implementation!r}; expected one of {IMPLEMENTATIONS}"
        )
    for field in ("teacher_channels", "over_realizations"):
        values = tuple(getattr(config, field))
        if not values or any(not isinstance(v, int | np.integer) or v < 1 for v in values):
            raise ValueError(f"{field}: expected positive integers, got {values!r}")
    for field in ("num_seeds", "batch_size", "eval_batch_size", "correlation_samples"):
        if getattr(config, field) < 1:
            raise ValueError(f"{field}: expected a positive integer, got {getattr(config, field)!r}")
    for field in ("teacher_epochs", "student_epochs"):
        if getattr(config, field) < 0:
            raise ValueError(f"{field}: expected a non-negative integer, got {getattr(config, field)!r}")


def load_dataset(config: Any, key: Array) -> ImageDataset:
    """The data named by ``config.dataset``; ``key`` fixes the digits' train/eval split."""
    if config.dataset == "digits":
        return load_digits(key, config.eval_fraction)
    if config.dataset == "cifar10":
        return load_cifar10(config.data_directory)
    raise ValueError(f"dataset: unknown value {config.dataset!r}; expected one of {DATASETS}")


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


def train_teacher(config: Any, dataset: ImageDataset, key: Array) -> tuple[Variables, dict[str, np.ndarray]]:
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
      ``(variables, history)``; history has ``train_loss`` ``(teacher_epochs,)`` and ``eval_accuracy``
      ``(teacher_epochs + 1,)`` (at initialisation, then after each epoch).
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
    history = {
        "train_loss": np.asarray(train_loss, np.float32),
        "eval_accuracy": np.asarray(eval_accuracy, np.float32),
    }
    return variables, history


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
      teacher_activations: per conv layer ``l``, ``(N_corr * H_l * W_l, m_l)``, the teacher's activations on
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
      best_correlation: per conv layer, ``(m_l,)``: :math:`\\max_k\\rho_{jk}` of each teacher channel ``j``.
      mean_best_correlation: ``(L,)``: the mean of ``best_correlation[l]`` over the active teacher channels.
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
      ``best_correlation_layer{l}`` ``(seeds, epochs + 1, m_l)``; ``eval_accuracy``, ``teacher_agreement``,
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
        return 0.5 * jnp.mean(jnp.sum(residual * residual, axis=-1))

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
            eval_loss=0.5 * jnp.mean(jnp.sum(residual * residual, axis=-1)),
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
    for layer, best in enumerate(stacked.best_correlation):
        results[f"best_correlation_layer{layer}"] = best
    return results


def run_conv_experiment(config: Any, key: Array) -> dict[str, np.ndarray]:
    """The Fig. 13 pipeline: train a conv teacher, prune it to its strong channels, train over-realized students.

    Args:
      config: a :class:`ConvExperimentConfig` (e.g. ``CONV_EXPERIMENT_SCALES['small']``) or any object with its
        attributes.
      key: PRNG key, split into data, teacher and student keys. Student ``s`` at over-realization ``r`` uses
        ``fold_in(fold_in(key_students, r), s)``, so its numbers do not depend on which other runs exist.

    Returns:
      NumPy arrays. With ``R = len(over_realizations)``, ``S = num_seeds``, ``E = student_epochs``, ``L`` conv
      layers, ``C_l`` teacher channels before and ``m_l`` after pruning (evaluation 0 is at initialisation):

      - ``over_realization`` ``(R,)``; ``epoch`` ``(E + 1,)``; ``student_channels`` ``(R, L)``;
      - ``mean_best_correlation`` ``(R, S, E + 1, L)``: mean over active teacher channels of :math:`\\max_k\\rho_{jk}`;
      - ``best_correlation_layer{l}`` ``(R, S, E + 1, m_l)``;
      - ``eval_accuracy``, ``teacher_agreement``, ``eval_loss`` ``(R, S, E + 1)``; ``train_loss`` ``(R, S, E)``;
      - ``teacher_channels``, ``kept_channels``, ``active_channels`` ``(L,)``; ``channel_strength_layer{l}``
        ``(C_l,)``; ``kept_index_layer{l}`` and ``active_layer{l}`` ``(m_l,)``;
      - ``teacher_eval_accuracy_history`` ``(teacher_epochs + 1,)``; scalars ``teacher_eval_accuracy``,
        ``teacher_train_accuracy``, ``pruned_teacher_eval_accuracy``, ``pruned_teacher_train_accuracy``,
        ``teacher_seconds``; ``student_seconds`` ``(R,)``, wall time per over-realization.
    """
    check_conv_config(config)
    key_data, key_teacher, key_students = jax.random.split(key, 3)
    dataset = load_dataset(config, key_data)
    start = time.perf_counter()
    teacher_variables, teacher_history = train_teacher(config, dataset, key_teacher)
    teacher_seconds = time.perf_counter() - start
    strengths = channel_strength(teacher_variables)
    kept_counts = kept_channel_counts(strengths, config.prune_ratios, config.prune_min_relative_strength)
    pruned_variables, kept = prune_channels(teacher_variables, kept_counts)

    def split_accuracy(variables: Variables, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        network = ConvNet(conv_channels(variables), implementation=config.conv_implementation)
        logits = predict_logits(network, variables, jnp.asarray(images), config.eval_batch_size)
        return np.asarray(accuracy(logits, jnp.asarray(labels)))

    results: dict[str, np.ndarray] = {
        "teacher_channels": np.asarray(config.teacher_channels),
        "kept_channels": np.asarray(kept_counts),
        "teacher_eval_accuracy_history": teacher_history["eval_accuracy"],
        "teacher_seconds": np.asarray(teacher_seconds, np.float32),
    }
    for name, variables in (("teacher", teacher_variables), ("pruned_teacher", pruned_variables)):
        results[f"{name}_eval_accuracy"] = split_accuracy(variables, dataset.eval_images, dataset.eval_labels)
        results[f"{name}_train_accuracy"] = split_accuracy(variables, dataset.train_images, dataset.train_labels)
    logger.info(
        "teacher eval accuracy %.4f, after pruning to %s channels %.4f",
        results["teacher_eval_accuracy"],
        kept_counts,
        results["pruned_teacher_eval_accuracy"],
    )
    correlation_images = jnp.asarray(dataset.eval_images[: config.correlation_samples])
    pruned_teacher = ConvNet(kept_counts, implementation=config.conv_implementation)
    active = active_teacher_channels(pruned_teacher.apply(pruned_variables, correlation_images)[1])
    results["active_channels"] = np.asarray([mask.sum() for mask in active])
    for layer, (strength, index, mask) in enumerate(zip(strengths, kept, active, strict=True)):
        results[f"channel_strength_layer{layer}"] = strength
        results[f"kept_index_layer{layer}"] = index
        results[f"active_layer{layer}"] = mask

    per_width, seconds = [], []
    for over_realization in config.over_realizations:
        start = time.perf_counter()
        key_width = jax.random.fold_in(key_students, over_realization)
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key_width, jnp.arange(config.num_seeds))
        student_channels = tuple(over_realization * m for m in kept_counts)
        per_width.append(train_students(config, dataset, pruned_variables, student_channels, keys))
        seconds.append(time.perf_counter() - start)
    for name in per_width[0]:
        results[name] = np.stack([width_results[name] for width_results in per_width])
    results["student_seconds"] = np.asarray(seconds, np.float32)
    results["over_realization"] = np.asarray(config.over_realizations)
    results["student_channels"] = np.asarray([[r * m for m in kept_counts] for r in config.over_realizations])
    results["epoch"] = np.arange(config.student_epochs + 1)
    return results
