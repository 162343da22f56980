"""Write-once migrant batch files, `pool/<island>/gen-<generation>.isld`: the earlier protocol.

Why this exists: islands of earlier versions published every migration event as a new file;
islands now publish into a ring (`ring`, docs/DESIGN.md "Migrant ring"). A neighbour that has
no ring (a run resumed from those versions, or an island still running one) is read the old
way: list its files, take the newest not read yet, skip (and count, once) anything bad, and an
island's own old files are collected. Writing them (`publish`) is kept for the tests and
benchmarks that exercise this path. Everything about these files is here, behind `Pool`, so
that when no run directory from before the ring needs resuming this module and its three call
sites in `pool` (`publish`, `listing`, `collect`, and the fallback in `read_new`) can go.

A file deleted by garbage collection between listing and opening is simply gone. Batches are
written atomically but not durably (os.replace without fsync, unless `durable`): a reader
never accepts a partial batch, and a power cut costs at most one migration.
"""
from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path
from typing import Protocol

from migration_pool import atomic, batches
from migration_pool.atomic import TRANSIENT_ERRNOS, Stamp, stamp_of
from migration_pool.batches import MigrantBatch
from migration_pool.errors import FormatError, RunDirError

# [0-9], not \d (which matches non-ASCII digits), and \Z, not $ (which allows a newline).
BATCH_RE = re.compile(r"^gen-([0-9]{8,})\.isld\Z")
TEMP_GRACE_S = 600.0  # a temporary file older than this belongs to a dead writer
MAX_RECORD = 1024  # own batches remembered per island for collect()
RETRY = object()  # read_file's answer for a file to try again at the next read


def batch_name(generation: int) -> str:
    """The file name of an island's batch of `generation`."""
    return f"gen-{generation:08d}.isld"


def batch_generation(name: str) -> int | None:
    """The generation in a canonical batch file name, None for any other name.

    Non-canonical spellings of a generation ("gen-000000005.isld") are not batches: only
    one name per generation exists, so a reader never takes two files for one event.
    """
    m = BATCH_RE.match(name)
    if m is None:
        return None
    generation = int(m.group(1))
    return generation if batch_name(generation) == name else None


class _AtomicOnly(atomic.OsStorage):
    """The publish protocol without its two fsyncs: atomic for readers, not durable."""

    def fsync(self, fd: int) -> None:
        pass

    def fsync_dir(self, path: str) -> None:
        pass


_ATOMIC_ONLY = _AtomicOnly()


class PoolSide(Protocol):
    """What these files need of the `Pool` that holds them (its settings are read live)."""

    run_id: str
    genome_kind: str
    dtype: str | None
    gene_shape: tuple[int, ...] | None
    max_bytes: int
    durable: bool
    temp_grace_s: float

    def directory(self, island: str) -> str: ...
    def checked_dir(self, directory: str) -> str: ...
    def say(self, message: str) -> None: ...
    def count_bad(self, message: str) -> None: ...


