"""Named results: the xarray Dataset, the pandas table and single runs match the positional arrays exactly."""

import jax
import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("pandas")

from specjax import sweep  # noqa: E402
from specjax.config import default_config  # noqa: E402
from specjax.core import metrics  # noqa: E402
from specjax.engine import Hparams, Spec, init_run, make_mesh  # noqa: E402
from specjax.errors import ArgumentError, SpecjaxError  # noqa: E402
from specjax.sweep import analysis, named  # noqa: E402


def small_config():
    cfg = default_config()
    cfg.d, cfg.m, cfg.c = 6, 3, 2
    cfg.over_realization = (1, 2)
    cfg.teacher_polarity = (0.0, 1.0)
    cfg.lr = (0.05, 0.1)
    cfg.seeds = 3
    cfg.n_train, cfg.n_eval = 64, 40
    cfg.batch_size = 8
    cfg.epochs, cfg.steps_per_epoch = 2, 20
    cfg.init_scale = (0.1,)
    cfg.runs_per_block = 4
    return cfg


@pytest.fixture(scope="module")
def result():
    return sweep.run_sweep(small_config(), None, progress=None, mesh=make_mesh(1))


def test_xarray_dataset_has_named_dimensions_and_the_positional_values(result):
    ds = result.to_xarray()
    for dim in ("over_realization", "teacher_polarity", "lr", "data_std", "init_scale", "seed", "epoch"):
        assert dim in ds.dims
    assert "momentum" not in ds.coords and "teacher_widths" not in ds.attrs  # SGD, two-layer teacher: irrelevant
    assert list(ds.teacher_polarity.values) == [0.0, 1.0] and list(ds.lr.values) == [0.05, 0.1]
    assert list(ds.epoch.values) == [0, 1, 2]
    # group 1 (x2), setting (p=1.0, lr=0.05) is setting index 2 (last field fastest), seed 1, last evaluation
    a = result.arrays[1]
    s = 2
    picked = ds.eval_loss.sel(over_realization=2, teacher_polarity=1.0, lr=0.05, seed=1, epoch=2).squeeze()
    assert float(picked) == a["eval_loss"][s, 1, -1]
    btc = ds.best_teacher_corr_l1.sel(over_realization=2, teacher_polarity=1.0, lr=0.05, seed=1).squeeze()
    np.testing.assert_array_equal(btc.values, a["best_teacher_corr_l1"][s, 1])
    # students padded with NaN to the widest group: x1 has 3 students, x2 has 6
    fo = ds.fan_out_norm_l1.sel(over_realization=1).squeeze()
    assert ds.sizes["student_l1"] == 6 and np.isnan(fo.values[..., 3:]).all() and np.isfinite(fo.values[..., :3]).all()
    assert "meaning" in ds.eval_mse.attrs and ds.attrs["sweep_id"] == str(a["sweep_id"])
    assert not ds.diverged.values.any()


def test_dataframe_has_one_row_per_run_and_evaluation(result):
    df = result.to_dataframe()
    assert len(df) == 2 * 4 * 3 * 3  # groups x settings x seeds x evaluations
    row = df[(df.over_realization == 1) & (df.teacher_polarity == 0.0) & (df.lr == 0.1) & (df.seed == 2)]
    row = row[row.epoch == 2].iloc[0]
    a = result.arrays[0]
    assert row.eval_mse == a["eval_mse"][1, 2, -1] and row.eval_loss == a["eval_loss"][1, 2, -1]
    best = a["best_teacher_corr_l1"][1, 2, -1]
    for t in metrics.THRESHOLDS:
        assert row[f"success_rate_{t:g}"] == np.mean(best > t)
    assert not row.diverged


