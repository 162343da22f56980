"""Tests of the publish protocol and safe reading (docs/DESIGN.md: "Atomic files", "Crash-safe", "Untrusted pool")."""
from __future__ import annotations

import errno
import os
import random
import signal
import socket
import subprocess
import time

import pytest

from migration_pool import atomic
from migration_pool.atomic import (CRASH_STEPS, TMP_PREFIX, OsStorage, fsync_dir, is_temp_name,
                                   publish, read_capped)
from migration_pool.errors import FormatError
from migration_pool.format import decode, encode


def payload(version: int, size: int = 4096) -> bytes:
    return encode("status", {"version": version, "blob": bytes([version % 251]) * size})


def version_of(path) -> int:
    body = decode(read_capped(path), "status", path=str(path))
    assert body["blob"] == bytes([body["version"] % 251]) * len(body["blob"])
    return body["version"]


# ----------------------------------------------------------------------------- basics

def test_publish_creates_and_replaces_without_leftovers(tmp_path):
    target = tmp_path / "status.isld"
    publish(target, payload(1))
    assert version_of(target) == 1
    publish(str(target), payload(2))
    assert version_of(target) == 2
    assert os.listdir(tmp_path) == ["status.isld"]


def test_publish_empty_and_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    publish("empty", b"")
    assert (tmp_path / "empty").read_bytes() == b""


def test_publish_refuses_hidden_names(tmp_path):
    for name in (".hidden", TMP_PREFIX + "x"):
        with pytest.raises(ValueError):
            publish(tmp_path / name, b"x")
    assert os.listdir(tmp_path) == []


def test_is_temp_name():
    assert is_temp_name(".tmp-island-01.7.123.ab12")
    assert is_temp_name("/run/migrants/.tmp-x")
    assert not is_temp_name("island-01-000010.migrants")
    assert not is_temp_name("/run/.tmp-dir/island-01")


class RecordingStorage(OsStorage):
    """The real file system, recording temporary names and failing at one chosen step."""

    def __init__(self, fail_at: str | None = None, short: int | None = None) -> None:
        self.fail_at, self.short, self.temps, self.calls = fail_at, short, [], []

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_at:
            raise OSError(errno.ENOSPC, f"injected failure at {name}")

    def create(self, path):
        self.temps.append(path)
        self._step("create")
        return super().create(path)

    def write(self, fd, data):
        self._step("write")
        return super().write(fd, data[: self.short] if self.short else data)

    def fsync(self, fd):
        self._step("fsync")
        super().fsync(fd)

    def replace(self, src, dst):
        self._step("replace")
        super().replace(src, dst)

    def fsync_dir(self, path):
        self._step("fsync_dir")
        super().fsync_dir(path)


def test_publish_uses_unique_temp_names_in_the_same_directory(tmp_path):
    storage = RecordingStorage()
    for i in range(20):
        publish(tmp_path / "t", payload(i), storage=storage)
    assert len(set(storage.temps)) == 20
    for temp in storage.temps:
        assert os.path.dirname(temp) == str(tmp_path)
        assert os.path.basename(temp).startswith(f"{TMP_PREFIX}t.{os.getpid()}.")
    assert storage.calls[:5] == ["create", "write", "fsync", "replace", "fsync_dir"]


def test_publish_not_durable_skips_both_fsyncs_but_still_replaces(tmp_path):
    storage = RecordingStorage()
    publish(tmp_path / "t", payload(1), storage=storage)
    publish(tmp_path / "t", payload(2), storage=storage, durable=False)
    assert storage.calls == ["create", "write", "fsync", "replace", "fsync_dir", "create", "write", "replace"]
    assert (tmp_path / "t").read_bytes() == payload(2)
    assert sorted(os.listdir(tmp_path)) == ["t"]


