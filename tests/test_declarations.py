"""docs/design.md's "where does my change go" table, followed literally: each row is done in a copy of the package
and the result is run. Also: the tables generated from a declaration (docs/cli.md's swept fields) match it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import CLI_ENV, ROOT

from specjax import config as config_lib
from specjax.engine import run as run_lib


def package_copy(tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the ``specjax`` package under ``tmp_path`` with ``edits`` applied: per file (relative to the package)
    a list of ``(old, new)`` replacements, each of text that occurs exactly once. Returns the folder to put on
    ``PYTHONPATH``."""
    shutil.copytree(ROOT / "specjax", tmp_path / "specjax", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, replacements in edits.items():
        path = tmp_path / "specjax" / rel
        text = path.read_text()
        for old, new in replacements:
            assert text.count(old) == 1, (rel, old)
            text = text.replace(old, new)
        path.write_text(text)
    return tmp_path


def run_in_copy(root: Path, code: str, timeout: float = 300) -> dict:
    """Runs ``code`` in a fresh interpreter that imports the package copy at ``root``; its last stdout line is JSON."""
    env = {**CLI_ENV, "PYTHONPATH": str(root), "JAX_ENABLE_X64": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cli_md_table_of_swept_fields_is_the_declaration():
    text = (ROOT / "docs" / "cli.md").read_text()
    begin, end = "<!-- swept fields: begin -->\n", "<!-- swept fields: end -->"
    table = text[text.index(begin) + len(begin) : text.index(end)]
    assert table == config_lib.swept_fields_markdown(), "regenerate it with specjax.config.swept_fields_markdown()"
    assert [f.name for f in run_lib.SWEPT] == list(config_lib.SWEPT_FIELDS)


def test_every_swept_derivation_reads_the_declaration():
    names = tuple(f.name for f in run_lib.SWEPT)
    assert run_lib.Hparams._fields == names == tuple(run_lib.HPARAM_DEFAULTS) == tuple(run_lib.HPARAM_LABELS)
    cfg = config_lib.default_config()
    for f in run_lib.SWEPT:
        assert cfg[f.name] == (f.default,) and f.doc in run_lib.Hparams.__doc__
    assert config_lib.settings_grid(cfg) == [run_lib.Hparams(*(f.default for f in run_lib.SWEPT))]


#: The last row of the declaration table, after which the tests add one.
LAST_SWEPT_ROW = (
    '    SweptField("weight_decay", 0.0, "wd", "weight decay", 0.0, True, "decoupled weight decay rate (0 = none)"),\n'
)
STEP_GRADIENT = "        loss, grads = loss_and_grad(spec, state.student, x, y)\n"


def test_a_new_swept_field_is_one_row_and_its_use_in_the_step(tmp_path):
    """docs/design.md: a new swept field is a row of engine.run.SWEPT and its use in the step; the config, its
    validation, the settings grid, the results, the named views and the labels follow."""
    root = package_copy(
        tmp_path,
        {
            "engine/run.py": [
                (
                    LAST_SWEPT_ROW,
                    LAST_SWEPT_ROW
                    + '    SweptField("grad_scale", 1.0, "gs", "gradient scale", 0.0, False, "gradient factor"),\n',
                ),
                (STEP_GRADIENT, STEP_GRADIENT + "        grads = jax.tree.map(lambda g: g * hp.grad_scale, grads)\n"),
            ]
        },
    )
    out = run_in_copy(
        root,
        f"""
        import json, numpy as np
        from specjax import config, sweep
        from specjax.engine import HPARAM_LABELS
        from specjax.errors import ConfigError
        import importlib.util
        spec = importlib.util.spec_from_file_location("tiny", {str(ROOT / "experiments/configs/tiny.py")!r})
        tiny = importlib.util.module_from_spec(spec); spec.loader.exec_module(tiny)
        cfg = tiny.get_config()
        default = config.default_config().grad_scale
        cfg.over_realization, cfg.teacher_polarity, cfg.lr, cfg.seeds = (1,), (0.0,), (0.05,), 1
        cfg.epochs, cfg.steps_per_epoch, cfg.snapshot_epochs = 1, 20, ()
        cfg.grad_scale = (0.0,)
        try:
            config.validate(cfg)
            refusal = ""
        except ConfigError as e:
            refusal = str(e)
        cfg.grad_scale = (1.0, 0.5)
        result = sweep.run_sweep(cfg, progress=None)
        a = result.arrays[0]
        ds = result.to_xarray()
        run = result.run(seed=0, grad_scale=0.5)
        print(json.dumps(dict(
            default=list(default), refusal=refusal, values=a["grad_scale"].tolist(),
            train_loss=a["train_loss"][:, 0, -1].tolist(), dims=list(ds.sizes), run=run.settings["grad_scale"],
            long_name=ds["grad_scale"].attrs.get("long_name"),
            label=HPARAM_LABELS["grad_scale"], table=config.swept_fields_markdown(),
        )))
        """,
    )
    assert out["default"] == [1.0]
    assert out["refusal"] == "config.grad_scale: values must be > 0, got 0.0"
    assert out["values"] == [1.0, 0.5]
    assert out["train_loss"][0] != out["train_loss"][1]  # the field reached the step
    assert "grad_scale" in out["dims"] and out["run"] == 0.5 and out["label"] == "gs"
    assert out["long_name"] == "gradient scale"
    assert "| `grad_scale` | (1.0,) | > 0 | gs | gradient factor |" in out["table"]


SCHEMA_TABLE = "ARRAYS: tuple[ArraySpec, ...] = (\n"
NEW_METRIC_ROW = (
    '    ArraySpec("eval_max_error", (*S_N, "eval"), "f", meaning="largest absolute output error", evaluated=True),\n'
)


def test_a_new_metric_touches_two_files(tmp_path):
    """docs/design.md: a new recorded quantity is an entry of engine.run.evaluate's dict and a row of the schema;
    recording, checkpoints, results, load_results, the named views and the preflight follow."""
    root = package_copy(
        tmp_path,
        {
            "engine/run.py": [
                ('        "corr": corr,\n', '        "corr": corr,\n        "eval_max_error": jnp.max(jnp.abs(r)),\n')
            ],
            "sweep/schema.py": [(SCHEMA_TABLE, SCHEMA_TABLE + NEW_METRIC_ROW)],
        },
    )
    out = run_in_copy(
        root,
        f"""
        import json, numpy as np
        from specjax import sweep, store
        from specjax.sweep import preflight, plan
        import importlib.util
        spec = importlib.util.spec_from_file_location("tiny", {str(ROOT / "experiments/configs/tiny.py")!r})
        tiny = importlib.util.module_from_spec(spec); spec.loader.exec_module(tiny)
        cfg = tiny.get_config()
        cfg.over_realization, cfg.teacher_polarity, cfg.lr, cfg.seeds = (1,), (0.0,), (0.05,), 2
        cfg.epochs, cfg.steps_per_epoch, cfg.snapshot_epochs = 2, 20, ()
        plans = plan.plan_groups(cfg, 1, False)
        sweep.run_sweep(cfg, "wd", progress=None)
        ckpt = store.load_npz(next(iter(sorted(__import__("pathlib").Path("wd/checkpoints").glob("*.npz")))))
        result = sweep.load_results("wd")
        a = result.arrays[0]
        print(json.dumps(dict(
            shape=list(a["eval_max_error"].shape), finite=bool(np.isfinite(a["eval_max_error"]).all()),
            ckpt="history/eval_max_error" in ckpt, recorded=[str(n) for n in ckpt["recorded"]],
            xarray="eval_max_error" in result.to_xarray(), frame="eval_max_error" in result.to_dataframe(),
            history_bytes=preflight.history_bytes_per_run(cfg, plans[0]),
        )))
        """,
    )
    assert out["shape"] == [1, 2, 3] and out["finite"]  # (settings, seeds, evaluations at epochs 0, 1, 2)
    assert out["ckpt"] and "eval_max_error" in out["recorded"]
    assert out["xarray"] and out["frame"]
    # 5 scalars, best_teacher (3) + best_student (3) + fan-out (3) per evaluation; corr 3x3 and the student
    # (8x3+3 + 3x4+4) at the 2 snapshot epochs (0 and 2); 8 bytes each.
    assert out["history_bytes"] == 8 * (3 * (5 + 9) + 2 * (9 + 43))


def test_a_checkpoint_of_another_metric_set_is_refused_by_name(tmp_path, monkeypatch):
    from helpers import small_config

    from specjax.errors import StoreError
    from specjax.sweep import checkpoint, plan, schema

    cfg = small_config()
    p = plan.plan_groups(cfg, 1, False)[0]
    layout = checkpoint.checkpoint_layout(p, p.waves[0])
    path = tmp_path / "c.npz"
    checkpoint.save_checkpoint(path, [], checkpoint.History(), 0, None, False, "sweep", layout)
    z = checkpoint.store.load_npz(path)
    checkpoint.check_identity(path, z, "sweep", layout)
    row = schema.ArraySpec("eval_max_error", (*schema.S_N, "eval"), "f", evaluated=True)
    monkeypatch.setattr(schema, "ARRAYS", (*schema.ARRAYS, row))
    with pytest.raises(StoreError, match=r"c\.npz: checkpoint records .* \(missing \['eval_max_error'\], extra \[\]\)"):
        checkpoint.check_identity(path, z, "sweep", layout)


def test_one_threshold_per_meaning():
    """docs/theory.md's thresholds: the group analysis and the figures count specialized students with the same
    constants, and no module spells a threshold's number instead of its name (float literals in code, docstrings
    aside: 0.95, the match threshold and the confidence, lives in specjax/core/metrics.py only)."""
    import ast

    import numpy as np

    from specjax.core import metrics
    from specjax.figures import numbers
    from specjax.sweep import analysis

    corr = np.array([0.99, 0.93, 0.85, 0.7, 0.5, 0.2])
    fan_out = np.arange(1.0, 7.0)
    pooled, per_run = numbers.l_shape_stats(corr, fan_out), analysis.l_shape_stats(corr, fan_out)
    for k in ("specialized", "unspecialized", "median_fan_out_specialized", "median_fan_out_unspecialized"):
        assert pooled[k] == per_run[k], k
    assert pooled["specialized"] == np.sum(corr > metrics.SPECIALIZED_ABOVE) == 2
    assert pooled["unspecialized"] == np.sum(corr < metrics.UNSPECIALIZED_BELOW) == 3
    spelled = []
    for path in (ROOT / "specjax").rglob("*.py"):
        if path == ROOT / "specjax" / "core" / "metrics.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == 0.95 and isinstance(node.value, float):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert spelled == []
