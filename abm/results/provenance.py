"""Where a run came from: the versions and build that made it, written beside its tables.

Why: a run folder's ``config.toml`` (with its frozen venue profile) says what was simulated; this says
with what. One seed gives the same bytes on any machine for the same code, so a difference between two
runs of the same configuration is explained by a line here (another abm commit, another numpy whose
random streams changed), never left as a mystery.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

_PACKAGES = ("abm", "numpy", "pandas", "pyarrow", "mesa", "pydantic", "networkx", "matplotlib")


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> Optional[str]:
    """The checkout's commit (with ``+dirty`` when its tracked files changed), or None outside a checkout."""
    root = Path(__file__).resolve().parent.parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def provenance() -> dict[str, Any]:
    """Versions of abm and what it computes with, the interpreter, the build (compiled or pure) and the commit."""
    from abm._native import compiled_modules, pure_python_requested

    return {
        "versions": {name: _version(name) for name in _PACKAGES},
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "build": "pure" if pure_python_requested() or not compiled_modules() else "compiled",
        "git_commit": git_commit(),
        "platform": platform.platform(),
    }
