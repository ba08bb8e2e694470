"""Tests of the Fig. 13 analogue: image data, conv networks and pruning, and the teacher-student experiment.

The end-to-end experiment runs once per session: the session fixture ``figure13`` makes Fig. 13 at the ``test``
scale (``CONV_EXPERIMENT_SCALES['test']``: ``small`` with 1x and 5x students for 10 epochs) through
``specjax.figures.make_figure``, and several tests assert the paper's claims on its arrays: the students' best
correlation to the teacher's channels rises and ends high at every layer, and more over-realization is not worse.
Those tests are marked slow (the training takes ~30 s cold); the default suite keeps the pieces' unit tests.
Conv layers are numbered from 1 in every result name.
"""

from __future__ import annotations

import dataclasses
import pickle

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax import figures
from specjax.errors import ConfigError
from specjax.figures.plots_conv import plot_figure13
from specjax.realdata import convnets, students
from specjax.realdata import experiment as conv_experiment
from specjax.realdata import images as image_lib

TEST_CONFIG = conv_experiment.CONV_EXPERIMENT_SCALES["test"]


@pytest.fixture(scope="session")
def figure13(tmp_path_factory):
    """Fig. 13 at the test scale; the one training of the conv pipeline in the session."""
    return figures.make_figure("13", tmp_path_factory.mktemp("fig13"), "test", progress=None)


@pytest.fixture(scope="session")
def experiment(figure13):
    return figure13.data.results


@pytest.mark.slow
def test_fig13_real_data_builds(figure13):
    out = figure13
    assert [p.suffix for p in out.paths] == [".png", ".pdf"]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in out.paths)
    assert out.numbers_path.is_file() and out.computed_now
    assert set(out.numbers["final_eval_accuracy"]) == {"1x", "5x"}
    assert out.numbers["final_eval_accuracy"]["5x"] > 0.3  # ten classes; measured 0.91 after 10 epochs
    assert dataclasses.asdict(TEST_CONFIG) == {
        k: v for k, v in figures.load_config("fig13", "test").to_dict().items() if k != "seed"
    }


# ---------------------------------------------------------------------------------------------------------------
# The experiment and the paper's claims


@pytest.mark.slow
def test_experiment_shapes_and_dtypes(experiment):
    r, s, e = len(TEST_CONFIG.over_realizations), TEST_CONFIG.num_seeds, TEST_CONFIG.student_epochs
    kept = experiment["kept_channels"]
    num_layers = len(TEST_CONFIG.teacher_channels)
    assert experiment["mean_best_correlation"].shape == (r, s, e + 1, num_layers)
    assert experiment["mean_best_correlation"].dtype == np.float32
    for name in ("eval_accuracy", "teacher_agreement", "eval_loss"):
        assert experiment[name].shape == (r, s, e + 1), name
        assert experiment[name].dtype == np.float32, name
    assert experiment["train_loss"].shape == (r, s, e)
    np.testing.assert_array_equal(experiment["epoch"], np.arange(e + 1))
    np.testing.assert_array_equal(experiment["student_channels"], np.outer(TEST_CONFIG.over_realizations, kept))
    for layer in range(1, num_layers + 1):
        assert experiment[f"best_correlation_l{layer}"].shape == (r, s, e + 1, kept[layer - 1])
        assert experiment[f"channel_strength_l{layer}"].shape == (TEST_CONFIG.teacher_channels[layer - 1],)
        assert experiment[f"active_l{layer}"].shape == (kept[layer - 1],)
    assert "best_correlation_l0" not in experiment and f"active_l{num_layers + 1}" not in experiment
    assert experiment["teacher_eval_accuracy_history"].shape == (TEST_CONFIG.teacher_epochs + 1,)
    assert experiment["student_seconds"].shape == (r,)
    assert np.all(np.isfinite(experiment["mean_best_correlation"]))


@pytest.mark.slow
def test_teacher_learns_and_pruning_keeps_its_accuracy(experiment):
    assert experiment["teacher_eval_accuracy"] >= 0.9
    # Pruning removes channels in every layer yet costs little accuracy: the group lasso left a few strong ones.
    assert np.all(experiment["kept_channels"] < experiment["teacher_channels"])
    assert experiment["pruned_teacher_eval_accuracy"] >= experiment["teacher_eval_accuracy"] - 0.03
    assert experiment["pruned_teacher_train_accuracy"] >= experiment["teacher_train_accuracy"] - 0.03
    np.testing.assert_array_equal(experiment["active_channels"], experiment["kept_channels"])


