"""A run directory, split by what it holds; `RunDir` is its run-level files.

    RUN/
      manifest.isld            the run's settings (envelope "manifest"), created under a lock
      .manifest.lock           flock for manifest creation and updates
      summary.json             written by the launcher at the end (plain JSON, for people)
      champion.isld            the run's best genome (envelope "champion")
      evaluation.isld          the champion on unseen starts (envelope "evaluation", `islands evaluate`)
      target-reached.isld      the first island to reach the target (envelope "target")
      launcher.isld            the launcher's bookkeeping: pids, restarts (envelope "launcher")
      .launcher.lock           flock held by the live launcher of this run
      islands/island-03/       one island's files: `island_files.IslandFiles`, `RunDir.island(id)`
      pool/island-03/          migrant batches: `pool.Pool`
      slurm/                   scheduler records: `scheduler_files.SchedulerFiles`, `RunDir.scheduler`

Only this package opens these files: the engine and the launcher call the methods of these
classes. Shared rules (containment, capped reads, lock files) are in `files`.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import stat
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock, Timeout

from migration_pool import atomic, files, format as fmt
from migration_pool.errors import FormatError, LauncherBusy, RunDirError
from migration_pool.island_files import IslandFiles
from migration_pool.island_ids import MAX_ISLANDS, valid_island_id
from migration_pool.scheduler_files import SchedulerFiles

MANIFEST = "manifest.isld"
# Names a run creates at its top level: a directory holding only these (or atomic's temp files)
# is a run being created, not someone's folder (`foreign_entries`).
RUN_ENTRIES = frozenset({MANIFEST, ".manifest.lock", "summary.json", "champion.isld", "evaluation.isld",
                         "islands", "pool",
                         "launcher.isld", ".launcher.lock", "target-reached.isld", "slurm"})
LOCK_FILES = frozenset({".manifest.lock", ".launcher.lock"})  # kept by `reset_run`
LOCK_TIMEOUT_S = 30.0
MAX_MARKER_BYTES = 64 * 1024  # a target marker is a few fields


class RunDir:
    """A run directory; cheap to construct, touches the disk only when asked."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._islands: dict[str, IslandFiles] = {}

    # -- layout ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def island(self, island: str) -> IslandFiles:
        """The files of one island (RunDirError if `island` is not a canonical island id)."""
        found = self._islands.get(island) if type(island) is str else None
        if found is None:
            found = IslandFiles(self.root, island)
            if len(self._islands) < MAX_ISLANDS:  # a run has at most these; a hostile list is bounded
                self._islands[island] = found
        return found

    @property
    def scheduler(self) -> SchedulerFiles:
        """The scheduler's records (RUN/slurm)."""
        return SchedulerFiles(self.root)

    def pool_dir(self, island: str | None = None) -> Path:
        return files.pool_dir(self.root, island)

    def is_run(self) -> bool:
        return self.manifest_path.is_file()

    def island_ids(self) -> list[str]:
        """Islands that have a directory in this run, sorted."""
        # scandir: is_dir() comes from the directory entry, no stat per island (the
        # migration step calls this at every event to discover islands).
        try:
            with os.scandir(self.root / "islands") as it:
                return sorted(e.name for e in it if valid_island_id(e.name) and e.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read_in_turn(self, island: str, turn: int, at_once: int,
                     read: Callable[[IslandFiles], Any]) -> tuple[list[tuple[str, Any]], int]:
        """`read` of up to `at_once` islands other than `island`, from the `turn`-th of them on
        (so a run of thousands of islands costs each reader a bounded number of reads, and over
        several calls every island is read); an unreadable file is skipped. Returns the
        (island, what `read` gave) pairs and the turn to start from next time."""
        others = [i for i in self.island_ids() if i != island]
        found = []
        for k in range(min(at_once, len(others))):
            other = others[(turn + k) % len(others)]
            try:
                found.append((other, read(self.island(other))))
            except (FormatError, OSError):
                continue
        return found, (turn + at_once) % max(1, len(others))

    def foreign_entries(self) -> list[str]:
        """Top-level names that no run creates: a directory with any is someone's folder
        (`--run-dir /`, `--run-dir ""`), not a run to create files in."""
        try:
            with os.scandir(self.root) as it:
                return sorted(e.name for e in it
                              if e.name not in RUN_ENTRIES and not e.name.startswith(atomic.TMP_PREFIX))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def islands_with_checkpoints(self) -> list[str]:
        """Islands holding at least one checkpoint file (readable or not)."""
        return [i for i in self.island_ids() if self.island(i).checkpoint_paths()]

    def ensure(self, island: str | None = None) -> None:
        """Create the directories (of one island too) and check they can be written.

        Raises:
            RunDirError: a directory cannot be made or written, or one inside the run is a
                symlink (it would make this process write and delete outside the run).
        """
        files.ensure(self.root, island)

    def checked_dir(self, directory: str | os.PathLike) -> str:
        """`directory` as a str once no component below the root is a symlink
        (`files.checked_dir`; RunDirError otherwise)."""
        return files.checked_dir(self.root, directory)

    def check_private(self) -> None:
        """Refuse a run directory or manifest that another user could write.

        Whoever can write a run's manifest can run code in its islands (the manifest names
        the problem as `pkg.mod:factory`, which every island imports), and whoever can
        write the run directory can replace the manifest. `launch` and `evolve` call this
        unless given --allow-shared-run.

        Raises:
            RunDirError: group or other may write the directory or the manifest, or another
                user (not root) owns them.
        """
        me = os.geteuid()
        for path in (self.root, self.manifest_path):
            try:
                st = os.stat(path)
            except OSError:  # missing or unusable: whoever uses it next says why
                continue
            writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            foreign = st.st_uid not in (me, 0)
            if writable or foreign:
                why = (f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})" if writable
                       else f"belongs to another user (uid {st.st_uid})")
                raise RunDirError(
                    f"{path} {why}: whoever can write a run's manifest can run code in its "
                    f"islands; run 'chmod go-w {path}', or pass --allow-shared-run if you trust "
                    f"everyone who can write it")

    # -- manifest -------------------------------------------------------------------------
    def manifest_lock(self, timeout: float = LOCK_TIMEOUT_S) -> FileLock:
        """The run's one lock (flock on `.manifest.lock`), released by the kernel if the holder dies.

        Held only around manifest creation and updates, never on the publish path.
        """
        return FileLock(files.no_symlink(self.root / ".manifest.lock"), timeout=timeout)

    def _lock(self) -> FileLock:
        return self.manifest_lock()

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when this directory holds no run yet."""
        return files.read_envelope(self.manifest_path, "manifest")

    def create_or_read_manifest(self, make: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The existing manifest, or a new one from `make()`; True when it was created.

        The lock makes two islands started at the same instant agree on one manifest.
        """
        self.ensure()
        try:
            with self._lock():
                existing = self.read_manifest()
                if existing is not None:
                    return existing, False
                manifest = make()
                atomic.publish(self.manifest_path, fmt.encode("manifest", manifest))
                return manifest, True
        except Timeout:
            raise RunDirError(f"timed out waiting for the manifest lock in {self.root}") from None

    def update_manifest(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Apply `change` to the manifest under the lock and write it back atomically."""
        try:
            with self._lock():
                manifest = self.read_manifest()
                if manifest is None:
                    raise RunDirError(f"{self.root} is not a run (no {MANIFEST})")
                manifest = change(manifest)
                atomic.publish(self.manifest_path, fmt.encode("manifest", manifest))
                return manifest
        except Timeout:
            raise RunDirError(f"timed out waiting for the manifest lock in {self.root}") from None

    def reset_run(self) -> list[str]:
        """Delete this run's files so that it starts over (run-level `--fresh`); the names removed.

        Only names a run creates (`RUN_ENTRIES`, temporary files of `atomic`) are removed, none
        through a symlink, and only while no launcher or island of the run is alive: their locks
        are held meanwhile. Lock files stay (a process may be waiting on one), so does anything
        else in the folder. The manifest goes last: an interrupted reset is still a run, and
        the same command finishes it.

        Raises:
            RunDirError: the folder holds files but no manifest, so it does not look like a run.
            LauncherBusy / IslandBusy: a launcher or an island of this run is alive.
        """
        names = [n for n in (RUN_ENTRIES - LOCK_FILES) if os.path.lexists(self.root / n)]
        if not self.is_run():
            if names:
                raise RunDirError(f"{self.root} has no {MANIFEST}, so it does not look like a run; "
                                  "refusing to delete anything in it (move it aside)")
            return []
        held = [self.claim_launcher()]
        try:
            held += [self.island(island).claim() for island in self.island_ids()]
            temps = [e.name for e in os.scandir(self.root) if e.name.startswith(atomic.TMP_PREFIX)]
            for name in sorted(names, key=lambda n: n == MANIFEST) + temps:
                path = self.root / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(self.checked_dir(path))  # fd-based: never follows a link inside
                else:
                    path.unlink(missing_ok=True)
            return sorted(names) + temps
        finally:
            for lock in held:
                lock.release()

    # -- run-level results ----------------------------------------------------------------
    def write_champion(self, body: dict[str, Any]) -> Path:
        path = self.root / "champion.isld"
        atomic.publish(path, fmt.encode("champion", body))
        return path

    def read_champion(self) -> dict[str, Any] | None:
        return files.read_envelope(self.root / "champion.isld", "champion")

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.root / "summary.json"
        atomic.publish(path, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
        return path

    def write_evaluation(self, body: dict[str, Any]) -> Path:
        """The champion's evaluation on unseen starts (`islands evaluate`), replacing the last."""
        path = self.root / "evaluation.isld"
        atomic.publish(path, fmt.encode("evaluation", body))
        return path

    def read_evaluation(self) -> dict[str, Any] | None:
        return files.read_envelope(self.root / "evaluation.isld", "evaluation")

    def merge_summary(self, key: str, value: Any) -> Path | None:
        """Set `key` in summary.json if the launcher wrote one (None otherwise, or if it is not
        a JSON object); a later figure of the run (its champion's evaluation) joins the summary."""
        path = self.root / "summary.json"
        try:
            summary = json.loads(atomic.read_capped(path))
        except (FileNotFoundError, FormatError, ValueError):  # none yet, or not a file we wrote
            return None
        if not isinstance(summary, dict):
            return None
        summary[key] = value
        return self.write_summary(summary)

    # -- stopping the whole run (--stop-when first) ---------------------------------------
    @property
    def target_marker_path(self) -> Path:
        return self.root / "target-reached.isld"

    def mark_target_reached(self, body: dict[str, Any]) -> bool:
        """Record that an island reached the target; False (and nothing written) if one did first.

        `body` is the marker's record (island, run_id, generation, evaluations, best_ever,
        target, time). A marker already there counts only if it is a valid one of the same run
        (`target_marker`); anything else is replaced. Written atomically and only when no valid
        marker is there, so normally the first island's record stays; two islands reaching the
        target within the same instant may leave the later one's (either way the run stops, and
        the summary reads times from histories).
        """
        if self.target_marker(body.get("run_id"), body.get("target"))[0] is not None:
            return False
        atomic.publish(self.target_marker_path, fmt.encode("target", body))
        return True

    def target_marker(self, run_id: Any, target: float | None = None) -> tuple[dict[str, Any] | None, str | None]:
        """The run's target marker if it is one: (body, None); (None, why not) for a file that is
        not; (None, None) when there is none (one stat).

        A marker ends every island of a run, so it counts only when it decodes as an envelope
        of kind "target" naming run `run_id` and an island of the run (its directory exists),
        with a finite best_ever at or above its own target and at or above `target` (the
        reader's, if it has one). An empty, corrupt, foreign or forged file is not one.
        """
        try:
            body = files.read_envelope(self.target_marker_path, "target", MAX_MARKER_BYTES)
        except FormatError as e:
            return None, str(e)
        except OSError as e:
            return None, f"{self.target_marker_path}: unreadable: {e.strerror or e}"
        if body is None:
            return None, None
        why = _marker_problem(body, run_id, target, self.root)
        return (None, f"{self.target_marker_path}: {why}") if why else (body, None)

    def target_reached(self, run_id: Any, target: float | None = None) -> bool:
        """Whether an island of run `run_id` reached the target (`target_marker`); a single stat
        while there is no marker, cheap enough to poll."""
        return self.target_marker(run_id, target)[0] is not None

    def read_target_reached(self) -> dict[str, Any] | None:
        """The marker's body as it is, unchecked (island, run_id, generation, evaluations,
        best_ever, target, time); None if none, FormatError if it is not an envelope."""
        return files.read_envelope(self.target_marker_path, "target", MAX_MARKER_BYTES)

    def claim_launcher(self) -> FileLock:
        """Hold the run for the calling launcher; LauncherBusy if another live launcher does."""
        self.ensure()
        return files.hold(self.root / ".launcher.lock",
                     LauncherBusy(f"another launcher is already running the run in {self.root}"))

    def write_launcher_state(self, body: dict[str, Any]) -> None:
        """The launcher's bookkeeping (pids, restarts), for `islands status` to show."""
        atomic.publish(self.root / "launcher.isld", fmt.encode("launcher", body))

    def read_launcher_state(self) -> dict[str, Any] | None:
        """The launcher's bookkeeping, None if no launcher ran here; FormatError if corrupt."""
        return files.read_envelope(self.root / "launcher.isld", "launcher")


def _marker_problem(body: dict[str, Any], run_id: Any, target: float | None, root: Path) -> str | None:
    """Why a decoded target marker is not a record of this run's island reaching the target (None if it is)."""
    island = body.get("island")
    if body.get("run_id") != run_id or not isinstance(run_id, str):
        return f"is from another run ({str(body.get('run_id'))[:40]!r})"
    if not isinstance(island, str) or not valid_island_id(island) \
            or not os.path.isdir(files.island_dir(root, island)):
        return f"names {str(island)[:40]!r}, which is not an island of this run"
    best, own = body.get("best_ever"), body.get("target")
    if not _real(best) or not math.isfinite(best) or (own is not None and not _real(own)):
        return f"holds no finite best fitness ({str(best)[:40]}, target {str(own)[:40]})"
    for goal in (own, target):
        if goal is not None and not best >= goal:
            return f"best fitness {best:g} is below the target {goal:g}"
    for key in ("generation", "evaluations"):
        if not isinstance(body.get(key), int) or isinstance(body.get(key), bool) or body[key] < 0:
            return f"{key} {str(body.get(key))[:40]} is not a count"
    return None


def _real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
