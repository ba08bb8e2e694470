"""README.md's library example runs and its comments are true."""

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


def test_readme_gives_exactly_two_setup_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    setup = text.split("## Set-up on a fresh machine")[1].split("\n## ")[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2
    assert "specjax.sweep" in commands[0] and "pytest" in commands[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1].split("&& ")[-1] in ci