@pytest.mark.slow
def test_pruning_keeps_the_strongest_channels(experiment):
    for layer, count in enumerate(experiment["kept_channels"], start=1):
        strength = experiment[f"channel_strength_l{layer}"]
        kept = experiment[f"kept_index_l{layer}"]
        dropped = np.setdiff1d(np.arange(strength.size), kept)
        assert kept.size == count
        assert strength[kept].min() >= strength[dropped].max()
        assert np.all(np.diff(strength[kept]) <= 0)  # strongest first
        assert strength[kept].min() >= TEST_CONFIG.prune_min_relative_strength * strength.max()


@pytest.mark.slow
def test_best_correlation_rises_and_ends_high(experiment):
    mean_best = experiment["mean_best_correlation"].mean(axis=1)  # (R, E + 1, L), mean over seeds
    start, end = mean_best[:, 0, :], mean_best[:, -1, :]
    # Every layer gains at every over-realization; the upper layers, near chance at initialisation, gain a lot.
    assert np.all(end > start + 0.01), (start, end)
    assert np.all(end[:, 1:] > start[:, 1:] + 0.15), (start, end)
    # Lowest layer: its inputs are 3x3 patches, so many random 5x students already correlate well at
    # initialisation; the 1x student starts lower and climbs, and the widest ends high.
    assert end[0, 0] > start[0, 0] + 0.03, (start, end)
    assert end[-1, 0] >= 0.77, end
    assert np.all(end[-1] >= 0.75), end


@pytest.mark.slow
def test_more_over_realization_is_not_worse(experiment):
    end = experiment["mean_best_correlation"][:, :, -1, :].mean(axis=1)  # (R, L)
    assert np.all(end[-1] >= end[0] - 0.02), end
    assert end[-1].mean() > end[0].mean()


@pytest.mark.slow
def test_students_match_the_teacher(experiment):
    final_agreement = experiment["teacher_agreement"][:, :, -1]
    final_accuracy = experiment["eval_accuracy"][:, :, -1]
    assert np.all(final_agreement >= 0.9), final_agreement
    assert np.all(final_accuracy >= experiment["pruned_teacher_eval_accuracy"] - 0.08), final_accuracy
    assert np.all(experiment["eval_loss"][:, :, -1] < 0.2 * experiment["eval_loss"][:, :, 0])


@pytest.mark.slow
def test_plot_figure13_writes_png_and_pdf(experiment, tmp_path):
    paths = plot_figure13(experiment, tmp_path / "fig13")
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    assert all(p.stat().st_size > 1000 for p in paths)


# ---------------------------------------------------------------------------------------------------------------
# Students: vmapped seeds are independent runs


@pytest.mark.slow
def test_a_seed_does_not_depend_on_the_other_seeds():
    dataset = image_lib.load_digits(jax.random.key(1))
    dataset = dataset._replace(train_images=dataset.train_images[:128], train_labels=dataset.train_labels[:128])
    teacher = convnets.ConvNet((4,))
    teacher_variables = convnets.init_variables(teacher, jax.random.key(2), jnp.zeros((1, 8, 8, 1), jnp.float32))
    config = dataclasses.replace(TEST_CONFIG, student_epochs=1, batch_size=32)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(3), jnp.arange(2))
    both = students.train_students(config, dataset, teacher_variables, (8,), keys)
    alone = students.train_students(config, dataset, teacher_variables, (8,), keys[1:])
    for name in ("mean_best_correlation", "eval_loss", "train_loss", "best_correlation_l1"):
        np.testing.assert_allclose(both[name][1:], alone[name], rtol=2e-4, atol=2e-5, err_msg=name)
    assert not np.allclose(both["eval_loss"][0], both["eval_loss"][1])


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="config.dataset"):
        conv_experiment.check_conv_config(dataclasses.replace(TEST_CONFIG, dataset="mnist"))
    with pytest.raises(ConfigError, match="config.data_directory"):
        conv_experiment.check_conv_config(dataclasses.replace(TEST_CONFIG, dataset="cifar10"))
    with pytest.raises(ConfigError, match="config.over_realizations"):
        conv_experiment.check_conv_config(dataclasses.replace(TEST_CONFIG, over_realizations=(0, 2)))
    with pytest.raises(ConfigError, match="config.student_optimizer"):
        conv_experiment.check_conv_config(dataclasses.replace(TEST_CONFIG, student_optimizer="lbfgs"))


