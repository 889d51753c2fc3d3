"""The package's layout rules, read from the source: one subpackage per wing, imports that
point one way (ARCHITECTURE.md), no import cycles, click and rich only in the CLI, and a
command that starts without torch.

Every import counts, wherever it stands (module level, inside a function, under
``TYPE_CHECKING``): a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import subprocess_env

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "torchlinreg"
ROOT = "torchlinreg"

# Modules that stay at the top: shared by every wing, or standing alone.
TOP = {"errors", "model", "data", "datasets", "tutorial", "plots"}
WINGS = {"exact", "iterative", "stats", "files", "distributed", "estimator", "cli", "models"}

# What each part may import (besides itself). The table is a DAG, read bottom-up:
# errors, model, datasets -> files -> data -> exact -> stats -> distributed -> iterative
# -> estimator -> cli.
MAY_IMPORT = {
    "errors": set(),
    "model": set(),
    "datasets": set(),
    "tutorial": {"datasets"},
    "files": {"errors"},
    "data": {"errors", "files"},
    "plots": {"files"},
    "exact": {"errors", "model", "data"},
    "stats": {"exact", "errors", "model", "data"},
    "models": {"exact", "stats", "errors", "model", "data"},
    "distributed": {"exact", "stats", "files", "errors", "model", "data"},
    "iterative": {"distributed", "exact", "files", "errors", "model", "data"},
    "estimator": {
        *("iterative", "exact", "stats", "models", "distributed", "files"),
        *("errors", "model", "data"),
    },
    "cli": (TOP | WINGS) - {"cli"},
}
# Third-party packages only one part may import.
ONLY_IN = {"click": {"cli"}, "rich": {"cli"}, "matplotlib": {"plots"}}
# What `torchlinreg --help` must not import.
HEAVY = ("torch", "pyarrow", "scipy", "matplotlib", "pandas", "numpy", "safetensors", "polars")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(torchlinreg modules, third-party top-level packages) that module ``name`` imports."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    inner, outer = set(), set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                if target == ROOT or target.startswith(ROOT + "."):
                    inner.add(target)
                else:
                    outer.add(target.partition(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            if not (base == ROOT or base.startswith(ROOT + ".")):
                outer.add(base.partition(".")[0])
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:  # `from . import plots`: the submodule itself
                    inner.add(sub)
                elif not (base == ROOT and alias.name == "__version__"):
                    # the version string is the one thing every part may read off the root
                    inner.add(base)
    return inner, outer


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def test_every_module_sits_in_a_wing_or_is_one_of_the_few_at_the_top():
    for name, path in MODULES.items():
        part = _part(name)
        assert part in TOP | WINGS | {ROOT, "__main__"}, f"{name}: a new wing or top module?"
        stem = path.stem
        if stem not in ("__init__", "__main__"):
            # the folder says what the prefix used to: no `_name` or `cli_name` inside a wing
            assert not stem.startswith(("_", "cli_")), name


@pytest.mark.parametrize("wing", sorted(WINGS))
def test_each_wing_says_what_it_owns_in_one_line(wing):
    doc = ast.get_docstring(ast.parse((PACKAGE / wing / "__init__.py").read_text()))
    assert doc and "\n" not in doc.strip(), wing


def test_imports_point_one_way_between_wings():
    broken = []
    for name in MODULES:
        part = _part(name)
        if part in (ROOT, "__main__"):  # the public API and `python -m` may use anything
            continue
        inner, _ = _imports(name)
        for target in inner:
            other = _part(target)
            if other != part and other not in MAY_IMPORT[part]:
                broken.append(f"{name} -> {target}")
    assert not broken, "imports against ARCHITECTURE.md's direction:\n" + "\n".join(broken)


def test_the_allowed_directions_have_no_cycle():
    seen: dict[str, int] = {}

    def visit(part: str, path: tuple[str, ...]) -> None:
        assert part not in path, " -> ".join((*path, part))
        if seen.get(part):
            return
        for other in MAY_IMPORT.get(part, ()):
            visit(other, (*path, part))
        seen[part] = 1

    for part in MAY_IMPORT:
        visit(part, ())


def test_no_import_cycles_between_modules():
    graph = {name: _imports(name)[0] - {name} for name in MODULES}
    # Tarjan's strongly connected components: any component of two or more is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    assert not cycles, cycles


def test_click_rich_and_matplotlib_stay_where_they_belong():
    broken = []
    for name in MODULES:
        _, outer = _imports(name)
        for package, allowed in ONLY_IN.items():
            if package in outer and _part(name) not in allowed:
                broken.append(f"{name} imports {package}")
    assert not broken, broken


def test_the_command_line_declares_the_estimators_solvers():
    # commands.py spells the solver names out so that --help imports no torch
    from torchlinreg.cli.commands import SOLVERS
    from torchlinreg.estimator.linear import EXACT_SOLVERS, ITERATIVE_SOLVERS

    assert SOLVERS == EXACT_SOLVERS + ITERATIVE_SOLVERS


def test_help_and_version_import_nothing_heavy():
    from torchlinreg.cli.commands import COMMANDS

    calls = [["--version"], ["--help"]] + [[c.name, "--help"] for c in COMMANDS]
    script = (
        "import sys\n"
        "from torchlinreg.cli import run\n"
        f"codes = [run(a) for a in {calls!r}]\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(codes, heavy, file=sys.stderr)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"{[0] * len(calls)} []"
    assert "Usage: torchlinreg train" in r.stdout


def test_import_torchlinreg_imports_no_torch_until_a_name_is_used():
    script = (
        "import sys, torchlinreg\n"
        "before = 'torch' in sys.modules\n"
        "torchlinreg.LinearRegression\n"
        "print(before, 'torch' in sys.modules, 'LinearRegression' in dir(torchlinreg))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True", "True"]