def test_run_view_gives_teacher_students_and_the_eval_inputs_training_saw(result):
    cfg = result.config
    view = result.run(seed=2, over_realization=2, teacher_polarity=1.0, lr=0.1)
    a = result.arrays[1]
    s = 3
    np.testing.assert_array_equal(view.teacher[0][0], a["teacher_W_l1"][s, 2])
    np.testing.assert_array_equal(view.student()[1][0], a["student_W_l2"][s, 2, -1])
    np.testing.assert_array_equal(view.student(0)[0][1], a["student_b_l1"][s, 2, 0])
    spec = Spec.from_config(cfg, 2)
    assert view.spec == spec and view.settings["lr"] == 0.1 and view.settings["seed"] == 2
    hp = Hparams(*(jax.numpy.asarray(view.settings[f]) for f in Hparams._fields))
    _, data, _ = init_run(spec, hp, view.key)
    np.testing.assert_array_equal(np.asarray(view.eval_inputs()), np.asarray(data.x_eval))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": 0, "over_realization": 3, "teacher_polarity": 0.0, "lr": 0.1}, "over_realization: 3 is not in"),
        ({"seed": 5, "over_realization": 1, "teacher_polarity": 0.0, "lr": 0.1}, "seed: 5 is out of range"),
        ({"seed": 0, "over_realization": 1, "lr": 0.1}, "teacher_polarity: the sweep holds"),
        ({"seed": 0, "over_realization": 1, "teacher_polarity": 0.0, "lr": 0.1, "depth": 2}, "unknown setting"),
    ],
)
def test_run_selection_refuses_what_the_sweep_does_not_hold(result, kwargs, message):
    with pytest.raises(SpecjaxError, match=message):
        result.run(**kwargs)
    with pytest.raises(SpecjaxError, match="not a snapshot epoch"):
        result.run(seed=0, over_realization=1, teacher_polarity=0.0, lr=0.1).student(1)


RUN = {"over_realization": 1, "teacher_polarity": 0.0, "lr": 0.1}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.run(1.5, **RUN), r"seed: expected an integer \(a seed index 0\.\.2\), got 1\.5$"),
        (lambda r: r.run(True, **RUN), r"seed: expected an integer \(a seed index 0\.\.2\), got True$"),
        (lambda r: r.run("0", **RUN), r"seed: expected an integer .*, got '0'$"),
        (lambda r: r.run(-1, **RUN), r"seed: -1 is out of range; the sweep has seeds 0\.\.2$"),
        (lambda r: r.run(10**300, **RUN), r"seed: 1000.*\.\.\. is out of range; the sweep has seeds 0\.\.2$"),
        (lambda r: r.run(0, **{**RUN, "lr": "abc"}), r"lr: expected a number \(one of \[0\.05, 0\.1\]\), got 'abc'$"),
        (
            lambda r: r.run(0, **{**RUN, "lr": [0.1]}),
            r"lr: expected a number \(one of \[0\.05, 0\.1\]\), got \[0\.1\]$",
        ),
        (lambda r: r.run(0, **{**RUN, "lr": float("nan")}), r"lr: expected a number .*, got nan$"),
        (
            lambda r: r.run(0, **{**RUN, "over_realization": None}),
            r"over_realization: expected a number \(one of \[1, 2\]\)",
        ),
        (
            lambda r: r.run(0, **RUN).student(2.7),
            r"epoch: expected an integer \(a snapshot epoch, one of \[0, 2\]\), got 2\.7$",
        ),
        (lambda r: r.run(0, **RUN).student("last"), r"epoch: expected an integer .*, got 'last'$"),
        (
            lambda r: r.analyze(1, samples=1),
            r"samples: 1 is out of range \(evaluation inputs 2\.\.40; a correlation needs two\)$",
        ),
        (lambda r: r.analyze(1, samples=-5), r"samples: -5 is out of range \(evaluation inputs 2\.\.40"),
        (lambda r: r.analyze(1, samples=0), r"samples: 0 is out of range"),
        (lambda r: r.analyze(1, samples=41), r"samples: 41 is out of range"),
        (lambda r: r.analyze(1, samples=2.5), r"samples: expected an integer \(evaluation inputs 2\.\.40.*got 2\.5$"),
        (
            lambda r: r.analyze(1, epoch=2.7),
            r"epoch: expected an integer \(a snapshot epoch, one of \[0, 2\]\), got 2\.7$",
        ),
        (lambda r: r.analyze(1, epoch=float("nan")), r"epoch: expected an integer .*, got nan$"),
        (lambda r: r.analyze(1.5), r"over_realization: expected an integer \(one of \[1, 2\]\), got 1\.5$"),
        (lambda r: r.analyze("1"), r"over_realization: expected an integer .*, got '1'$"),
        (lambda r: r.analyze(3), r"over_realization: 3 is not in the sweep; its values are \[1, 2\]$"),
        (lambda r: analysis.analyze_group(r, 1, threshold=float("nan")), r"threshold: expected a number .*got nan$"),
        (
            lambda r: analysis.analyze_group(r, 1, threshold=2),
            r"threshold: 2\.0 is out of range \(a correlation in \[-1, 1\]\)$",
        ),
    ],
    ids=[
        "run_seed_float",
        "run_seed_bool",
        "run_seed_str",
        "run_seed_negative",
        "run_seed_huge",
        "run_lr_str",
        "run_lr_list",
        "run_lr_nan",
        "run_group_none",
        "student_epoch_float",
        "student_epoch_str",
        "analyze_samples_1",
        "analyze_samples_negative",
        "analyze_samples_0",
        "analyze_samples_above_n_eval",
        "analyze_samples_float",
        "analyze_epoch_float",
        "analyze_epoch_nan",
        "analyze_group_float",
        "analyze_group_str",
        "analyze_group_absent",
        "analyze_threshold_nan",
        "analyze_threshold_above_1",
    ],
)
def test_run_and_analyze_refuse_bad_arguments_naming_them_and_their_valid_values(result, call, message):
    with pytest.raises(ArgumentError, match=message) as info:
        call(result)
    assert "\n" not in str(info.value)