def test_publish_loops_on_short_writes(tmp_path):
    storage = RecordingStorage(short=7)
    data = payload(3, size=100)
    publish(tmp_path / "t", data, storage=storage)
    assert (tmp_path / "t").read_bytes() == data
    assert storage.calls.count("write") == -(-len(data) // 7)


@pytest.mark.parametrize("step", ["create", "write", "fsync", "replace"])
def test_failed_publish_removes_temp_and_keeps_old(tmp_path, step):
    publish(tmp_path / "t", payload(1))
    with pytest.raises(OSError, match="injected"):
        publish(tmp_path / "t", payload(2), storage=RecordingStorage(fail_at=step))
    assert os.listdir(tmp_path) == ["t"]
    assert version_of(tmp_path / "t") == 1


def test_failed_dir_fsync_still_raises_after_replace(tmp_path):
    with pytest.raises(OSError, match="injected"):
        publish(tmp_path / "t", payload(2), storage=RecordingStorage(fail_at="fsync_dir"))
    assert os.listdir(tmp_path) == ["t"]  # already replaced; only durability is in doubt


def test_publish_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        publish(tmp_path / "nope" / "t", b"x")


def test_fsync_dir_accepts_paths(tmp_path):
    fsync_dir(tmp_path)
    fsync_dir(str(tmp_path))


# ----------------------------------------------------------------------------- read_capped

def test_read_capped_reads_whole_file_up_to_the_exact_cap(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"a" * 1000)
    assert read_capped(f, max_bytes=1000) == b"a" * 1000
    with pytest.raises(FormatError, match="exceeds the cap"):
        read_capped(f, max_bytes=999)
    f.write_bytes(b"")
    assert read_capped(f) == b""


def test_read_capped_lets_file_not_found_through(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "gone")


@pytest.mark.timeout(10)
def test_read_capped_refuses_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FormatError, match="not a regular file"):
        read_capped(tmp_path / "fifo")


@pytest.mark.timeout(10)
def test_read_capped_refuses_symlinks(tmp_path):
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "real").write_bytes(b"ok")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for name in ("zero", "link"):
        with pytest.raises(FormatError, match="symlink") as info:
            read_capped(tmp_path / name)
        assert info.value.path == str(tmp_path / name)


@pytest.mark.timeout(10)
def test_read_capped_refuses_devices_directories_and_sockets(tmp_path):
    (tmp_path / "dir").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        for path in ("/dev/zero", tmp_path / "dir", tmp_path / "sock"):
            with pytest.raises(FormatError, match="not a regular file"):
                read_capped(path)


@pytest.mark.timeout(10)
def test_read_capped_refuses_oversized_sparse_file_without_reading(tmp_path):
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)
    with pytest.raises(FormatError, match="exceeds the cap"):
        read_capped(sparse)  # default cap of 256 MiB


def test_read_capped_notices_growth_after_fstat(tmp_path, monkeypatch):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 5000)
    real_fstat = os.fstat

    def lying_fstat(fd):  # model a writer appending between fstat and read
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 10, *st[7:]))

    monkeypatch.setattr(atomic.os, "fstat", lying_fstat)
    assert read_capped(f, max_bytes=5000) == b"x" * 5000  # read past the stale size
    with pytest.raises(FormatError, match="grew beyond"):
        read_capped(f, max_bytes=4000)


def test_read_capped_never_leaks_descriptors(tmp_path):
    (tmp_path / "good").write_bytes(b"g")
    (tmp_path / "big").write_bytes(b"b" * 100)
    (tmp_path / "dir").mkdir()
    (tmp_path / "zero").symlink_to("/dev/zero")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(100):
        for name in ("good", "big", "dir", "zero", "missing"):
            try:
                read_capped(tmp_path / name, max_bytes=10)
            except (FormatError, FileNotFoundError):
                pass
    assert len(os.listdir("/proc/self/fd")) == before


# ----------------------------------------------------------------------------- crash points

PUBLISH_V2 = """
import sys
from migration_pool.atomic import publish
from migration_pool.format import encode
publish(sys.argv[1], encode("status", {"version": 2, "blob": bytes([2]) * 65536}))
"""

