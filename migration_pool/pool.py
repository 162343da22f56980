"""Publishing, reading and collecting migrant batches.

Each island writes only its own write-once files `pool/<island>/gen-<generation>.isld`
(docs/DESIGN.md, "Write-once migrants"), so publishing needs no lock. A reader lists a neighbour's directory,
takes the newest batch it has not read yet, and skips (and counts, once) anything bad. A
file deleted by garbage collection between listing and opening is simply gone.

Batches are published atomically but not durably: a reader never sees a partial file
(os.replace), but no fsync is paid on the hot path. Migrants need atomicity only (docs/DESIGN.md,
"Atomic files"): after a power cut a batch may come back empty, which its envelope rejects, and the
cost is one missed migration. `Pool(durable=True)` fsyncs like every other run file.
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

import numpy as np

from migration_pool import atomic, format as fmt
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

log = logging.getLogger("migration_pool")

# [0-9], not \d (which matches non-ASCII digits), and \Z, not $ (which allows a newline).
BATCH_RE = re.compile(r"^gen-([0-9]{8,})\.isld\Z")
DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024
TEMP_GRACE_S = 600.0  # a temporary file older than this belongs to a dead writer
WARNINGS_PER_READ = 5  # further bad files of one read_new call are summed up in one line
# Errors that say nothing about the file (the reader is short of descriptors or memory, or
# was interrupted): the file is tried again next time instead of being marked bad forever.
TRANSIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR,
                              errno.EAGAIN, errno.ENOBUFS})

Stamp = tuple[int, int, int]  # (inode, size, mtime_ns): a file replaced under its name changes it


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
    seen: dict[str, int] = field(default_factory=dict)  # neighbour -> newest generation read
    rejected: int = 0  # bad files met by read_new, each counted once
    # island -> file name -> what was judged, keyed by stamp; pruned to what still exists.
    # _bad: files read_new counted; _verdicts: collect()'s (stamp, valid?) per file.
    _bad: dict[str, dict[str, Stamp]] = field(default_factory=dict, repr=False)
    _verdicts: dict[str, dict[str, tuple[Stamp, bool]]] = field(default_factory=dict, repr=False)
    _warned: int = field(default=0, repr=False)
    _dirs: dict[str, str] = field(default_factory=dict, repr=False)

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
        try:
            atomic.publish(path, data, storage=storage)
        except FileNotFoundError:  # first batch of this island, or its directory was reset
            os.makedirs(directory, exist_ok=True)
            atomic.publish(path, data, storage=storage)
        if self._expects(batch):  # spare collect() from decoding what we just wrote
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:  # already collected by someone else
                return Path(path)
            self._verdicts.setdefault(batch.source, {})[name] = (
                (st.st_ino, st.st_size, st.st_mtime_ns), True)
        return Path(path)

    def _expects(self, batch: fmt.MigrantBatch) -> bool:
        """Whether a reader with this pool's expectations would accept `batch`."""
        if batch.run_id != self.run_id or batch.genome_kind != self.genome_kind:
            return False
        genomes = batch.genomes
        if not isinstance(genomes, np.ndarray):  # a list of per-genome maps (NEAT)
            return self.dtype is None and self.gene_shape is None
        return ((self.dtype is None
                 or fmt.dtype_name(genomes.dtype) == fmt.dtype_name(np.dtype(self.dtype)))
                and (self.gene_shape is None or genomes.shape[1:] == tuple(self.gene_shape)))

    # -- reading --------------------------------------------------------------------------
    def listing(self, island: str) -> list[tuple[int, Path]]:
        """An island's batch files, newest first; temporaries and other names are ignored."""
        directory = self._dir(island)
        return [(g, Path(directory, name)) for g, name in self._scan(island)[0]]

    def read_new(self, neighbours: list[str]) -> tuple[list[fmt.MigrantBatch], int]:
        """The newest unread valid batch of each neighbour, and how many bad files were met.

        Never blocks and never raises for a bad file: it is skipped, warned about and counted
        once (a file replaced under the same name is judged afresh). Older batches than the
        one returned are never read: an island wants its neighbours' current best.
        """
        batches: list[fmt.MigrantBatch] = []
        rejected_before, self._warned = self.rejected, 0
        for island in dict.fromkeys(neighbours):
            listing = self._scan(island)[0]
            last = self.seen.get(island, -1)
            if listing and listing[0][0] < last:
                # Everything up to what we read is gone: only a reset island (--fresh) does
                # that, since garbage collection always keeps the newest batches.
                last = -1
            for generation, name in listing:
                if generation <= last:
                    break
                batch = self._read(island, generation, name)
                if batch is not None:
                    batches.append(batch)
                    self.seen[island] = generation
                    break
        if self._warned > WARNINGS_PER_READ:
            self._say(f"... and {self._warned - WARNINGS_PER_READ} more bad migrant file(s)")
        return batches, self.rejected - rejected_before

    def _read(self, island: str, generation: int, name: str) -> fmt.MigrantBatch | None:
        """The batch in file `name`, or None if it vanished, is known bad or turns out bad."""
        path = os.path.join(self._dir(island), name)
        try:
            st = os.stat(path, follow_symlinks=False)
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
                return None
            # Unreadable (EACCES, EIO) is as bad as corrupt; remembered by stamp so the
            # same file is neither read nor counted again.
            bad[name] = stamp
            self.rejected += 1
            self._warned += 1
            if self._warned <= WARNINGS_PER_READ:
                self._say(f"skipping bad migrant file: {e}")
            return None

    def _decode(self, island: str, generation: int, path: str) -> fmt.MigrantBatch:
        batch = fmt.decode_batch(
            atomic.read_capped(path, self.max_bytes),
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
        """Delete `island`'s batches older than its `keep` newest valid ones, and stale temporaries.

        Meant for an island's own directory. Invalid files newer than the kept ones stay
        (readers skip them); temporaries younger than `temp_grace_s` stay, since a live
        writer may be filling them. Returns how many files this call removed: a file that
        vanished first (another collector, a reset) is not an error and not counted.
        """
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        now = time.time() if now is None else now
        listing, temps = self._scan(island)
        removed, valid = 0, 0
        directory = self._dir(island)
        for generation, name in listing:
            if valid >= keep:
                removed += self._unlink(os.path.join(directory, name))
            elif self._is_valid(island, generation, name):
                valid += 1
        for entry in temps:
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:  # the writer renamed it into place meanwhile
                continue
            if age > self.temp_grace_s:
                removed += self._unlink(entry.path)
        return removed

    def _is_valid(self, island: str, generation: int, name: str) -> bool:
        """Whether the file decodes as this run's batch; cached by stamp, never counted.

        A transient error counts as invalid without being cached: collect() then keeps more
        files, never fewer.
        """
        path = os.path.join(self._dir(island), name)
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        cache = self._verdicts.setdefault(island, {})
        known = cache.get(name)
        if known is not None and known[0] == stamp:
            return known[1]
        try:
            self._decode(island, generation, path)
            ok = True
        except (FormatError, OSError) as e:
            if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS | {errno.ENOENT}:
                return False
            ok = False
        cache[name] = (stamp, ok)
        return ok

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

    def _scan(self, island: str) -> tuple[list[tuple[int, str]], list[os.DirEntry]]:
        """(batches as (generation, name) newest first, temporaries); prunes the caches."""
        try:
            with os.scandir(self._dir(island)) as it:
                entries = list(it)
        except OSError:  # missing, not a directory, unreadable: nothing to read there
            entries = []
        batches, temps, names = [], [], set()
        for e in entries:
            name = e.name
            generation = batch_generation(name)
            if generation is not None:
                batches.append((generation, name))
                names.add(name)
            elif atomic.is_temp_name(name):
                temps.append(e)
        for cache in (self._bad, self._verdicts):
            known = cache.get(island)
            if known and not names.issuperset(known):
                cache[island] = {n: s for n, s in known.items() if n in names}
        batches.sort(reverse=True)
        return batches, temps
