"""Atomic publish and safe reading of run-directory files.

publish() is the protocol of docs/DESIGN.md, "Atomic files": a temporary file in the same directory,
all bytes written, fsync(file), close, os.replace, fsync(directory). A reader therefore sees
the old file or the new one, never a partial one (atomicity), and once publish returns the
new file survives power loss (durability). ``durable=False`` skips both fsyncs: still atomic
for readers and across a crash of the writer (the page cache outlives the process), but a
power loss may leave the old version or an empty file; for files rewritten a few times a
second whose loss is harmless (the status heartbeat), where the fsyncs cost more than the
rest of the island loop together. Every OS step goes through a ``Storage`` so a
test can model power loss, and a test-only hook (env ISLANDS_TEST_CRASH_AT) SIGKILLs the
writer at a named step.

read_capped() is the reader's half: files in the pool may come from anyone, so it never
follows a symlink, never blocks on a FIFO and never reads more than the cap. read_shared()
tries once more after ESTALE or ENOENT, for files another host replaces (stat_shared() is
its lstat), and TRANSIENT_ERRNOS are the read errors that say nothing about the file.
"""
from __future__ import annotations

import errno
import os
import secrets
import signal
import stat
from typing import Protocol

from migration_pool.errors import FormatError
from migration_pool.format import MAX_FILE_BYTES

TMP_PREFIX = ".tmp-"  # readers skip any name starting with "."
CRASH_ENV = "ISLANDS_TEST_CRASH_AT"
CRASH_STEPS = ("created", "half", "written", "fsynced", "replaced", "dir_fsynced")
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_PROBE = 4096
_CHUNK = 1 << 20


def is_temp_name(name: str) -> bool:
    """True for a publish() temporary (a bare name or a path); readers and GC use this."""
    return os.path.basename(name).startswith(TMP_PREFIX)


class Storage(Protocol):
    """The OS operations publish() performs, in order; a test double can model power loss."""

    def create(self, path: str) -> int:
        """Create ``path`` exclusively for writing; return a handle."""

    def write(self, fd: int, data: memoryview) -> int:
        """Write some prefix of ``data``; return how many bytes were written."""

    def fsync(self, fd: int) -> None: ...

    def close(self, fd: int) -> None: ...

    def replace(self, src: str, dst: str) -> None: ...

    def fsync_dir(self, path: str) -> None: ...

    def unlink(self, path: str) -> None: ...


class OsStorage:
    """The real file system."""

    def create(self, path: str) -> int:
        # O_EXCL: never write through a name someone else (or a symlink) already holds.
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def fsync_dir(self, path: str) -> None:
        fsync_dir(path)

    def unlink(self, path: str) -> None:
        os.unlink(path)


_OS = OsStorage()


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory so that names created or replaced in it survive power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (certain FUSE/network mounts) cannot fsync a directory at all;
        # there is nothing better to do there, and failing every publish would be worse.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def publish(path: str | os.PathLike, data: bytes, *, storage: Storage | None = None,
            durable: bool = True) -> None:
    """Atomically and (unless ``durable`` is False) durably make ``path`` hold exactly ``data``.

    Raises:
        ValueError: the final name starts with "." (readers would never see it).
        OSError: from the file system; the temporary file is removed first.
    """
    storage = _OS if storage is None else storage
    path = os.fsdecode(path)
    directory, name = os.path.split(path)
    if not name or name.startswith("."):
        raise ValueError(f"cannot publish to {path!r}: readers skip names starting with '.'")
    crash_at = os.environ.get(CRASH_ENV)  # one dict lookup per publish: cheap enough
    # Unique per process and call; the name part is truncated to stay under NAME_MAX.
    tmp = os.path.join(directory, f"{TMP_PREFIX}{name[:180]}.{os.getpid()}.{secrets.token_hex(6)}")
    view = memoryview(data).cast("B")
    fd: int | None = None
    replaced = False
    try:
        fd = storage.create(tmp)
        _crash_if(crash_at, "created")
        half = len(view) // 2 if crash_at == "half" else 0
        _write_all(storage, fd, view[:half])
        _crash_if(crash_at, "half")
        _write_all(storage, fd, view[half:])
        _crash_if(crash_at, "written")
        if durable:
            storage.fsync(fd)
        _crash_if(crash_at, "fsynced")
        closing, fd = fd, None  # never close twice, even if close() itself fails
        storage.close(closing)
        storage.replace(tmp, path)
        replaced = True
        _crash_if(crash_at, "replaced")
        if durable:
            storage.fsync_dir(directory or ".")
        _crash_if(crash_at, "dir_fsynced")
    except BaseException:
        # Also on KeyboardInterrupt: never leave a temporary behind if we can help it.
        if fd is not None:
            _quietly(storage.close, fd)
        if not replaced:
            _quietly(storage.unlink, tmp)
        raise