class LegacyBatches:
    """One pool's write-once batch files: publish, list, read the newest unread, collect."""

    def __init__(self, pool: PoolSide) -> None:
        self.pool = pool
        # island -> file name -> stamp of files judged bad; pruned to what still exists.
        self._bad: dict[str, dict[str, Stamp]] = {}
        # neighbour -> (name, inode) of the batch files listed at the last read.
        self._listed: dict[str, frozenset[tuple[str, int]]] = {}
        # island -> {name: stamp} of the batches this pool published, oldest first: the only
        # files collect() counts as kept (a forged file must not make it delete real ones).
        self._published: dict[str, dict[str, Stamp]] = {}

    # -- writing --------------------------------------------------------------------------
    def publish(self, batch: MigrantBatch) -> Path:
        """Write a batch atomically as `pool/<source>/gen-<generation>.isld`.

        Raises:
            OSError: the pool directory cannot be written (the temporary file is removed).
        """
        p = self.pool
        directory, name = p.directory(batch.source), batch_name(batch.generation)
        path = os.path.join(directory, name)
        data = batches.encode_batch(batch)
        storage = None if p.durable else _ATOMIC_ONLY
        p.checked_dir(directory)  # a symlinked pool/<island> leads out of the run
        try:
            atomic.publish(path, data, storage=storage)
        except FileNotFoundError:  # first batch of this island, or its directory was reset
            os.makedirs(directory, exist_ok=True)
            p.checked_dir(directory)
            atomic.publish(path, data, storage=storage)
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:  # already removed by someone else
            return Path(path)
        record = self._published.setdefault(batch.source, {})
        record.pop(name, None)  # re-publishing a generation makes it the newest again
        record[name] = stamp_of(st)
        if len(record) > MAX_RECORD:  # collect() never called: forget the oldest
            del record[next(iter(record))]
        return Path(path)

    # -- reading --------------------------------------------------------------------------
    def listing(self, island: str) -> list[tuple[int, Path]]:
        """An island's batch files, newest first; temporaries and other names are ignored."""
        directory = self.pool.directory(island)
        return [(g, Path(directory, name)) for g, name, _ in self._scan(island)[0]]

    def read_newest(self, island: str) -> MigrantBatch | None:
        """The newest valid batch of `island` not listed at the last read (None if none).

        What was listed last time counts as read (or passed over as older than what was
        read): tracked per file, not as one generation watermark, so a forged file with an
        absurd generation is read once and silences nothing. The inode tells a file
        republished under a known name (a reset or resumed neighbour) from the old one.
        """
        listing = self._scan(island)[0]
        known = self._listed.get(island, frozenset())
        retry: set[tuple[str, int]] = set()
        found = None
        for generation, name, inode in listing:
            if (name, inode) in known:
                continue
            batch = self._read(island, generation, name)
            if batch is RETRY:
                retry.add((name, inode))
            elif batch is not None:
                found = batch
                break
        self._listed[island] = frozenset((n, i) for _, n, i in listing) - retry
        return found  # type: ignore[return-value]

    def _read(self, island: str, generation: int, name: str) -> MigrantBatch | None | object:
        """The batch in file `name`, None if it vanished, is known bad or turns out bad,
        RETRY if it could not be read now."""
        p = self.pool
        path = os.path.join(p.directory(island), name)
        try:
            st = atomic.stat_shared(path)
        except FileNotFoundError:  # collected between listing and now
            return None
        stamp = stamp_of(st)
        bad = self._bad.setdefault(island, {})
        if bad.get(name) == stamp:
            return None
        try:
            return self._decode(island, generation, path)
        except FileNotFoundError:
            return None
        except (FormatError, OSError) as e:
            if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
                p.say(f"cannot read migrant file {path} now, will retry: {e}")
                return RETRY
            # Unreadable (EACCES, EIO) is as bad as corrupt; remembered by stamp so the
            # same file is neither read nor counted again.
            bad[name] = stamp
            p.count_bad(f"skipping bad migrant file: {e}")
            return None

    def _decode(self, island: str, generation: int, path: str) -> MigrantBatch:
        p = self.pool
        batch = batches.decode_batch(
            atomic.read_shared(path, p.max_bytes),
            run_id=p.run_id, genome_kind=p.genome_kind, dtype=p.dtype,
            gene_shape=p.gene_shape, max_bytes=p.max_bytes, path=path,
        )
        if batch.source != island or batch.generation != generation:
            raise FormatError(f"claims to be {batch.source} generation {batch.generation}, "
                              f"but is named as {island} generation {generation}", path)
        return batch

    # -- garbage collection ---------------------------------------------------------------
    def collect(self, island: str, keep: int, now: float | None = None) -> int:
        """Delete `island`'s batches older than the `keep` newest this pool published, and
        stale temporaries (see `Pool.collect`); returns how many files this call removed."""
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        p = self.pool
        now = time.time() if now is None else now
        directory = p.directory(island)
        try:
            p.checked_dir(directory)
        except RunDirError as e:  # never delete through a symlink: nothing to collect here
            p.say(f"not collecting {directory}: {e}")
            return 0
        listing, temps = self._scan(island)
        present = {name: inode for _, name, inode in listing}
        record = self._published.get(island, {})
        kept: list[int] = []
        for name, stamp in reversed(record.items()):  # newest first
            if len(kept) == keep:
                break
            if present.get(name) == stamp[0] and _unchanged(directory, name, stamp):
                kept.append(batch_generation(name))
        removed = 0
        if kept:  # older files fill the remaining places (an earlier life's), the rest goes
            older = [(g, name) for g, name, _ in listing if g < kept[-1]]
            for generation, name in older[keep - len(kept):]:
                removed += self._unlink(os.path.join(directory, name))
                record.pop(name, None)
        for gone in [n for n in record if n not in present]:
            del record[gone]
        for entry in temps:
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:  # the writer renamed it into place meanwhile
                continue
            if age > p.temp_grace_s:
                removed += self._unlink(entry.path)
        return removed

    def _unlink(self, path: str) -> int:
        try:
            os.unlink(path)
            return 1
        except FileNotFoundError:
            return 0
        except OSError as e:  # e.g. a directory named like a batch: not ours to remove
            self.pool.say(f"cannot remove {path}: {e.strerror or e}")
            return 0

    # -- listing --------------------------------------------------------------------------
    def _scan(self, island: str) -> tuple[list[tuple[int, str, int]], list[os.DirEntry]]:
        """(batches as (generation, name, inode) newest first, temporaries); prunes the caches."""
        entries: list[os.DirEntry] = []
        for attempt in (1, 2):  # a directory handle gone stale on NFS is looked up once more
            try:
                with os.scandir(self.pool.directory(island)) as it:
                    entries = list(it)
                break
            except OSError as e:  # missing (not started yet), not a directory, unreadable: nothing there
                if e.errno != errno.ESTALE:
                    break
        found, temps, names = [], [], set()
        for e in entries:
            name = e.name
            generation = batch_generation(name)
            if generation is not None:
                found.append((generation, name, e.inode()))  # d_ino: no stat
                names.add(name)
            elif atomic.is_temp_name(name):
                temps.append(e)
        known = self._bad.get(island)
        if known and not names.issuperset(known):
            self._bad[island] = {n: s for n, s in known.items() if n in names}
        found.sort(reverse=True)
        return found, temps


def _unchanged(directory: str, name: str, stamp: Stamp) -> bool:
    """Whether the file is still the one this pool wrote (nobody replaced it)."""
    try:
        st = os.stat(os.path.join(directory, name), follow_symlinks=False)
    except OSError:
        return False
    return stamp_of(st) == stamp
