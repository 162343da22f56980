"""Layout of a run directory and every file in it except migrant batches.

    RUN/
      manifest.isld            the run's settings (envelope "manifest"), created under a lock
      .manifest.lock           flock for manifest creation and updates
      summary.json             written by the launcher at the end (plain JSON, for people)
      champion.isld            the run's best genome (envelope "champion")
      evaluation.isld          the champion on unseen starts (envelope "evaluation", `islands evaluate`)
      islands/island-03/
        .claim                 flock held by the live process running this island
        lease.isld             its lease: host, pid, job id, heartbeat (envelope "lease")
        status.isld            rewritten atomically, a few times a second at most
        history.jsonl          one JSON line per generation, append-only
        checkpoint-00000120.isld  the newest few checkpoints (envelope "checkpoint")
        island.log             stdout/stderr when started by the launcher
      launcher.isld            the launcher's bookkeeping: pids, restarts (envelope "launcher")
      .launcher.lock           flock held by the live launcher of this run
      pool/island-03/          migrant batches, see `pool.py`

Only this package opens these files: the engine and the launcher call the methods below.
History is append-only JSON lines: each line is written with one `write` call and readers
ignore a last line without its newline, so a crash mid-append loses at most that line.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from filelock import FileLock, Timeout

from migration_pool import atomic, format as fmt, lease
from migration_pool.errors import FormatError, IslandBusy, LauncherBusy, RunDirError

MANIFEST = "manifest.isld"
# [0-9], not \d (which matches non-ASCII digits), and \Z, not $ (which allows a newline),
# as pool.BATCH_RE: a name another process chose must match exactly or not at all.
CHECKPOINT_RE = re.compile(r"^checkpoint-([0-9]{8,})\.isld\Z")
# Names a run creates at its top level: a directory holding only these (or atomic's temp files)
# is a run being created, not someone's folder (`foreign_entries`).
RUN_ENTRIES = frozenset({MANIFEST, ".manifest.lock", "summary.json", "champion.isld", "evaluation.isld",
                         "islands", "pool",
                         "launcher.isld", ".launcher.lock", "target-reached.isld", "slurm"})
LOCK_FILES = frozenset({".manifest.lock", ".launcher.lock"})  # kept by `reset_run`
KEEP_CHECKPOINTS = 3
HISTORY_TAIL_BYTES = 32 << 20  # status and plots read at most this much of each history, from the end
MAX_HISTORY_LINE = 1 << 20  # a longer line is not a history record
LOCK_TIMEOUT_S = 30.0


class RunDir:
    """A run directory; cheap to construct, touches the disk only when asked."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # -- layout ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def island_dir(self, island: str) -> Path:
        return self.root / "islands" / _valid_id(island)

    def pool_dir(self, island: str | None = None) -> Path:
        return self.root / "pool" / _valid_id(island) if island else self.root / "pool"

    def log_path(self, island: str) -> Path:
        return self.island_dir(island) / "island.log"

    def is_run(self) -> bool:
        return self.manifest_path.is_file()

    def island_ids(self) -> list[str]:
        """Islands that have a directory in this run, sorted."""
        # scandir: is_dir() comes from the directory entry, no stat per island (the
        # migration step calls this at every event to discover islands).
        try:
            with os.scandir(self.root / "islands") as it:
                return sorted(e.name for e in it if fmt.ISLAND_ID_RE.match(e.name) and e.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []

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
        return [i for i in self.island_ids() if self.checkpoint_paths(i)]

    def ensure(self, island: str | None = None) -> None:
        """Create the directories (of one island too) and check they can be written.

        Raises:
            RunDirError: a directory cannot be made or written, or one inside the run is a
                symlink (it would make this process write and delete outside the run).
        """
        dirs = [self.root, self.root / "islands", self.pool_dir()]
        if island:
            dirs += [self.island_dir(island), self.pool_dir(island)]
        try:
            for d in dirs:
                d.mkdir(mode=0o755, parents=True, exist_ok=True)  # never group-writable
                self.checked_dir(d)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(f"no write permission on {self.root}")
        except RunDirError:
            raise
        except OSError as e:
            raise RunDirError(f"cannot use run directory {self.root}: {e.strerror or e}") from None

    def checked_dir(self, directory: str | os.PathLike) -> str:
        """`directory` (inside the run) as a str, after checking that no component below the
        root is a symlink or something other than a directory.

        The root itself may be a symlink (the user chose it); below it, a symlinked
        `pool/island-00` or `islands/island-00` would make an island publish into, and
        collect from, another run's pool (docs/DESIGN.md, "Containment"). A missing
        component is fine (FileNotFoundError comes from whoever uses it).

        Raises:
            RunDirError: a component is a symlink or not a directory.
        """
        path = os.fspath(directory)
        root = os.fspath(self.root)
        rel = os.path.relpath(path, root)
        if rel == ".":
            return path
        if rel.startswith(".."):
            raise RunDirError(f"{path} is outside the run directory {root}")
        current = root
        for part in rel.split(os.sep):
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return path
            if stat.S_ISLNK(mode):
                raise RunDirError(f"{current} is a symlink; refusing to write through it "
                                  f"(it would leave the run directory)")
            if not stat.S_ISDIR(mode):
                raise RunDirError(f"{current} is not a directory")
        return path

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
        return FileLock(_no_symlink(self.root / ".manifest.lock"), timeout=timeout)

    def _lock(self) -> FileLock:
        return self.manifest_lock()

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when this directory holds no run yet."""
        return _read(self.manifest_path, "manifest")

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

    # -- one process per island -----------------------------------------------------------
    def claim(self, island: str, *, job_id: str | None = None,
              warn: Callable[[str], None] | None = None) -> lease.Claim:
        """Hold this island for the calling process; IslandBusy if another process holds it.

        A flock on `.claim`, released by the kernel when the holder dies, even by SIGKILL, so a
        crashed island never blocks its restart; and a lease (`migration_pool.lease`: host,
        pid, `job_id`, heartbeat), so that a copy on another host is refused while the holder's
        lease is fresh even where flock does not reach across hosts. A stale lease of another
        host is taken over with a notice through `warn`.
        """
        self.ensure(island)
        lock = _hold(self.island_dir(island) / ".claim", IslandBusy(f"{island} is already running in {self.root}"))
        path = self.island_dir(island) / lease.LEASE_FILE
        try:
            return lease.take(
                island, lock, job_id=job_id, warn=warn or (lambda _message: None),
                read=lambda: lease.Lease.from_body(_read(path, "lease", lease.MAX_LEASE_BYTES)),
                write=lambda held: atomic.publish(path, fmt.encode("lease", held.to_body()), durable=False),
                remove=lambda: path.unlink(missing_ok=True))
        except BaseException:
            lock.release()
            raise

    def read_lease(self, island: str) -> lease.Lease | None:
        """The island's lease (None if none or unusable); FormatError if the file is corrupt."""
        return lease.Lease.from_body(_read(self.island_dir(island) / lease.LEASE_FILE, "lease", lease.MAX_LEASE_BYTES))

    # -- status ---------------------------------------------------------------------------
    def status_path(self, island: str) -> Path:
        return self.island_dir(island) / "status.isld"

    def write_status(self, island: str, status: dict[str, Any]) -> None:
        """Replace the heartbeat atomically but without fsync: it is rewritten twice a second,
        a power loss can at worst cost the last one (readers treat a missing or unreadable
        status as "no heartbeat yet"), and the fsyncs cost more than the island loop itself."""
        self.checked_dir(self.island_dir(island))
        atomic.publish(self.status_path(island), fmt.encode("status", status), durable=False)

    def read_status(self, island: str) -> dict[str, Any] | None:
        """The island's status, None if it has none yet; FormatError if it is corrupt."""
        return _read(self.status_path(island), "status")

    # -- history --------------------------------------------------------------------------
    def history_path(self, island: str) -> Path:
        return self.island_dir(island) / "history.jsonl"

    def append_history(self, island: str, records: list[dict[str, Any]], durable: bool = False) -> None:
        """Append records as JSON lines in a single write, so a crash tears at most the last.

        Appends are not fsynced (they come with every status rewrite); `durable` fsyncs the
        file, which an island does right before each checkpoint, so that a checkpoint that
        survived a power cut never finds its history missing lines it already counts.
        """
        if not records and not durable:
            return
        text = "".join(json.dumps(r, separators=(",", ":"), allow_nan=True) + "\n" for r in records)
        fd = os.open(self.history_path(island),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            if text:
                os.write(fd, text.encode())
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def iter_history(self, island: str) -> Iterator[dict[str, Any]]:
        """History records in order, skipping a torn last line and any line that is not JSON."""
        try:
            with open(self.history_path(island), "rb") as f:
                for line in _lines(f):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict):
                        yield rec
        except FileNotFoundError:
            return

    def read_history(self, island: str) -> list[dict[str, Any]]:
        return list(self.iter_history(island))

    def history_lines(self, island: str, max_bytes: int = HISTORY_TAIL_BYTES) -> list[bytes]:
        """Complete history lines of the last `max_bytes` of the file, undecoded (a torn
        last line, and the first line cut by the tail, are dropped).

        For readers of many islands that decode only a sample: parsing every line of 128
        islands x 1,000 generations costs more than the whole status report may take, and a
        history of millions of generations must not be read whole (the tail is what matters).
        """
        try:
            fd = os.open(self.history_path(island), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise FormatError("is a symlink, refused", str(self.history_path(island))) from None
            raise
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise FormatError("is not a regular file", str(self.history_path(island)))
            start = max(0, info.st_size - max_bytes)
            f.seek(start)
            data = f.read(max_bytes)
        lines = data.split(b"\n")[:-1]  # the last piece is empty or a line still being written
        return lines[1:] if start > 0 else lines

    def truncate_history(self, island: str, generation: int) -> None:
        """Keep only records up to `generation` (a resume replays what came after; a fresh
        start, generation -1, keeps none).

        Streams the file into a new one and renames it over the old: a history of millions of
        lines is never held in memory, and a crash leaves the old file or the new one whole.
        Lines without an integer generation (torn, or edited by hand) are dropped.
        """
        path = self.history_path(island)
        if not path.exists():
            return
        tmp = path.with_name(f"{atomic.TMP_PREFIX}{path.name}.{os.getpid()}")
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                for line in _lines(src):
                    gen = _generation(line)
                    if gen is not None and gen <= generation:
                        dst.write(line)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint_paths(self, island: str) -> list[Path]:
        """Checkpoint files of an island, newest first."""
        d = self.island_dir(island)
        if not d.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in d.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def save_checkpoint(self, island: str, generation: int, body: dict[str, Any]) -> Path:
        """Write a durable checkpoint, then drop all but the newest few."""
        path = Path(self.checked_dir(self.island_dir(island)), f"checkpoint-{generation:08d}.isld")
        atomic.publish(path, fmt.encode("checkpoint", body))
        for old in self.checkpoint_paths(island)[KEEP_CHECKPOINTS:]:
            old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self, island: str) -> tuple[dict[str, Any] | None, list[FormatError]]:
        """The newest readable checkpoint (None if there is none) and the errors of newer ones.

        A corrupt newest checkpoint falls back to the one before it; the caller decides
        whether having only corrupt ones is fatal.
        """
        errors: list[FormatError] = []
        for path in self.checkpoint_paths(island):
            try:
                return fmt.decode(atomic.read_capped(path), "checkpoint", path=str(path)), errors
            except FileNotFoundError:
                continue
            except FormatError as e:
                errors.append(e)
        return None, errors

    def reset_island(self, island: str) -> None:
        """Forget an island's checkpoints, history and status (`--fresh`)."""
        d = self.island_dir(island)
        self.checked_dir(d)
        self.checked_dir(self.pool_dir(island))
        for p in self.checkpoint_paths(island) + [self.history_path(island), self.status_path(island)]:
            p.unlink(missing_ok=True)
        shutil.rmtree(self.pool_dir(island), ignore_errors=True)
        d.mkdir(parents=True, exist_ok=True)

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
            held += [self.claim(island) for island in self.island_ids()]
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
        return _read(self.root / "champion.isld", "champion")

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
        return _read(self.root / "evaluation.isld", "evaluation")

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

        The marker is written atomically and only when absent, so normally the first island's
        record stays; two islands reaching the target within the same instant may leave the
        later one's (either way the run stops, and the summary reads times from histories).
        """
        if self.target_marker_path.exists():
            return False
        atomic.publish(self.target_marker_path, fmt.encode("target", body))
        return True

    def target_reached(self) -> bool:
        """A single stat: whether some island of the run reached the target (cheap enough to poll)."""
        return self.target_marker_path.exists()

    def read_target_reached(self) -> dict[str, Any] | None:
        """The marker's body (island, run_id, generation, evaluations, time); None if none."""
        return _read(self.target_marker_path, "target")

    def open_log(self, island: str) -> BinaryIO:
        """The island's log file opened for appending, unbuffered, for a child's stdout/stderr."""
        self.ensure(island)
        fd = os.open(self.log_path(island),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        return open(fd, "ab", buffering=0)

    def read_log_tail(self, island: str, max_bytes: int = 4096) -> str:
        """The last `max_bytes` of an island's log as text ("" if it has none)."""
        try:
            with open(self.log_path(island), "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                return f.read(max_bytes).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- SLURM (launcher/slurm.py) ----------------------------------------------------------
    @property
    def slurm_dir(self) -> Path:
        """RUN/slurm: the batch script, the submitted jobs and the tasks' output files."""
        return self.root / "slurm"

    def write_slurm_script(self, text: str) -> Path:
        """Publish RUN/slurm/job.sbatch (replaced whole, so a reader never sees half of it)."""
        self.ensure()
        self.slurm_dir.mkdir(mode=0o755, exist_ok=True)
        path = self.slurm_dir / "job.sbatch"
        atomic.publish(path, text.encode())
        return path

    def record_slurm_job(self, record: dict[str, Any]) -> None:
        """Append one submission (job id, pattern, index -> island) to RUN/slurm/jobs, a JSON
        line each, so `islands status` and a later launch know which job runs which island."""
        self.slurm_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        fd = os.open(self.slurm_dir / "jobs", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, line)  # one write of one line: appends from two launchers never interleave
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_slurm_output(self, task: str, max_bytes: int = 4096) -> str | None:
        """The last `max_bytes` of a SLURM task's output file RUN/slurm/TASK.out; None if absent."""
        if not re.match(r"^[0-9]+(_[0-9]+)?\Z", task):
            return None
        try:
            with open(self.slurm_dir / f"{task}.out", "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                return f.read(max_bytes).decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def read_slurm_jobs(self) -> list[dict[str, Any]]:
        """Every recorded submission, oldest first; lines that are not JSON objects are skipped."""
        try:
            with open(self.slurm_dir / "jobs", "rb") as f:
                lines = list(_lines(f))
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def claim_launcher(self) -> FileLock:
        """Hold the run for the calling launcher; LauncherBusy if another live launcher does."""
        self.ensure()
        return _hold(self.root / ".launcher.lock",
                     LauncherBusy(f"another launcher is already running the run in {self.root}"))

    def write_launcher_state(self, body: dict[str, Any]) -> None:
        """The launcher's bookkeeping (pids, restarts), for `islands status` to show."""
        atomic.publish(self.root / "launcher.isld", fmt.encode("launcher", body))

    def read_launcher_state(self) -> dict[str, Any] | None:
        """The launcher's bookkeeping, None if no launcher ran here; FormatError if corrupt."""
        return _read(self.root / "launcher.isld", "launcher")


def _lines(f: BinaryIO) -> Iterator[bytes]:
    """Complete lines of `f` (with their newline), skipping any longer than MAX_HISTORY_LINE."""
    while True:
        line = f.readline(MAX_HISTORY_LINE + 1)
        if not line:
            return
        if not line.endswith(b"\n"):
            if len(line) <= MAX_HISTORY_LINE:
                return  # a torn last line
            while line and not line.endswith(b"\n"):  # skip the rest of an absurd line
                line = f.readline(MAX_HISTORY_LINE + 1)
            continue
        yield line


def _generation(line: bytes) -> int | None:
    """The integer generation of a history line; None for a line that is not a record of one."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    gen = rec.get("generation") if isinstance(rec, dict) else None
    return gen if isinstance(gen, int) and not isinstance(gen, bool) else None


def _read(path: Path, kind: str, max_bytes: int = fmt.MAX_FILE_BYTES) -> dict[str, Any] | None:
    """An envelope file's body; None if the file does not exist, FormatError if it is bad.

    Read once more after ESTALE or ENOENT (`atomic.read_shared`): status, lease and manifest
    files are replaced by processes that may run on other hosts."""
    try:
        return fmt.decode(atomic.read_shared(path, max_bytes), kind, max_bytes=max_bytes, path=str(path))
    except FileNotFoundError:
        return None


def _valid_id(island: str) -> str:
    """`island` if it is a canonical island id; RunDirError otherwise.

    Ids come from manifests, command lines and directory listings, and every one becomes a
    path component: "../../x" must never reach the file system.
    """
    try:
        return fmt.check_island_id(island)
    except FormatError as e:
        raise RunDirError(e.args[0]) from None


def _no_symlink(path: Path) -> str:
    """`path` as a str; RunDirError if it is a symlink (opening a lock file follows links
    and truncates the target)."""
    if os.path.islink(path):
        raise RunDirError(f"{path} is a symlink; refusing to open it")
    return str(path)


def _hold(path: Path, busy: Exception) -> FileLock:
    """A non-blocking flock on `path`, or `busy` raised if another process holds it.

    flock is released by the kernel when the holder dies, even by SIGKILL.
    """
    lock = FileLock(_no_symlink(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise busy from None
    return lock