IN_PLACE_V2 = """
import os, signal, sys
from migration_pool.format import encode
data = encode("status", {"version": 2, "blob": bytes([2]) * 65536})
with open(sys.argv[1], "wb") as f:  # the broken way: truncate and write in place
    f.write(data[: len(data) // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_crash_at_each_publish_step_leaves_old_or_new(tmp_path, spawn, step):
    target = tmp_path / "status.isld"
    publish(target, payload(1, size=65536))
    child = spawn(PUBLISH_V2, str(target), env={atomic.CRASH_ENV: step})
    assert child.wait(timeout=60) == -signal.SIGKILL  # the hook really fired
    expected = 2 if step in ("replaced", "dir_fsynced") else 1
    assert version_of(target) == expected
    names = os.listdir(tmp_path)
    leftovers = [n for n in names if n != target.name]
    assert all(is_temp_name(n) for n in leftovers)  # never mistaken for a target
    assert len(leftovers) == (0 if expected == 2 else 1)


def test_publish_without_crash_hook_completes(tmp_path, spawn):
    target = tmp_path / "status.isld"
    publish(target, payload(1))
    assert spawn(PUBLISH_V2, str(target)).wait(timeout=60) == 0
    assert version_of(target) == 2
    assert os.listdir(tmp_path) == [target.name]


def test_control_in_place_write_killed_midway_is_corrupt(tmp_path, spawn):
    target = tmp_path / "status.isld"
    publish(target, payload(1, size=65536))
    assert spawn(IN_PLACE_V2, str(target)).wait(timeout=60) == -signal.SIGKILL
    with pytest.raises(FormatError):
        version_of(target)


# ----------------------------------------------------------------------------- random kills

WRITER_LOOP = """
import sys
from migration_pool.atomic import publish
from migration_pool.format import encode
path, mode, version = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
while True:
    version += 1
    data = encode("status", {"version": version, "blob": bytes([version % 251]) * 300_000})
    if mode == "atomic":
        publish(path, data)
    else:  # the broken way, written in pieces as a serialiser would
        with open(path, "wb") as f:
            for i in range(0, len(data), 65536):
                f.write(data[i : i + 65536])
