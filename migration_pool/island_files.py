"""One island's files in a run directory: `RUN/islands/<id>/` (and its pool directory to reset).

    islands/island-03/
      .claim                 flock held by the live process running this island
      lease.isld             its lease: host, pid, job id, heartbeat (envelope "lease")
      status.isld            rewritten atomically, a few times a second at most
      history.jsonl          one JSON line per generation, append-only
      summary.isld           a few hundred points of the history, rewritten after each append
      segments.isld          a tuned island's segments, rewritten atomically at each decision
      basins.isld            the basins its restarts found (islands.basins), rewritten when they change
      obs_stats.isld         gym:* tasks: the statistics of the observations it saw (islands.obs_exchange)
      checkpoint-00000120.isld  the newest few checkpoints (envelope "checkpoint")
      island.log             stdout/stderr when started by the launcher

`IslandFiles` is what `RunDir.island(id)` returns: the claim and its lease, the status
heartbeat, the history, the checkpoints and the log. History is append-only JSON lines: each
line is written with one `write` call and readers ignore a last line without its newline, so
a crash mid-append loses at most that line.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from migration_pool import atomic, files, format as fmt, lease
from migration_pool.errors import FormatError, IslandBusy

# [0-9], not \d (which matches non-ASCII digits), and \Z, not $ (which allows a newline),
# as legacy_batches.BATCH_RE: a name another process chose must match exactly or not at all.
CHECKPOINT_RE = re.compile(r"^checkpoint-([0-9]{8,})\.isld\Z")
KEEP_CHECKPOINTS = 3
HISTORY_TAIL_BYTES = 32 << 20  # status and plots read at most this much of each history, from the end
SEGMENTS_MAX_BYTES = 4 << 20  # another island's segment records are read at every decision: bounded
BASINS_MAX_BYTES = 1 << 20  # another island's basins are read at every checkpoint: bounded
OBS_STATS_MAX_BYTES = 4 << 20  # another island's observation statistics: two vectors of the observation's size
SUMMARY_MAX_BYTES = 4 << 20  # a history summary is a few hundred points: anything larger is not one
HISTORY_MAX_BYTES = 1 << 30  # a whole-history read (summary, Python API) stops here: ~4 million generations

_LINE = json.JSONEncoder(separators=(",", ":"), allow_nan=True)  # one encoder: json.dumps builds one per call


@dataclass(frozen=True)
class IslandFiles:
    """The files of island `id` in the run at `root`; cheap, touches the disk only when asked.
    Its paths are computed once (a report of thousands of islands asks for each several times).

    Raises RunDirError on construction if `id` is not a canonical island id.
    """

    root: Path
    id: str

    def __post_init__(self) -> None:
        files.valid_id(self.id)

    @cached_property
    def dir(self) -> Path:
        """RUN/islands/<id>."""
        return self.root / "islands" / self.id

    @cached_property
    def log_path(self) -> Path:
        return self.dir / "island.log"

    # -- one process per island -----------------------------------------------------------
    def claim(self, *, job_id: str | None = None, warn: Callable[[str], None] | None = None,
              wait_s: float = 0.0) -> lease.Claim:
        """Hold this island for the calling process; IslandBusy if another process holds it.

        A flock on `.claim`, released by the kernel when the holder dies, even by SIGKILL, so a
        crashed island never blocks its restart; and a lease (`migration_pool.lease`: host,
        pid, `job_id`, heartbeat), so that a copy on another host is refused while the holder's
        lease is fresh even where flock does not reach across hosts. A stale lease of another
        host is taken over with a notice through `warn`; a fresh one is waited on for up to
        `wait_s` seconds, and one naming the same scheduler task `job_id` is taken over at once
        (`lease.take`). On this host the flock decides: the
        claim remembers the claim file's inode, and yields to a lease of this host only once that
        file was replaced (`lease.Claim.refresh`).
        """
        files.ensure(self.root, self.id)
        claim_file = self.dir / ".claim"
        lock = files.hold(claim_file, IslandBusy(f"{self.id} is already running in {self.root}"))
        path = self.dir / lease.LEASE_FILE
        try:
            locked = _inode(claim_file)
            return lease.take(
                self.id, lock, job_id=job_id, warn=warn or (lambda _message: None),
                read=lambda: lease.Lease.from_body(files.read_envelope(path, "lease", lease.MAX_LEASE_BYTES)),
                write=lambda held: atomic.publish(path, fmt.encode("lease", held.to_body()), durable=False),
                remove=lambda: path.unlink(missing_ok=True),
                holds=lambda: locked is not None and _inode(claim_file) == locked, wait_s=wait_s)
        except BaseException:
            lock.release()
            raise

    def read_lease(self) -> lease.Lease | None:
        """The island's lease (None if none or unusable); FormatError if the file is corrupt."""
        return lease.Lease.from_body(files.read_envelope(self.dir / lease.LEASE_FILE, "lease", lease.MAX_LEASE_BYTES))

    # -- status ---------------------------------------------------------------------------
    @cached_property
    def status_path(self) -> Path:
        return self.dir / "status.isld"

    def write_status(self, status: dict[str, Any]) -> None:
        """Replace the heartbeat atomically but without fsync: it is rewritten up to twice a second,
        a power loss can at worst cost the last one (readers treat a missing or unreadable
        status as "no heartbeat yet"), and the fsyncs cost more than the island loop itself."""
        files.checked_dir(self.root, self.dir)
        atomic.publish(self.status_path, fmt.encode("status", status), durable=False)

    def read_status(self) -> dict[str, Any] | None:
        """The island's status, None if it has none yet; FormatError if it is corrupt."""
        return files.read_envelope(self.status_path, "status")

    # -- segments (a tuner's records, islands.tuning.segments) ----------------------------
    @cached_property
    def segments_path(self) -> Path:
        return self.dir / "segments.isld"

    def write_segments(self, body: dict[str, Any]) -> None:
        """Replace the island's segment records atomically (durably: a tuner's state on resume)."""
        files.checked_dir(self.root, self.dir)
        atomic.publish(self.segments_path, fmt.encode("segments", body), durable=True)

    def read_segments(self, max_bytes: int = SEGMENTS_MAX_BYTES) -> dict[str, Any] | None:
        """The island's segment records, None if it has none; FormatError if corrupt or too large."""
        return files.read_envelope(self.segments_path, "segments", max_bytes)

    # -- basins (the optima an island's restarts found, islands.basins) -----------------------
    @cached_property
    def basins_path(self) -> Path:
        return self.dir / "basins.isld"

    def write_basins(self, body: dict[str, Any]) -> None:
        """Replace the island's basin records atomically (not durably: a lost one is rewritten
        from the checkpoint's state at the next exchange)."""
        files.checked_dir(self.root, self.dir)
        atomic.publish(self.basins_path, fmt.encode("basins", body), durable=False)

    def read_basins(self) -> dict[str, Any] | None:
        """The island's basin records, None if it has none; FormatError if corrupt or too large."""
        return files.read_envelope(self.basins_path, "basins", BASINS_MAX_BYTES)

    # -- observation statistics (gym:* obs_norm, islands.obs_exchange) -------------------------
    @cached_property
    def obs_stats_path(self) -> Path:
        return self.dir / "obs_stats.isld"

    def write_obs_stats(self, body: dict[str, Any]) -> None:
        """Replace the island's observation statistics atomically (not durably: the checkpoint
        holds them, and they are rewritten at the next checkpoint)."""
        files.checked_dir(self.root, self.dir)
        atomic.publish(self.obs_stats_path, fmt.encode("obs_stats", body), durable=False)

    def read_obs_stats(self) -> dict[str, Any] | None:
        """The island's observation statistics, None if it has none; FormatError if corrupt or too large."""
        return files.read_envelope(self.obs_stats_path, "obs_stats", OBS_STATS_MAX_BYTES)

    # -- history summary --------------------------------------------------------------------
    @cached_property
    def summary_path(self) -> Path:
        return self.dir / "summary.isld"

    def write_summary(self, body: dict[str, Any], durable: bool = False) -> None:
        """Replace the history summary atomically (`islands.status.summary`); fsynced only when
        `durable` (with the history, before a checkpoint)."""
        files.checked_dir(self.root, self.dir)
        atomic.publish(self.summary_path, fmt.encode("summary", body), durable=durable)

    def read_summary(self) -> dict[str, Any] | None:
        """The history summary, None if there is none; FormatError if corrupt or too large."""
        return files.read_envelope(self.summary_path, "summary", SUMMARY_MAX_BYTES)

    # -- history --------------------------------------------------------------------------
    @cached_property
    def history_path(self) -> Path:
        return self.dir / "history.jsonl"

    def append_history(self, records: list[dict[str, Any]], durable: bool = False) -> None:
        """Append records as JSON lines in a single write, so a crash tears at most the last.

        Appends are not fsynced (they come with every status rewrite); `durable` fsyncs the
        file, which an island does right before each checkpoint, so that a checkpoint that
        survived a power cut never finds its history missing lines it already counts.
        """
        if not records and not durable:
            return
        text = "".join(_LINE.encode(r) + "\n" for r in records)
        fd, _ = self._open_history(os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            if text:
                os.write(fd, text.encode())
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _open_history(self, flags: int = os.O_RDONLY) -> tuple[int, int]:
        """The history's descriptor and its size at opening: every reader and the writer of the
        history open it here (`open_regular`). Readers read no further than that size (a file
        another process keeps appending to ends somewhere) and than their cap
        (`HISTORY_MAX_BYTES`, `HISTORY_TAIL_BYTES`)."""
        return open_regular(self.history_path, flags)

    def iter_history(self, max_bytes: int = HISTORY_MAX_BYTES) -> Iterator[dict[str, Any]]:
        """History records in order, skipping a torn last line and any line that is not JSON.

        Reads at most `max_bytes` (and no further than the file's size when opened): past the
        cap, after the records before it, FormatError says the rest was not read. FormatError
        too for a history that is not a regular file (`_open_history`).
        """
        try:
            fd, size = self._open_history()
        except FileNotFoundError:
            return
        with os.fdopen(fd, "rb") as f:
            yield from files.json_objects(files.lines(_Capped(f, min(size, max_bytes))))
        if size > max_bytes:
            raise FormatError(f"is {size} bytes, over the cap of {max_bytes}: read up to the cap",
                              str(self.history_path))

    def read_history(self) -> list[dict[str, Any]]:
        return list(self.iter_history())

    def history_lines(self, max_bytes: int = HISTORY_TAIL_BYTES) -> list[bytes]:
        """Complete history lines of the last `max_bytes` of the file, undecoded (a torn
        last line, and the first line cut by the tail, are dropped).

        For readers of many islands that decode only a sample: parsing every line of 128
        islands x 1,000 generations costs more than the whole status report may take, and a
        history of millions of generations must not be read whole (the tail is what matters).
        """
        try:
            fd, size = self._open_history()
        except FileNotFoundError:
            return []
        with os.fdopen(fd, "rb") as f:
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read(size - start)
        lines = data.split(b"\n")[:-1]  # the last piece is empty or a line still being written
        return lines[1:] if start > 0 else lines

    def truncate_history(self, generation: int) -> None:
        """Keep only records up to `generation` (a resume replays what came after; a fresh
        start, generation -1, keeps none).

        Streams the file into a new one and renames it over the old: a history of millions of
        lines is never held in memory, and a crash leaves the old file or the new one whole.
        Lines without an integer generation (torn, or edited by hand) are dropped. The island's
        own file is cut back whole, however long (no cap); one that is not a regular file is
        refused (FormatError), never replaced.
        """
        path = self.history_path
        if generation < 0:  # a fresh start: no summary of lines that are gone
            self.summary_path.unlink(missing_ok=True)
        try:
            fd, size = self._open_history()
        except FileNotFoundError:
            return
        tmp = path.with_name(f"{atomic.TMP_PREFIX}{path.name}.{os.getpid()}")
        try:
            with os.fdopen(fd, "rb") as src, open(tmp, "wb") as dst:
                for line in files.lines(_Capped(src, size)):
                    gen = _generation(line)
                    if gen is not None and gen <= generation:
                        dst.write(line)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint_paths(self) -> list[Path]:
        """Checkpoint files of an island, newest first."""
        d = self.dir
        if not d.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in d.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def newest_checkpoint_generation(self) -> int | None:
        """The generation of the newest checkpoint file, listed, never read; None if none (a
        reader of thousands of islands: names only, no paths built)."""
        try:
            names = os.listdir(self.dir)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return max((int(m.group(1)) for n in names if (m := CHECKPOINT_RE.match(n))), default=None)

    def save_checkpoint(self, generation: int, body: dict[str, Any]) -> Path:
        """Write a durable checkpoint, then drop all but the newest few."""
        path = Path(files.checked_dir(self.root, self.dir), f"checkpoint-{generation:08d}.isld")
        atomic.publish(path, fmt.encode("checkpoint", body))
        for old in self.checkpoint_paths()[KEEP_CHECKPOINTS:]:
            old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self) -> tuple[dict[str, Any] | None, list[FormatError]]:
        """The newest readable checkpoint (None if there is none) and the errors of newer ones.

        A corrupt newest checkpoint falls back to the one before it; the caller decides
        whether having only corrupt ones is fatal.
        """
        errors: list[FormatError] = []
        for path in self.checkpoint_paths():
            try:
                return fmt.decode(atomic.read_capped(path), "checkpoint", path=str(path)), errors
            except FileNotFoundError:
                continue
            except FormatError as e:
                errors.append(e)
        return None, errors

    def reset_island(self) -> None:
        """Forget an island's checkpoints, history and status (`--fresh`)."""
        d = self.dir
        files.checked_dir(self.root, d)
        files.checked_dir(self.root, files.pool_dir(self.root, self.id))
        for p in self.checkpoint_paths() + [self.history_path, self.summary_path, self.status_path]:
            p.unlink(missing_ok=True)
        shutil.rmtree(files.pool_dir(self.root, self.id), ignore_errors=True)
        d.mkdir(parents=True, exist_ok=True)

    # -- log ------------------------------------------------------------------------------
    def open_log(self) -> BinaryIO:
        """The island's log file opened for appending, unbuffered, for a child's stdout/stderr
        (FormatError if it is not a regular file: a FIFO there would block the launcher)."""
        files.ensure(self.root, self.id)
        fd, _ = open_regular(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.set_blocking(fd, True)  # a regular file: the flag only mattered for the open
        return open(fd, "ab", buffering=0)

    def read_log_tail(self, max_bytes: int = 4096) -> str:
        """The last `max_bytes` of an island's log as text ("" if it has none or it is not a
        regular file: the launcher reads it to say why an island failed, and must not block)."""
        try:
            fd, size = open_regular(self.log_path)
        except (FileNotFoundError, FormatError):
            return ""
        with os.fdopen(fd, "rb") as f:
            f.seek(max(0, size - max_bytes))
            return f.read(max_bytes).decode("utf-8", "replace")

def open_regular(path: Path, flags: int = os.O_RDONLY) -> tuple[int, int]:
    """`path` opened with `flags` as a regular file: its descriptor and its size at opening.

    O_NOFOLLOW (a symlink, to /dev/zero or anywhere, is refused), O_NONBLOCK (opening a FIFO
    never waits for a peer), then fstat: anything but a regular file is refused, so no reader
    blocks on a FIFO or reads a device forever, and no writer blocks on a FIFO.

    Raises:
        FileNotFoundError: there is no such file (and `flags` does not create one).
        FormatError: a symlink, FIFO, device, directory or socket.
    """
    name = str(path)
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):
            raise FormatError("is a symlink, refused", name) from None
        if e.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO opened to write; a directory
            raise FormatError("is not a regular file", name) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FormatError("is not a regular file", name)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


class _Capped:
    """A binary file read no further than `limit` bytes from where it stands (for `files.lines`)."""

    def __init__(self, f: BinaryIO, limit: int) -> None:
        self.f, self.left = f, limit

    def readline(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        line = self.f.readline(self.left if size < 0 else min(size, self.left))
        self.left -= len(line)
        return line


def _inode(path: Path) -> tuple[int, int] | None:
    """(device, inode) of `path` itself; None if it is gone."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _generation(line: bytes) -> int | None:
    """The integer generation of a history line; None for a line that is not a record of one."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    gen = rec.get("generation") if isinstance(rec, dict) else None
    return gen if isinstance(gen, int) and not isinstance(gen, bool) else None


