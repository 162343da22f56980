"""One island's view of a run's migrant pool: publish into its ring, read its neighbours'.

Islands publish into their ring, `pool/<island>/ring.isld`, rewritten in place
(`publish_ring`; docs/DESIGN.md, "Migrant ring"). A reader looks at each neighbour's ring
first (64 bytes when nothing changed); a neighbour without one is read through
`legacy_batches` (its write-once `gen-*.isld` files), which `publish`, `listing` and
`collect` also reach. Anything bad is skipped and counted once; a reader never blocks.

Batches are published atomically but not durably: a reader never accepts a partial batch
(checksummed ring slots; os.replace for files), but no fsync is paid on the hot path.
Migrants need atomicity only (docs/DESIGN.md, "Atomic files"): after a power cut a batch may
come back torn or empty, which its envelope rejects, and the cost is one missed migration.
`Pool(durable=True)` fsyncs like every other run file.
"""
from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from migration_pool import batches, ring
from migration_pool.atomic import TRANSIENT_ERRNOS, Stamp, stamp_of
from migration_pool.batches import MigrantBatch
from migration_pool.errors import FormatError
from migration_pool.legacy_batches import TEMP_GRACE_S, LegacyBatches
from migration_pool.rundir import RunDir

log = logging.getLogger("migration_pool")

DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024
WARNINGS_PER_READ = 5  # further bad files of one read_new call are summed up in one line
_RETRY = object()  # _read_ring's answer for a ring to try again at the next read


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
    carry: bool = False  # a fresh ring keeps the batches of the one it replaces (`RingWriter`)
    seen: dict[str, int] = field(default_factory=dict)  # neighbour -> generation last read
    rejected: int = 0  # bad files met by read_new, each counted once
    _warned: int = field(default=0, repr=False)
    _dirs: dict[str, str] = field(default_factory=dict, repr=False)
    # The ring files (docs/DESIGN.md, "Migrant ring"): our writers, and per neighbour the
    # header last judged (its 64 bytes) with the CRC of its slot if that was bad, or the stamp
    # of a ring file found bad.
    _writers: dict[str, ring.RingWriter] = field(default_factory=dict, repr=False)
    _ring_known: dict[str, tuple[bytes, int | None]] = field(default_factory=dict, repr=False)
    _ring_bad: dict[str, Stamp] = field(default_factory=dict, repr=False)
    _legacy: LegacyBatches = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._legacy = LegacyBatches(self)

    # -- writing --------------------------------------------------------------------------
    def publish(self, batch: MigrantBatch) -> Path:
        """Write a batch as a write-once file (`legacy_batches`); OSError if it cannot."""
        return self._legacy.publish(batch)

    def publish_ring(self, source: str, generation: int, data: bytes) -> None:
        """Make `data` (an encoded batch of `source`) the newest in `pool/<source>/ring.isld`,
        rewritten in place.

        The island's hot path: a few microseconds where `publish` creates, renames and
        later collects a file. Raises OSError like `publish`.
        """
        directory = self.directory(source)
        writer = self._writers.get(source)
        if writer is None:
            writer = self._writers[source] = ring.RingWriter(directory, durable=self.durable,
                                                                     carry=self.carry)
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
        """An island's write-once batch files, newest first (`legacy_batches`)."""
        return self._legacy.listing(island)

    def read_new(self, neighbours: list[str]) -> tuple[list[MigrantBatch], int]:
        """The newest unread valid batch of each neighbour, and how many bad files were met.

        Never blocks and never raises for a bad file: it is skipped, warned about and counted
        once (a file replaced under the same name is judged afresh). Older batches than the
        one returned are never read: an island wants its neighbours' current best.
        """
        found_batches: list[MigrantBatch] = []
        rejected_before, self._warned = self.rejected, 0
        for island in dict.fromkeys(neighbours):
            found = self._read_ring(island)
            if found is not None:  # a neighbour with a ring: its batch files are a past life's
                if found is not _RETRY and found.data is not None:
                    found_batches.append(found.data)
                    self.seen[island] = found.data.generation
                continue
            batch = self._legacy.read_newest(island)
            if batch is not None:
                found_batches.append(batch)
                self.seen[island] = batch.generation
        if self._warned > WARNINGS_PER_READ:
            self.say(f"... and {self._warned - WARNINGS_PER_READ} more bad migrant file(s)")
        return found_batches, self.rejected - rejected_before

    def read_generation(self, island: str, generation: int) -> tuple[str, MigrantBatch | None]:
        """The neighbour's batch of exactly `generation`, for synchronous migration.

        ("found", batch); ("ahead", None) when its ring has moved past `generation` without
        holding it (never published, or overwritten); ("behind", None) when it has no ring or
        its newest batch is older (wait and ask again). A bad or torn slot is passed over, so a
        batch the writer is still filling reads as "behind" until it is whole.
        """
        path = os.path.join(self.directory(island), ring.RING_NAME)
        try:
            found = ring.read_ring_slots(path, self.max_bytes, since=generation)
        except (FormatError, OSError):
            return "behind", None  # unreadable now: the wait's deadline bounds this
        if found is None or found[0].generation < generation:
            return "behind", None
        for data in found[1]:
            try:
                batch = batches.decode_batch(
                    data, run_id=self.run_id, genome_kind=self.genome_kind, dtype=self.dtype,
                    gene_shape=self.gene_shape, max_bytes=self.max_bytes, path=path)
            except FormatError:
                continue
            if batch.source == island and batch.generation == generation:
                self.seen[island] = generation
                return "found", batch
        if found[0].generation == generation:
            return "behind", None  # its newest slot is being rewritten: read again
        return "ahead", None

    def _read_ring(self, island: str) -> ring.RingRead | object | None:
        """The neighbour's ring: None if it has none, _RETRY if it cannot be read now,
        else a RingRead whose `data` is the new batch (None: nothing new, or bad).

        A ring is judged by its whole header: a good batch is not read again while the header
        is unchanged; a bad one is counted once per header and slot content (its CRC), so a
        forged header never hides the batch the writer later publishes under the same bytes;
        a ring whose very header is bad is counted once per stamp. A slot that fails its checks
        while the header moved on was a read racing the writer, tried again next time, not
        counted.
        """
        path = os.path.join(self.directory(island), ring.RING_NAME)
        bad_stamp = self._ring_bad.get(island)
        if bad_stamp is not None:
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and stamp_of(st) == bad_stamp:
                return ring.RingRead(None, None)
            del self._ring_bad[island]
        known, slot_crc = self._ring_known.get(island, (None, None))
        head = None
        try:
            try:
                found = ring.read_ring(path, self.max_bytes, known, slot_crc)
            except FormatError:  # a header torn by a concurrent rewrite reads well at once
                found = ring.read_ring(path, self.max_bytes, known, slot_crc)
            if found is None or found.data is None:
                return found
            head = found.header
            try:
                batch = batches.decode_batch(
                    found.data, run_id=self.run_id, genome_kind=self.genome_kind,
                    dtype=self.dtype, gene_shape=self.gene_shape, max_bytes=self.max_bytes,
                    path=path)
                if batch.source != island or batch.generation != head.generation:
                    raise FormatError(f"claims to be {batch.source} generation {batch.generation}, "
                                      f"but is in {island}'s ring as generation {head.generation}",
                                      path)
            except FormatError:
                now = ring.header_now(path, self.max_bytes)
                if now is not None and now.raw != head.raw:
                    return _RETRY  # the writer lapped this read: not the file's fault
                raise
            self._ring_known[island] = (head.raw, None)
            return ring.RingRead(head, batch)
        except FileNotFoundError:
            return None
        except (FormatError, OSError) as e:
            if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
                self.say(f"cannot read migrant ring {path} now, will retry: {e}")
                return _RETRY
            if head is not None:  # a bad batch under a good header: judged by header and slot
                self._ring_known[island] = (head.raw, zlib.crc32(found.data))
            else:  # no usable header (or a symlink, a FIFO, unreadable): judged by stamp
                try:
                    self._ring_bad[island] = stamp_of(os.stat(path, follow_symlinks=False))
                except OSError:
                    pass
            self.count_bad(f"skipping bad migrant ring: {e}")
            return ring.RingRead(None, None)

    def say(self, message: str) -> None:
        """One warning line, to `warn` or the "migration_pool" logger."""
        if self.warn is not None:
            self.warn(message)
        else:
            log.warning("%s", message)

    def count_bad(self, message: str) -> None:
        """Count a bad file of this read_new call; warn about the first WARNINGS_PER_READ."""
        self.rejected += 1
        self._warned += 1
        if self._warned <= WARNINGS_PER_READ:
            self.say(message)

    # -- garbage collection ---------------------------------------------------------------
    def collect(self, island: str, keep: int, now: float | None = None) -> int:
        """Delete `island`'s write-once batches older than the `keep` newest this pool
        published, and stale temporaries.

        Meant for an island's own directory, and trusting only this pool's record of what it
        wrote (name and stamp), never the names found there: a forged or replaced file newer
        than its own is never counted as kept, so it cannot make the owner delete its real
        batches. Places left after its own batches go to the newest older files (an earlier
        process's), the rest of the older ones is removed; newer files this pool did not write
        stay (readers judge them), and a pool that published nothing removes no batch;
        temporaries younger than `temp_grace_s` stay, since a live writer may be filling them.
        Returns how many files this call removed: a file that vanished first (a reset) is not
        an error and not counted.
        """
        return self._legacy.collect(island, keep, now)

    # -- layout ---------------------------------------------------------------------------
    def directory(self, island: str) -> str:
        """`pool/<island>` as a str, built once per island (pathlib costs more than the I/O)."""
        directory = self._dirs.get(island)
        if directory is None:
            directory = self._dirs[island] = os.fspath(self.rundir.pool_dir(island))
        return directory

    def checked_dir(self, directory: str) -> str:
        """The run directory's containment check of `directory` (RunDirError if it fails)."""
        return self.rundir.checked_dir(directory)