"""


def _writer_rounds(tmp_path, spawn, mode: str, rounds: int, stop_when_torn: bool):
    """Run a writer, read while it writes, SIGKILL it at a random time; repeat."""
    target = tmp_path / "status.isld"
    publish(target, payload(0))
    rng = random.Random(1234)
    good, torn, seen = 0, 0, [0]
    for r in range(rounds):
        child = spawn(WRITER_LOOP, str(target), mode, str((r + 1) * 1_000_000),
                      stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + rng.uniform(0.02, 0.15)
        while True:
            try:
                seen.append(version_of(target))
                good += 1
            except FormatError:
                torn += 1
            if time.monotonic() > deadline:
                break
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        for name in os.listdir(tmp_path):  # what a reader listing the directory would see
            if not is_temp_name(name):
                try:
                    seen.append(version_of(tmp_path / name))
                    good += 1
                except FormatError:
                    torn += 1
        if stop_when_torn and torn:
            break
    return good, torn, seen


@pytest.mark.timeout(120)
def test_random_sigkill_of_publishing_writer_never_tears(tmp_path, spawn):
    good, torn, seen = _writer_rounds(tmp_path, spawn, "atomic", rounds=15, stop_when_torn=False)
    assert torn == 0
    assert good > 15
    assert seen == sorted(seen)  # one reader never sees a version go backwards
    assert [n for n in os.listdir(tmp_path) if not is_temp_name(n)] == ["status.isld"]


@pytest.mark.timeout(120)
def test_control_random_sigkill_of_in_place_writer_tears(tmp_path, spawn):
    good, torn, _ = _writer_rounds(tmp_path, spawn, "in-place", rounds=40, stop_when_torn=True)
    assert torn >= 1


# ----------------------------------------------------------------------------- power loss

class PowerCut(Exception):
    """The machine lost power; nothing after this point happened."""


class PowerLossStorage:
    """An in-memory single-directory file system with a page cache that power loss drops.

    Bytes become durable only at fsync(file) and names only at fsync(dir). After a cut the
    durable state is all that is left: a name whose data was never synced comes back as an
    empty file (ext4's zero-length-file-after-crash). Writes are short on purpose.
    """

    def __init__(self, files: dict[str, bytes], cut_after: int | None = None,
                 sync_files: bool = True, sync_dirs: bool = True, chunk: int = 1000) -> None:
        self.cut_after, self.sync_files, self.sync_dirs, self.chunk = (
            cut_after, sync_files, sync_dirs, chunk)
        self.ops, self.dead, self._next = 0, False, 0
        self.names: dict[str, int] = {}
        self.data: dict[int, bytearray] = {}
        self.fds: dict[int, int] = {}
        for path, content in files.items():
            self.names[path] = self._inode(content)
        self.durable_names = dict(self.names)
        self.durable_data = {ino: bytes(d) for ino, d in self.data.items()}

    def _inode(self, content: bytes = b"") -> int:
        self._next += 1
        self.data[self._next] = bytearray(content)
        return self._next

    def _before(self) -> None:
        if self.dead:
            raise PowerCut("no power")

    def _after(self) -> None:
        self.ops += 1
        if self.cut_after is not None and self.ops >= self.cut_after:
            self.power_cut()
            raise PowerCut(f"power cut after operation {self.ops}")

    def power_cut(self) -> None:
        self.dead = True
        self.names = dict(self.durable_names)
        self.data = {ino: bytearray(self.durable_data.get(ino, b"")) for ino in self.names.values()}

    def read(self, path: str) -> bytes | None:
        ino = self.names.get(path)
        return None if ino is None else bytes(self.data[ino])

    # --- the Storage protocol
    def create(self, path):
        self._before()
        if path in self.names:
            raise FileExistsError(path)
        self.names[path] = ino = self._inode()
        self.fds[ino] = ino
        self._after()
        return ino

    def write(self, fd, data):
        self._before()
        n = min(self.chunk, len(data))
        self.data[self.fds[fd]] += data[:n]
        self._after()
        return n

    def fsync(self, fd):
        self._before()
        if self.sync_files:
            self.durable_data[self.fds[fd]] = bytes(self.data[self.fds[fd]])
        self._after()

    def close(self, fd):
        self._before()
        del self.fds[fd]
        self._after()

    def replace(self, src, dst):
        self._before()
        self.names[dst] = self.names.pop(src)
        self._after()

    def fsync_dir(self, path):
        self._before()
        assert path == "/pool"
        if self.sync_dirs:
            self.durable_names = dict(self.names)
        self._after()

    def unlink(self, path):
        self._before()
        if path not in self.names:
            raise FileNotFoundError(path)
        del self.names[path]
        self._after()


TARGET = "/pool/island-01.ckpt"
OLD, NEW = payload(1, size=3000), payload(2, size=6000)


def _count_ops(files: dict[str, bytes]) -> int:
    storage = PowerLossStorage(files)
    publish(TARGET, NEW, storage=storage)
    return storage.ops


@pytest.mark.parametrize("before", [{TARGET: OLD}, {}], ids=["over-old", "fresh"])
def test_power_cut_after_every_operation_is_atomic(before):
    n = _count_ops(before)
    assert n >= 8  # create, several short writes, fsync, close, replace, fsync_dir
    outcomes = set()
    for k in range(1, n + 1):
        storage = PowerLossStorage(before, cut_after=k)
        with pytest.raises(PowerCut):
            publish(TARGET, NEW, storage=storage)
        got = storage.read(TARGET)
        assert got in (before.get(TARGET), NEW), f"cut after op {k}: torn target"
        if got is not None:
            decode(got, "status")
        outcomes.add(got)
        # The temporary may survive only if its name became durable, which publish never does
        assert set(storage.names) <= {TARGET}
    assert outcomes == {before.get(TARGET), NEW}  # both sides of the commit point were hit
    storage = PowerLossStorage(before, cut_after=n)
    with pytest.raises(PowerCut):
        publish(TARGET, NEW, storage=storage)
    assert storage.read(TARGET) == NEW  # the last step is the dir fsync: committed


def test_power_cut_after_publish_returned_keeps_new_version():
    storage = PowerLossStorage({TARGET: OLD})
    publish(TARGET, NEW, storage=storage)
    storage.power_cut()
    assert storage.read(TARGET) == NEW


def test_control_publish_without_file_fsync_comes_back_empty():
    storage = PowerLossStorage({TARGET: OLD}, sync_files=False)
    publish(TARGET, NEW, storage=storage)
    assert storage.read(TARGET) == NEW  # fine until the power goes
    storage.power_cut()
    assert storage.read(TARGET) == b""
    with pytest.raises(FormatError):
        decode(storage.read(TARGET), "status")


def test_control_publish_without_dir_fsync_loses_the_new_version():
    storage = PowerLossStorage({TARGET: OLD}, sync_dirs=False)
    publish(TARGET, NEW, storage=storage)
    storage.power_cut()
    assert storage.read(TARGET) == OLD