def test_students_loss_is_the_papers_half_sse():
    """The students' loss is core.networks.residual_loss('half_sse'): 0.5 * mean over samples of ||residual||^2."""
    dataset = image_lib.load_digits(jax.random.key(1))
    dataset = dataset._replace(train_images=dataset.train_images[:64], train_labels=dataset.train_labels[:64])
    teacher_variables = convnets.init_variables(
        convnets.ConvNet((4,)), jax.random.key(2), jnp.zeros((1, 8, 8, 1), jnp.float32)
    )
    config = dataclasses.replace(TEST_CONFIG, student_epochs=0, correlation_samples=32)
    out = students.train_students(config, dataset, teacher_variables, (4,), jax.random.key(3)[None])
    student_variables = convnets.init_variables(
        convnets.ConvNet((4,)), jax.random.split(jax.random.key(3))[0], jnp.zeros((1, 8, 8, 1), jnp.float32)
    )
    images = jnp.asarray(dataset.eval_images)
    residual = convnets.ConvNet((4,)).apply(teacher_variables, images)[0]
    residual = residual - convnets.ConvNet((4,)).apply(student_variables, images)[0]
    expected = 0.5 * np.mean(np.sum(np.asarray(residual, np.float64) ** 2, axis=-1))
    np.testing.assert_allclose(out["eval_loss"][0, 0], expected, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# Conv networks and pruning


def _random_variables(channels, key, shape=(1, 8, 8, 1)):
    network = convnets.ConvNet(channels)
    return network, convnets.init_variables(network, key, jnp.zeros(shape, jnp.float32))


def test_conv3x3_matches_flax_conv():
    images = jax.random.normal(jax.random.key(0), (4, 8, 8, 3), jnp.float32)
    reference = nn.Conv(5, (3, 3), padding="VALID", param_dtype=jnp.float32)
    variables = reference.init(jax.random.key(1), images)
    expected = reference.apply(variables, images)
    for implementation in convnets.IMPLEMENTATIONS:
        got = convnets.Conv3x3(5, implementation).apply(variables, images)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=implementation)


def test_init_variables_is_lecun_normal_float32():
    network = convnets.ConvNet((64, 64))
    variables = convnets.init_variables(network, jax.random.key(0), jnp.zeros((1, 8, 8, 3), jnp.float32))
    reference = jax.eval_shape(network.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3), jnp.float32))
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(reference)
    for leaf, ref_leaf in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(reference), strict=True):
        assert leaf.shape == ref_leaf.shape and leaf.dtype == jnp.float32
    assert sorted(variables["params"]) == ["conv1", "conv2", "readout"]  # conv layers numbered from 1
    kernel = np.asarray(variables["params"]["conv2"]["kernel"])  # fan-in 9 * 64
    assert abs(kernel.std() * np.sqrt(9 * 64) - 1.0) < 0.02
    assert not np.any(np.asarray(variables["params"]["conv2"]["bias"]))


def test_pruned_network_equals_masked_network():
    network, variables = _random_variables((6, 5, 7), jax.random.key(0))
    keep_counts = (3, 2, 4)
    pruned, kept = convnets.prune_channels(variables, keep_counts)
    # The reference masks the dropped channels' outgoing weights instead of removing them.
    masked = jax.tree_util.tree_map(np.array, variables)
    params = masked["params"]
    for layer, index in enumerate(kept, start=1):
        dropped = np.setdiff1d(np.arange(network.channels[layer - 1]), index)
        if layer < len(kept):
            params[f"conv{layer + 1}"]["kernel"][:, :, dropped, :] = 0.0
        else:
            readout = params["readout"]["kernel"].reshape(-1, network.channels[layer - 1], 10)
            readout[:, dropped, :] = 0.0
            params["readout"]["kernel"] = readout.reshape(-1, 10)
    images = jax.random.normal(jax.random.key(1), (16, 8, 8, 1), jnp.float32)
    logits_masked, hidden_masked = network.apply(masked, images)
    logits_pruned, hidden_pruned = convnets.ConvNet(keep_counts).apply(pruned, images)
    np.testing.assert_allclose(logits_pruned, logits_masked, rtol=1e-5, atol=1e-5)
    for layer, index in enumerate(kept):
        np.testing.assert_allclose(hidden_pruned[layer], hidden_masked[layer][..., index], rtol=1e-5, atol=1e-5)


