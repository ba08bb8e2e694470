"""``--dry_run`` says what the command will do in its workdir (fresh, resume from where, grow, nothing to do, refused)
and refuses what the real command refuses, writing nothing."""

import importlib.util
import re

import pytest
from helpers import TINY, Interrupt, interrupt_after, listing, run_module_cases, small_config

from specjax import sweep
from specjax.errors import SpecjaxError, SweepError
from specjax.sweep import dryrun


def forecast(cfg, wd, **kw) -> str:
    lines: list[str] = []
    dryrun.forecast(cfg, wd, 4, emit=lines.append, **kw)
    return "\n".join(lines)


def refusal(fn) -> str:
    with pytest.raises(SpecjaxError) as e:
        fn()
    return str(e.value)


def test_dry_run_says_fresh_resume_grow_nothing_to_do_or_refused(tmp_path):
    cfg = small_config()  # 4 runs, blocks of 2 runs x 4 devices
    wd = tmp_path / "wd"
    text = forecast(cfg, wd)
    assert "x1: 4 runs in 1 block(s) of 8 (8 slots, 4 padding = 50 %)" in text
    assert f"workdir {wd}: fresh" in text and re.search(
        r"left to train: 4 run\(s\) .* including compiling 1 group", text
    )
    assert not wd.exists()

    with pytest.raises(Interrupt):  # stopped after its first epoch: chunk 2 of 8 (chunks of 25 steps, 50 per epoch)
        sweep.run_sweep(cfg, wd, progress=interrupt_after(1))
    before = listing(wd)
    text = forecast(cfg, wd)
    assert f"workdir {wd}: resume: x1 wave 1/1 at chunk 2/8" in text, text
    assert "compiling 1 group" in text
    assert listing(wd) == before

    sweep.run_sweep(cfg, wd, progress=None)
    before = listing(wd)
    assert "nothing to do: every wave is finished" in forecast(cfg, wd)
    grown = small_config(seeds=3)
    text = forecast(grown, wd)
    assert "grow the finished sweep" in text and "[grow x1] 6 runs: 4 reused, 2 trained fresh" in text, text
    assert "left to train: 2 run(s)" in text
    assert "fresh (--overwrite removes the sweep it holds)" in forecast(small_config(lr=(0.3,)), wd, overwrite=True)
    other = small_config(lr=(0.3,))  # not growth (a value dropped): refused as the command refuses it
    dry = refusal(lambda: forecast(other, wd))
    assert dry == refusal(lambda: sweep.run_sweep(other, wd, progress=None)) and "different config" in dry
    assert listing(wd) == before

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "paper.txt").write_text("x")
    dry = refusal(lambda: forecast(cfg, foreign))
    assert dry == refusal(lambda: sweep.run_sweep(cfg, foreign, progress=None)) and "holds no sweep" in dry


def test_dry_run_of_a_grown_sweep_resumes_the_growth(tmp_path):
    wd = tmp_path / "wd"
    sweep.run_sweep(small_config(), wd, progress=None)
    with pytest.raises(Interrupt):
        sweep.run_sweep(small_config(seeds=3), wd, progress=interrupt_after(2))  # the grow line, then epoch 1
    text = forecast(small_config(seeds=3), wd)
    assert "resume the growth: x1 fresh wave 1/1 at chunk 2/8" in text, text


def test_dry_run_shard_share_and_a_finished_shard(tmp_path):
    cfg = small_config(seeds=8)  # 16 runs in units of runs_per_block = 2: the shares are runs 0-7 and 8-15
    wd = tmp_path / "wd"
    text = forecast(cfg, wd, shard=(1, 2))
    assert "shard 1 of 2: x1 runs 8-15" in text and "left to train: 8 run(s)" in text
    with pytest.raises(SweepError, match="in use by another running sweep"):
        from specjax.sweep.workdir import workdir_lock

        wd.mkdir()
        with workdir_lock(wd):
            forecast(cfg, wd)


def test_dry_run_refuses_what_the_command_refuses(tmp_path):
    """Issue 19.10: ``--dry_run --num_shards=2 --shard_index=7`` exited 0 with a plan; it refuses as the command."""
    wd = tmp_path / "wd"
    base = [f"--config={TINY}", f"--workdir={wd}", "--config.epochs=1"]
    bad = [
        ["--num_shards=2", "--shard_index=7"],
        ["--num_shards=0"],
        ["--num_shards=2", "--shard_index=1", "--overwrite"],
    ]
    cases = [[*base, *flags, *dry] for flags in bad for dry in ([], ["--dry_run"])]
    results = run_module_cases("specjax.sweep", cases)
    for flags, real, dry in zip(bad, results[::2], results[1::2], strict=True):
        assert real["rc"] == 2 and dry["rc"] == 2, (flags, real, dry)
        assert dry["stderr"] == real["stderr"] and dry["stderr"].startswith("specjax.sweep: error: "), (flags, dry)
        assert dry["stdout"] == "", dry
    assert not wd.exists()


def test_padding_is_shown_with_the_block_that_pads_least(tmp_path):
    """Issue 22.5: the quickstart's 24 runs per group train as 32 slots (blocks of 8 runs x 2 devices, 25 %
    padding). The dry run shows each group's padding and the ``runs_per_block`` that pads least (12: one block of 24);
    the default stays 8 per device, because XLA's CPU kernels depend on the runs per device (a run's numbers would
    then depend on its grid, devices, shards or growth)."""
    import math

    from helpers import ROOT

    from specjax.sweep import plan
    from specjax.sweep.preflight import describe

    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "experiments" / "configs" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    quick = module.get_config()
    text = describe(quick, plan.plan_groups(quick, 2, accelerator=False), 2)
    assert text.count("24 runs in 2 block(s) of 16 (32 slots, 8 padding = 25 %)") == 2, text
    assert "padding: 16 of 64 slots (25 %); --config.runs_per_block=12 pads 0 " in text, text
    quick.runs_per_block = 12
    plans = plan.plan_groups(quick, 2, accelerator=False)
    assert [(p.block, p.padded_runs) for p in plans] == [(24, 24)] * 2
    assert "padding:" not in describe(quick, plans, 2)

    for runs, devices, best in [(24, 2, 12), (21, 2, 11), (40, 2, 10), (48, 2, 8), (100, 4, 25), (3, 2, 2)]:
        r = plan.least_padding_runs_per_block(runs, devices)
        slots = math.ceil(runs / (r * devices)) * r * devices
        assert r == best and slots <= math.ceil(runs / (8 * devices)) * 8 * devices, (runs, devices, r)
        assert (slots - runs) / slots <= 0.05 or runs < 8 * devices
