"""One report per sweep: a self-contained HTML page of a finished sweep's workdir.

    python -m specjax.report --workdir=runs/quickstart [--out=report.html]     # or the specjax-report script

:func:`build_report` reads the workdir (:func:`specjax.sweep.load_results`, ``config.json``'s provenance and
layout, ``metrics.jsonl``) and returns one HTML page that needs nothing else: the figures are embedded as base64
PNG, the style is inline, there is no script and no external link. Sections: provenance (specjax, Python, JAX and
NumPy versions, git commit, platform and devices the sweep ran on, when it started and finished, when the report
was made), the config (swept fields first), the plan (shape groups, settings, seeds, runs, student widths, blocks
and waves as recorded), the figures (success rate per teacher node with its Wilson bands, the paper's Fig. 9
layout; evaluation MSE over epochs, Fig. 10), the per-setting table (success rate per teacher node with its 95 %
Wilson interval, the widest half-width, valid and diverged seeds, median evaluation loss) and divergence (every
diverged run: setting, seed, step). :func:`write_report` writes it atomically (``<workdir>/report.html`` by
default).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import importlib.metadata
import tempfile
from pathlib import Path

import numpy as np

from specjax import config as config_lib
from specjax import store
from specjax.core import metrics
from specjax.errors import StoreError

__all__ = ["build_report", "write_report", "REPORT_NAME"]

#: The report's file name in the workdir when no ``out`` is given.
REPORT_NAME = "report.html"
#: Diverged runs listed one by one (the rest are counted).
MAX_DIVERGED_LISTED = 50

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wide { color: #a33; } img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 0.85em; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """An HTML table; cells are given already escaped."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _date(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _png(path: Path) -> str:
    return f'<img alt="{_e(path.stem)}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def load_finished(workdir: str | Path):
    """The finished sweep in ``workdir`` and its ``config.json`` content.

    Raises:
      StoreError: the folder does not exist or holds no finished sweep (one line saying why).
    """
    from specjax.sweep import load_results

    workdir = Path(workdir)
    if not workdir.is_dir():
        raise StoreError(f"{workdir}: no such folder (the report reads a finished sweep's workdir)")
    if not (workdir / "config.json").is_file():
        raise StoreError(f"{workdir}: not a sweep's workdir (no config.json)")
    if not (workdir / "summary.json").is_file():
        raise StoreError(f"{workdir}: the sweep is not finished (no summary.json); finish it by re-running its command")
    try:
        result = load_results(workdir)
    except StoreError as e:
        raise StoreError(f"{workdir}: not a finished sweep ({' '.join(str(e).split())})") from None
    return result, store.load_json(workdir / "config.json")


def _provenance(result, held: dict) -> str:
    versions = held.get("versions", {})
    try:
        specjax_version = importlib.metadata.version("specjax")
    except importlib.metadata.PackageNotFoundError:
        specjax_version = "unknown"
    from specjax.sweep import metrics_log

    logs = [result.workdir / "metrics.jsonl", result.workdir / "checkpoints" / "grow" / "from" / "metrics.jsonl"]
    times = [line["time"] for log in logs for line in metrics_log.read_lines(log) if "time" in line]
    summary_time = (result.workdir / "summary.json").stat().st_mtime
    rows = [
        ["sweep", _e(result.workdir.resolve())],
        ["sweep id", _e(held.get("sweep_id", "unknown"))],
        ["specjax (report)", _e(specjax_version)],
        ["git commit (sweep)", _e(held.get("git_commit") or "none (not a git checkout)")],
        *[[_e(k), _e(v)] for k, v in versions.items()],
        ["platform", _e(held.get("platform", "unknown"))],
        ["devices", _e(", ".join(held.get("devices", [])) or "unknown")],
        ["started (first evaluation logged)", _e(_date(min(times)) if times else "unknown (no metrics log)")],
        ["finished (summary written)", _e(_date(summary_time))],
        ["report made", _e(_date(dt.datetime.now(dt.UTC).timestamp()))],
    ]
    return _table(["what", "value"], rows)


