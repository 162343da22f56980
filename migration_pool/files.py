"""What every run-directory file class shares: layout roots, containment, reading, locks.

`RunDir` (run-level files), `IslandFiles` (one island's) and `SchedulerFiles` (SLURM records)
all use these, so the rules live once: every island id is checked before it becomes a path
component (`island_dir`, `pool_dir`); no directory below the run root may be a symlink
(`checked_dir`, docs/DESIGN.md "Containment"); an envelope file is read capped and decoded
(`read_envelope`); a lock file is never opened through a symlink (`no_symlink`, `hold`); and
an append-only file yields complete lines only (`lines`).
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from filelock import FileLock, Timeout

from migration_pool import atomic, format as fmt
from migration_pool.errors import FormatError, RunDirError
from migration_pool.island_ids import check_island_id

MAX_LINE = 1 << 20  # a longer line of an append-only file is not a record


def valid_id(island: str) -> str:
    """`island` if it is a canonical island id; RunDirError otherwise.

    Ids come from manifests, command lines and directory listings, and every one becomes a
    path component: "../../x" must never reach the file system.
    """
    try:
        return check_island_id(island)
    except FormatError as e:
        raise RunDirError(e.args[0]) from None


def island_dir(root: Path, island: str) -> Path:
    return root / "islands" / valid_id(island)


def pool_dir(root: Path, island: str | None = None) -> Path:
    return root / "pool" / valid_id(island) if island else root / "pool"


def ensure(root: Path, island: str | None = None) -> None:
    """Create the run's directories (of one island too) and check they can be written.

    Raises:
        RunDirError: a directory cannot be made or written, or one inside the run is a
            symlink (it would make this process write and delete outside the run).
    """
    dirs = [root, root / "islands", pool_dir(root)]
    if island:
        dirs += [island_dir(root, island), pool_dir(root, island)]
    try:
        for d in dirs:
            d.mkdir(mode=0o755, parents=True, exist_ok=True)  # never group-writable
            checked_dir(root, d)
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission on {root}")
    except RunDirError:
        raise
    except OSError as e:
        raise RunDirError(f"cannot use run directory {root}: {e.strerror or e}") from None


def checked_dir(root: Path, directory: str | os.PathLike) -> str:
    """`directory` (inside the run at `root`) as a str, after checking that no component below
    the root is a symlink or something other than a directory.

    The root itself may be a symlink (the user chose it); below it, a symlinked
    `pool/island-00` or `islands/island-00` would make an island publish into, and
    collect from, another run's pool (docs/DESIGN.md, "Containment"). A missing
    component is fine (FileNotFoundError comes from whoever uses it).

    Raises:
        RunDirError: a component is a symlink or not a directory.
    """
    path = os.fspath(directory)
    top = os.fspath(root)
    rel = os.path.relpath(path, top)
    if rel == ".":
        return path
    if rel.startswith(".."):
        raise RunDirError(f"{path} is outside the run directory {top}")
    current = top
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


def read_envelope(path: Path, kind: str, max_bytes: int = fmt.MAX_FILE_BYTES) -> dict[str, Any] | None:
    """An envelope file's body; None if the file does not exist, FormatError if it is bad.

    Read once more after ESTALE or ENOENT (`atomic.read_shared`): status, lease and manifest
    files are replaced by processes that may run on other hosts."""
    try:
        return fmt.decode(atomic.read_shared(path, max_bytes), kind, max_bytes=max_bytes, path=str(path))
    except FileNotFoundError:
        return None


def no_symlink(path: Path) -> str:
    """`path` as a str; RunDirError if it is a symlink (opening a lock file follows links
    and truncates the target)."""
    if os.path.islink(path):
        raise RunDirError(f"{path} is a symlink; refusing to open it")
    return str(path)


def hold(path: Path, busy: Exception) -> FileLock:
    """A non-blocking flock on `path`, or `busy` raised if another process holds it.

    flock is released by the kernel when the holder dies, even by SIGKILL.
    """
    lock = FileLock(no_symlink(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise busy from None
    return lock


def json_objects(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """The JSON objects among `lines` (JSON-lines files: a line that is not JSON, or not an object, is skipped)."""
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield rec


def lines(f: BinaryIO) -> Iterator[bytes]:
    """Complete lines of `f` (with their newline), skipping any longer than MAX_LINE."""
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        if not line.endswith(b"\n"):
            if len(line) <= MAX_LINE:
                return  # a torn last line
            while line and not line.endswith(b"\n"):  # skip the rest of an absurd line
                line = f.readline(MAX_LINE + 1)
            continue
        yield line
