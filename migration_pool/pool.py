"""Publishing, reading and collecting migrant batches.

Each island writes only its own write-once files `pool/<island>/gen-<generation>.isld`
(RELIABILITY rule 1), so publishing needs no lock. A reader lists a neighbour's directory,
takes the newest batch it has not read yet, and skips (and counts, once) anything bad. A
file deleted by garbage collection between listing and opening is simply gone.
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from migration_pool import atomic, format as fmt
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

log = logging.getLogger("migration_pool")

BATCH_RE = re.compile(r"^gen-(\d{8,})\.isld$")
DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024
TEMP_GRACE_S = 600.0  # a temporary file older than this belongs to a dead writer


def batch_name(generation: int) -> str:
    return f"gen-{generation:08d}.isld"


@dataclass
class Pool:
    """One island's view of the migrant pool of a run.

    The expectations (`run_id`, genome kind, dtype, gene shape) make a batch of another run or
    of another genome shape a rejected file instead of a poisoned population.
    """

    rundir: RunDir
    run_id: str
    genome_kind: str = "vector"
    dtype: str | None = None
    gene_shape: tuple[int, ...] | None = None
    max_bytes: int = DEFAULT_MAX_BATCH_BYTES
    seen: dict[str, int] = field(default_factory=dict)  # neighbour -> newest generation read
    bad: set[tuple[str, int, int]] = field(default_factory=set)  # (path, size, mtime_ns) counted
    rejected: int = 0

    def publish(self, batch: fmt.MigrantBatch) -> Path:
        """Write a batch atomically under its source island's name."""
        directory = self.rundir.pool_dir(batch.source)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / batch_name(batch.generation)
        atomic.publish(path, fmt.encode_batch(batch))
        return path

    def listing(self, island: str) -> list[tuple[int, Path]]:
        """An island's batch files, newest first; temporaries and odd names are ignored."""
        try:
            entries = list(os.scandir(self.rundir.pool_dir(island)))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return []
        found = [(int(m.group(1)), Path(e.path)) for e in entries if (m := BATCH_RE.match(e.name))]
        return sorted(found, reverse=True)

    def read_new(self, neighbours: list[str]) -> tuple[list[fmt.MigrantBatch], int]:
        """The newest unread valid batch of each neighbour, and how many bad files were met.

        Never blocks and never raises for a bad file: it is logged once and counted.
        """
        batches: list[fmt.MigrantBatch] = []
        rejected_before = self.rejected
        for island in neighbours:
            last = self.seen.get(island, -1)
            for generation, path in self.listing(island):
                if generation <= last:
                    break
                batch = self._read(path, island, generation)
                if batch is not None:
                    batches.append(batch)
                    self.seen[island] = generation
                    break
        return batches, self.rejected - rejected_before

    def _read(self, path: Path, island: str, generation: int) -> fmt.MigrantBatch | None:
        try:
            st = path.stat(follow_symlinks=False)
        except FileNotFoundError:
            return None
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key in self.bad:
            return None
        try:
            batch = fmt.decode_batch(
                atomic.read_capped(path, self.max_bytes),
                run_id=self.run_id,
                genome_kind=self.genome_kind,
                dtype=self.dtype,
                gene_shape=self.gene_shape,
                max_bytes=self.max_bytes,
                path=str(path),
            )
            if batch.source != island or batch.generation != generation:
                raise FormatError(
                    f"claims to be {batch.source} generation {batch.generation}, named as {island} generation {generation}",
                    str(path),
                )
            return batch
        except FileNotFoundError:  # collected between listing and opening
            return None
        except (FormatError, OSError) as e:  # unreadable is as bad as corrupt
            self.bad.add(key)
            self.rejected += 1
            log.warning("skipping bad migrant file: %s", e)
            return None

    def collect(self, island: str, keep: int, now: float | None = None) -> int:
        """Delete all but `keep` newest batches of `island`, and stale temporary files.

        Returns how many files were removed. Vanished files are not errors: a reader or a
        second collector may race with us.
        """
        now = time.time() if now is None else now
        removed = 0
        for _, path in self.listing(island)[keep:]:
            removed += _unlink(path)
        try:
            entries = list(os.scandir(self.rundir.pool_dir(island)))
        except FileNotFoundError:
            return removed
        for e in entries:
            if atomic.is_temp_name(e.name):
                try:
                    if now - e.stat(follow_symlinks=False).st_mtime > TEMP_GRACE_S:
                        removed += _unlink(Path(e.path))
                except FileNotFoundError:
                    pass
        return removed


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0
