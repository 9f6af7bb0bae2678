from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import REPO


def shared_dir() -> Path:
    """The workplace's shared/ folder: $ABM_SHARED, else the folder beside the checkout."""
    return Path(os.environ.get("ABM_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def lob_events_path() -> Path:
    p = shared_dir() / "bench" / "lob_1m_events.npz"
    if not p.is_file():
        pytest.skip(f"the shared 1M-event workload is not at {p} (set ABM_SHARED to the shared/ folder)")
    return p
