"""The convolutional teacher-student experiment on real images (the paper's Fig. 13): settings and the pipeline.

The paper pre-trains a 4-layer convolutional teacher on CIFAR-10, prunes it to its strong channels
(``prune(net, ratios)`` in the reference), and trains over-realized students on the teacher's logits. Fig. 13 shows,
per layer, the mean over teacher channels of each channel's best student correlation :math:`\\max_k\\rho_{jk}`,
rising during training, with eval accuracy. :func:`run_conv_experiment` runs that pipeline on the 8x8 handwritten
digits that scikit-learn ships (no download), or on CIFAR-10 read from a directory the user gives:

1. data (:mod:`specjax.realdata.images`): NHWC images standardised per channel;
2. teacher (:mod:`specjax.realdata.teacher`): a :class:`~specjax.realdata.convnets.ConvNet` (3x3 ``VALID``
   convolutions, ReLU, linear readout) trained with cross-entropy, AdamW and a group lasso on each channel's fan-out;
3. pruning (:func:`~specjax.realdata.convnets.prune_channels`): per conv layer, keep the channels with the largest
   mean :math:`|\\text{outgoing weight}|`, the strong teacher nodes of Def. 4 (docs/theory.md §3);
4. students (:mod:`specjax.realdata.students`): the same architecture, ``over_realization`` times the kept channels
   per layer, trained on the pruned teacher's logits with the paper's loss (Eqn 1), evaluated after every epoch.

Conv layers are numbered from 1 (input to output) in every result name, as in the sweep's results. Keys are threaded
explicitly and nothing uses global random state; every array is float32. Plots are in :mod:`specjax.figures.plots_conv`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from specjax.errors import ConfigError
from specjax.realdata.convnets import (
    IMPLEMENTATIONS,
    ConvNet,
    Variables,
    accuracy,
    channel_strength,
    conv_channels,
    kept_channel_counts,
    predict_logits,
    prune_channels,
)
from specjax.realdata.images import (
    DIGITS_IMAGES,
    NO_AUGMENTATION,
    Augmentation,
    ImageDataset,
    check_cifar10_files,
    load_cifar10,
    load_digits,
)
from specjax.realdata.students import STUDENT_OPTIMIZERS, active_teacher_channels, layer_key, train_students
from specjax.realdata.teacher import train_teacher

Array = jax.Array

logger = logging.getLogger(__name__)

DATASETS = ("digits", "cifar10")


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


#: Named scales. ``test``: ``small`` with 1x and 5x students for 10 epochs (the test suite's; about 15 s on 2 CPU
#: cores); ``small``: about a minute and a half on 2 CPU cores; ``paper``: a wider teacher, 1/2/5/10x, more
#: seeds, 100 epochs; ``cifar10``: the paper's own setting (4 conv layers of 64 channels, crop-and-flip students),
#: which needs ``data_directory`` and, realistically, a GPU (set ``conv_implementation='lax'`` there).
CONV_EXPERIMENT_SCALES = {
    "test": ConvExperimentConfig(over_realizations=(1, 5), student_epochs=10),
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


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _conv_field(config: Any, field: str):
    """``config.<field>``; a missing attribute is refused by name."""
    if not hasattr(config, field):
        raise ConfigError(f"config.{field}: missing")
    return getattr(config, field)


def _check_conv_int(config: Any, field: str, minimum: int) -> None:
    value = _conv_field(config, field)
    if not _is_int(value) or value < minimum:
        raise ConfigError(f"config.{field}: expected an integer >= {minimum}, got {value!r}")


def _check_conv_number(config: Any, field: str, low: float, high: float, low_open: bool, high_open: bool) -> None:
    """A finite number in the interval from ``low`` to ``high`` (open at the ends flagged)."""
    value = _conv_field(config, field)
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    ok = _is_number(value) and np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        raise ConfigError(f"config.{field}: expected a finite number in {interval}, got {value!r}")


def _check_augmentation(config: Any, field: str) -> None:
    """An :class:`Augmentation` (or its ``(pad, flip, noise_std)`` tuple): pad >= 0, flip a bool, noise_std >= 0."""
    value = _conv_field(config, field)
    try:
        pad, flip, noise_std = value
    except (TypeError, ValueError):
        raise ConfigError(f"config.{field}: expected (pad, flip, noise_std), got {value!r}") from None
    if not _is_int(pad) or pad < 0:
        raise ConfigError(f"config.{field}: pad must be an integer >= 0, got {pad!r}")
    if not isinstance(flip, bool | np.bool_):
        raise ConfigError(f"config.{field}: flip must be True or False, got {flip!r}")
    if not _is_number(noise_std) or not np.isfinite(noise_std) or noise_std < 0:
        raise ConfigError(f"config.{field}: noise_std must be a finite number >= 0, got {noise_std!r}")


def check_conv_config(config: Any) -> None:
    """Refuses the first field of ``config`` that :func:`run_conv_experiment` cannot use, before anything runs.

    Every field of :class:`ConvExperimentConfig` is checked for its type and range; for the digits, the split
    must leave at least two evaluation images and a training set no smaller than a batch; for CIFAR-10,
    ``data_directory`` must hold every batch file (their contents are checked when read).

    Raises:
      ConfigError: naming the field (``config.<field>: ...``).
      FileNotFoundError: the CIFAR-10 directory or one of its batch files does not exist (names it).
    """
    dataset = _conv_field(config, "dataset")
    if dataset not in DATASETS:
        raise ConfigError(f"config.dataset: unknown value {dataset!r}; expected one of {DATASETS}")
    directory = _conv_field(config, "data_directory")
    if directory is not None and not isinstance(directory, str):
        raise ConfigError(f"config.data_directory: expected a path, got {directory!r}")
    if dataset == "cifar10" and not directory:
        raise ConfigError("config.data_directory: required for dataset='cifar10'")
    if _conv_field(config, "student_optimizer") not in STUDENT_OPTIMIZERS:
        value, allowed = config.student_optimizer, STUDENT_OPTIMIZERS
        raise ConfigError(f"config.student_optimizer: unknown value {value!r}; expected one of {allowed}")
    if _conv_field(config, "conv_implementation") not in IMPLEMENTATIONS:
        value, allowed = config.conv_implementation, IMPLEMENTATIONS
        raise ConfigError(f"config.conv_implementation: unknown value {value!r}; expected one of {allowed}")
    for field in ("teacher_channels", "over_realizations"):
        values = _conv_field(config, field)
        values = tuple(values) if isinstance(values, list | tuple) else (values,)
        if not values or any(not _is_int(v) or v < 1 for v in values):
            raise ConfigError(f"config.{field}: expected positive integers, got {values!r}")
    for field in ("num_seeds", "batch_size", "eval_batch_size", "correlation_samples"):
        _check_conv_int(config, field, 1)
    for field in ("teacher_epochs", "student_epochs"):
        _check_conv_int(config, field, 0)
    _check_conv_number(config, "eval_fraction", 0.0, 1.0, True, True)
    for field in ("teacher_learning_rate", "student_learning_rate"):
        _check_conv_number(config, field, 0.0, np.inf, True, True)
    for field in ("teacher_weight_decay", "teacher_channel_sparsity"):
        _check_conv_number(config, field, 0.0, np.inf, False, True)
    _check_conv_number(config, "student_momentum", 0.0, 1.0, False, True)
    _check_conv_number(config, "prune_min_relative_strength", 0.0, 1.0, False, False)
    for field in ("teacher_augmentation", "student_augmentation"):
        _check_augmentation(config, field)
    ratios = _conv_field(config, "prune_ratios")
    if ratios is not None:
        layers = len(tuple(config.teacher_channels))
        if not isinstance(ratios, list | tuple) or len(ratios) != layers:
            raise ConfigError(
                f"config.prune_ratios: expected None or {layers} fractions (one per conv layer), got {ratios!r}"
            )
        if any(not _is_number(r) or not 0 <= r < 1 for r in ratios):
            raise ConfigError(f"config.prune_ratios: fractions must be in [0, 1), got {tuple(ratios)!r}")
    if hasattr(config, "seed") and (not _is_int(config.seed) or not 0 <= config.seed < 2**32):
        raise ConfigError(f"config.seed: expected an integer in [0, 2**32), got {config.seed!r}")
    if dataset == "digits":
        num_eval = int(round(config.eval_fraction * DIGITS_IMAGES))
        if num_eval < 2:
            raise ConfigError(
                f"config.eval_fraction: {config.eval_fraction!r} holds out {num_eval} of the {DIGITS_IMAGES} digits; "
                "correlations need at least 2"
            )
        if config.batch_size > DIGITS_IMAGES - num_eval:
            raise ConfigError(
                f"config.batch_size: {config.batch_size} is larger than the {DIGITS_IMAGES - num_eval} training "
                f"digits left by eval_fraction={config.eval_fraction!r}"
            )
    else:
        check_cifar10_files(directory)


def load_dataset(config: Any, key: Array) -> ImageDataset:
    """The data named by ``config.dataset``; ``key`` fixes the digits' train/eval split."""
    if config.dataset == "digits":
        return load_digits(key, config.eval_fraction)
    if config.dataset == "cifar10":
        return load_cifar10(config.data_directory)
    raise ConfigError(f"config.dataset: unknown value {config.dataset!r}; expected one of {DATASETS}")


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
      - ``best_correlation_l{l}`` ``(R, S, E + 1, m_l)`` (``l = 1 .. L``, as every per-layer name here);
      - ``eval_accuracy``, ``teacher_agreement``, ``eval_loss`` ``(R, S, E + 1)``; ``train_loss`` ``(R, S, E)``;
      - ``teacher_channels``, ``kept_channels``, ``active_channels`` ``(L,)``; ``channel_strength_l{l}``
        ``(C_l,)``; ``kept_index_l{l}`` and ``active_l{l}`` ``(m_l,)``;
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
        "teacher_eval_accuracy_history": teacher_history.eval_accuracy,
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
    for layer, (strength, index, mask) in enumerate(zip(strengths, kept, active, strict=True), start=1):
        results[layer_key("channel_strength", layer)] = strength
        results[layer_key("kept_index", layer)] = index
        results[layer_key("active", layer)] = mask

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