def test_run_and_analyze_accept_integral_numbers_of_any_type(result):
    """2.0, NumPy integers and 0-d arrays (what ``ds.seed[1].values`` gives) select like plain ints."""
    view = result.run(np.array(1), over_realization=np.int64(2), teacher_polarity=np.float64(1.0), lr=0.1)
    assert view.settings["seed"] == 1 and view.settings["over_realization"] == 2
    np.testing.assert_array_equal(view.student(2.0)[0][0], view.student()[0][0])
    group = result.analyze(2.0, epoch=np.int64(2), samples=np.int32(20))
    assert group.over_realization == 2 and group.epoch == 2


def test_missing_extra_is_named(result, monkeypatch):
    real = named.importlib.import_module

    def fake(name):
        if name == "xarray":
            raise ImportError(name)
        return real(name)

    monkeypatch.setattr(named.importlib, "import_module", fake)
    with pytest.raises(SpecjaxError, match=r"specjax\[analysis\]"):
        result.to_xarray()


@pytest.mark.slow
def test_group_analysis_is_every_run_analysed_at_once_and_equals_one_run(result):
    from specjax.sweep.analysis import analyze_group
    from specjax.theory import reports

    group = analyze_group(result, over_realization=2)
    assert group.epoch == 2 and len(group.settings) == 4
    assert group.runs.theorem3.fan_out.shape == (4, 3, 6) and group.runs.theorem3.loss_change.shape == (4, 3)
    stats = group.l_shape_stats[1]
    assert stats["specialized"].shape == (4, 3)
    assert (stats["specialized"] + stats["unspecialized"] <= 6).all()
    view = result.run(seed=1, over_realization=2, teacher_polarity=1.0, lr=0.05)  # setting 2
    one = reports.analyze_run(view.student(), view.teacher, view.eval_inputs(), view.spec.activation)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(group.runs), strict=True):
        np.testing.assert_allclose(np.asarray(b)[2, 1], np.asarray(a), rtol=1e-12, atol=1e-12)
    spec_student = np.asarray(one.l_shape[0].specialization)
    assert stats["specialized"][2, 1] == int((spec_student > 0.95).sum())
    with pytest.raises(SpecjaxError, match="not a snapshot epoch"):
        result.analyze(over_realization=2, epoch=1)


def test_analyze_returns_a_dataset_with_the_coordinates_of_to_xarray(result):
    from specjax.sweep.analysis import analyze_group

    ds, full = result.analyze(over_realization=2), result.to_xarray()
    for dim in ("over_realization", "teacher_polarity", "lr", "data_std", "init_scale", "weight_decay", "seed"):
        assert ds[dim].dims == (dim,) and ds[dim].attrs == full[dim].attrs
        assert list(ds[dim].values) == (list(full[dim].values) if dim != "over_realization" else [2])
    assert "momentum" not in ds.dims and int(ds.epoch) == 2
    group = analyze_group(result, over_realization=2)
    picked = ds.sel(over_realization=2, teacher_polarity=1.0, lr=0.05, seed=1).squeeze()  # setting 2, seed 1
    assert float(picked.theorem3_loss_change) == group.runs.theorem3.loss_change[2, 1]
    np.testing.assert_array_equal(picked.theorem3_fan_out.values, group.runs.theorem3.fan_out[2, 1])
    np.testing.assert_array_equal(picked.matched_student.values, group.runs.matched_student[2, 1])
    np.testing.assert_array_equal(picked.theorem5_sin_angle.values, group.runs.theorem5.sin_angle[2, 1])
    assert int(picked.unspecialized_l1) == group.l_shape_stats[1]["unspecialized"][2, 1]
    assert ds.theorem3_fan_out.dims[-1] == "student_l1" and ds.theorem5_correlation.dims[-1] == "teacher_l1"
    every = result.analyze()  # every group: students NaN-padded to the widest, as in to_xarray
    assert list(every.over_realization.values) == [1, 2] and every.sizes["student_l1"] == 6
    narrow = every.specialization_l1.sel(over_realization=1).values
    assert np.isnan(narrow[..., 3:]).all() and np.isfinite(narrow[..., :3]).all()
    for name, var in every.data_vars.items():
        assert var.attrs.get("long_name"), name


