"""The on-disk format of every run-directory file: one envelope, msgpack inside.

This is the only module that calls ``msgpack.packb``/``unpackb`` and the only owner of the
schema version, so a format change is one diff here. Files come from other processes, runs or
users, so decoding trusts nothing: it checks the envelope, caps every size before allocating,
verifies the CRC, unpacks with msgpack limits and then re-validates the result.

Envelope (all integers little-endian, header is 32 bytes)::

    offset size  field
    0      4     magic           b"ISLD"
    4      2     version         u16, FORMAT_VERSION (= 1)
    6      2     flags           u16, reserved: must be 0 or the file is rejected
    8      12    kind            ascii tag from KINDS, NUL-padded (e.g. b"migrants\\0\\0\\0\\0")
    20     8     payload length  u64, number of bytes after the header
    28     4     crc32           zlib.crc32 over bytes 0..27 then over the payload
    32     n     payload         one msgpack map with str keys (the "body")

Nothing may follow the payload. Body values are None, bool, int (int64/uint64 range), float,
str, bytes, lists (tuples encode as lists), maps with str keys, and numpy arrays. Nesting is
limited to MAX_DEPTH containers (the body map is depth 1).

Arrays are msgpack ExtType code ARRAY_EXT (= 1) whose data is::

    u8 n, n ascii bytes dtype name (see DTYPES), u8 ndim (<= MAX_NDIM),
    ndim x u64 dims, then prod(dims) * itemsize raw little-endian bytes in C order.

Dims are unsigned, so they are non-negative by construction.

Migrant batches ("migrants" files) carry K genomes of one kind, in one of two schemas: 2, the
packed binary layout of `format_packed` (envelope flags = 1; what islands write for array
genomes since issue 16), or 1 (SCHEMA_VERSION), the msgpack map below (NEAT genomes, and
every batch of earlier versions, still read):

- any kind but "neat" ("vector", ...): ``genomes`` is one array ``[K, *gene_shape]`` of a
  float dtype, described by the header fields ``dtype`` and ``gene_shape``.
- "neat": variable-size graphs. ``genomes`` is a list of K maps, each with exactly the
  arrays ``nodes`` int64[n] (unique node ids >= 0), ``conn_in``/``conn_out`` int64[c] (ids
  of listed nodes, each (in, out) pair at most once), ``weight`` float32[c] (finite) and
  ``enabled`` bool[c]; n <= NEAT_MAX_NODES and c <= NEAT_MAX_CONNS. The header's ``dtype``
  and ``gene_shape`` are null, and the extra field ``genome_schema`` holds
  NEAT_SCHEMA_VERSION (= 1), the version of this per-genome layout. What the ids mean
  (inputs, outputs, cycles) is checked by the algorithm that adopts the genomes.
"""
from __future__ import annotations

import math
import re
import struct
import sys
import zlib
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .errors import FormatError

SCHEMA_VERSION: int = 1  # migrant batches as a msgpack map; schema 2 is format_packed's
_FLAG_PACKED = 1  # format_packed.FLAG_PACKED: the envelope of a schema-2 (packed) batch
FORMAT_VERSION: int = 1
MAX_FILE_BYTES: int = 256 * 1024 * 1024
KINDS: frozenset[str] = frozenset(
    {"migrants", "checkpoint", "manifest", "status", "champion", "launcher", "target", "evaluation", "lease"}
)
MAGIC = b"ISLD"
HEADER = struct.Struct("<4sHH12sQI")
HEADER_SIZE = HEADER.size  # 32
ARRAY_EXT = 1
MAX_DEPTH = 32
MAX_NDIM = 8
DTYPES: frozenset[str] = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64"}
)
# np.dtype.name is a Python-level property costing ~1.5 us, read a dozen times per migration
# event: the hot paths look the name up here (dtype hashing is C) and fall back to .name.
_DTYPE_NAMES: dict[np.dtype, str] = {np.dtype(n): n for n in DTYPES}


def dtype_name(dtype: np.dtype) -> str:
    """``dtype.name``, cheaply for the dtypes the format allows."""
    name = _DTYPE_NAMES.get(dtype)
    return dtype.name if name is None else name


