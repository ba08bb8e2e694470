"""README.md's library example runs and its comments are true; its set-up commands are the ones CI runs."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_library_example_runs():
    text = README.read_text()
    block = re.search(r"## From research code\s+```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    arrays = scope["arrays"]
    assert arrays["best_teacher_corr_l1"].shape == (2, 4, 4, 4)
    assert len(scope["result"].summary["groups"]) == 2
    assert scope["ds"].sizes["teacher_polarity"] == 2 and scope["ds"].sizes["teacher_l1"] == 4
    assert len(scope["df"]) == 2 * 4 * 4  # settings x seeds x evaluations
    assert scope["run"].settings["teacher_polarity"] == 2.0 and scope["run"].settings["seed"] == 0
    loss_change = scope["group"].theorem3_loss_change.squeeze()
    assert loss_change.dims == ("teacher_polarity", "seed") and loss_change.shape == (2, 4)
    assert "momentum" not in scope["ds"].dims  # plain SGD: momentum does not apply


def _steps(command: str) -> list[str]:
    """A one-line shell command split at ``&&``, each step normalised: ``python -m pip`` is ``pip``, no ``--quiet``."""
    return [
        " ".join(w for w in step.split() if w != "--quiet").replace("python -m pip ", "pip ")
        for step in command.split("&&")
    ]


def test_readme_gives_exactly_two_setup_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    setup = text.split("## Set-up on a fresh machine")[1].split("\n## ")[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands  # two one-line commands
    quickstart, test = (_steps(c) for c in commands)
    # The same fresh environment for both; the first installs the package and runs the quickstart sweep.
    assert quickstart[:2] == test[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"]
    assert quickstart[2:] == [
        "pip install -e .",
        "python -m specjax.sweep --config=experiments/configs/quickstart.py --workdir=runs/quickstart",
    ]
    assert (README.parent / "experiments" / "configs" / "quickstart.py").is_file()
    # The second is what CI runs, step for step (CI also upgrades pip first).
    assert test[2:] == ["pip install -e '.[test]'", "python -m pytest -q"]
    ci_lines = (README.parent / ".ci" / "run").read_text().splitlines()
    ci = [" ".join(_steps(line)) for line in ci_lines if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [test[0], test[1], "pip install --upgrade pip", test[2], test[3]]
