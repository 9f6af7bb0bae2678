"""Is the output folder usable? Asked before a run starts, not after the whole simulation.

Why up front: a run can take minutes; finding only when saving that ``--out`` exists, sits under a
file, is read-only or on a full disk throws all of it away. The check writes and removes a probe in
the nearest existing ancestor, the only reliable test of "can write here" (permissions, read-only
mounts, quotas); it creates nothing that stays.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from abm.errors import InvalidInput

MIN_FREE_BYTES = 64 * 2**20  # a long run's tables reach tens of MB


def check_out(out: str | Path, field: str = "out") -> Path:
    """``out`` as a Path if a run can be written there; InvalidInput naming ``field`` otherwise."""
    p = Path(out).expanduser()
    if p.exists():
        raise InvalidInput(field, str(p), "must not exist yet (runs are never overwritten)")
    anc = p.parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise InvalidInput(field, str(p), f"must be inside a folder; {anc} is a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".abm-probe.", dir=anc)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InvalidInput(field, str(p), f"must be writable; writing in {anc} failed ({e.strerror or e})") from None
    free = shutil.disk_usage(anc).free
    if free < MIN_FREE_BYTES:
        raise InvalidInput(field, str(p), f"needs at least {MIN_FREE_BYTES // 2**20} MB free; {anc} has "
                                          f"{free / 2**20:.1f} MB")
    return p