def test_channel_strength_is_mean_absolute_fan_out():
    _, variables = _random_variables((3, 4), jax.random.key(0))
    params = variables["params"]
    strength = convnets.channel_strength(variables)
    expected0 = np.abs(np.asarray(params["conv2"]["kernel"])).mean(axis=(0, 1, 3))
    readout = np.asarray(params["readout"]["kernel"]).reshape(4, 4, 4, 10)  # (H, W, C, classes) at 4x4 maps
    expected1 = np.abs(readout).mean(axis=(0, 1, 3))
    np.testing.assert_allclose(strength[0], expected0, rtol=1e-6)
    np.testing.assert_allclose(strength[1], expected1, rtol=1e-6)


def test_kept_channel_counts_rules():
    strengths = (np.array([1.0, 0.5, 0.05, 0.0]), np.array([0.2, 0.2, 0.2]))
    assert convnets.kept_channel_counts(strengths, None, 0.1) == (2, 3)
    assert convnets.kept_channel_counts(strengths, (0.5, 0.4)) == (2, 2)  # C - int(C * ratio), the reference's rule
    with pytest.raises(ValueError, match="prune_ratios"):
        convnets.kept_channel_counts(strengths, (0.5,))
    with pytest.raises(ValueError, match="keep_counts"):
        convnets.prune_channels(_random_variables((3, 4), jax.random.key(0))[1], (4, 1))


# ---------------------------------------------------------------------------------------------------------------
# Image data


def test_load_digits_split_is_deterministic_and_standardised():
    first, again = image_lib.load_digits(jax.random.key(7)), image_lib.load_digits(jax.random.key(7))
    other = image_lib.load_digits(jax.random.key(8))
    assert first.train_images.shape == (1438, 8, 8, 1) and first.eval_images.shape == (359, 8, 8, 1)
    assert first.train_images.dtype == np.float32 and first.train_labels.dtype == np.int32
    np.testing.assert_array_equal(first.eval_images, again.eval_images)
    assert not np.array_equal(first.eval_labels, other.eval_labels)
    assert abs(first.train_images.mean()) < 1e-4 and abs(first.train_images.std() - 1.0) < 1e-4
    assert set(np.unique(first.train_labels)) == set(range(10))


def test_augmentation():
    images = jax.random.normal(jax.random.key(0), (3, 6, 6, 2), jnp.float32)
    uniforms = jnp.array([[0.0, 0.0, 0.9], [0.99, 0.5, 0.1], [0.5, 0.5, 0.9]], jnp.float32)
    np.testing.assert_array_equal(image_lib.apply_augmentation(images, uniforms, None), images)
    flipped = image_lib.apply_augmentation(images, uniforms, None, image_lib.Augmentation(flip=True))
    np.testing.assert_array_equal(flipped[1], images[1, :, ::-1, :])  # column 2 below 1/2 mirrors
    np.testing.assert_array_equal(flipped[0], images[0])
    cropped = image_lib.apply_augmentation(images, uniforms, None, image_lib.Augmentation(pad=1))
    np.testing.assert_array_equal(cropped[2], images[2])  # offset (1, 1) is the identity crop
    np.testing.assert_array_equal(cropped[0, 1:, 1:], images[0, :-1, :-1])  # offset (0, 0) shifts by one
    np.testing.assert_array_equal(cropped[0, 0], 0.0)
    noisy = image_lib.augment_images(jax.random.key(1), images, image_lib.Augmentation(noise_std=0.5))
    assert noisy.dtype == jnp.float32 and 0.3 < float(jnp.std(noisy - images)) < 0.7


# ---------------------------------------------------------------------------------------------------------------
# CIFAR-10 loader on files in the standard format


