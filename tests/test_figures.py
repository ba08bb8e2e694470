"""The paper's figures at the ``test`` scale: each one builds, and its arrays show the paper's claim.

One temporary workdir is shared by the module, so Figs. 9 and 10 (and the command-line tests) reuse one sweep.
The claims are checked on the reduced arrays (:mod:`specjax.figures.numbers`), never on pixels; the test-scale configs
were chosen so that each claim holds with a margin (numbers in the comments are the values measured). Fig. 13 is
tested in test_realdata.py, beside the real-data experiment it shares (trained once per session).
"""

import functools
import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from specjax import figures
from specjax.config import SWEPT_FIELDS
from specjax.core import metrics, networks, teachers
from specjax.errors import ConfigError, FigureError, SpecjaxError, StoreError
from specjax.figures import numbers as figure_numbers
from specjax.figures import plots, table
from specjax.realdata import images
from specjax.sweep.schema import key

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """``make(figure) -> FigureOutput`` at the test scale, computed once per module."""
    workdir = tmp_path_factory.mktemp("figures")

    @functools.cache
    def build(figure: str) -> figures.FigureOutput:
        return figures.make_figure(figure, workdir, "test", progress=None)

    build.workdir = workdir
    return build


def assert_written(out: figures.FigureOutput) -> None:
    assert [p.suffix for p in out.paths] == [".png", ".pdf"]
    for p in out.paths:
        assert p.is_file() and p.stat().st_size > 1000, p
    assert out.numbers_path == out.paths[0].with_suffix(".json")
    held = json.loads(out.numbers_path.read_text())
    assert held["figure"] == out.figure and held["scale"] == "test" and held["variant"] == out.variant == ""
    assert not list(out.paths[0].parent.glob(".*.tmp*")), "a temporary file was left behind"


@pytest.mark.slow
def test_fig7_unspecialized_students_have_small_fan_out(make):
    out = make("7")
    assert_written(out)
    over5 = next(a for a in out.data.arrays if int(a["over_realization"]) == 5)
    corr = over5[key("best_student_corr", 1)][:, :, -1].ravel()
    fan_out = over5[key("fan_out_norm", 1)][:, :, -1].ravel()
    low, high = corr < metrics.UNSPECIALIZED_BELOW, corr > metrics.MATCH_THRESHOLD
    assert low.sum() >= 2 and high.sum() >= 100  # measured: 4 and ~190 of 200
    # The L: every unspecialized student's fan-out is below the median specialized one (measured ~0.1 vs ~0.45).
    assert fan_out[low].max() < np.median(fan_out[high])
    assert np.median(fan_out[low]) < 0.4 * np.median(fan_out[high])


def test_fig9_strong_teachers_covered_more_and_over_realization_helps(make):
    out = make("9")
    assert_written(out)
    assert out.numbers["early_epoch"] == out.data.early_epoch == 1  # 5 % of 10 epochs, the nearest evaluation
    table = out.numbers["success_rate"]
    for over in ("1x", "5x"):
        for which in ("early", "final"):
            rate = table[over]["p=2"][which]
            assert rate[0] >= rate[-1]  # measured 1x final: [1, .75, .75, .25, 0]
    assert table["1x"]["p=2"]["final"][0] - table["1x"]["p=2"]["final"][-1] >= 0.5
    for p in ("p=0", "p=2"):
        assert table["5x"][p]["mean_final"] >= table["1x"][p]["mean_final"]  # measured p=2: 1.0 vs 0.55
    assert table["5x"]["p=2"]["mean_final"] - table["1x"]["p=2"]["mean_final"] >= 0.2
    # More training covers more teachers (dotted vs solid lines).
    assert table["5x"]["p=2"]["mean_final"] > table["5x"]["p=2"]["mean_early"]


def test_fig10_loss_decreases(make):
    out = make("10")
    assert_written(out)
    for mean in out.data.log_mse_mean:
        assert np.all(mean[:, -1] < mean[:, 0] - 2.0)  # measured drops: 2.5 to 13.7 decades
    assert np.isfinite(np.concatenate(out.data.log_mse_std)).all()
    # Fig. 10 plots eval_mse, the mean over samples and outputs; the training convention is half_sse = C/2 * mse.
    c = figures.load_config("fig9_10", "test").c
    for a in out.data.arrays:
        np.testing.assert_allclose(a["eval_loss"], a["eval_mse"] * c / 2, rtol=1e-5)


