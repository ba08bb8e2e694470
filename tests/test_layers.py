"""The layering of docs/design.md, checked on the import graph (every ``import`` in every module, function-local
ones included): no module imports a layer above its own, and every error class lives in specjax/errors.py."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "specjax"
#: docs/design.md's layers, lowest first: a module may import its own subpackage and lower layers only.
LAYERS = {
    "errors": 0,
    "store": 1,
    "runtime": 1,
    "core": 1,
    "cli": 2,
    "engine": 2,
    "config": 3,
    "theory": 4,
    "sweep": 5,
    "realdata": 6,
    "figures": 7,
    "bench": 8,
    "launch": 8,
    "report": 8,
}
#: Command lines, above every layer: nothing in the package imports them.
COMMANDS = {"specjax.sweep.__main__", "specjax.sweep.status", "specjax.figures.__main__", "specjax.bench.__main__"}
COMMANDS |= {"specjax.launch.__main__", "specjax.report.__main__"}


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def unit(module: str) -> str:
    """The layer unit of a module: its subpackage or top-level module (``specjax.sweep.plan`` -> ``sweep``)."""
    return module.split(".")[1]


def is_module(name: str) -> bool:
    parts = name.split(".")[1:]
    return (PACKAGE.joinpath(*parts).with_suffix(".py")).is_file() or PACKAGE.joinpath(*parts).is_dir()


def imported(path: Path) -> set[str]:
    """The specjax modules a file imports (``from specjax.x import y``: ``specjax.x.y`` if that is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [
                f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module for a in node.names
            ]
        else:
            continue
        out |= {n for n in names if n.startswith("specjax.")}
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imported(p) for p in PACKAGE.rglob("*.py")}


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every import of a layer above the importer's, or of a command line, as ``'a -> b'``."""
    out = []
    for source, targets in sorted(edges.items()):
        if source == "specjax" or source in COMMANDS:
            continue  # the package's re-exports and the command lines sit above every layer
        for target in sorted(targets):
            if target in COMMANDS:
                out.append(f"{source} -> {target} (a command line)")
            elif unit(target) != unit(source) and LAYERS[unit(target)] >= LAYERS[unit(source)]:
                out.append(f"{source} -> {target}")
    return out


def test_every_unit_has_a_layer():
    units = {unit(m) for m in graph() if m != "specjax"}
    assert units == set(LAYERS), units ^ set(LAYERS)


def test_no_module_imports_a_layer_above_it():
    assert violations(graph()) == []


def test_the_check_sees_an_upward_import():
    edges = graph()
    edges["specjax.core.metrics"] = edges["specjax.core.metrics"] | {"specjax.sweep.schema"}
    edges["specjax.cli"] = edges["specjax.cli"] | {"specjax.sweep.distribute"}
    assert violations(edges) == [
        "specjax.cli -> specjax.sweep.distribute",
        "specjax.core.metrics -> specjax.sweep.schema",
    ]


def test_error_classes_live_in_errors_py():
    """Every exception class the package defines (a subclass of an ``...Error``, an ``Exception`` or a class of
    specjax/errors.py) is in specjax/errors.py. (``sweep.signals.Interrupted``, a ``KeyboardInterrupt``, is the
    stop request of a signal, not an error.)"""
    from specjax import errors

    bases = ("Error", "Exception", *(n for n in vars(errors) if isinstance(getattr(errors, n), type)))
    outside = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
                if any(n.endswith(bases) for n in names):
                    outside.append(f"{module_name(path)}.{node.name}")
    assert outside == []


#: Names of modules from before the restructure (docs/design.md's "Moved import paths"): importing a new module
#: under one of them (``engine as train``) keeps the old name alive in the code.
OLD_MODULE_NAMES = {"train", "theory", "analysis", "figure_data", "figure_results", "image_data", "plots_realdata"}
OLD_MODULE_NAMES |= {"realdata", "convnets", "population", "lemma1", "networks", "teachers", "data", "metrics"}


def test_no_old_module_name_aliases():
    """``from specjax import engine as train`` and the like are gone, in the package, the tests and experiments/."""
    aliases = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "experiments").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = getattr(node, "module", None) or ""
                for a in node.names:
                    full = f"{module}.{a.name}" if module else a.name
                    if full.startswith("specjax") and a.asname in OLD_MODULE_NAMES and a.asname != a.name:
                        aliases.append(f"{path.relative_to(ROOT)}: {full} as {a.asname}")
    assert aliases == []