def _write_batch(path, data, labels, protocol=2):
    batch = {b"batch_label": b"testing batch", b"labels": list(labels), b"data": data, b"filenames": []}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


def _write_cifar_directory(directory, rows_per_batch=4):
    rng = np.random.default_rng(0)
    for index, name in enumerate((*image_lib.CIFAR10_TRAIN_BATCHES, image_lib.CIFAR10_TEST_BATCH)):
        data = rng.integers(0, 256, (rows_per_batch, 3072), dtype=np.uint8)
        labels = [(index + i) % 10 for i in range(rows_per_batch)]
        if index % 2:  # as the original files: protocol 2, Python ints
            _write_batch(directory / name, data, labels, protocol=2)
        else:  # as a NumPy user might write them: protocol 5, NumPy integers
            _write_batch(directory / name, data, list(np.asarray(labels, np.int64)), protocol=5)
    return directory


def test_read_cifar10_batch_round_trips_the_layout(tmp_path):
    data = np.zeros((2, 3072), np.uint8)
    data[1, 0 * 1024 + 3 * 32 + 5] = 255  # red, row 3, column 5
    data[1, 2 * 1024 + 31 * 32 + 0] = 51  # blue, row 31, column 0
    _write_batch(tmp_path / "data_batch_1", data, [3, 9])
    images, labels = image_lib.read_cifar10_batch(tmp_path / "data_batch_1")
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, [3, 9])
    assert labels.dtype == np.int32
    assert images[1, 3, 5, 0] == 1.0 and images[1, 31, 0, 2] == pytest.approx(0.2)
    assert images.sum() == pytest.approx(1.2)


def test_load_cifar10_reads_all_batches_and_standardises(tmp_path):
    directory = _write_cifar_directory(tmp_path)
    dataset = image_lib.load_cifar10(directory)
    assert dataset.train_images.shape == (20, 32, 32, 3) and dataset.eval_images.shape == (4, 32, 32, 3)
    assert dataset.train_labels.shape == (20,) and dataset.eval_labels.dtype == np.int32
    np.testing.assert_array_equal(dataset.eval_labels, [5, 6, 7, 8])
    np.testing.assert_allclose(dataset.train_images.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(dataset.train_images.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    one = image_lib.load_cifar10(directory, train_batch_names=("data_batch_1",))
    assert one.train_images.shape == (4, 32, 32, 3)


def test_load_cifar10_missing_directory_and_file(tmp_path):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        image_lib.load_cifar10(missing)
    directory = _write_cifar_directory(tmp_path)
    (directory / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        image_lib.load_cifar10(directory)


@pytest.mark.slow
def test_cifar10_experiment_runs_end_to_end(tmp_path):
    directory = _write_cifar_directory(tmp_path, rows_per_batch=32)
    config = dataclasses.replace(
        conv_experiment.CONV_EXPERIMENT_SCALES["cifar10"],
        data_directory=str(directory),
        teacher_channels=(8, 8, 8, 8),
        teacher_epochs=1,
        over_realizations=(1, 2),
        num_seeds=2,
        student_epochs=1,
        eval_batch_size=16,
        correlation_samples=8,
        prune_min_relative_strength=0.0,
    )
    results = conv_experiment.run_conv_experiment(config, jax.random.key(0))
    assert results["mean_best_correlation"].shape == (2, 2, 2, 4)
    assert results["best_correlation_l4"].shape == (2, 2, 2, 8)
    assert np.all(np.isfinite(results["eval_loss"]))


class _RunsCode:
    """A pickle payload that would run a function when unpickled."""

    def __reduce__(self):
        return (print, ("unpickling ran code",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is not a pickle", "not a CIFAR-10 python batch"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "b'labels'"),
        (pickle.dumps([1, 2, 3]), "b'data'"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "shape"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), "uint8"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "2 integers"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), r"outside \[0, 10\)"),
        (pickle.dumps({b"data": _RunsCode(), b"labels": [0]}), "not allowed"),
    ],
)
def test_read_cifar10_batch_rejects_malformed_files(tmp_path, capsys, content, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        image_lib.read_cifar10_batch(path)
    assert str(path) in str(error.value)
    assert "unpickling ran code" not in capsys.readouterr().out