def _write_all(storage: Storage, fd: int, view: memoryview) -> None:
    # write() may be short (signals, quotas, network file systems): loop until done.
    while view:
        n = storage.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, f"write returned {n}")
        view = view[n:]


def _crash_if(crash_at: str | None, step: str) -> None:
    if crash_at == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _quietly(op, arg) -> None:
    try:
        op(arg)
    except OSError:
        pass


def read_capped(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes, safely.

    Raises:
        FileNotFoundError: unchanged, so callers can treat a vanished file as gone.
        FormatError: a symlink, FIFO, device, directory or socket, or a file over the cap.
        OSError: other I/O errors (permissions, EIO, out of descriptors).
    """
    try:
        # O_NOFOLLOW: a symlink to /dev/zero must not be read; O_NONBLOCK: opening a FIFO
        # with no writer would otherwise block forever.
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise FormatError("is a symlink, refused", os.fsdecode(path)) from None
        if exc.errno == errno.ENXIO:  # a socket or a FIFO on some systems
            raise FormatError("is not a regular file", os.fsdecode(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FormatError("is not a regular file", os.fsdecode(path))
        if info.st_size > max_bytes:
            raise FormatError(f"{info.st_size} bytes exceeds the cap of {max_bytes}",
                              os.fsdecode(path))
        # The file may grow after fstat: read at most max_bytes + 1 to notice.
        limit = max_bytes + 1
        chunks = [os.read(fd, min(info.st_size + 1, limit))]
        total = len(chunks[0])
        while chunks[-1] and total < limit:
            # Usually an EOF probe: os.read allocates its whole size up front, so a large
            # probe cost ~0.9 ms per small migrant file (measured); grow only if data comes.
            step = _PROBE if len(chunks) == 1 else _CHUNK
            chunks.append(os.read(fd, min(step, limit - total)))
            total += len(chunks[-1])
        if total > max_bytes:
            raise FormatError(f"grew beyond the cap of {max_bytes} bytes while read",
                              os.fsdecode(path))
        if not chunks[-1]:
            chunks.pop()
        return b"".join(chunks)  # a single chunk is returned as is, without a copy
    finally:
        os.close(fd)


RETRY_ERRNOS = frozenset({errno.ESTALE, errno.ENOENT})
# Errors that say nothing about the file (the reader is short of descriptors or memory, or
# was interrupted): the file is tried again next time instead of being marked bad forever.
TRANSIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR,
                              errno.EAGAIN, errno.ENOBUFS})
Stamp = tuple[int, int, int]  # (inode, size, mtime_ns): a file replaced under its name changes it


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def stat_shared(path: str) -> os.stat_result:
    """lstat, tried a second time after ESTALE or ENOENT (see `read_shared`)."""
    try:
        return os.stat(path, follow_symlinks=False)
    except OSError as e:
        if e.errno not in RETRY_ERRNOS:
            raise
    return os.stat(path, follow_symlinks=False)


def read_shared(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """read_capped(), tried a second time after ESTALE or ENOENT.

    On NFS a file another host has just replaced (os.replace) can fail once with a stale file
    handle, or be missed through a stale cached directory entry; the second try looks the
    name up afresh. A file that is really gone raises FileNotFoundError as before.
    """
    try:
        return read_capped(path, max_bytes)
    except OSError as exc:
        if exc.errno not in RETRY_ERRNOS:
            raise
    return read_capped(path, max_bytes)