def test_dataset_success_and_intervals_and_plot_labels(result):
    import matplotlib

    matplotlib.use("Agg")
    ds = result.to_xarray()
    assert list(ds.threshold.values) == list(metrics.THRESHOLDS)
    a = result.arrays[1]
    hit = a["best_teacher_corr_l1"][2, :, -1] > 0.9  # (seeds, m), setting 2 of group x2
    one = {"over_realization": 2, "teacher_polarity": 1.0, "lr": 0.05}
    run = ds.success_l1.sel(**one, threshold=0.9).isel(epoch=-1)
    np.testing.assert_array_equal(run.squeeze().values, hit.astype(float))
    rate = ds.success_rate_l1.sel(**one, threshold=0.95).isel(epoch=-1)
    summary_group = result.summary["groups"][4 + 2]
    np.testing.assert_allclose(rate.squeeze().values, summary_group["success_rate"])
    low = ds.success_rate_low_l1.sel(**one, threshold=0.95).isel(epoch=-1)
    np.testing.assert_allclose(low.squeeze().values, summary_group["success_rate_ci_low"])
    # CF attributes: xarray's plots label axes "long_name [units]"; inapplicable fields stay out of titles
    line = ds.eval_mse.sel(**one, seed=1).squeeze().plot()[0]
    assert line.axes.get_xlabel() == "epoch" and line.axes.get_ylabel().startswith("evaluation MSE")
    title = line.axes.get_title()
    assert "momentum" not in title and "teacher_polarity = 1.0" in title
    mesh = ds.success_rate_l1.sel(threshold=0.95, lr=0.05).isel(epoch=-1, over_realization=1).squeeze().plot()
    assert {mesh.axes.get_xlabel(), mesh.axes.get_ylabel()} == {"teacher polarity p", "teacher node (layer 1)"}
    matplotlib.pyplot.close("all")


def test_a_float64_sweep_loads_without_x64(tmp_path):
    """A notebook that has not switched x64 on still reads a float64 sweep (the schema check traces shapes only)."""
    import subprocess
    import sys

    from helpers import ROOT

    wd = tmp_path / "wd"
    sweep.run_sweep(small_config(), wd, progress=None, mesh=make_mesh(1))
    code = (
        f"import jax, specjax; r = specjax.load_results({str(wd)!r}); print(jax.config.jax_enable_x64, len(r.arrays))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "2"]


def test_summary_holds_wilson_intervals_of_each_setting(result):
    from scipy.stats import binomtest

    assert result.summary["confidence"] == metrics.CONFIDENCE == 0.95
    g = result.summary["groups"][5]  # group x2, setting 1
    a = result.arrays[1]
    covered = (a["best_teacher_corr_l1"][1, :, -1] > metrics.MATCH_THRESHOLD).sum(0)  # (m,) seeds covering node j
    assert g["valid_seeds"] == 3
    for j, k in enumerate(covered):
        ci = binomtest(int(k), 3).proportion_ci(method="wilson")
        assert np.isclose(g["success_rate_ci_low"][j], ci.low) and np.isclose(g["success_rate_ci_high"][j], ci.high)
    widest = max(h - l for l, h in zip(g["success_rate_ci_low"], g["success_rate_ci_high"], strict=True)) / 2
    assert g["success_rate_ci_half_width"] == widest


def test_correlation_matrices_are_kept_in_the_sweeps_dtype(result):
    """corr_l<l> is recorded in the sweep's dtype (float64 here), so its max over students is the recorded best
    teacher correlation bit for bit (a float32 copy was 1-3e-8 off)."""
    for a in result.arrays:
        assert a["corr_l1"].dtype == a["eval_loss"].dtype == np.float64
        evals = [list(a["eval_epochs"]).index(e) for e in a["corr_epochs"]]
        np.testing.assert_array_equal(a["corr_l1"].max(axis=-1), a["best_teacher_corr_l1"][:, :, evals])