@pytest.mark.slow
def test_fig11_focus_shifts_from_strong_to_weak_teachers(make):
    out = make("11")
    assert_written(out)
    counts = out.numbers["focus_shifts"]
    assert counts["total"] >= 3  # measured: 7, all towards weaker teachers
    assert counts["to_weaker"] >= 3 * max(counts["to_stronger"], 1)
    assert out.data.corr.shape[:1] == (3,)


def test_fig12_strong_teachers_reach_high_correlation_first(make):
    out = make("12")
    assert_written(out)
    order = out.numbers["order"]["p=1"]
    assert order["median_epoch_strongest"] < order["median_epoch_weakest"]  # measured: 2 vs 16
    assert order["spearman"] > 0.6  # measured: 0.96
    assert order["matched_strongest"] == 1.0


def test_fig8_lowest_layer_specializes_first(make):
    out = make("8")
    assert_written(out)
    epochs = out.numbers["snapshot_epochs"]
    mean_best = out.numbers["mean_best_teacher_corr"]
    for e in epochs[1:]:
        layer1, *higher = mean_best[f"epoch {e}"]
        assert layer1 > max(higher) + 0.05, (e, mean_best[f"epoch {e}"])  # measured margin >= 0.13
    points = out.data.points
    assert set(points) >= {"epochs", "best_corr_l1", "fan_out_l3"}
    assert points["fan_out_l1"].shape == (len(epochs), 15)


@pytest.mark.slow
def test_population_flow_and_sgd_start_together_and_both_learn(make):
    out = make("population")
    assert_written(out)
    r = out.data.results
    np.testing.assert_allclose(r["sgd_loss"][:, 0], r["flow_loss"][:, 0], rtol=1e-12)
    np.testing.assert_allclose(r["sgd_angles"][:, 0], r["flow_angles"][:, 0], atol=1e-12)
    assert np.all(r["sgd_loss"][:, -1] < 1e-3 * r["sgd_loss"][:, 0])
    assert np.all(r["flow_loss"][:, -1] < 1e-3 * r["flow_loss"][:, 0])
    assert np.min(out.data.sgd_best_cos[:, -1]) > 0.99 and np.min(out.data.flow_best_cos[:, -1]) > 0.99
    # Gradient flow conserves ||w_j||^2 - ||v_j||^2 (Eqn 8); RK4 keeps it to integration error.
    drift = np.abs(r["flow_balancedness"] - r["flow_balancedness"][:, :1]).max()
    assert drift < 1e-3


def _figures_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "specjax.figures", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)


def test_a_new_figure_is_one_table_row_and_its_functions(make, monkeypatch):
    """docs/design.md: a new figure is a row of figures.table.FIGURES (config, driver, numbers, plot, scales) plus
    its functions; make_figure (and the command line's --figure) read everything from the row."""
    from specjax.figures import cache, table

    make("10")  # the fig9_10 test sweep, computed once per module

    def numbers(cfg, result):
        final = [round(float(np.mean(a["eval_mse"][:, :, -1])), 6) for a in result.arrays]
        return {"final_eval_mse": final}, final

    def plot(data, cfg, prefix):
        fig, ax = plots.plt.subplots()
        ax.plot(data, "o")
        return plots.save(fig, prefix)

    row = table.Figure("mse", "fig9_10", cache.sweep_results, numbers, plot)
    monkeypatch.setattr(table, "FIGURES", (*table.FIGURES, row))
    out = figures.make_figure("mse", make.workdir, "test", progress=None)
    assert_written(out)
    assert not out.computed_now and out.results == make.workdir / "fig9_10-test"  # the shared sweep, loaded
    assert out.paths == [make.workdir / "figmse.png", make.workdir / "figmse.pdf"]
    arrays = make("10").data.arrays
    assert out.numbers["final_eval_mse"] == [round(float(np.mean(a["eval_mse"][:, :, -1])), 6) for a in arrays]
    assert "mse" in table.names()


