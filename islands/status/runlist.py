"""The runs of a runs folder at a glance: for `islands runs`, its `--prune`, and the choice of
the run `islands status` shows without `--run-dir`.

Each run is read through the one run reader (`open_run`) and its islands classified as `islands
status` classifies them (`metrics.classify`), then summed up in one run state:

- running: an island runs (or is stale: alive but silent, never assumed gone), or the launcher
  of the run is alive on this host;
- finished: every island of the run finished;
- abandoned: an island's process is gone without finishing (dead) or the launcher gave it up
  (failed), and nothing runs;
- stopped: the rest (islands stopped on request, resumable), and a planned run none of whose
  islands has started yet ("pending", a job that may still be queued).

Only the heartbeat files, the manifest and file sizes are read (no history is decoded, nothing
imports torch), so listing many runs stays fast.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from islands.errors import IslandsError
from islands.status.liveness import pid_alive
from islands.status.metrics import STALE_AFTER_S, classify, island_order, lease_state
from islands.status.reader import RunReader, open_run
from islands.status.record import as_float, as_int
from islands.status.report import launcher_info
from migration_pool.errors import PoolError
from migration_pool.rundir import RunDir

PRUNABLE = ("finished", "abandoned")  # `islands runs --prune` removes these, never a running run


@dataclass(frozen=True)
class RunSummary:
    """One line of `islands runs`: what a person needs to find, resume or remove a run."""

    path: Path
    state: str  # running, finished, stopped, pending, abandoned, unreadable
    islands: int
    best: float | None  # the best fitness any island has seen (maximised, as status shows it)
    generation: int | None  # the furthest island's generation
    last_active: float  # wall-clock time of the run's latest heartbeat, history line or manifest write
    size: int  # bytes on disk
    note: str | None = None  # why a run could not be read

    @property
    def name(self) -> str:
        return self.path.name


def last_activity(root: Path) -> float:
    """The latest write of the run's manifest, launcher state or any island's status (the
    heartbeat) or history: when the run last did anything, not when it was made."""
    latest = 0.0
    for path in _activity_files(root):
        try:
            latest = max(latest, path.stat().st_mtime)
        except OSError:
            continue
    return latest


def _activity_files(root: Path) -> list[Path]:
    rundir = RunDir(root)
    files = [rundir.manifest_path, root / "launcher.isld"]
    try:
        ids = rundir.island_ids()
    except OSError:
        ids = []
    for island in ids:
        isl = rundir.island(island)
        files += [isl.status_path, isl.history_path]
    return files


def disk_size(root: Path) -> int:
    """Bytes in the files under `root` (links not followed; files that vanish meanwhile skipped)."""
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def summarize(root: Path, *, now: float | None = None, stale_after: float = STALE_AFTER_S,
              alive: Callable[[int, float | None], bool] = pid_alive) -> RunSummary:
    """The summary of the run at `root`; a folder that holds no readable run is "unreadable"
    (with the reason), never an error, so one bad folder does not hide the others."""
    now = time.time() if now is None else now
    try:
        reader = open_run(root)
        state, best, generation, n = _state(reader, now=now, stale_after=stale_after, alive=alive)
        note = None
    except (IslandsError, PoolError, OSError) as e:
        state, best, generation, n, note = "unreadable", None, None, 0, str(e)
    return RunSummary(path=root, state=state, islands=n, best=best, generation=generation,
                      last_active=last_activity(root), size=disk_size(root), note=note)


def _state(reader: RunReader, *, now: float, stale_after: float,
           alive: Callable[[int, float | None], bool]) -> tuple[str, float | None, int | None, int]:
    here = socket.gethostname()
    ids = sorted(set(reader.present()) | set(reader.planned), key=island_order)
    _restarts, failed, _notes = launcher_info(reader, alive)
    states, bests, gens = [], [], []
    for island in ids:
        status, lease = reader.status(island), reader.lease(island)
        if island in failed:
            states.append("failed")
        elif status is None:
            newer = lease_state(lease, now=now, here=here, alive=alive)
            states.append("pending" if newer is None else newer[0])
        else:
            states.append(classify(status, now=now, here=here, alive=alive, stale_after=stale_after, lease=lease)[0])
        if status is not None:
            bests += [] if status.best_ever is None else [status.best_ever]
            gens += [] if status.generation is None else [status.generation]
    launcher = reader.launcher_state() or {}
    pid = as_int(launcher.get("pid"))
    launcher_alive = (launcher.get("state") in ("running", "stopping") and launcher.get("host") == here
                      and pid is not None and alive(pid, as_float(launcher.get("started"))))
    if launcher_alive or any(s in ("running", "stale", "requeued") for s in states):
        state = "running"
    elif states and all(s == "finished" for s in states):
        state = "finished"
    elif any(s in ("dead", "failed", "unreadable") for s in states):
        state = "abandoned"
    elif states and all(s == "pending" for s in states):
        state = "pending"
    else:
        state = "stopped"
    return state, max(bests, default=None), max(gens, default=None), len(ids)


def run_folders(root: Path) -> list[Path]:
    """The folders under `root` (the runs folder), by name; none when it does not exist."""
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def most_recently_active(root: Path) -> Path | None:
    """The run under `root` that last did anything (heartbeat, history, manifest), or None."""
    runs = [p for p in run_folders(root) if RunDir(p).is_run()]
    return max(runs, key=lambda p: (last_activity(p), p.name), default=None)