def _config(cfg) -> str:
    plain = config_lib.to_plain(cfg)
    unused = set(config_lib.inapplicable_fields(cfg))
    order = ["over_realization", *config_lib.SWEPT_FIELDS]
    order += [k for k in plain if k not in order]
    rows = []
    for k in order:
        kind = "swept" if k in order[: 1 + len(config_lib.SWEPT_FIELDS)] else ""
        kind = "not used here" if k in unused else kind
        rows.append([f"<code>{_e(k)}</code>", _e(plain[k]), _e(kind)])
    return _table(["field", "value", ""], rows)


def _plan(result, held: dict) -> str:
    from specjax.sweep.plan import plan_groups

    cfg = result.config
    layout = {g["over_realization"]: g for g in held.get("layout", {}).get("groups", [])}
    rows = []
    for plan in plan_groups(cfg, 1):
        rec = layout.get(plan.over_realization, {})
        rows.append(
            [
                f"{plan.over_realization}x",
                _e(", ".join(str(w) for w in plan.spec.student_widths[1:-1])),
                str(len(plan.settings)),
                str(plan.seeds),
                str(len(plan.settings) * plan.seeds),
                _e(rec.get("block", "")),
                _e(rec.get("blocks_per_wave", "")),
                _e(rec.get("padded_runs", "")),
            ]
        )
    devices = held.get("layout", {}).get("devices")
    note = f"<p class='note'>Recorded layout: {_e(devices)} device(s).</p>" if devices else ""
    header = ["group", "student hidden widths", "settings", "seeds", "runs", "runs per block", "blocks per wave",
              "padded runs"]  # fmt: skip
    steps = config_lib.total_steps(cfg)
    head = (
        f"<p>{sum(len(p.settings) for p in plan_groups(cfg, 1)) * cfg.seeds} runs of {steps:,} SGD steps "
        f"(batch {cfg.batch_size}), evaluated every {cfg.eval_every} epoch(s) of {cfg.steps_per_epoch} steps on "
        f"{cfg.n_eval} inputs.</p>"
    )
    return head + _table(header, rows, numeric={2, 3, 4, 5, 6, 7}) + note


def _figures(result) -> str:
    from specjax.figures import numbers, plots

    parts = []
    with tempfile.TemporaryDirectory(prefix="specjax-report-") as tmp:
        success = plots.success_rate_figure(result.summary, Path(tmp) / "success_rate")
        stats = [numbers.log_mse_stats(a) for a in result.arrays]
        loss = plots.loss_curves_figure(
            result.arrays, [s[0] for s in stats], [s[1] for s in stats], Path(tmp) / "eval_mse"
        )
        parts.append(_png(success[0]))
        parts.append(
            "<p class='note'>Success rate per teacher node (0 = strongest) over seeds, one panel per over-realization; "
            f"bands: {metrics.CONFIDENCE:.0%} Wilson interval of the last evaluation.</p>"
        )
        parts.append(_png(loss[0]))
        parts.append("<p class='note'>log10 evaluation MSE over epochs, mean and std over non-diverged seeds.</p>")
    return "\n".join(parts)


