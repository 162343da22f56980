"""The migrant ring: one fixed-layout file per island, rewritten in place.

Holds the ring's layout (RING_*, `RingHeader`, below: `pool/<island>/ring.isld`, a 64-byte
header and a few slots, each one whole "migrants" envelope), its writer (`RingWriter`) and its
readers (`read_ring`, `header_now`). Why: on ext4 creating, renaming and later unlinking one
file per migration event cost ~0.3-0.5 ms of the ~1 ms an event took;
two `pwrite`s into a file the island already holds open cost a few microseconds, and a
reader whose neighbour published nothing new reads 64 bytes and stops.

Safety, as for write-once files (docs/DESIGN.md, "Migrant ring"):
- atomic for readers: the writer fills a slot the header does not name, then rewrites the
  header; the header and every slot carry a CRC, so a torn read is a mismatch, never a batch.
- judged by the whole header: a reader skips a ring only when all 64 header bytes are the ones
  it judged (`read_ring`), never by the counter alone, and re-reads a slot it judged bad.
- containment: the file is created by `atomic.publish` (O_EXCL, then renamed into place in a
  checked directory) and written only through the descriptor of that creation, and only while
  the name still leads to that very inode (lstat): a file that someone replaced, or a symlink,
  is never written through; the writer creates a fresh ring instead.
- hostile input: readers open with O_NOFOLLOW | O_NONBLOCK, accept regular files only,
  check every header field against the size cap before seeking, and decode the slot with the
  ordinary bounded envelope decoder.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from migration_pool import atomic, batches, format as fmt
from migration_pool.errors import FormatError

# The migrant ring (layout version RING_VERSION): one file per island, pool/<island>/ring.isld,
# rewritten in place instead of one new file per event (creating, renaming and collecting a
# file cost more than all the rest of a migration event). Header, 64 bytes::
#
#     offset size  field
#     0      4     magic        b"ISLR"
#     4      2     version      u16, RING_VERSION (= 1)
#     6      2     slots        u16, 2..RING_MAX_SLOTS
#     8      8     slot_bytes   u64, capacity of each slot
#     16     8     ring_id      8 random bytes, new whenever the file is created
#     24     8     counter      u64, batches published into this file; newest in slot (counter - 1) % slots
#     32     8     length       u64, bytes of the newest slot's batch (<= slot_bytes)
#     40     8     generation   u64, the newest batch's generation
#     48     12    reserved     zero
#     60     4     crc32        zlib.crc32 of bytes 0..59
#
# Slot i starts at RING_HEADER_SIZE + i * slot_bytes and holds one whole "migrants" envelope,
# with its own CRC. The writer fills slot counter % slots, then rewrites the header: the slot
# the header names is complete and is not touched again until `slots - 1` more batches have
# been published, and a reader that raced a writer anyway sees a CRC mismatch, never a batch.
RING_MAGIC = b"ISLR"
RING_VERSION: int = 1
RING_NAME = "ring.isld"
RING_HEADER = struct.Struct("<4sHHQ8sQQQ12x")
RING_HEADER_SIZE = RING_HEADER.size + 4  # 64
RING_MAX_SLOTS = 64


@dataclass(frozen=True)
class RingHeader:
    """The decoded header of a migrant ring file (`raw`: its 64 bytes, when read from one)."""

    slots: int
    slot_bytes: int
    ring_id: bytes
    counter: int
    length: int
    generation: int
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def offset(self) -> int:
        """Where the newest batch starts in the file."""
        return RING_HEADER_SIZE + ((self.counter - 1) % self.slots) * self.slot_bytes

    @property
    def file_bytes(self) -> int:
        return RING_HEADER_SIZE + self.slots * self.slot_bytes


def encode_ring_header(h: RingHeader) -> bytes:
    head = RING_HEADER.pack(RING_MAGIC, RING_VERSION, h.slots, h.slot_bytes, h.ring_id,
                            h.counter, h.length, h.generation)
    return head + struct.pack("<I", zlib.crc32(head))


def decode_ring_header(data: bytes, max_bytes: int = fmt.MAX_FILE_BYTES) -> RingHeader:
    """Parse a ring header; FormatError for a wrong magic, version, CRC or any field out of
    range (so a reader never seeks or reads beyond what `max_bytes` allows)."""
    if len(data) < RING_HEADER_SIZE:
        raise FormatError(f"truncated ring header: {len(data)} bytes")
    magic, version, slots, slot_bytes, ring_id, counter, length, generation = \
        RING_HEADER.unpack_from(data)
    if magic != RING_MAGIC:
        raise FormatError(f"bad ring magic {magic!r}")
    if version != RING_VERSION:
        raise FormatError(f"ring version {version} is not {RING_VERSION}")
    (crc,) = struct.unpack_from("<I", data, RING_HEADER.size)
    if crc != zlib.crc32(memoryview(data)[:RING_HEADER.size]):
        raise FormatError("ring header checksum mismatch")
    h = RingHeader(slots, slot_bytes, ring_id, counter, length, generation, bytes(data[:RING_HEADER_SIZE]))
    if not 2 <= slots <= RING_MAX_SLOTS or not fmt.HEADER_SIZE <= slot_bytes <= max_bytes \
            or h.file_bytes > max_bytes + RING_HEADER_SIZE or counter < 1 \
            or not fmt.HEADER_SIZE <= length <= slot_bytes or generation >= 2**63:
        raise FormatError(f"ring header out of range: {slots} slots of {slot_bytes} bytes, "
                          f"counter {counter}, length {length}")
    return h

RING_SLOTS = 4  # a reader is only confused if the writer laps it by 3 batches mid-read
MIN_SLOT_BYTES = 4096
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class RingWriter:
    """Publishes one island's batches into `directory/ring.isld` (the caller checks `directory`)."""

    def __init__(self, directory: str, durable: bool = False, carry: bool = False) -> None:
        self.path = os.path.join(directory, RING_NAME)
        self.durable = durable
        # carry: a fresh ring keeps the older batches of the ring it replaces (a restarted
        # island's readers may still need them: synchronous migration reads by generation).
        self.carry = carry
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the ring we created
        self._head: RingHeader | None = None

    def publish(self, data: bytes, generation: int, check_dir=None) -> None:
        """Make `data` (an encoded batch) the ring's newest batch.

        `check_dir` (called before a ring is created) is the caller's containment check of
        the directory. Raises OSError when the file cannot be written.
        """
        head = self._head
        if head is not None and len(data) <= head.slot_bytes and self._still_ours():
            slot = head.counter % head.slots
            new = RingHeader(head.slots, head.slot_bytes, head.ring_id, head.counter + 1,
                                 len(data), generation)
            self._pwrite(data, RING_HEADER_SIZE + slot * head.slot_bytes)
            self._pwrite(encode_ring_header(new), 0)
            if self.durable:
                os.fsync(self._fd)
            self._head = new
            return
        self._create(data, generation, check_dir)

    def _pwrite(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)
            if n <= 0:
                raise OSError(errno.EIO, f"pwrite returned {n}")
            view, offset = view[n:], offset + n

    def intact(self) -> bool:
        """Whether the ring holds what this writer last published (nobody replaced it)."""
        return self._head is not None and self._still_ours()

    def _still_ours(self) -> bool:
        """Whether the ring's name still leads to the inode this writer created."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._ident and stat.S_ISREG(st.st_mode)

    def _create(self, data: bytes, generation: int, check_dir) -> None:
        """A fresh ring holding `data` in slot 0, published atomically, then opened for writing."""
        self.close()
        older = _older_slots(self.path, generation, RING_SLOTS - 1) if self.carry else []
        batches = [*older, data]  # oldest first: the new batch is the newest
        slot_bytes = max(MIN_SLOT_BYTES, 2 * max(len(b) for b in batches))  # room to grow a little
        head = RingHeader(RING_SLOTS, slot_bytes, secrets.token_bytes(8), len(batches), len(data),
                          generation)
        image = bytearray(head.file_bytes)
        image[:RING_HEADER_SIZE] = encode_ring_header(head)
        for i, b in enumerate(batches):
            start = RING_HEADER_SIZE + i * slot_bytes
            image[start:start + len(b)] = b
        if check_dir is not None:
            check_dir()
        atomic.publish(self.path, bytes(image), durable=self.durable)
        # O_NOFOLLOW, then the inode is checked: a name swapped in between is not written through.
        fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size != head.file_bytes \
                or os.pread(fd, RING_HEADER_SIZE, 0) != bytes(image[:RING_HEADER_SIZE]):
            os.close(fd)  # the header holds a fresh random ring id: this is not our file
            raise OSError(f"{self.path} changed under its writer")
        self._fd, self._ident, self._head = fd, (st.st_dev, st.st_ino), head

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._ident = self._head = None


@dataclass(frozen=True)
class RingRead:
    """What one look at a neighbour's ring found: its header, and the newest batch's bytes
    (None when the ring holds nothing the reader has not judged). `Pool` reuses it with the
    decoded batch as `data`, and with no header for a ring it judged bad. An unchanged ring
    (the very header judged before) comes back with neither: its header is not decoded again."""

    header: RingHeader | None
    data: Any


UNCHANGED = RingRead(None, None)


def read_ring(path: str, max_bytes: int, known: bytes | None, slot_crc: int | None = None) -> RingRead | None:
    """The newest batch of the ring at `path`, unless the reader has judged it already.

    `known` is the whole header (`RingHeader.raw`) the reader last judged: a ring is judged by
    every byte of its header, never by its counter alone (a restarted island's new ring has
    another ring id at the same counter; a forged header one ahead differs from the writer's
    real one in generation, length or ring id). An unchanged header is nothing new, read in
    64 bytes, unless `slot_crc` (the zlib.crc32 of a slot judged bad under that header) is
    given: then the slot is read again, and judged afresh if it changed (a forger who guessed
    the writer's next header exactly hides nothing).

    None when there is no ring. Raises FormatError for a file that is not a valid ring
    (a symlink, a FIFO, a bad header, a header pointing past the end) and OSError for I/O errors.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:  #: the name is a symlink
            raise FormatError("ring is a symlink", path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError("ring is not a regular file", path)
        raw = os.pread(fd, RING_HEADER_SIZE, 0)
        if slot_crc is None and known is not None and raw == known:
            return UNCHANGED  # byte for byte the header judged (and decoded) before
        try:
            head = decode_ring_header(raw, max_bytes)
        except FormatError as e:
            raise FormatError(e.args[0], path) from None
        if head.offset + head.length > st.st_size:
            raise FormatError(f"ring header points past the end of its {st.st_size} bytes", path)
        data = os.pread(fd, head.length, head.offset)
        if head.raw == known and zlib.crc32(data) == slot_crc:
            return RingRead(head, None)
        return RingRead(head, data)
    finally:
        os.close(fd)


def header_now(path: str, max_bytes: int) -> RingHeader | None:
    """The ring's header as it is now (None if unreadable): tells a torn read from a bad file."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        return decode_ring_header(os.pread(fd, RING_HEADER_SIZE, 0), max_bytes)
    except (OSError, FormatError):
        return None
    finally:
        os.close(fd)


def _slot_bytes_at(fd: int, head: RingHeader, back: int) -> bytes | None:
    """The envelope `back` batches before the newest (0: the newest), or None if it cannot be
    one (its length field out of the slot). Older slots carry no length in the ring header:
    the envelope's own payload length (bytes 20..27) bounds the read."""
    if back >= min(head.counter, head.slots):
        return None
    offset = RING_HEADER_SIZE + ((head.counter - 1 - back) % head.slots) * head.slot_bytes
    if back == 0:
        return os.pread(fd, head.length, offset)
    top = os.pread(fd, fmt.HEADER_SIZE, offset)
    if len(top) < fmt.HEADER_SIZE:
        return None
    (payload,) = struct.unpack_from("<Q", top, 20)
    if payload > head.slot_bytes - fmt.HEADER_SIZE:
        return None
    return top + os.pread(fd, payload, offset + fmt.HEADER_SIZE)


def read_ring_slots(path: str, max_bytes: int, since: int = 0) -> tuple[RingHeader, list[bytes]] | None:
    """The ring's header and the bytes of every slot it holds, newest first (unchecked: the
    caller decodes each, and a slot a writer is overwriting fails its CRC there); no slots
    when the newest batch is older than generation `since` (64 bytes read).

    For readers that need one generation, not the newest (synchronous migration). None when
    there is no ring; FormatError or OSError as `read_ring`.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FormatError("ring is a symlink", path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FormatError("ring is not a regular file", path)
        try:
            head = decode_ring_header(os.pread(fd, RING_HEADER_SIZE, 0), max_bytes)
        except FormatError as e:
            raise FormatError(e.args[0], path) from None
        if head.generation < since:
            return head, []
        found = [_slot_bytes_at(fd, head, back) for back in range(head.slots)]
        return head, [b for b in found if b]
    finally:
        os.close(fd)


def _older_slots(path: str, generation: int, keep: int) -> list[bytes]:
    """Up to `keep` batches of the ring at `path` older than `generation`, oldest first; none
    when there is no readable ring. What they hold is judged by their readers (the envelope)."""
    try:
        found = read_ring_slots(path, fmt.MAX_FILE_BYTES)
    except (OSError, FormatError):
        return []
    if found is None:
        return []
    out = []
    for data in found[1]:
        try:
            gen = _batch_generation(data)
        except FormatError:
            continue
        if gen < generation and gen not in {g for g, _ in out}:
            out.append((gen, data))
    return [d for _, d in sorted(out)[-keep:]] if keep > 0 else []


def _batch_generation(data: bytes) -> int:
    """The generation a migrant batch envelope claims (decoding its body; FormatError if bad)."""
    return batches.decode_batch(data).generation
