"""Real image data for the convolutional experiment (the paper's Fig. 13).

Two sources, both returned as an :class:`ImageDataset` of NHWC float32 images standardised per channel:

* :func:`load_digits`: the 1797 8x8 handwritten digits that scikit-learn ships (no download), split into
  train/eval by a PRNG key;
* :func:`load_cifar10`: CIFAR-10 from the standard python batches (``data_batch_1`` ... ``data_batch_5``,
  ``test_batch``) in a directory the user gives. These files are pickles; this is the one place in specjax that
  reads a pickle, and it refuses any object other than dicts, lists, bytes and NumPy arrays.

And the input augmentation of training runs (:class:`Augmentation`): random crop, mirror and Gaussian noise, with
the random numbers drawn once per epoch (:func:`draw_augmentation`) and applied per batch
(:func:`apply_augmentation`).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from specjax.errors import ArgumentError, StoreError

Array = jax.Array

NUM_CLASSES = 10
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_IMAGE_SHAPE = (3, 32, 32)  # channels, height, width: the layout of one row of b'data'
CIFAR10_ROW_LENGTH = 3 * 32 * 32


class ImageDataset(NamedTuple):
    """A labelled image classification split (NumPy arrays).

    Attributes:
      train_images: ``(N_train, H, W, C)`` float32.
      train_labels: ``(N_train,)`` int32 in ``[0, 10)``.
      eval_images: ``(N_eval, H, W, C)`` float32.
      eval_labels: ``(N_eval,)`` int32.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray


def standardise_channels(dataset: ImageDataset) -> ImageDataset:
    """Subtracts each channel's mean and divides by its std, both measured on the train split; float32."""
    mean = dataset.train_images.mean(axis=(0, 1, 2), dtype=np.float64)
    std = dataset.train_images.std(axis=(0, 1, 2), dtype=np.float64)
    std = np.where(std > 0, std, 1.0)

    def scale(images: np.ndarray) -> np.ndarray:
        return ((images - mean) / std).astype(np.float32)

    return dataset._replace(train_images=scale(dataset.train_images), eval_images=scale(dataset.eval_images))


#: Images in scikit-learn's digits dataset (:func:`load_digits`).
DIGITS_IMAGES = 1797


