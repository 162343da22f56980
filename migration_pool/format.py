"""The envelope of every run-directory file: a 32-byte header, then one msgpack body.

This module owns the envelope and its version, so a change of the envelope is one diff here;
what a body may hold, and the bounded decoder, are `values`; the migrant batch schemas are
`batches` (schema 1, a body map) and `format_packed` (schema 2, a binary payload in the same
envelope). Files come from other processes, runs or users, so decoding trusts nothing: it
checks the envelope, caps every size before allocating, verifies the CRC, unpacks with
msgpack limits and then re-validates the result.

Envelope (all integers little-endian, header is 32 bytes)::

    offset size  field
    0      4     magic           b"ISLD"
    4      2     version         u16, FORMAT_VERSION (= 1)
    6      2     flags           u16, 0; 1 marks a packed migrant batch (`format_packed`);
                                 any other value, or 1 where not expected, is rejected
    8      12    kind            ascii tag from KINDS, NUL-padded (e.g. b"migrants\\0\\0\\0\\0")
    20     8     payload length  u64, number of bytes after the header
    28     4     crc32           zlib.crc32 over bytes 0..27 then over the payload
    32     n     payload         one msgpack map with str keys (the "body", see `values`)

Nothing may follow the payload.
"""
from __future__ import annotations

import struct
import zlib

from migration_pool.errors import FormatError
from migration_pool.island_ids import MAX_ISLANDS
from migration_pool.values import DECODER_ERRORS, check_value, pack_body, unpack_body

FORMAT_VERSION: int = 1
MAX_FILE_BYTES: int = 256 * 1024 * 1024
KINDS: frozenset[str] = frozenset(
    {"migrants", "checkpoint", "manifest", "status", "champion", "launcher", "target", "evaluation", "lease", "segments", "summary", "basins",
     "obs_stats"}
)
MAGIC = b"ISLD"
HEADER = struct.Struct("<4sHH12sQI")
HEADER_SIZE = HEADER.size  # 32
# Kinds that hold an entry per island of the run (the manifest: ids, devices, cores, overrides;
# the launcher's state: each island's bookkeeping) get this many decoding units per island, for
# MAX_ISLANDS islands, on top of their payload's own budget (`values._Budget`): a map per island
# costs more units than its bytes earn. A constant, not read from the file: a hostile manifest
# costs at most MAX_ISLANDS x ISLAND_UNITS x values.DECODE_BYTES_PER_UNIT (8 MiB) more memory.
ISLAND_UNITS: dict[str, int] = {"manifest": 32, "launcher": 32}


def encode(kind: str, body: dict) -> bytes:
    """Serialise ``body`` into an enveloped file of type ``kind``.

    Raises:
        FormatError: unknown kind, or a value the format cannot carry exactly (an int
            beyond 64 bits, a non-str key, an unsupported type or dtype, too deep).
    """
    check_kind(kind)
    if not isinstance(body, dict):
        raise FormatError(f"body must be a dict, got {type(body).__name__}")
    check_value(body, 1)
    return pack(kind, body)


def pack(kind: str, body: dict) -> bytes:
    """The envelope around ``body``, which the caller has checked the format can carry."""
    return envelope(kind, pack_body(body))


def envelope(kind: str, payload: bytes, flags: int = 0) -> bytes:
    """The 32-byte header with its CRC, then ``payload`` (the caller checked ``kind``)."""
    head = HEADER.pack(MAGIC, FORMAT_VERSION, flags, kind.encode("ascii"), len(payload), 0)[:28]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


def decode(data: bytes, kind: str, *, max_bytes: int = MAX_FILE_BYTES,
           path: str | None = None) -> dict:
    """Parse and validate an enveloped file of type ``kind``; return its body.

    Arrays come back as writable copies with exactly the recorded dtype and shape.

    Raises:
        FormatError: for anything wrong with ``data`` (never another exception type).
    """
    try:
        check_kind(kind)
        view = memoryview(data).cast("B")
        return unpack_body(open_envelope(view, kind, max_bytes), ISLAND_UNITS.get(kind, 0) * MAX_ISLANDS)
    except FormatError as exc:
        raise FormatError(exc.args[0], path) from None  # internal errors carry no path
    except DECODER_ERRORS as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise FormatError(f"corrupt payload: {detail}", path) from None


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise FormatError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")


def flags_of(view: memoryview) -> int | None:
    """The envelope flags of `view` (a byte view), None if it is shorter than a header."""
    return view[6] | view[7] << 8 if len(view) >= HEADER_SIZE else None


def open_envelope(view: memoryview, kind: str, max_bytes: int, flags_ok: int = 0) -> memoryview:
    """Check the header and CRC; return the payload as a view (no copy)."""
    if len(view) > max_bytes:
        raise FormatError(f"{len(view)} bytes exceeds the cap of {max_bytes}")
    if len(view) < HEADER_SIZE:
        raise FormatError(f"truncated: {len(view)} bytes is shorter than the header")
    magic, version, flags, raw_kind, length, crc = HEADER.unpack_from(view)
    if magic != MAGIC:
        raise FormatError(f"bad magic {magic!r}, not an islands file")
    if version != FORMAT_VERSION:
        raise FormatError(f"format version {version} is not supported (this is {FORMAT_VERSION})")
    if flags != flags_ok:
        raise FormatError(f"reserved flags 0x{flags:04x} are set")
    found = raw_kind.rstrip(b"\0").decode("ascii", "replace")
    if found != kind:
        raise FormatError(f"file kind {found!r} is not the expected {kind!r}")
    if length > len(view) - HEADER_SIZE:
        raise FormatError(f"truncated: header declares {length} payload bytes, "
                          f"{len(view) - HEADER_SIZE} present")
    if length < len(view) - HEADER_SIZE:
        raise FormatError(f"{len(view) - HEADER_SIZE - length} trailing bytes after the payload")
    payload = view[HEADER_SIZE:]
    if zlib.crc32(payload, zlib.crc32(view[:28])) != crc:
        raise FormatError("CRC mismatch: the file is corrupt")
    return payload