def test_command_line_reuses_results_and_reports_bad_flags(make):
    make("10")
    done = _figures_cli("--figure=10", "--scale=test", f"--workdir={make.workdir}")
    assert done.returncode == 0, done.stderr
    assert "fig10.png" in done.stdout and "loaded" in done.stdout  # the sweep is not run again
    assert len(done.stdout.splitlines()) == 4 and "{" not in done.stdout  # 3 paths and a summary, no JSON dump
    bad = _figures_cli("--figure=99", f"--workdir={make.workdir}")
    assert bad.returncode == 2 and bad.stderr.count("\n") <= 2 and "figure" in bad.stderr


def test_command_line_refuses_an_output_path_that_is_a_directory(tmp_path):
    (tmp_path / "fig12.png").mkdir()
    done = _figures_cli("--figure=12", "--scale=test", f"--workdir={tmp_path}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "fig12.png" in done.stderr and "directory" in done.stderr
    assert not (tmp_path / "fig12-test").exists()  # refused before any compute


@pytest.mark.slow
def test_a_variant_gets_its_own_files_and_the_command_line_names_it(make):
    base = make("12")
    before = {p: p.read_bytes() for p in (*base.paths, base.numbers_path)}
    cfg = figures.load_config("fig12", "test")
    cfg.epochs = 20
    variant = figures.make_figure("12", make.workdir, "test", progress=None, config=cfg)
    assert variant.variant == "+epochs=20" and variant.results.name == "fig12-test+epochs=20"
    assert [p.name for p in variant.paths] == ["fig12+epochs=20.png", "fig12+epochs=20.pdf"]
    assert variant.data.best.shape[2] == 21 and base.data.best.shape[2] == 51  # evaluations at epochs 0..20 / 0..50
    assert all(p.read_bytes() == content for p, content in before.items())  # the shipped variant is untouched
    done = _figures_cli("--figure=12", "--scale=test", f"--workdir={make.workdir}", "--config.epochs=20")
    assert done.returncode == 0, done.stderr
    assert "fig12+epochs=20.png" in done.stdout and "loaded" in done.stdout  # the variant's own results
    assert all(p.read_bytes() == content for p, content in before.items())
    unknown = _figures_cli("--figure=12", "--scale=test", f"--workdir={make.workdir}", "--config.no_such_field=1")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no_such_field" in unknown.stderr


def test_variant_suffix_names_what_differs():
    shipped = figures.load_config("fig9_10", "test")
    assert figures.variant_suffix(shipped, shipped) == ""
    changed = figures.load_config("fig9_10", "test")
    changed.seeds, changed.lr, changed.teacher_polarity = 2, (0.1,), (1.0, 2.5)
    assert figures.variant_suffix(shipped, changed) == "+lr=0.1+seeds=2+teacher_polarity=1,2.5"
    changed.activation = "a/b"  # not a safe file name: a hash instead
    suffix = figures.variant_suffix(shipped, changed)
    assert len(suffix) == 11 and suffix.startswith("+") and "/" not in suffix


def test_bad_results_are_refused_with_the_file_named(make, tmp_path):
    make("10")
    shutil.copytree(make.workdir / "fig9_10-test", tmp_path / "fig9_10-test")
    results = tmp_path / "fig9_10-test" / "results" / "group0.npz"
    results.write_bytes(results.read_bytes()[:200])
    with pytest.raises(StoreError, match="group0.npz"):
        figures.make_figure("10", tmp_path, "test", progress=None)
    # A folder of the same name holding another config's results is refused, never overwritten.
    (tmp_path / "fig9_10-test" / "config.json").write_text(json.dumps({"config": {"seed": 7}}))
    with pytest.raises(FigureError, match="different config"):
        figures.make_figure("10", tmp_path, "test", progress=None)


# ----------------------------------------------------------------------------------------------------------------
# figure_data on constructed inputs.


def test_expected_fan_out_norms_two_layer_equals_row_norms():
    student = teachers.gaussian_student(jax.random.key(0), (6, 9, 4), 0.7, True, jnp.float64)
    x = jax.random.normal(jax.random.key(1), (64, 6), jnp.float64)
    (norms,) = figure_numbers.expected_fan_out_norms(student, x, chunk=16)
    np.testing.assert_allclose(norms, networks.fan_out_norms(student)[0], rtol=1e-12)


def test_expected_fan_out_norms_deep_equals_jacobian_norms():
    """sqrt(E_x ||v_k(x)||^2) with v_k(x) = d f_L / d f_{l,k}: the Jacobian of the output w.r.t. a hidden activation."""
    student = teachers.gaussian_student(jax.random.key(2), (5, 7, 6, 8, 3), 0.8, True, jnp.float64)
    x = jax.random.normal(jax.random.key(3), (32, 5), jnp.float64)
    norms = figure_numbers.expected_fan_out_norms(student, x, chunk=8)

    def output_from_layer(h, layer, xi):  # replace hidden layer `layer`'s activations by h, keep the gates above
        _, hidden = networks.forward(student, xi)
        f = h
        for l in range(layer + 1, len(student) - 1):
            z = networks.dense(student[l], f)
            f = z * networks.RELU.gate(hidden[l].pre)
        return networks.dense(student[-1], f)

    for layer in range(3):
        jac = jax.vmap(
            lambda xi, layer=layer: jax.jacobian(output_from_layer)(
                networks.forward(student, xi)[1][layer].post, layer, xi
            )
        )(x)  # (N, C, n_l)
        expected = np.sqrt(np.mean(np.sum(np.asarray(jac) ** 2, axis=1), axis=0))
        np.testing.assert_allclose(norms[layer], expected, rtol=1e-10)


def test_first_epoch_above_and_strength_order():
    epochs = np.array([0, 1, 2, 3])
    best = np.array([[0.1, 0.96, 0.99, 0.99], [0.1, 0.2, 0.97, 0.99], [0.1, 0.2, 0.3, 0.4]]).T[None]  # (1, E, 3)
    first = figure_numbers.first_epoch_above(best, epochs, 0.95)
    np.testing.assert_array_equal(first, [[1.0, 2.0, np.inf]])
    stats = figure_numbers.strength_order_stats(best, np.array([[3.0, 2.0, 1.0]]), epochs, group=1)
    assert stats["median_epoch_strongest"] == 1.0 and stats["median_epoch_weakest"] == np.inf
    assert stats["spearman"] == pytest.approx(1.0)
    flipped = figure_numbers.strength_order_stats(best, np.array([[1.0, 2.0, 3.0]]), epochs, group=1)
    assert flipped["spearman"] == pytest.approx(-1.0)


def test_focus_shifts_detects_a_move_to_a_weaker_teacher():
    epochs = np.arange(6)
    corr = np.zeros((6, 2, 2))  # (E, m, n): student 0 leaves teacher 0 for teacher 1; student 1 stays on teacher 0
    corr[:, 0, 0] = [0.1, 0.7, 0.9, 0.9, 0.3, 0.1]
    corr[:, 1, 0] = [0.0, 0.1, 0.2, 0.5, 0.8, 0.95]
    corr[:, 0, 1] = [0.2, 0.8, 0.95, 0.99, 0.99, 0.99]
    shifts = figure_numbers.focus_shifts(corr, epochs)
    assert [(s["student"], s["from_teacher"], s["to_teacher"]) for s in shifts] == [(0, 0, 1)]
    assert shifts[0]["epoch_left"] == 4.0
    counts = figure_numbers.summarize_focus_shifts([shifts], np.array([[2.0, 1.0]]))
    assert counts == {"total": 1, "to_weaker": 1, "to_stronger": 0}


def test_l_shape_stats():
    stats = figure_numbers.l_shape_stats(np.array([0.99, 0.98, 0.3, 0.2]), np.array([1.0, 2.0, 0.1, 0.0]))
    assert stats["specialized"] == 2 and stats["unspecialized"] == 2
    assert stats["fan_out_ratio"] == pytest.approx(0.05 / 1.5)


def test_early_epoch_is_one_constant_fraction_of_training():
    assert plots.EARLY_FRACTION == 0.05
    assert plots.early_epoch(range(101)) == 5  # the paper's Fig. 9: epoch 5 of 100
    assert plots.early_epoch(range(21)) == 1
    assert plots.early_epoch([0, 10, 20, 100]) == 10
    assert plots.early_epoch([0, 100]) is None


def test_unknown_figure_and_scale_are_refused(tmp_path):
    with pytest.raises(FigureError, match="figure"):
        figures.make_figure("6", tmp_path, "test")
    with pytest.raises(FigureError, match="scale"):
        figures.make_figure("7", tmp_path, "huge")
    with pytest.raises(FigureError, match="seeds"):
        figures.make_figure("7", tmp_path, "test", seeds=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="file"):
        figures.make_figure("7", tmp_path / "file", "test")


def test_save_is_atomic_and_names_an_unwritable_path(tmp_path):
    import matplotlib.pyplot as plt

    fig = plt.figure()
    (tmp_path / "old.png").write_bytes(b"old")
    paths = plots.save(fig, tmp_path / "old")
    assert [p.name for p in paths] == ["old.png", "old.pdf"] and paths[0].read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.pdf", "old.png"]  # no temporary file left
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(StoreError, match="dir.png"):
        plots.save(plt.figure(), tmp_path / "dir", formats=("png",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "old.pdf", "old.png"]


def test_figure_files_follow_the_umask(tmp_path):
    """Colleagues on a shared filesystem can open the figures: mode 0o666 & ~umask, not mkstemp's private 0o600."""
    import os
    import stat

    import matplotlib.pyplot as plt

    old = os.umask(0o022)
    try:
        paths = plots.save(plt.figure(), tmp_path / "fig")
    finally:
        os.umask(old)
    assert [stat.S_IMODE(p.stat().st_mode) for p in paths] == [0o644, 0o644]


def _captured_figure(monkeypatch, draw):
    """Runs ``draw()`` with :func:`plots.save` replaced, and returns the matplotlib figure it would have saved."""
    captured = []
    monkeypatch.setattr(plots, "save", lambda fig, prefix, formats=("png", "pdf"): captured.append(fig) or [])
    draw()
    return captured[0]


def test_fig9_coinciding_curves_stay_distinguishable_and_have_interval_bands(monkeypatch):
    from specjax.core import metrics

    groups = []
    for p in (1.0, 1.5, 2.0):  # the first two coincide: every node covered in every seed
        k = np.array([8, 8, 8, 8]) if p < 2 else np.array([8, 6, 3, 1])
        low, high = metrics.wilson_interval(k, 8)
        groups.append(
            {**dict.fromkeys(SWEPT_FIELDS, 0.0), "over_realization": 1, "teacher_polarity": p, "seeds": 8,
             "success_rate": (k / 8).tolist(),
             "success_rate_ci_low": low.tolist(), "success_rate_ci_high": high.tolist(),
             "success_rate_by_eval": [(k / 8).tolist()] * 2}
        )  # fmt: skip
    summary = {"eval_epochs": [0, 10], "threshold": 0.95, "confidence": 0.95, "groups": groups}
    fig = _captured_figure(monkeypatch, lambda: plots.success_rate_figure(summary, "unused"))
    ax = fig.axes[0]
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(solid) == 3
    assert len({line.get_marker() for line in solid}) == 3
    a, b = solid[0].get_xydata(), solid[1].get_xydata()
    np.testing.assert_array_equal(a[:, 1], b[:, 1])  # the same rates ...
    assert np.all(np.abs(a[:, 0] - b[:, 0]) > 0.05)  # ... drawn side by side
    bands = ax.collections
    assert len(bands) == 3  # one Wilson band per curve
    low, high = metrics.wilson_interval(np.array([8, 6, 3, 1]), 8)
    vertices = bands[2].get_paths()[0].vertices
    assert np.isclose(vertices[:, 1].min(), low.min()) and np.isclose(vertices[:, 1].max(), high.max())
    assert "Wilson" in fig._suptitle.get_text()


def test_fig12_weak_teachers_get_distinct_colours_at_polarity_2():
    from specjax.figures import plots_dynamics

    strength = np.arange(1, 11, dtype=float) ** -2.0  # fan-out norms fall like j^-p (Eqn 13)
    colors, _ = plots_dynamics._strength_colors(strength)
    rgb = np.array(colors)[:, :3]
    weakest = rgb[5:]
    gaps = [np.abs(weakest[i] - weakest[i + 1]).max() for i in range(len(weakest) - 1)]
    assert min(gaps) > 0.02, gaps  # linear in strength, the five weakest got one colour (gaps < 0.01)
    assert all(np.abs(rgb[i] - rgb[i + 1]).max() > 0.02 for i in range(9))  # sequential: neighbours differ


@pytest.mark.parametrize(
    "args, message",
    [
        (["--figure=population", "--config.rk4_step_sgd_steps=0"], r"config\.rk4_step_sgd_steps: must be a positive"),
        (["--figure=13", "--config.eval_fraction=1.5"], r"config\.eval_fraction: expected a finite number in \(0, 1\)"),
        (["--figure=9", "--config.lr=-1"], r"config\.lr: values must be > 0, got -1"),
    ],
    ids=["population_rk4_zero", "fig13_eval_fraction", "fig9_negative_lr"],
)
def test_command_line_refuses_a_bad_figure_config_before_creating_anything(tmp_path, args, message):
    workdir = tmp_path / "new"
    done = _figures_cli(*args, "--scale=test", f"--workdir={workdir}")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.count("\n") == 1 and re.search(message, done.stderr), done.stderr
    assert not workdir.exists()


def shipped_config(figure: str, scale: str = "test", **overrides):
    cfg = figures.load_config(table.figure(figure).config, scale)
    for field, value in overrides.items():
        cfg[field] = value
    return cfg


@pytest.mark.parametrize(
    "figure, overrides, message",
    [
        ("population", {"rk4_step_sgd_steps": 0}, r"rk4_step_sgd_steps: must be a positive integer dividing "),
        ("population", {"rk4_step_sgd_steps": -3}, r"rk4_step_sgd_steps: .* got -3$"),
        ("population", {"rk4_step_sgd_steps": 3}, r"rk4_step_sgd_steps: .*dividing steps_per_epoch=50 .* got 3$"),
        ("population", {"use_bias": True}, r"config\.use_bias: must be False"),
        ("population", {"activation": "leaky_relu"}, r"config\.activation: must be 'relu'"),
        ("population", {"optimizer": "adam"}, r"config\.optimizer: must be 'sgd' or 'gd'"),
        ("population", {"over_realization": (1, 2)}, r"config\.over_realization: figure population takes one value"),
        ("population", {"lr": (0.05, 0.1)}, r"config\.lr: figure population takes one value"),
        ("population", {"seeds": 0}, r"config\.seeds: must be an integer >= 1"),
        ("13", {"eval_fraction": 1.5}, r"config\.eval_fraction: expected a finite number in \(0, 1\), got 1\.5$"),
        ("13", {"eval_fraction": float("nan")}, r"config\.eval_fraction: expected a finite number"),
        ("13", {"eval_fraction": 0.0005}, r"config\.eval_fraction: .*holds out 1 of the 1797 digits"),
        ("13", {"batch_size": 5000}, r"config\.batch_size: 5000 is larger than the 1438 training digits"),
        (
            "13",
            {"student_learning_rate": -1.0},
            r"config\.student_learning_rate: expected a finite number in \(0, inf\)",
        ),
        ("13", {"teacher_learning_rate": float("inf")}, r"config\.teacher_learning_rate: expected a finite number"),
        ("13", {"student_momentum": 1.0}, r"config\.student_momentum: expected a finite number in \[0, 1\)"),
        (
            "13",
            {"teacher_channel_sparsity": -0.1},
            r"config\.teacher_channel_sparsity: expected a finite number in \[0",
        ),
        ("13", {"prune_min_relative_strength": 2.0}, r"config\.prune_min_relative_strength: .*\[0, 1\]"),
        ("13", {"prune_ratios": (0.5,)}, r"config\.prune_ratios: expected None or 3 fractions"),
        ("13", {"prune_ratios": (0.5, 1.0, 0.2)}, r"config\.prune_ratios: fractions must be in \[0, 1\)"),
        ("13", {"num_seeds": 0}, r"config\.num_seeds: expected an integer >= 1, got 0"),
        ("13", {"student_epochs": -1}, r"config\.student_epochs: expected an integer >= 0"),
        ("13", {"seed": -1}, r"config\.seed: expected an integer in \[0, 2\*\*32\)"),
        ("9", {"lr": (-1.0,)}, r"config\.lr: values must be > 0"),
        ("9", {"lr": (0.01, 0.02)}, r"config\.lr: figure 9 takes one value \(only over_realization and teacher_pol"),
        ("7", {"init_scale": (0.1, 0.2)}, r"config\.init_scale: figure 7 takes one value"),
        ("10", {"data_std": (1.0, 2.0)}, r"config\.data_std: figure 10 takes one value"),
        ("12", {"over_realization": (1, 5)}, r"config\.over_realization: figure 12 takes one value"),
        ("11", {"teacher_polarity": (1.0, 2.0)}, r"config\.teacher_polarity: figure 11 takes one value \(it draws one"),
        ("11", {"teacher": "deep"}, r"config\.teacher: figure 11 draws a 'two_layer' teacher, got 'deep'"),
        ("8", {"teacher": "two_layer"}, r"config\.teacher: figure 8 draws a 'deep' teacher"),
    ],
)
def test_bad_figure_configs_are_refused_before_anything_is_created(tmp_path, figure, overrides, message):
    workdir = tmp_path / "new"
    with pytest.raises(ConfigError, match=message):
        figures.make_figure(figure, workdir, "test", progress=None, config=shipped_config(figure, **overrides))
    assert not workdir.exists()


def test_fig13_on_missing_cifar_files_is_refused_before_anything_is_created(tmp_path):
    directory = tmp_path / "cifar"
    directory.mkdir()
    cfg = shipped_config("13", "cifar10", data_directory=str(directory))
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        figures.make_figure("13", tmp_path / "new", "cifar10", progress=None, config=cfg)
    assert not (tmp_path / "new").exists()
    cfg.data_directory = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        figures.make_figure("13", tmp_path / "new", "cifar10", progress=None, config=cfg)
    assert not (tmp_path / "new").exists()


def test_fig13_on_a_corrupt_cifar_file_is_one_store_error_and_leaves_no_results_folder(tmp_path):
    directory = tmp_path / "cifar"
    directory.mkdir()
    for name in (*images.CIFAR10_TRAIN_BATCHES, images.CIFAR10_TEST_BATCH):
        data = np.zeros((2, 3072), np.uint8)
        (directory / name).write_bytes(pickle.dumps({b"data": data, b"labels": [0, 1]}, protocol=2))
    (directory / "data_batch_2").write_bytes(b"\x80\x02}q\x00(U\x04data")  # a pickle cut short
    cfg = shipped_config("13", "cifar10", data_directory=str(directory))
    workdir = tmp_path / "out"
    with pytest.raises(StoreError, match=rf"^{directory / 'data_batch_2'}: not a CIFAR-10 python batch \(") as info:
        figures.make_figure("13", workdir, "cifar10", progress=None, config=cfg)
    assert "\n" not in str(info.value)
    assert list(workdir.iterdir()) == []  # the results folder, holding only its lock, was removed


@pytest.mark.slow
def test_population_flow_divergence_is_one_line_naming_the_rk4_step(tmp_path):
    cfg = shipped_config("population", rk4_step_sgd_steps=50, epochs=4)  # one RK4 step per 50 SGD steps' time
    with pytest.raises(SpecjaxError, match=r"^config\.rk4_step_sgd_steps: the population flow diverged \(") as info:
        figures.make_figure("population", tmp_path, "test", progress=None, config=cfg)
    assert "\n" not in str(info.value) and "smaller rk4_step_sgd_steps (now 50)" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no results folder left behind