def load_digits(key: Array, eval_fraction: float = 0.2) -> ImageDataset:
    """scikit-learn's 1797 handwritten digits as ``(N, 8, 8, 1)`` images, randomly split, standardised.

    Args:
      key: PRNG key that fixes the train/eval split.
      eval_fraction: share of the images held out for evaluation, in ``(0, 1)``.

    Returns:
      An :class:`ImageDataset` (1438 train and 359 eval images at the default fraction), standardised by
      :func:`standardise_channels`.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, (int, float)) or not 0.0 < eval_fraction < 1.0:
        raise ArgumentError(f"eval_fraction: expected a value in (0, 1), got {eval_fraction!r}")
    digits = sklearn_load_digits()
    images = digits.images.astype(np.float32)[..., None] / 16.0  # pixel values are 0..16
    labels = digits.target.astype(np.int32)
    order = np.asarray(jax.random.permutation(key, len(labels)))
    num_eval = int(round(eval_fraction * len(labels)))
    eval_index, train_index = order[:num_eval], order[num_eval:]
    return standardise_channels(
        ImageDataset(images[train_index], labels[train_index], images[eval_index], labels[eval_index])
    )


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and NumPy arrays, and refuses every other global.

    Unpickling can run arbitrary code; with this restriction a malicious or corrupt file raises instead.
    """

    allowed = {
        ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 encode bytes with it
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),  # NumPy integers, e.g. labels written from an int64 array
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads one CIFAR-10 python batch: a pickled dict with ``b'data'`` and ``b'labels'``.

    The file is unpickled with ``encoding='bytes'`` (the batches were written by Python 2), by an unpickler that
    only accepts plain containers and NumPy arrays.

    Args:
      path: the batch file, e.g. ``.../cifar-10-batches-py/data_batch_1``.

    Returns:
      ``(images, labels)``: ``(N, 32, 32, 3)`` float32 in ``[0, 1]`` and ``(N,)`` int32.

    Raises:
      FileNotFoundError: no file at ``path``.
      StoreError: not the standard format (a dict with ``b'data'``, a ``(N, 3072)`` uint8 array, and
        ``b'labels'``, ``N`` integers in ``[0, 10)``), or corrupt; one line naming the path (a ``SpecjaxError``,
        hence also a ``ValueError``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch not found: {path}")
    try:
        with path.open("rb") as f:
            batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except Exception as error:  # a corrupt pickle raises any of several types
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise StoreError(f"{path}: not a CIFAR-10 python batch ({type(error).__name__}: {reason})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise StoreError(f"{path}: expected a dict with keys b'data' and b'labels'")
    data = batch[b"data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8):
        raise StoreError(f"{path}: b'data' must be a uint8 NumPy array")
    if data.ndim != 2 or data.shape[1] != CIFAR10_ROW_LENGTH:
        raise StoreError(f"{path}: b'data' has shape {data.shape}; expected (N, {CIFAR10_ROW_LENGTH})")
    try:
        labels = np.asarray(batch[b"labels"])
    except Exception:
        raise StoreError(f"{path}: b'labels' is not a sequence of integers") from None
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise StoreError(f"{path}: b'labels' must hold {data.shape[0]} integers, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise StoreError(f"{path}: labels outside [0, {NUM_CLASSES})")
    # Each row holds the red, green and blue 32x32 planes, row-major: (N, C, H, W) -> NHWC.
    images = data.reshape(-1, *CIFAR10_IMAGE_SHAPE).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    return images, labels.astype(np.int32)


def check_cifar10_files(directory: str | Path, train_batch_names: Sequence[str] = CIFAR10_TRAIN_BATCHES) -> Path:
    """Checks, without reading them, that ``directory`` holds the CIFAR-10 batches :func:`load_cifar10` reads.

    Returns:
      ``directory`` as a ``Path``.

    Raises:
      FileNotFoundError: ``directory`` or one of the batch files does not exist (names it).
      ValueError: no training batch named.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory not found: {directory}")
    if not train_batch_names:
        raise ValueError("train_batch_names: expected at least one CIFAR-10 training batch")
    for name in (*train_batch_names, CIFAR10_TEST_BATCH):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"CIFAR-10 batch not found: {directory / name}")
    return directory


def load_cifar10(directory: str | Path, train_batch_names: Sequence[str] = CIFAR10_TRAIN_BATCHES) -> ImageDataset:
    """CIFAR-10 from the standard python batches in ``directory`` (``cifar-10-batches-py``), standardised.

    Args:
      directory: folder holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``.
      train_batch_names: which training batches to read (all five by default).

    Returns:
      An :class:`ImageDataset` of ``(N, 32, 32, 3)`` images standardised per channel with the train split's
      statistics; the test batch is the eval split.

    Raises:
      FileNotFoundError: ``directory`` or one of the batch files does not exist.
      StoreError: a batch is not in the standard format (:func:`read_cifar10_batch`).
      ValueError: no training batch named.
    """
    directory = check_cifar10_files(directory, train_batch_names)
    train = [read_cifar10_batch(directory / name) for name in train_batch_names]
    eval_images, eval_labels = read_cifar10_batch(directory / CIFAR10_TEST_BATCH)
    return standardise_channels(
        ImageDataset(
            np.concatenate([images for images, _ in train]),
            np.concatenate([labels for _, labels in train]),
            eval_images,
            eval_labels,
        )
    )


class Augmentation(NamedTuple):
    """Input augmentation of a training run (:func:`apply_augmentation`).

    Attributes:
      pad: random-crop padding in pixels (0: no cropping).
      flip: random left-right mirroring.
      noise_std: standard deviation of additive Gaussian noise (0: none).
    """

    pad: int = 0
    flip: bool = False
    noise_std: float = 0.0


NO_AUGMENTATION = Augmentation()


def draw_augmentation(key: Array, shape: tuple[int, ...], noise_std: float = 0.0) -> tuple[Array, Array | None]:
    """The random numbers :func:`apply_augmentation` needs for a stack of batches, drawn at once.

    Two draws per epoch rather than several per step keep XLA:CPU compile time short: every random-number call
    site compiles separately (about a second each on a busy 2-core machine).

    Args:
      key: PRNG key.
      shape: ``(steps, B, H, W, C)``.
      noise_std: the noise is drawn only when positive.

    Returns:
      ``(uniforms, noise)``: ``(steps, B, 3)`` float32 on ``[0, 1)``, and ``(steps, B, H, W, C)`` standard normal
      float32 or ``None``.
    """
    key_uniform, key_noise = jax.random.split(key)
    uniforms = jax.random.uniform(key_uniform, (*shape[:2], 3), jnp.float32)
    noise = jax.random.normal(key_noise, shape, jnp.float32) if noise_std > 0 else None
    return uniforms, noise


def apply_augmentation(
    images: Array, uniforms: Array, noise: Array | None, augmentation: Augmentation = NO_AUGMENTATION
) -> Array:
    """Random crop (zero-pad by ``pad``, crop back at an offset), mirror and Gaussian noise, from drawn numbers.

    Crop and flip are the standard CIFAR augmentation of the paper's student training (its reference code). The
    noise widens the input distribution: the teacher labels any input, and more varied inputs show the student more
    of each teacher node's boundary (Assumption 1 (ii), docs/theory.md §3).

    Args:
      images: ``(B, H, W, C)``.
      uniforms: ``(B, 3)`` on ``[0, 1)``: columns 0 and 1 pick the crop offsets; column 2 below 1/2 mirrors.
      noise: ``(B, H, W, C)`` standard normal, or ``None`` when ``augmentation.noise_std`` is 0.
      augmentation: what to apply.

    Returns:
      ``(B, H, W, C)``.
    """
    pad, flip, noise_std = augmentation
    _, height, width, channels = images.shape
    if pad > 0:
        padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        offsets = jnp.floor(uniforms[:, :2] * (2 * pad + 1)).astype(jnp.int32)

        def crop(image: Array, offset: Array) -> Array:
            start = (offset[0], offset[1], jnp.zeros((), offset.dtype))
            return jax.lax.dynamic_slice(image, start, (height, width, channels))

        images = jax.vmap(crop)(padded, offsets)
    if flip:
        mirror = (uniforms[:, 2] < 0.5)[:, None, None, None]
        images = jnp.where(mirror, images[:, :, ::-1, :], images)
    if noise_std > 0:
        images = images + noise_std * noise
    return images


def augment_images(key: Array, images: Array, augmentation: Augmentation) -> Array:
    """:func:`apply_augmentation` of ``images`` ``(B, H, W, C)`` with numbers drawn from ``key``."""
    uniforms, noise = draw_augmentation(key, (1, *images.shape), augmentation.noise_std)
    return apply_augmentation(images, uniforms[0], None if noise is None else noise[0], augmentation)