def _settings_table(result) -> str:
    from specjax.config import varying_fields

    groups = result.summary["groups"]
    varying = varying_fields(groups)
    rows = []
    for g in groups:
        low, high = g.get("success_rate_ci_low"), g.get("success_rate_ci_high")
        rates = [np.nan if r is None else r for r in g["success_rate"]]
        if low is None:  # a summary written before the intervals: compute them from the counts
            valid = int(np.sum(~np.asarray(g["diverged"])))
            low, high = metrics.wilson_interval(np.round(np.asarray(rates) * valid), valid)
        nodes = " ".join(
            f"{r:.2f}&nbsp;[{lo:.2f},&nbsp;{hi:.2f}]" if np.isfinite(r) else "n/a"
            for r, lo, hi in zip(rates, np.asarray(low, float), np.asarray(high, float), strict=True)
        )
        half = g.get("success_rate_ci_half_width")
        valid_seeds = g.get("valid_seeds", int(np.sum(~np.asarray(g["diverged"]))))
        finite = [x for x in g["eval_loss"] if x is not None and np.isfinite(x)]
        rows.append(
            [
                f"{g['over_realization']}x",
                *[_e(f"{g[f]:g}") for f in varying],
                f"{valid_seeds}/{g['seeds']}",
                str(int(np.sum(g["diverged"]))),
                f"{np.nanmean(rates):.3f}" if valid_seeds else "n/a",
                "n/a" if half is None else f"{half:.3f}",
                f"{np.median(finite):.3g}" if finite else "n/a",
                nodes,
            ]
        )
    header = ["group", *varying, "valid seeds", "diverged", "mean success", "CI half-width", "median eval loss",
              f"success per teacher node [{metrics.CONFIDENCE:.0%} Wilson interval]"]  # fmt: skip
    numeric = set(range(1 + len(varying), 6 + len(varying)))
    note = (
        f"<p class='note'>Success: best correlation of a teacher node above {result.summary['threshold']} at the last "
        "evaluation (epoch "
        f"{result.summary['eval_epochs'][-1]}), over the seeds that did not diverge. CI half-width: (high - low) / 2 "
        "of the widest teacher node's interval (what <code>--target_ci</code> bounds).</p>"
    )
    return _table(header, rows, numeric) + note


def _divergence(result) -> str:
    from specjax.config import setting_label, varying_fields

    groups = result.summary["groups"]
    varying = varying_fields(groups)
    rows, total = [], 0
    for g in groups:
        for seed, step in enumerate(g["diverged_at"]):
            if step is not None and step >= 0:
                total += 1
                if len(rows) < MAX_DIVERGED_LISTED:
                    rows.append([f"{g['over_realization']}x", _e(setting_label(g, varying)), str(seed), str(step)])
    runs = sum(g["seeds"] for g in groups)
    if not total:
        return f"<p>No run diverged ({runs} runs).</p>"
    more = f"<p class='note'>{total - len(rows)} more not listed.</p>" if total > len(rows) else ""
    head = (
        f"<p>{total} of {runs} runs diverged (non-finite loss or gradient; frozen and left out of the success "
        "rates).</p>"
    )
    return head + _table(["group", "setting", "seed", "step"], rows, numeric={2, 3}) + more


def build_report(workdir: str | Path) -> str:
    """The HTML page of the finished sweep in ``workdir`` (see the module docstring).

    Raises:
      StoreError: the workdir does not exist, is not a sweep's or its sweep is not finished (one line).
    """
    result, held = load_finished(workdir)
    name = _e(Path(workdir).resolve().name)
    sections = [
        ("Provenance", _provenance(result, held)),
        ("Per-setting results", _settings_table(result)),
        ("Figures", _figures(result)),
        ("Divergence", _divergence(result)),
        ("Plan", _plan(result, held)),
        ("Config", _config(result.config)),
    ]
    body = "\n".join(f"<h2>{title}</h2>\n{content}" for title, content in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>specjax sweep report: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>specjax sweep report: {name}</h1>\n{body}\n</body>\n</html>\n"
    )


def write_report(workdir: str | Path, out: str | Path | None = None) -> Path:
    """Writes :func:`build_report` to ``out`` (default ``<workdir>/report.html``), atomically; returns the path.

    Raises:
      StoreError: as :func:`build_report`, or ``out`` cannot be written (names it); nothing is written then.
    """
    page = build_report(workdir)
    path = Path(out) if out is not None else Path(workdir) / REPORT_NAME
    if path.is_dir():
        raise StoreError(f"{path}: the report's path is a directory; give a file with --out")
    if not path.parent.is_dir():
        raise StoreError(f"{path.parent}: no such folder for the report")
    store.atomic_write(path, lambda f: f.write(page.encode()))
    return path
