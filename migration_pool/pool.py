"""Publishing, reading and collecting migrant batches.

Islands publish into their ring, `pool/<island>/ring.isld`, rewritten in place
(`publish_ring`; docs/DESIGN.md, "Migrant ring"). A reader looks at each neighbour's ring
first (64 bytes when nothing changed); a neighbour without one (an earlier version) is read
the old way: list its write-once files `pool/<island>/gen-<generation>.isld` (`publish`),
take the newest it has not read yet, and skip (and count, once) anything bad. A file
deleted by garbage collection between listing and opening is simply gone.

Batches are published atomically but not durably: a reader never accepts a partial batch
(checksummed ring slots; os.replace for files), but no fsync is paid on the hot path.
Migrants need atomicity only (docs/DESIGN.md, "Atomic files"): after a power cut a batch may
come back torn or empty, which its envelope rejects, and the cost is one missed migration.
`Pool(durable=True)` fsyncs like every other run file.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from migration_pool import atomic, format as fmt, ring
from migration_pool.errors import FormatError, RunDirError
from migration_pool.rundir import RunDir

log = logging.getLogger("migration_pool")

# [0-9], not \d (which matches non-ASCII digits), and \Z, not $ (which allows a newline).
BATCH_RE = re.compile(r"^gen-([0-9]{8,})\.isld\Z")
DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024
TEMP_GRACE_S = 600.0  # a temporary file older than this belongs to a dead writer
MAX_RECORD = 1024  # own batches remembered per island for collect()
WARNINGS_PER_READ = 5  # further bad files of one read_new call are summed up in one line
# Errors that say nothing about the file (the reader is short of descriptors or memory, or
# was interrupted): the file is tried again next time instead of being marked bad forever.
TRANSIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR,
                              errno.EAGAIN, errno.ENOBUFS})

Stamp = tuple[int, int, int]  # (inode, size, mtime_ns): a file replaced under its name changes it


def _stat_shared(path: str) -> os.stat_result:
    """lstat, tried a second time after ESTALE or ENOENT (see `atomic.read_shared`)."""
    try:
        return os.stat(path, follow_symlinks=False)
    except OSError as e:
        if e.errno not in atomic.RETRY_ERRNOS:
            raise
    return os.stat(path, follow_symlinks=False)


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
_RETRY = object()  # _read's answer for a file to try again at the next read


@dataclass
class Pool:
    """One island's view of the migrant pool of a run.

    The expectations (`run_id`, genome kind, dtype, gene shape) make a batch of another run or
    of another genome shape a rejected file instead of a poisoned population. `warn` receives
    the warning lines (default: the "migration_pool" logger).
    """

    rundir: RunDir
    run_id: str
    genome_kind: str = "vector"
    dtype: str | None = None
    gene_shape: tuple[int, ...] | None = None
    max_bytes: int = DEFAULT_MAX_BATCH_BYTES
    durable: bool = False
    temp_grace_s: float = TEMP_GRACE_S
    warn: Callable[[str], None] | None = None
    seen: dict[str, int] = field(default_factory=dict)  # neighbour -> generation last read
    rejected: int = 0  # bad files met by read_new, each counted once
    # island -> file name -> what was judged, keyed by stamp; pruned to what still exists.
    # _bad: files read_new counted.
    _bad: dict[str, dict[str, Stamp]] = field(default_factory=dict, repr=False)
    _warned: int = field(default=0, repr=False)
    # neighbour -> (name, inode) of the batch files listed at the last read_new.
    _listed: dict[str, frozenset[tuple[str, int]]] = field(default_factory=dict, repr=False)
    # island -> {name: stamp} of the batches this pool published, oldest first: the only
    # files collect() counts as kept (docs: a forged file must not make it delete real ones).
    _published: dict[str, dict[str, Stamp]] = field(default_factory=dict, repr=False)
    _dirs: dict[str, str] = field(default_factory=dict, repr=False)
    # The ring files (docs/DESIGN.md, "Migrant ring"): our writers, and per neighbour the
    # (ring_id, counter) last judged, or the stamp of a ring file found bad.
    _writers: dict[str, ring.RingWriter] = field(default_factory=dict, repr=False)
    _ring_known: dict[str, tuple[bytes, int]] = field(default_factory=dict, repr=False)
    _ring_bad: dict[str, Stamp] = field(default_factory=dict, repr=False)

    # -- writing --------------------------------------------------------------------------
    def publish(self, batch: fmt.MigrantBatch) -> Path:
        """Write a batch atomically as `pool/<source>/gen-<generation>.isld`.

        Raises:
            OSError: the pool directory cannot be written (the temporary file is removed).
        """
        directory, name = self._dir(batch.source), batch_name(batch.generation)
        path = os.path.join(directory, name)
        data = fmt.encode_batch(batch)
        storage = None if self.durable else _ATOMIC_ONLY
        self.rundir.checked_dir(directory)  # a symlinked pool/<island> leads out of the run
        try:
            atomic.publish(path, data, storage=storage)
        except FileNotFoundError:  # first batch of this island, or its directory was reset
            os.makedirs(directory, exist_ok=True)
            self.rundir.checked_dir(directory)
            atomic.publish(path, data, storage=storage)
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:  # already removed by someone else
            return Path(path)
        record = self._published.setdefault(batch.source, {})
        record.pop(name, None)  # re-publishing a generation makes it the newest again
        record[name] = (st.st_ino, st.st_size, st.st_mtime_ns)
        if len(record) > MAX_RECORD:  # collect() never called: forget the oldest
            del record[next(iter(record))]
        return Path(path)

    def publish_ring(self, source: str, generation: int, data: bytes) -> None:
        """Make `data` (an encoded batch of `source`) the newest in `pool/<source>/ring.isld`,
        rewritten in place.

        The island's hot path: a few microseconds where `publish` creates, renames and
        later collects a file. Raises OSError like `publish`.
        """
        directory = self._dir(source)
        writer = self._writers.get(source)
        if writer is None:
            writer = self._writers[source] = ring.RingWriter(directory, durable=self.durable)
        check = lambda: self.rundir.checked_dir(directory)  # noqa: E731
        try:
            writer.publish(data, generation, check_dir=check)
        except FileNotFoundError:  # first batch of this island, or its directory was reset
            os.makedirs(directory, exist_ok=True)
            writer.publish(data, generation, check_dir=check)

    def ring_intact(self, source: str) -> bool:
        """Whether `source`'s ring is still the file this pool last wrote (one lstat)."""
        writer = self._writers.get(source)
        return writer is not None and writer.intact()

    def close(self) -> None:
        """Close the ring files this pool holds open for writing."""
        for writer in self._writers.values():
            writer.close()

    # -- reading --------------------------------------------------------------------------
    def listing(self, island: str) -> list[tuple[int, Path]]:
        """An island's batch files, newest first; temporaries and other names are ignored."""
        directory = self._dir(island)
        return [(g, Path(directory, name)) for g, name, _ in self._scan(island)[0]]

    def read_new(self, neighbours: list[str]) -> tuple[list[fmt.MigrantBatch], int]:
        """The newest unread valid batch of each neighbour, and how many bad files were met.

        Never blocks and never raises for a bad file: it is skipped, warned about and counted
        once (a file replaced under the same name is judged afresh). Older batches than the
        one returned are never read: an island wants its neighbours' current best.
        """
        batches: list[fmt.MigrantBatch] = []
        rejected_before, self._warned = self.rejected, 0
        for island in dict.fromkeys(neighbours):
            found = self._read_ring(island)
            if found is not None:  # a neighbour with a ring: its batch files are a past life's
                if found is not _RETRY and found.data is not None:
                    batches.append(found.data)
                    self.seen[island] = found.data.generation
                continue
            listing = self._scan(island)[0]
            # What was listed last time counts as read (or passed over as older than what was
            # read): tracked per file, not as one generation watermark, so a forged file with
            # an absurd generation is read once and silences nothing. The inode tells a file
            # republished under a known name (a reset or resumed neighbour) from the old one.
            known = self._listed.get(island, frozenset())
            retry: set[tuple[str, int]] = set()
            for generation, name, inode in listing:
                if (name, inode) in known:
                    continue
                batch = self._read(island, generation, name)
                if batch is _RETRY:
                    retry.add((name, inode))
                elif batch is not None:
                    batches.append(batch)
                    self.seen[island] = generation
                    break
            self._listed[island] = frozenset((n, i) for _, n, i in listing) - retry
        if self._warned > WARNINGS_PER_READ:
            self._say(f"... and {self._warned - WARNINGS_PER_READ} more bad migrant file(s)")
        return batches, self.rejected - rejected_before

    def _read(self, island: str, generation: int, name: str) -> fmt.MigrantBatch | None | object:
        """The batch in file `name`, None if it vanished, is known bad or turns out bad,
        _RETRY if it could not be read now."""
        path = os.path.join(self._dir(island), name)
        try:
            st = _stat_shared(path)
        except FileNotFoundError:  # collected between listing and now
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        bad = self._bad.setdefault(island, {})
        if bad.get(name) == stamp:
            return None
        try:
            return self._decode(island, generation, path)
        except FileNotFoundError:
            return None
        except (FormatError, OSError) as e:
            if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
                self._say(f"cannot read migrant file {path} now, will retry: {e}")
                return _RETRY
            # Unreadable (EACCES, EIO) is as bad as corrupt; remembered by stamp so the
            # same file is neither read nor counted again.
            bad[name] = stamp
            self.rejected += 1
            self._warned += 1
            if self._warned <= WARNINGS_PER_READ:
                self._say(f"skipping bad migrant file: {e}")
            return None

    def _read_ring(self, island: str) -> ring.RingRead | object | None:
        """The neighbour's ring: None if it has none, _RETRY if it cannot be read now,
        else a RingRead whose `data` is the new batch (None: nothing new, or bad).

        A bad ring is counted once per (ring_id, counter), or per stamp when even its header
        is bad; a slot that fails its checks while the header moved on was a read racing the
        writer, tried again next time, not counted.
        """
        path = os.path.join(self._dir(island), fmt.RING_NAME)
        bad_stamp = self._ring_bad.get(island)
        if bad_stamp is not None:
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and (st.st_ino, st.st_size, st.st_mtime_ns) == bad_stamp:
                return ring.RingRead(None, None)
            del self._ring_bad[island]
        known = self._ring_known.get(island)
        head = None
        try:
            try:
                found = ring.read_ring(path, self.max_bytes, known)
            except FormatError:  # a header torn by a concurrent rewrite reads well at once
                found = ring.read_ring(path, self.max_bytes, known)
            if found is None or found.data is None:
                return found
            head = found.header
            try:
                batch = fmt.decode_batch(
                    found.data, run_id=self.run_id, genome_kind=self.genome_kind,
                    dtype=self.dtype, gene_shape=self.gene_shape, max_bytes=self.max_bytes,
                    path=path)
                if batch.source != island or batch.generation != head.generation:
                    raise FormatError(f"claims to be {batch.source} generation {batch.generation}, "
                                      f"but is in {island}'s ring as generation {head.generation}",
                                      path)
            except FormatError:
                now = ring.header_now(path, self.max_bytes)
                if now is not None and (now.ring_id, now.counter) != (head.ring_id, head.counter):
                    return _RETRY  # the writer lapped this read: not the file's fault
                raise
            self._ring_known[island] = (head.ring_id, head.counter)
            return ring.RingRead(head, batch)
        except FileNotFoundError:
            return None
        except (FormatError, OSError) as e:
            if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
                self._say(f"cannot read migrant ring {path} now, will retry: {e}")
                return _RETRY
            if head is not None:  # a bad batch under a good header: judged by (ring_id, counter)
                self._ring_known[island] = (head.ring_id, head.counter)
            else:  # no usable header (or a symlink, a FIFO, unreadable): judged by stamp
                try:
                    st = os.stat(path, follow_symlinks=False)
                    self._ring_bad[island] = (st.st_ino, st.st_size, st.st_mtime_ns)
                except OSError:
                    pass
            self.rejected += 1
            self._warned += 1
            if self._warned <= WARNINGS_PER_READ:
                self._say(f"skipping bad migrant ring: {e}")
            return ring.RingRead(None, None)

    def _decode(self, island: str, generation: int, path: str) -> fmt.MigrantBatch:
        batch = fmt.decode_batch(
            atomic.read_shared(path, self.max_bytes),
            run_id=self.run_id, genome_kind=self.genome_kind, dtype=self.dtype,
            gene_shape=self.gene_shape, max_bytes=self.max_bytes, path=path,
        )
        if batch.source != island or batch.generation != generation:
            raise FormatError(f"claims to be {batch.source} generation {batch.generation}, "
                              f"but is named as {island} generation {generation}", path)
        return batch

    def _say(self, message: str) -> None:
        if self.warn is not None:
            self.warn(message)
        else:
            log.warning("%s", message)

    # -- garbage collection ---------------------------------------------------------------
    def collect(self, island: str, keep: int, now: float | None = None) -> int:
        """Delete `island`'s batches older than the `keep` newest this pool published, and
        stale temporaries.

        Meant for an island's own directory, and trusting only this pool's record of what it
        wrote (name and stamp), never the names found there: a forged or replaced file newer
        than its own is never counted as kept, so it cannot make the owner delete its real
        batches. Places left after its own batches go to the newest older files (an earlier
        process's), the rest of the older ones is removed; newer files this pool did not write
        stay (readers judge them), and a pool that published nothing removes no batch; temporaries younger than
        `temp_grace_s` stay, since a live writer may be filling them. Returns how many files
        this call removed: a file that vanished first (a reset) is not an error and not counted.
        """
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        now = time.time() if now is None else now
        directory = self._dir(island)
        try:
            self.rundir.checked_dir(directory)
        except RunDirError as e:  # never delete through a symlink: nothing to collect here
            self._say(f"not collecting {directory}: {e}")
            return 0
        listing, temps = self._scan(island)
        present = {name: inode for _, name, inode in listing}
        record = self._published.get(island, {})
        kept: list[int] = []
        for name, stamp in reversed(record.items()):  # newest first
            if len(kept) == keep:
                break
            if present.get(name) == stamp[0] and self._unchanged(directory, name, stamp):
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
            if age > self.temp_grace_s:
                removed += self._unlink(entry.path)
        return removed

    @staticmethod
    def _unchanged(directory: str, name: str, stamp: Stamp) -> bool:
        """Whether the file is still the one this pool wrote (nobody replaced it)."""
        try:
            st = os.stat(os.path.join(directory, name), follow_symlinks=False)
        except OSError:
            return False
        return (st.st_ino, st.st_size, st.st_mtime_ns) == stamp

    def _unlink(self, path: str) -> int:
        try:
            os.unlink(path)
            return 1
        except FileNotFoundError:
            return 0
        except OSError as e:  # e.g. a directory named like a batch: not ours to remove
            self._say(f"cannot remove {path}: {e.strerror or e}")
            return 0

    # -- listing --------------------------------------------------------------------------
    def _dir(self, island: str) -> str:
        # A str, built once per island: pathlib objects cost more than the I/O here.
        directory = self._dirs.get(island)
        if directory is None:
            directory = self._dirs[island] = os.fspath(self.rundir.pool_dir(island))
        return directory

    def _scan(self, island: str) -> tuple[list[tuple[int, str, int]], list[os.DirEntry]]:
        """(batches as (generation, name, inode) newest first, temporaries); prunes the caches."""
        entries: list[os.DirEntry] = []
        for attempt in (1, 2):  # a directory handle gone stale on NFS is looked up once more
            try:
                with os.scandir(self._dir(island)) as it:
                    entries = list(it)
                break
            except OSError as e:  # missing (not started yet), not a directory, unreadable: nothing there
                if e.errno != errno.ESTALE:
                    break
        batches, temps, names = [], [], set()
        for e in entries:
            name = e.name
            generation = batch_generation(name)
            if generation is not None:
                batches.append((generation, name, e.inode()))  # d_ino: no stat
                names.add(name)
            elif atomic.is_temp_name(name):
                temps.append(e)
        known = self._bad.get(island)
        if known and not names.issuperset(known):
            self._bad[island] = {n: s for n, s in known.items() if n in names}
        batches.sort(reverse=True)
        return batches, temps