# Anchored with \Z and [0-9]: "$" would accept a trailing newline and \d non-ASCII digits.
# One spelling per number: exactly two digits below 100 ("island-03"), no leading zero above
# ("island-100", never "island-0100"), so two ids never share a lineage number; at most
# MAX_ISLAND_DIGITS digits, so the number is small and an id is a short, safe path component.
MAX_ISLAND_DIGITS = 6
ISLAND_ID_RE = re.compile(r"^island-(?:[0-9]{2}|[1-9][0-9]{2,%d})\Z" % (MAX_ISLAND_DIGITS - 1))

NEAT_KIND = "neat"
NEAT_SCHEMA_VERSION: int = 1  # migrant batches as a msgpack map; schema 2 is format_packed's
_FLAG_PACKED = 1  # format_packed.FLAG_PACKED: the envelope of a schema-2 (packed) batch
NEAT_FIELDS: dict[str, str] = {"nodes": "int64", "conn_in": "int64", "conn_out": "int64",
                               "weight": "float32", "enabled": "bool"}
NEAT_MAX_NODES = 4096
NEAT_MAX_CONNS = 65536

_LITTLE = sys.byteorder == "little"
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# What the decoder itself may raise on bad bytes; anything else is a bug and propagates.
_DECODER_ERRORS = (msgpack.UnpackException, ValueError, TypeError, OverflowError,
                   struct.error, RecursionError)


# ----------------------------------------------------------------------------- envelope

def encode(kind: str, body: dict) -> bytes:
    """Serialise ``body`` into an enveloped file of type ``kind``.

    Raises:
        FormatError: unknown kind, or a value the format cannot carry exactly (an int
            beyond 64 bits, a non-str key, an unsupported type or dtype, too deep).
    """
    _check_kind(kind)
    if not isinstance(body, dict):
        raise FormatError(f"body must be a dict, got {type(body).__name__}")
    _check_value(body, 1)
    return _pack(kind, body)


