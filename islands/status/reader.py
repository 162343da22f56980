"""The one reader of a run directory: `open_run(path)` gives a `RunReader`, a read-only view.

Every reader of a run goes through here: `islands status` (`islands.status.report`), the
Python API (`islands.results`, which adds what needs torch), `islands export`, `evaluate` and
`draw`, and the launcher (heartbeats, its summary and champion). Files are read through
`migration_pool.rundir.RunDir` only; nothing here writes, and nothing imports torch.

The error policy, the same for every reader:

- The run itself must be there: a missing path, a file, or a directory without a manifest
  raises `RunDirError`, a corrupt manifest `FormatError`, each with one line (the CLI shows
  it as is). `RunReader.config` raises `FormatError` when the recorded settings do not parse.
- A file inside the run (an island's status, lease or history, the champion, the evaluation,
  the launcher state) that is missing gives None (or nothing); one that cannot be read, is
  corrupt, or belongs to another run or island is skipped the same way, never raised: its
  reason is kept (`RunReader.problems` per island status, `RunReader.notes` for the others,
  in reading order), so a report can say what it could not read. Other processes rewrite
  these files all the time; a torn or foreign one is expected, not an error.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from islands import basins as basin_records
from islands.basins import Basin
from islands.config import RunConfig
from islands.manifest import Run, planned_islands, run_from_manifest
from islands.status.record import HistoryLine, IslandStatus, as_str
from islands.status.summary import SummaryView, from_body as summary_from_body
from migration_pool import files
from migration_pool.errors import FormatError, RunDirError
from migration_pool.lease import Lease
from migration_pool.rundir import RunDir

__all__ = ["RunReader", "open_run", "read_status", "status_or_problem", "sample_records"]


def open_run(path: str | Path) -> RunReader:
    """The run at `path`.

    Raises:
        RunDirError: `path` does not exist, is not a directory, or holds no run.
        FormatError: its manifest is corrupt.
    """
    rundir = RunDir(path)
    try:
        manifest = rundir.read_manifest()
    except NotADirectoryError:
        raise RunDirError(f"{path} is not a directory") from None
    if manifest is None:
        if not Path(path).exists():
            raise RunDirError(f"run directory {path} does not exist")
        raise RunDirError(f"{path} is not a run directory (no manifest.isld; start one with `islands launch` "
                          "or `islands evolve`)")
    return RunReader(rundir, manifest)


def status_or_problem(rundir: RunDir, island: str, run_id: str | None = None) -> tuple[IslandStatus | None, str | None]:
    """An island's status, or None and why not (None too when it has written none yet).

    A status naming another island, or (with `run_id`) another run, is skipped like a
    corrupt one: a run directory may hold a leftover file.
    """
    try:
        body = rundir.island(island).read_status()
    except FormatError as e:
        return None, f"status file corrupt: {e}"
    except OSError as e:
        return None, f"status file unreadable: {e.strerror or e}"
    if body is None:
        return None, None
    status = IslandStatus.from_body(body)
    if status.island not in (None, island):
        return None, f"status file names another island ({status.island!r})"
    if run_id is not None and status.run_id not in (None, run_id):
        return None, f"status file is from another run ({status.run_id!r})"
    return status, None


def read_status(rundir: RunDir, island: str, run_id: str | None = None) -> IslandStatus | None:
    """An island's status, None when missing or skipped (it is rewritten soon): for readers
    that poll, like the launcher, and have nowhere to show why."""
    return status_or_problem(rundir, island, run_id)[0]


def sample_records(lines: Sequence[bytes], points: int, key: bytes | None = None) -> list[HistoryLine]:
    """Decode at most `points` evenly spaced lines (those containing `key`), always the last.

    Readers of many islands decode only a sample: the raw lines are split at C speed and
    most are never parsed (the status report stays well under a second for 128 islands).
    """
    if key is not None:
        lines = [ln for ln in lines if key in ln]
    if points <= 0 or not lines:
        return []
    if len(lines) > points:
        idx = np.unique(np.linspace(0, len(lines) - 1, points).round().astype(np.int64))
        lines = [lines[i] for i in idx]
    return [HistoryLine.from_body(rec) for rec in files.json_objects(lines)]


class RunReader:
    """A read-only view of one run: its manifest, islands, statuses, histories and records."""

    def __init__(self, rundir: RunDir, manifest: Mapping[str, Any]) -> None:
        self.rundir = rundir
        self.root = Path(rundir.root)
        self.manifest = manifest
        self.run_id: str | None = as_str(manifest.get("run_id"))
        self.planned: tuple[str, ...] = planned_islands(manifest)
        self.problems: dict[str, str] = {}  # island -> why its status was skipped
        self.notes: list[str] = []  # other files skipped, one line each, in reading order

    # -- the run ----------------------------------------------------------------------------
    @cached_property
    def run(self) -> Run:
        """The run as its manifest records it (`islands.manifest`); FormatError if the manifest's settings are bad."""
        return run_from_manifest(self.root, dict(self.manifest))

    @property
    def config(self) -> RunConfig:
        return self.run.config

    def present(self) -> list[str]:
        """Islands that wrote anything, in id order."""
        return self.rundir.island_ids()

    # -- one island's files -----------------------------------------------------------------
    def status(self, island: str) -> IslandStatus | None:
        """Its latest status; None if it has none or it was skipped (reason in `problems`)."""
        status, problem = status_or_problem(self.rundir, island, self.run_id)
        if problem is not None:
            self.problems[island] = problem
        return status

    def statuses(self, islands: Sequence[str] | None = None) -> dict[str, IslandStatus]:
        """The readable statuses of `islands` (default: every island present)."""
        found = {i: self.status(i) for i in (self.present() if islands is None else islands)}
        return {i: s for i, s in found.items() if s is not None}

    def lease(self, island: str) -> Lease | None:
        """Its claim lease; None if it has none or it cannot be read (it is advice only)."""
        try:
            return self.rundir.island(island).read_lease()
        except (FormatError, OSError):
            return None

    def history(self, island: str) -> Iterator[HistoryLine]:
        """Every history line, decoded, in order (torn and non-JSON lines are skipped)."""
        try:
            for body in self.rundir.island(island).iter_history():
                yield HistoryLine.from_body(body)
        except (FormatError, OSError) as e:
            self.notes.append(f"{island}: history unreadable: {e}")

    def history_tail(self, island: str) -> list[bytes] | None:
        """The complete lines of the history's tail, undecoded; None if it cannot be read."""
        try:
            return self.rundir.island(island).history_lines()
        except (FormatError, OSError) as e:
            self.notes.append(f"{island}: history unreadable: {e}")
            return None

    def sampled_history(self, island: str, points: int, key: bytes | None = None) -> list[HistoryLine]:
        """At most `points` lines of the history's tail (`sample_records`)."""
        return sample_records(self.history_tail(island) or [], points, key)

    def summary(self, island: str) -> SummaryView | None:
        """Its history summary (`islands.status.summary`) if it has one of this run and island;
        None otherwise (an island of an earlier version, a corrupt file): read its history then."""
        try:
            view = summary_from_body(self.rundir.island(island).read_summary())
        except (FormatError, OSError):
            return None
        return view if view is not None and view.run_id == self.run_id and view.island == island else None

    def checkpoint_generation(self, island: str) -> int | None:
        """The generation of its newest checkpoint file (listed, never loaded)."""
        try:
            return self.rundir.island(island).newest_checkpoint_generation()
        except OSError:
            return None

    def basins(self, island: str, dim: int) -> np.ndarray:
        """The valid rows of its basin record (`islands.basins`), none when it has none."""
        try:
            return basin_records.from_body(self.rundir.island(island).read_basins(), dim, self.run_id)
        except (FormatError, OSError) as e:
            self.notes.append(f"{island}: basins unreadable: {e}")
            return np.zeros((0, dim + 2))

    # -- run-level records ------------------------------------------------------------------
    def optima(self, k: int = 10, statuses: Mapping[str, IslandStatus] | None = None,
               basins_only: bool = False) -> list[Basin]:
        """The k best distinct optima found: the basins the islands' restarts recorded (CMA-ES)
        and each island's best-ever genome, merged where one lies inside a better one's basin
        (`islands.basins.distinct`), best first. Vector genomes only (NEAT: none). `statuses`:
        those already read (default: every island's); `basins_only`: none when no island
        recorded a basin (the best-evers alone are the islands' table)."""
        points: dict[str, np.ndarray] = {}
        found: dict[str, np.ndarray] = {}
        for island, status in (self.statuses() if statuses is None else statuses).items():
            genome = status.best_genome
            if isinstance(genome, np.ndarray) and genome.ndim == 1 and status.best_ever is not None:
                points[island] = np.concatenate([genome.astype(np.float64), [0.0, status.best_ever]])[None, :]
                found[island] = self.basins(island, genome.shape[0])
        if basins_only and not any(len(rows) for rows in found.values()):
            return []
        return basin_records.distinct({i: np.concatenate([points[i], found[i]]) for i in points}, k)

    def champion_file(self) -> Mapping[str, Any] | None:
        """`champion.isld` if it is this run's (or names no run)."""
        body = self._read(self.rundir.read_champion, "champion file unreadable")
        return body if isinstance(body, Mapping) and body.get("run_id") in (None, self.run_id) else None

    def evaluation(self) -> Mapping[str, Any] | None:
        """The recorded evaluation (`islands evaluate`) if it is this run's."""
        return read_evaluation(self.rundir, self.run_id, self.notes)

    def launcher_state(self) -> Mapping[str, Any] | None:
        """The launcher's bookkeeping (`launcher.isld`) if it is this run's (or names no run)."""
        body = self._read(self.rundir.read_launcher_state, "launcher state unreadable, restarts unknown")
        return body if isinstance(body, Mapping) and body.get("run_id") in (None, self.run_id) else None

    def _read(self, read: Any, what: str) -> Any:
        try:
            return read()
        except FileNotFoundError:
            return None
        except (FormatError, OSError) as e:
            self.notes.append(f"{what}: {e}")
            return None


def read_evaluation(rundir: RunDir, run_id: str | None, notes: list[str] | None = None) -> Mapping[str, Any] | None:
    """The run's recorded evaluation body, None if there is none, it is another run's (with
    `run_id`) or it cannot be read (the reason goes to `notes`)."""
    try:
        body = rundir.read_evaluation()
    except (FormatError, OSError) as e:
        if notes is not None:
            notes.append(f"evaluation file unreadable: {e}")
        return None
    if not isinstance(body, Mapping) or (run_id is not None and body.get("run_id") != run_id):
        return None
    return body
