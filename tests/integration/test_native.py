"""The compiled build (setup.py) and the Python sources are the same program: identical runs, and a switch back.

Each check runs in a fresh interpreter, since which copy of a module is used is decided at import.
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys

import pytest

from tests.support import REPO

RUN = """
import hashlib
from abm._native import compiled_modules
from abm.model import MarketModel
from abm.scenarios import load_scenario
# every agent kind but the basket, a whale dump into a leveraged crowd: fills, liquidations, funding
cfg = load_scenario("whale_dump", overrides={"run.duration_s": 420})
m = MarketModel(cfg, audit=True).run()
h = hashlib.sha256()
for name, df in sorted(m.tables().items()):
    h.update(name.encode() + df.to_csv().encode())
h.update(m.steps_frame().to_csv().encode())
print(h.hexdigest(), len(compiled_modules()), len(m.exchange.liquidations), len(m.tape))
"""


def run(code: str, pure: bool) -> str:
    env = dict(os.environ)
    env.pop("ABM_PURE_PYTHON", None)
    if pure:
        env["ABM_PURE_PYTHON"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def built() -> bool:
    return any((REPO / "abm").rglob("*.so")) or any((REPO / "abm").rglob("*.pyd"))


def test_pure_python_switch_imports_the_sources():
    code = "import abm, abm.model, abm.market.book as b; from abm._native import compiled_modules; print(b.__file__, compiled_modules())"
    path, mods = run(code, pure=True).split(" ", 1)
    assert path.endswith("book.py") and mods == "[]"


@pytest.mark.skipif(not built(), reason="no compiled build here (installed with ABM_PURE_PYTHON=1): nothing to compare")
def test_compiled_and_pure_python_runs_are_byte_identical():
    compiled = run(RUN, pure=False).split()
    pure = run(RUN, pure=True).split()
    assert int(compiled[1]) >= 5 and int(pure[1]) == 0  # the compiled run really used the compiled modules
    assert int(compiled[2]) > 0 and int(compiled[3]) > 1000  # liquidations and trades happened
    assert compiled[0] == pure[0]
    assert compiled[2:] == pure[2:]


def test_a_source_edited_after_the_build_is_refused(tmp_path):
    """A stale extension would run old code: importing must fail with how to rebuild."""
    from abm import _native

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    ext = pkg / ("mod" + importlib.machinery.EXTENSION_SUFFIXES[0])  # this interpreter's build
    other = pkg / "mod.cpython-99-other.so"  # another Python's build of the same source: not ours to judge
    src = pkg / "mod.py"
    for f in (ext, other):
        f.write_bytes(b"")
    src.write_text("")
    os.utime(ext, (1_000_000, 1_000_000))
    os.utime(other, (1, 1))
    os.utime(src, (1_000_010, 1_000_010))
    orig = _native._PACKAGE
    try:
        _native._PACKAGE = pkg
        assert _native._stale_builds() == [str(src.relative_to(tmp_path))]
        os.utime(src, (1_000_001, 1_000_001))  # within the install slack: not stale
        assert _native._stale_builds() == []
    finally:
        _native._PACKAGE = orig


def test_a_build_whose_source_moved_away_is_refused(tmp_path):
    """A module moved to another package leaves its old build importable under the old name: refused too."""
    from abm import _native

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / ("gone" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"")
    (pkg / ("_compiled__mypyc" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"")  # the shared library
    orig = _native._PACKAGE
    try:
        _native._PACKAGE = pkg
        assert _native._stale_builds() == [f"{(pkg / 'gone.py').relative_to(tmp_path)} (removed)"]
    finally:
        _native._PACKAGE = orig
