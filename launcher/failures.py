"""Why the launcher gave an island up, in words that say what to do.

The reason recorded for a failed island (its launcher line, launcher.isld, summary.json) ends
with the cause: the OSError that kept it from starting, else its log's last `error:` line
(the island's own one-line error, which says what to do), else its log's last line, else what
an empty log suggests: on a full disk the island could not even write its error.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from migration_pool.rundir import RunDir

FULL_BELOW_BYTES = 1 << 20  # a run directory's disk with less free space than this counts as full
HINTS = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
         errno.EROFS: "make the run directory writable", errno.EACCES: "make the run directory writable",
         errno.EPERM: "make the run directory writable"}


def os_error_text(e: OSError) -> str:
    """'No space left on device (PATH); free some space, then run the same command again'."""
    where = f" ({e.filename})" if e.filename else ""
    return f"{e.strerror or e}{where}; {HINTS.get(e.errno or 0, 'fix that')}, then run the same command again"


def start_error_text(e: BaseException) -> str:
    """Why an island could not be started, with what to do: an OSError's hint, or for a file
    that is not what it should be (a directory or FIFO where its log belongs) to move it aside."""
    if isinstance(e, OSError):
        return os_error_text(e)
    return f"{e}; move it aside, then run the same command again"


def log_tail(rundir: RunDir, island: str) -> list[str]:
    """The last lines of an island's log ([] if it has none or cannot be read)."""
    try:
        return rundir.island(island).read_log_tail(2000).strip().splitlines()
    except OSError:
        return []


def why_failed(root: Path, tail: list[str]) -> str:
    """Why an island that kept failing failed, from the last lines of its log."""
    said = [ln.strip() for ln in tail if ln.strip() and not ln.startswith("--- launcher:")]
    errors = [ln[len("error: "):] for ln in said if ln.startswith("error: ")]
    if errors or said:
        return (errors or said)[-1]
    try:
        disk = os.statvfs(root)
        free = disk.f_bavail * disk.f_frsize
    except OSError:
        free = None
    if free is not None and free < FULL_BELOW_BYTES:
        return (f"its log is empty and the run directory's disk is full ({free // 1024} KiB free); "
                "free some space, then run the same command again")
    return f"its log is empty; run `islands evolve ISLAND --run-dir {root}` to see why"
