"""The package layers: every import in abm/ points down (or within its layer), and no packages import each other.

Lowest first: ``units``/``errors``/``registry`` (with ``_native``, the build switch) < market < accounts < margin <
exchange < spot < prices < venues < sim < agents < model < results < analysis < report < scenarios < sweeps < position <
calibration < dashboard < cli (with ``demo``, the walk-through behind ``abm demo``). The root ``abm/__init__.py`` is the facade
above them all (``abm.run``, ``abm.Exchange``): no module of the package may import from it.

Every import counts, the ones inside functions too (a lazy import is still a dependency, and the one
that would make a cycle at run time), as does ``importlib.import_module("abm...")`` of a literal name.
Exempt: imports under ``if TYPE_CHECKING:``, which exist for annotations only and never run (the
agents name ``abm.model.model.MarketModel`` that way). Why it matters: a lower layer can be used,
tested and benchmarked without the ones above (the exchange core without Mesa), and a cycle makes the
import order decide whether a module can be imported at all.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGE = REPO / "abm"
FACADE = "abm"  # abm/__init__.py

LAYERS: tuple[tuple[str, ...], ...] = (
    ("units", "errors", "registry", "config", "_native"), ("market",), ("accounts",), ("margin",), ("exchange",), ("spot",), ("prices",),
    ("venues",), ("sim",), ("agents",), ("model",), ("results",), ("analysis",), ("report",), ("scenarios",),
    ("sweeps",), ("position",), ("calibration",), ("dashboard",), ("cli", "demo"),
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """The layer entry a module belongs to: its package (abm.margin.engine -> margin) or the facade."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, imported abm module) for every import in the file that runs, at any depth."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def target(base: str, name: str) -> str:
        """``from base import name``: the submodule if there is one, else base itself."""
        sub = f"{base}.{name}"
        rel = Path(*sub.split("."))
        return sub if (root.parent / rel).is_dir() or (root.parent / rel).with_suffix(".py").is_file() else base

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.orelse:  # the else branch does run
                visit(stmt)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.extend((node.lineno, target(base, a.name)) for a in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and (
                    (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                    or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))):
            found.append((node.lineno, node.args[0].value))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return sorted({(line, m) for line, m in found if m == "abm" or m.startswith("abm.")})


def check(root: Path, layer: dict[str, int] = LAYER) -> list[str]:
    """Every broken rule under the package at ``root``, one line each naming the module and the import."""
    problems: list[str] = []
    edges: dict[str, dict[str, str]] = {}  # part -> imported part -> first "module:line imports x"
    for path in sorted(root.rglob("*.py")):
        me = module_name(path, root)
        src = part_of(me)
        if src != FACADE and src not in layer:
            problems.append(f"{me}: {src} is in no layer (add it to LAYERS and docs/design.md)")
            continue
        for line, imported in imports(path, root):
            dst = part_of(imported)
            where = f"{path.relative_to(root.parent)}:{line} ({me}) imports {imported}"
            if src == dst:
                continue
            if dst == FACADE:
                if src != FACADE:
                    problems.append(f"{where}: the facade abm/__init__.py sits above every layer")
                continue
            if dst not in layer:
                problems.append(f"{where}: {dst} is in no layer")
                continue
            if src != FACADE and layer[dst] > layer[src]:
                problems.append(f"{where}: an upward import ({src} is layer {layer[src]}, {dst} layer {layer[dst]})")
            edges.setdefault(src, {}).setdefault(dst, where)
    problems += cycles(edges)
    return problems


def cycles(edges: dict[str, dict[str, str]]) -> list[str]:
    """One line per cycle between parts (within a layer an upward import cannot show it)."""
    out, done = [], set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in edges.get(node, {}):
            if nxt in path:
                loop = path[path.index(nxt):] + [nxt]
                key = frozenset(loop)
                if key not in done:
                    done.add(key)
                    steps = "; ".join(edges[a][b] for a, b in zip(loop, loop[1:]))
                    out.append(f"import cycle {' -> '.join(loop)}: {steps}")
            elif nxt not in visited:
                visited.add(nxt)
                walk(nxt, path + [nxt])

    for start in sorted(edges):
        visited = {start}
        walk(start, [start])
    return out


def test_every_import_points_down_and_no_packages_import_each_other():
    problems = check(PACKAGE)
    assert not problems, "\n".join(problems)


def test_every_package_is_in_a_layer():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert parts == set(LAYER), f"not in LAYERS: {sorted(parts - set(LAYER))}; gone: {sorted(set(LAYER) - parts)}"


def test_the_design_doc_states_the_same_order():
    text = (REPO / "docs" / "design.md").read_text()
    sentence = re.search(r"Packages import only downward in this order: (.*?)\.\n\n", text, re.S)
    assert sentence, "docs/design.md lost its sentence on the layer order"
    named = re.findall(r"`(\w+)`", sentence.group(1))
    assert named == [n for names in LAYERS for n in names], named


def test_the_check_finds_what_it_should(tmp_path):
    """Against a made-up package: an upward import at module and function level, one through the facade,
    a cycle inside a layer, and a TYPE_CHECKING import, which is exempt."""
    pkg = tmp_path / "abm"
    for name in ("low", "high", "peer_a", "peer_b"):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from abm.low import x\n")
    (pkg / "low" / "mod.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from abm.high import H\n"
        "def f():\n    from abm.high.sub import g\n    import abm\n")
    (pkg / "low" / "other.py").write_text("import abm.high\nfrom abm import low\n")
    (pkg / "peer_a" / "m.py").write_text("from .. import peer_b\n")
    (pkg / "peer_b" / "m.py").write_text("import importlib\nimportlib.import_module('abm.peer_a.m')\n")
    (pkg / "high" / "sub.py").write_text("from abm.low import mod\n")
    problems = check(pkg, {"low": 0, "peer_a": 1, "peer_b": 1, "high": 2})
    assert any("abm/low/mod.py:5 (abm.low.mod) imports abm.high.sub: an upward import" in p for p in problems)
    assert any("abm/low/mod.py:6" in p and "facade" in p for p in problems)
    assert any("abm/low/other.py:1 (abm.low.other) imports abm.high: an upward" in p for p in problems)
    assert any(p.startswith("import cycle peer_a -> peer_b -> peer_a") for p in problems)
    assert any(p.startswith("import cycle high -> low -> high") or p.startswith("import cycle low -> high -> low")
               for p in problems)
    assert not any(":3 " in p for p in problems)  # the TYPE_CHECKING import
    assert len(problems) == 5, problems


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def test_the_margin_engine_imports_first_in_a_fresh_process():
    r = subprocess.run([sys.executable, "-c", "import abm.margin.engine"], capture_output=True, text=True,
                       env=_env(), cwd=REPO)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks one child per module")
def test_every_module_imports_first_in_a_fresh_process():
    """Each module of the package as the first one imported (no import cycle depends on who came first).

    One process imports the third-party libraries, then forks a child per module, which imports only it.
    """
    modules = sorted(module_name(p, PACKAGE) for p in PACKAGE.rglob("*.py"))
    code = f"""
import importlib, os, sys
import numpy, pandas, mesa, click, pyarrow  # shared by the children; nothing of abm yet
assert not [m for m in sys.modules if m == "abm" or m.startswith("abm.")]
failed = []
for name in {modules!r}:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as e:
            print(f"{{name}}: {{type(e).__name__}}: {{e}}", flush=True)
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(name)
print("FAILED", failed)
sys.exit(1 if failed else 0)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
