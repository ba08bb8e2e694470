"""The tiny config end to end through the command line, and the library call behind it."""

import json

import numpy as np
from helpers import TINY, run_module

from specjax import store


def test_tiny_config_through_the_cli(tmp_path):
    wd = tmp_path / "wd"
    proc = run_module("specjax.sweep", [f"--config={TINY}", f"--workdir={wd}", "--config.epochs=2"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Warning" not in proc.stderr, proc.stderr[-2000:]  # e.g. runpy's RuntimeWarning on start-up
    assert "run-steps/s" in proc.stdout and "ETA" in proc.stdout
    summary = json.loads((wd / "summary.json").read_text())
    # 2 over-realizations x 2 polarities x 2 learning rates.
    assert len(summary["groups"]) == 8
    g = summary["groups"][0]
    for key in (
        "over_realization",
        "teacher_polarity",
        "seeds",
        "success_rate",
        "success_rate_by_eval",
        "success_rate_by_threshold",
        "eval_loss",
    ):
        assert key in g
    assert sorted(g["success_rate_by_threshold"], key=float) == ["0.5", "0.6", "0.7", "0.8", "0.9", "0.95"]
    assert len(g["success_rate"]) == 3 and len(g["success_rate_by_eval"]) == 3 and len(g["eval_loss"]) == 3
    cfg = json.loads((wd / "config.json").read_text())
    assert cfg["config"]["epochs"] == 2 and "jax" in cfg["versions"] and "git_commit" in cfg
    arrays = store.load_npz(wd / "results" / "group1.npz")
    assert arrays["best_teacher_corr_l1"].shape == (4, 3, 3, 3)  # (settings, seeds, evals, m)
    assert arrays["corr_l1"].shape == (4, 3, 2, 3, 6)  # snapshots: epoch 0 and the last (= the extra 2)
    assert (wd / "success_rate.png").stat().st_size > 10_000 and (wd / "success_rate.pdf").exists()
    assert np.all(np.isfinite(arrays["eval_loss"]))
