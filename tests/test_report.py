"""One report per sweep: ``python -m specjax.report --workdir=W`` writes a self-contained HTML page (figures embedded,
config, plan, per-setting table with Wilson intervals, divergence, provenance); a workdir that is not a finished sweep
is refused in one line. The page's content is checked without a browser; a slow test loads it in headless Chromium.
"""

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import types

import pytest
from helpers import assert_refusal, listing, run_module_cases, small_config

from specjax import report, store, sweep
from specjax.core import metrics
from specjax.engine import make_mesh
from specjax.errors import StoreError

PROG = "specjax.report"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished small sweep (2 learning rates x 2 seeds, one group)."""
    wd = tmp_path_factory.mktemp("report") / "wd"
    sweep.run_sweep(small_config(), wd, progress=None, mesh=make_mesh(4))
    return wd


@pytest.fixture(scope="module")
def page(finished):
    old = os.umask(0o022)
    try:
        path = report.write_report(finished)
    finally:
        os.umask(old)
    return path


def test_the_report_is_one_self_contained_page_with_every_section(finished, page):
    assert page == finished / "report.html" and stat.S_IMODE(page.stat().st_mode) == 0o644
    text = page.read_text()
    for section in ("Provenance", "Per-setting results", "Figures", "Divergence", "Plan", "Config"):
        assert f"<h2>{section}</h2>" in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "<script" not in text and not re.search(r"(src|href)=[\"']?(https?:|//|file:)", text)  # nothing external
    held = json.loads((finished / "config.json").read_text())
    import jax

    assert held["sweep_id"] in text and f"<td>jax</td><td>{jax.__version__}</td>" in text
    assert "<td>devices</td><td>" + ", ".join(held["devices"]) + "</td>" in text
    assert f"<td>{held['git_commit'] or 'none (not a git checkout)'}</td>" in text
    assert "finished (summary written)</td><td>20" in text
    assert "No run diverged (4 runs)." in text


def test_the_per_setting_table_holds_each_settings_wilson_intervals(finished, page):
    text = page.read_text()
    summary = store.load_json(finished / "summary.json")
    assert summary["groups"][0]["seeds"] == 2
    for g in summary["groups"]:
        cells = " ".join(
            f"{r:.2f}&nbsp;[{lo:.2f},&nbsp;{hi:.2f}]"
            for r, lo, hi in zip(g["success_rate"], g["success_rate_ci_low"], g["success_rate_ci_high"], strict=True)
        )
        assert f"<td>{cells}</td>" in text
        assert f'<td class="num">{g["success_rate_ci_half_width"]:.3f}</td>' in text
    # the plan: one group of 2 settings x 2 seeds, students 3 wide (m = 3, x1)
    assert "<tr><td>1x</td><td>3</td>" in text and "4 runs of 200 SGD steps" in text
    assert "<td><code>lr</code></td><td>[0.05, 0.1]</td><td>swept</td>" in text
    assert "<td>not used here</td>" in text  # momentum under SGD


def test_diverged_runs_are_listed_with_their_step():
    groups = [
        {"over_realization": 2, "teacher_polarity": 1.0, "lr": 0.5, "seeds": 3, "diverged_at": [-1, 120, -1]},
        {"over_realization": 2, "teacher_polarity": 2.0, "lr": 0.5, "seeds": 3, "diverged_at": [-1, -1, -1]},
    ]
    for g in groups:
        g.update({f: 0.0 for f in ("data_std", "init_scale", "momentum", "weight_decay") if f not in g})
    html = report._divergence(types.SimpleNamespace(summary={"groups": groups}))
    assert "1 of 6 runs diverged" in html
    assert '<tr><td>2x</td><td>p=1</td><td class="num">1</td><td class="num">120</td></tr>' in html
    assert html.count("<tr><td>2x</td>") == 1  # the setting without a diverged run is not listed


def test_refusals_are_one_line_and_write_nothing(tmp_path, finished):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(finished / "config.json", unfinished / "config.json")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    damaged = tmp_path / "damaged"
    shutil.copytree(finished, damaged)
    (damaged / "results" / "group0.npz").write_bytes(b"garbage")
    (damaged / "report.html").unlink(missing_ok=True)
    cases = {
        "missing": (tmp_path / "nothing", r"/nothing: no such folder"),
        "foreign": (foreign, r"/foreign: not a sweep's workdir \(no config\.json\)"),
        "unfinished": (unfinished, r"/unfinished: the sweep is not finished \(no summary\.json\)"),
        "damaged": (damaged, r"/damaged: not a finished sweep \(.*group0\.npz: not a readable \.npz file"),
    }
    for wd, pattern in cases.values():
        with pytest.raises(StoreError, match=pattern):
            report.write_report(wd)
    before = listing(tmp_path)
    argvs = [[f"--workdir={wd}"] for wd, _ in cases.values()] + [[f"--workdir={finished}", f"--out={tmp_path}"]]
    results = run_module_cases(PROG, argvs)
    for r, (_, pattern) in zip(results, [*cases.values(), (None, r"the report's path is a directory")], strict=True):
        assert_refusal(r["rc"], r["stdout"], r["stderr"], PROG, pattern)
    assert listing(tmp_path) == before


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.slow
def test_a_real_browser_renders_the_report_and_decodes_its_figures(tmp_path, finished, page):
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser (Debian: apt-get install -y chromium)")
    # The page itself has no script; a copy gets one that reports what the browser made of it in the title.
    probe = tmp_path / "probe.html"
    check = (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " const ok = imgs.filter(i => i.complete && i.naturalWidth > 300).length;"
        " document.title = `images ${ok}/${imgs.length} tables ${document.querySelectorAll('table').length}`; });"
        "</script>"
    )
    probe.write_text(page.read_text().replace("</body>", check + "</body>"))
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
         probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    title = re.search(r"<title>(.*?)</title>", proc.stdout)
    assert title, proc.stderr[-2000:]
    assert title.group(1) == "images 2/2 tables 4", title.group(1)  # provenance, settings, plan, config
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600",
         f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert screenshot.stat().st_size > 50_000  # text, tables and two figures drawn
    assert metrics.CONFIDENCE == 0.95