def _pack(kind: str, body: dict) -> bytes:
    """The envelope around ``body``, which the caller has checked the format can carry."""
    try:
        payload = msgpack.packb(body, default=_pack_default, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:  # belt and braces after _check_value
        raise FormatError(f"cannot encode body: {exc}") from None
    return envelope(kind, payload)


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
        _check_kind(kind)
        view = memoryview(data).cast("B")
        payload = _open_envelope(view, kind, max_bytes)
        budget = _Budget(len(payload))
        body = msgpack.unpackb(
            payload, raw=False, strict_map_key=True, use_list=True,
            object_pairs_hook=budget.pairs, list_hook=budget.list, ext_hook=_ext_hook,
            # Every declared length is bounded by the bytes present, and a container by the
            # element budget, so a lying header cannot make msgpack preallocate much.
            max_str_len=len(payload), max_bin_len=len(payload), max_ext_len=len(payload),
            max_array_len=budget.limit, max_map_len=budget.limit // 2,
        )
        if not isinstance(body, dict):
            raise FormatError(f"body is a {type(body).__name__}, not a map")
        _check_decoded(body, 1)
        return body
    except FormatError as exc:
        raise FormatError(exc.args[0], path) from None  # internal errors carry no path
    except _DECODER_ERRORS as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise FormatError(f"corrupt payload: {detail}", path) from None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise FormatError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")


def _open_envelope(view: memoryview, kind: str, max_bytes: int, flags_ok: int = 0) -> memoryview:
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


# ----------------------------------------------------------------------------- values

def _masked(array: Any) -> bool:
    """Whether `array` is a numpy masked array, without importing numpy.ma (0.14 s in a fresh
    island): nothing can be one unless some module already imported it."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(array, ma.MaskedArray)


def _check_value(obj: Any, depth: int) -> None:
    """Refuse, before packing, anything that would not decode to an equal value."""
    if isinstance(obj, (dict, list, tuple)) and depth > MAX_DEPTH:
        raise FormatError(f"nesting deeper than {MAX_DEPTH}")
    if obj is None or isinstance(obj, (bool, float, str, bytes, bytearray)):
        return
    if isinstance(obj, int):
        if not _INT_MIN <= obj <= _INT_MAX:
            raise FormatError(f"integer {obj} does not fit in 64 bits")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise FormatError(f"map key {key!r} is a {type(key).__name__}, not a str")
            _check_value(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_value(value, depth + 1)
    elif isinstance(obj, np.ndarray):
        if _masked(obj):
            raise FormatError("masked arrays are not supported (the mask would be lost)")
        if dtype_name(obj.dtype) not in DTYPES:
            raise FormatError(f"array dtype {obj.dtype} is not one of {sorted(DTYPES)}")
        if obj.ndim > MAX_NDIM:
            raise FormatError(f"array has {obj.ndim} dims, more than {MAX_NDIM}")
    elif not isinstance(obj, (np.bool_, np.integer, np.floating)):
        raise FormatError(f"cannot encode a value of type {type(obj).__name__}")


def _pack_default(obj: Any) -> Any:
    """msgpack hook for the types it does not know: arrays and numpy scalars."""
    if isinstance(obj, np.ndarray):
        dtype = obj.dtype
        if dtype.byteorder not in "<|=" or (dtype.byteorder == "=" and not _LITTLE):
            obj = obj.astype(dtype.newbyteorder("<"))
        raw = obj.tobytes(order="C")
        name = dtype_name(dtype).encode("ascii")
        head = bytes([len(name)]) + name + bytes([obj.ndim])
        return msgpack.ExtType(ARRAY_EXT, head + struct.pack(f"<{obj.ndim}Q", *obj.shape) + raw)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> np.ndarray:
    if code != ARRAY_EXT:
        raise FormatError(f"unknown extension type {code}")
    if len(data) < 2 or len(data) < data[0] + 2:
        raise FormatError("truncated array header")
    name = data[1 : 1 + data[0]].decode("ascii", "replace")
    if name not in DTYPES:
        raise FormatError(f"array dtype {name!r} is not allowed")
    ndim = data[1 + data[0]]
    if ndim > MAX_NDIM:
        raise FormatError(f"array has {ndim} dims, more than {MAX_NDIM}")
    start = 2 + data[0]
    if len(data) < start + 8 * ndim:
        raise FormatError("truncated array shape")
    shape = struct.unpack_from(f"<{ndim}Q", data, start)
    dtype = np.dtype(name)
    raw = memoryview(data)[start + 8 * ndim :]
    # Python ints: the product cannot overflow, so a huge declared shape is just a mismatch.
    if math.prod(shape) * dtype.itemsize != len(raw):
        raise FormatError(f"array of shape {shape} and dtype {name} needs "
                          f"{math.prod(shape) * dtype.itemsize} bytes, has {len(raw)}")
    if name == "bool" and bytes(raw).translate(None, b"\0\1"):
        raise FormatError("bool array holds bytes other than 0 and 1")
    flat = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return flat.reshape(shape).astype(dtype)  # astype copies: writable, owns its memory


# Decoding cost bound (R15). Valid bodies hold few containers (arrays travel as one ext
# value), so a payload of S bytes may hold at most S // ELEMENT_BYTES + ELEMENT_SLACK
# "element units": each list or map costs CONTAINER_UNITS plus one unit per element (two
# per map entry). The 16 MiB "array of empty maps" bomb is refused at its header; any other
# shape is refused after at most S / 64 containers. Measured with tracemalloc over the
# crafted files (tests/test_format.py): peak <= DECODE_BYTES_PER_BYTE x S + 1 MiB.
ELEMENT_BYTES = 4
ELEMENT_SLACK = 4096
CONTAINER_UNITS = 16
DECODE_BYTES_PER_BYTE = 16


class _Budget:
    """The msgpack hooks of one decode: count containers and elements, refuse past the limit."""

    __slots__ = ("limit", "used")

    def __init__(self, payload_bytes: int) -> None:
        self.limit = payload_bytes // ELEMENT_BYTES + ELEMENT_SLACK
        self.used = 0

    def _charge(self, units: int) -> None:
        self.used += units
        if self.used > self.limit:
            raise FormatError(f"more than {self.limit} containers and elements for "
                              f"{(self.limit - ELEMENT_SLACK) * ELEMENT_BYTES} payload bytes")

    def list(self, items: list) -> list:
        self._charge(CONTAINER_UNITS + len(items))
        return items

    def pairs(self, pairs: list) -> dict:
        self._charge(CONTAINER_UNITS + 2 * len(pairs))
        return _pairs_hook(pairs)


def _pairs_hook(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise FormatError("map has duplicate keys")
    for key in result:
        if not isinstance(key, str):  # strict_map_key still lets bytes keys through
            raise FormatError(f"map key {key!r} is not a str")
    return result


_LEAVES = frozenset({type(None), bool, int, float, str, bytes, np.ndarray})


def _check_decoded(obj: Any, depth: int) -> None:
    if isinstance(obj, (dict, list)) and depth > MAX_DEPTH:
        raise FormatError(f"nesting deeper than {MAX_DEPTH}")
    if isinstance(obj, (dict, list)):
        for value in obj.values() if isinstance(obj, dict) else obj:
            if type(value) not in _LEAVES:  # exact leaf types need no call; others are judged
                _check_decoded(value, depth + 1)
    elif not (obj is None or isinstance(obj, (bool, int, float, str, bytes, np.ndarray))):
        raise FormatError(f"unexpected value of type {type(obj).__name__}")


# ----------------------------------------------------------------------------- migrants

@dataclass(frozen=True, eq=False)
class MigrantBatch:
    """The K genomes one island publishes in one migration event, with provenance.

    Validated on construction (FormatError), so an invalid batch can be neither built
    nor published. ``fitness``/``birth``/``lineage`` given in a dtype that casts safely
    are converted to float64/int64; ``origin`` may be any sequence of str.
    """

    run_id: str
    source: str
    generation: int
    created: float
    genome_kind: str
    genomes: np.ndarray | tuple[dict[str, np.ndarray], ...]  # a tuple of maps for "neat"
    fitness: np.ndarray
    origin: tuple[str, ...]
    birth: np.ndarray
    lineage: np.ndarray

    def __post_init__(self) -> None:
        _validate_batch(self)

    def __len__(self) -> int:
        if isinstance(self.genomes, tuple):
            return len(self.genomes)
        return int(self.genomes.shape[0])


_BATCH_KEYS = frozenset({"schema", "run_id", "source", "generation", "created", "genome_kind",
                         "dtype", "gene_shape", "count", "genomes", "fitness", "origin",
                         "birth", "lineage"})
_GENOME_DTYPES = ("float16", "float32", "float64")


def _validate_batch(b: MigrantBatch) -> None:
    set_ = lambda name, value: object.__setattr__(b, name, value)  # noqa: E731 (frozen)
    for name in ("run_id", "genome_kind"):
        if not isinstance(getattr(b, name), str) or not getattr(b, name):
            raise FormatError(f"{name} must be a non-empty str, got {getattr(b, name)!r}")
    _check_island_id("source", b.source)
    if type(b.generation) is not int or not 0 <= b.generation < 2**63:
        raise FormatError(f"generation must be an int in [0, 2**63), got {b.generation!r}")
    if isinstance(b.created, bool) or not isinstance(b.created, (int, float)) \
            or not math.isfinite(b.created):
        raise FormatError(f"created must be a finite unix time, got {b.created!r}")
    set_("created", float(b.created))
    if b.genome_kind == NEAT_KIND:
        set_("genomes", _neat_genomes(b.genomes))
    elif not isinstance(b.genomes, np.ndarray) or dtype_name(b.genomes.dtype) not in _GENOME_DTYPES \
            or not 1 <= b.genomes.ndim <= MAX_NDIM:
        raise FormatError(f"genomes must be a [K, *gene_shape] array of {_GENOME_DTYPES}, got "
                          f"{getattr(b.genomes, 'dtype', type(b.genomes).__name__)} "
                          f"{getattr(b.genomes, 'shape', '')}")
    k = len(b)
    set_("fitness", _column("fitness", b.fitness, np.float64, k))
    if not np.isfinite(b.fitness).all():
        raise FormatError(f"fitness holds NaN or inf at {np.flatnonzero(~np.isfinite(b.fitness))}")
    set_("birth", _column("birth", b.birth, np.int64, k))
    if (b.birth < 0).any():
        raise FormatError("birth generations must be >= 0")
    set_("lineage", _column("lineage", b.lineage, np.int64, k))
    if isinstance(b.origin, (str, bytes)) or not hasattr(b.origin, "__len__"):
        raise FormatError(f"origin must be a sequence of island ids, got {b.origin!r}")
    set_("origin", tuple(b.origin))
    if len(b.origin) != k:
        raise FormatError(f"origin has {len(b.origin)} entries for {k} genomes")
    for island in b.origin:
        _check_island_id("origin", island)


def _neat_genomes(value: object) -> tuple[dict[str, np.ndarray], ...]:
    """Validate NEAT genome maps (see the module docstring); returns them as a tuple."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1:
        value = value.tolist()  # a sequence of maps that went through np.asarray
    if not isinstance(value, (list, tuple)):
        raise FormatError(f"neat genomes must be a list of maps, got {type(value).__name__}")
    for i, g in enumerate(value):
        if not isinstance(g, dict) or g.keys() != NEAT_FIELDS.keys():
            keys = sorted(g) if isinstance(g, dict) else type(g).__name__
            raise FormatError(f"neat genome {i} has fields {keys}, expected {sorted(NEAT_FIELDS)}")
        for name, dtype in NEAT_FIELDS.items():
            a = g[name]
            if not isinstance(a, np.ndarray) or dtype_name(a.dtype) != dtype or a.ndim != 1:
                raise FormatError(f"neat genome {i}: {name} must be a 1-d {dtype} array, got "
                                  f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
        nodes, src, dst = g["nodes"], g["conn_in"], g["conn_out"]
        c = src.size
        if not dst.size == g["weight"].size == g["enabled"].size == c:
            raise FormatError(f"neat genome {i}: connection arrays differ in length")
        if nodes.size > NEAT_MAX_NODES or c > NEAT_MAX_CONNS:
            raise FormatError(f"neat genome {i}: {nodes.size} nodes / {c} connections exceed "
                              f"the caps {NEAT_MAX_NODES} / {NEAT_MAX_CONNS}")
        ids = np.sort(nodes)
        if ids.size and (ids[0] < 0 or (ids[1:] == ids[:-1]).any()):
            raise FormatError(f"neat genome {i}: node ids must be unique and >= 0")
        for end in (src, dst):
            at = np.minimum(np.searchsorted(ids, end), max(ids.size - 1, 0))
            if c and (ids.size == 0 or (ids[at] != end).any()):
                raise FormatError(f"neat genome {i}: a connection refers to a node it does not list")
        if c > 1:
            pair = np.searchsorted(ids, src) * ids.size + np.searchsorted(ids, dst)
            if np.unique(pair).size != c:
                raise FormatError(f"neat genome {i}: a connection (in, out) appears twice")
        if not np.isfinite(g["weight"]).all():
            raise FormatError(f"neat genome {i}: a weight is NaN or inf")
    return tuple(value)


# Ids that matched ISLAND_ID_RE: a run has a few islands and every batch repeats them, so a
# set lookup replaces the regex. Only exact str objects are remembered (bounded anyway).
_KNOWN_IDS: set[str] = set()
_KNOWN_IDS_MAX = 4096


def check_island_id(island: object) -> str:
    """`island` if it is a canonical island id (a safe path component); FormatError if not."""
    _check_island_id("island id", island)
    return island  # type: ignore[return-value]


def _check_island_id(field: str, value: object) -> None:
    if type(value) is str and value in _KNOWN_IDS:
        return
    if not isinstance(value, str) or not ISLAND_ID_RE.match(value):
        raise FormatError(f"{field} {value!r} is not an island id like 'island-03'")
    if type(value) is str:
        if len(_KNOWN_IDS) >= _KNOWN_IDS_MAX:
            _KNOWN_IDS.clear()
        _KNOWN_IDS.add(value)


def _column(name: str, value: object, dtype: type, k: int) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == dtype and value.shape == (k,):
        return value  # the common case, already exact (what astype(copy=False) returns)
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype != dtype and (arr.dtype.kind not in "biuf"
                               or not np.can_cast(arr.dtype, dtype, "safe")):
        raise FormatError(f"{name} has dtype {arr.dtype}, which does not cast safely to "
                          f"{np.dtype(dtype).name}")
    if arr.shape != (k,):
        raise FormatError(f"{name} has shape {arr.shape}, expected ({k},)")
    return arr.astype(dtype, copy=False)


def encode_batch(batch: MigrantBatch) -> bytes:
    """Serialise a migrant batch as a "migrants" file (schema SCHEMA_VERSION)."""
    neat = batch.genome_kind == NEAT_KIND
    body = {
        "schema": SCHEMA_VERSION, "run_id": batch.run_id, "source": batch.source,
        "generation": batch.generation, "created": batch.created,
        "genome_kind": batch.genome_kind,
        "dtype": None if neat else dtype_name(batch.genomes.dtype),
        "gene_shape": None if neat else list(batch.genomes.shape[1:]), "count": len(batch),
        "genomes": list(batch.genomes) if neat else batch.genomes,
        "fitness": batch.fitness, "origin": list(batch.origin),
        "birth": batch.birth, "lineage": batch.lineage,
    }
    if neat:
        body["genome_schema"] = NEAT_SCHEMA_VERSION
        return encode("migrants", body)  # per-genome maps: the full walk (not the hot path)
    # A vector batch was validated on construction (types, dtypes, ranges, ids), so the
    # generic _check_value walk of encode() would only repeat it; masked arrays are what it
    # alone refuses, and they are refused here.
    for array in (batch.genomes, batch.fitness, batch.birth, batch.lineage):
        if _masked(array):
            raise FormatError("masked arrays are not supported (the mask would be lost)")
    return _pack("migrants", body)


# ----------------------------------------------------------------------------- ring file

# The migrant ring (layout version RING_VERSION): one file per island, pool/<island>/ring.isld,
# rewritten in place instead of one new file per event (issue 16: creating, renaming and
# collecting a file cost more than all the rest of a migration event). Header, 64 bytes::
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
    """The decoded header of a migrant ring file."""

    slots: int
    slot_bytes: int
    ring_id: bytes
    counter: int
    length: int
    generation: int

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


def decode_ring_header(data: bytes, max_bytes: int = MAX_FILE_BYTES) -> RingHeader:
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
    h = RingHeader(slots, slot_bytes, ring_id, counter, length, generation)
    if not 2 <= slots <= RING_MAX_SLOTS or not HEADER_SIZE <= slot_bytes <= max_bytes \
            or h.file_bytes > max_bytes + RING_HEADER_SIZE or counter < 1 \
            or not HEADER_SIZE <= length <= slot_bytes or generation >= 2**63:
        raise FormatError(f"ring header out of range: {slots} slots of {slot_bytes} bytes, "
                          f"counter {counter}, length {length}")
    return h


def decode_batch(data: bytes, *, run_id: str | None = None, genome_kind: str | None = None,
                 dtype: str | None = None, gene_shape: tuple[int, ...] | None = None,
                 max_bytes: int = MAX_FILE_BYTES, path: str | None = None) -> MigrantBatch:
    """Decode and validate a "migrants" file; optional arguments must match the file.

    Raises:
        FormatError: corrupt or invalid file, or one from another run / genome kind /
            dtype / gene shape than requested.
    """
    view = memoryview(data).cast("B")
    if len(view) >= HEADER_SIZE and view[6] | view[7] << 8 == _FLAG_PACKED:  # schema 2
        from .format_packed import decode_packed  # here: that module imports this one
        try:
            payload = _open_envelope(view, "migrants", max_bytes, _FLAG_PACKED)
            return decode_packed(payload, run_id, genome_kind, dtype, gene_shape)
        except FormatError as exc:
            raise FormatError(exc.args[0], path) from None
        except _DECODER_ERRORS as exc:  # belt and braces: the sizes were checked first
            raise FormatError(f"corrupt packed batch: {type(exc).__name__}: {exc}", path) from None
    body = decode(data, "migrants", max_bytes=max_bytes, path=path)
    try:
        return _batch_from_body(body, run_id, genome_kind, dtype, gene_shape)
    except FormatError as exc:
        raise FormatError(exc.args[0], path) from None


def _batch_from_body(body: dict, run_id: str | None, genome_kind: str | None,
                     dtype: str | None, gene_shape: tuple[int, ...] | None) -> MigrantBatch:
    neat = body.get("genome_kind") == NEAT_KIND
    keys = _BATCH_KEYS | {"genome_schema"} if neat else _BATCH_KEYS
    if body.keys() != keys:
        missing, extra = keys - body.keys(), body.keys() - keys
        raise FormatError(f"migrant batch fields differ: missing {sorted(missing)}, "
                          f"unexpected {sorted(extra)}")
    if body["schema"] != SCHEMA_VERSION or type(body["schema"]) is not int:
        raise FormatError(f"schema version {body['schema']!r} is not {SCHEMA_VERSION}")
    if neat:
        return _neat_batch_from_body(body, run_id, genome_kind, dtype, gene_shape)
    for name in ("genomes", "fitness", "birth", "lineage"):
        if not isinstance(body[name], np.ndarray):
            raise FormatError(f"{name} is a {type(body[name]).__name__}, not an array")
    # On disk the column dtypes are exact; only in-memory construction may cast.
    for name, want in (("fitness", "float64"), ("birth", "int64"), ("lineage", "int64")):
        if dtype_name(body[name].dtype) != want:
            raise FormatError(f"{name} has dtype {body[name].dtype}, expected {want}")
    if not isinstance(body["origin"], list):
        raise FormatError("origin is not a list")
    batch = MigrantBatch(
        run_id=body["run_id"], source=body["source"], generation=body["generation"],
        created=body["created"], genome_kind=body["genome_kind"], genomes=body["genomes"],
        fitness=body["fitness"], origin=tuple(body["origin"]), birth=body["birth"],
        lineage=body["lineage"],
    )
    shape = body["gene_shape"]
    if body["dtype"] != dtype_name(batch.genomes.dtype):
        raise FormatError(f"header dtype {body['dtype']!r} disagrees with the genomes' "
                          f"{batch.genomes.dtype.name!r}")
    if not isinstance(shape, list) or tuple(shape) != batch.genomes.shape[1:]:
        raise FormatError(f"header gene_shape {shape!r} disagrees with the genomes' "
                          f"{list(batch.genomes.shape[1:])}")
    if body["count"] != len(batch) or type(body["count"]) is not int:
        raise FormatError(f"header count {body['count']!r} disagrees with {len(batch)} genomes")
    if run_id is not None and batch.run_id != run_id:
        raise FormatError(f"run id {batch.run_id!r} is not this run's {run_id!r}")
    if genome_kind is not None and batch.genome_kind != genome_kind:
        raise FormatError(f"genome kind {batch.genome_kind!r} is not this run's {genome_kind!r}")
    if dtype is not None and dtype_name(batch.genomes.dtype) != dtype_name(np.dtype(dtype)):
        raise FormatError(f"genome dtype {batch.genomes.dtype.name!r} is not this run's {dtype!r}")
    if gene_shape is not None and batch.genomes.shape[1:] != tuple(gene_shape):
        raise FormatError(f"gene shape {batch.genomes.shape[1:]} is not this run's "
                          f"{tuple(gene_shape)}")
    return batch


def _neat_batch_from_body(body: dict, run_id: str | None, genome_kind: str | None,
                          dtype: str | None, gene_shape: tuple[int, ...] | None) -> MigrantBatch:
    if body["genome_schema"] != NEAT_SCHEMA_VERSION or type(body["genome_schema"]) is not int:
        raise FormatError(f"neat genome schema {body['genome_schema']!r} is not {NEAT_SCHEMA_VERSION}")
    if body["dtype"] is not None or body["gene_shape"] is not None:
        raise FormatError("a neat batch must have null dtype and gene_shape")
    if dtype is not None or gene_shape is not None:
        raise FormatError(f"neat genomes have no dtype or gene shape; this run expects {dtype!r} {gene_shape!r}")
    for name, want in (("fitness", "float64"), ("birth", "int64"), ("lineage", "int64")):
        if not isinstance(body[name], np.ndarray) or dtype_name(body[name].dtype) != want:
            raise FormatError(f"{name} is not a {want} array")
    if not isinstance(body["origin"], list) or not isinstance(body["genomes"], list):
        raise FormatError("origin and genomes must be lists")
    batch = MigrantBatch(
        run_id=body["run_id"], source=body["source"], generation=body["generation"],
        created=body["created"], genome_kind=NEAT_KIND, genomes=tuple(body["genomes"]),
        fitness=body["fitness"], origin=tuple(body["origin"]), birth=body["birth"],
        lineage=body["lineage"],
    )
    if body["count"] != len(batch) or type(body["count"]) is not int:
        raise FormatError(f"header count {body['count']!r} disagrees with {len(batch)} genomes")
    if run_id is not None and batch.run_id != run_id:
        raise FormatError(f"run id {batch.run_id!r} is not this run's {run_id!r}")
    if genome_kind is not None and genome_kind != NEAT_KIND:
        raise FormatError(f"genome kind {NEAT_KIND!r} is not this run's {genome_kind!r}")
    return batch
