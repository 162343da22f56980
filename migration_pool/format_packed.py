"""Packed migrant batches (schema 2): array genomes as one fixed binary layout, no msgpack.

The second migrant batch schema beside the body map of `batches` (which dispatches between
the two by the envelope flags). Why: a migration event at D=100, K=5 spent more time
building, packing, unpacking and re-validating a msgpack map of per-field objects than
reading and writing the file, so array genomes travel in one fixed layout. A packed
batch is the ordinary envelope (magic, version, kind "migrants", length, CRC) with
`flags = FLAG_PACKED`; readers of format version 1 before this schema refuse such a file
("reserved flags are set"), a counted bad file. Payload, little-endian::

    offset size  field
    0      2     schema       u16, PACKED_SCHEMA (= 2)
    2      2     count        u16, K
    4      8     generation   u64 (< 2**63)
    12     8     created      f64, unix time (finite)
    20     4     source       u32, island number (< 10**MAX_ISLAND_DIGITS)
    24     2     run_id_len   u16
    26     1     kind_len     u8
    27     1     ndim         u8, gene dimensions (< MAX_NDIM)
    28     1     dtype        u8, index into PACKED_DTYPES
    29     3     zero
    32     4*ndim gene shape  u32 each
    ..     run_id (utf-8), genome kind (ascii), zero padding to a multiple of 8
    ..     genomes  K x prod(shape) x itemsize, zero padding to a multiple of 8
    ..     fitness  K x f64 (finite), birth K x i64 (>= 0), lineage K x i64, origin K x u32

Genes are finite (NaN or inf in one makes the whole batch a bad file, counted).

The total is computed from the header with Python integers and must equal the payload length
exactly before anything is allocated, so decoding costs one copy of the payload. Genome kinds
with a per-genome codec (`genome_codecs`) are never packed: their genomes are not one array.
"""
from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from migration_pool import format as fmt
from migration_pool.errors import FormatError
from migration_pool.genome_codecs import codec_for
from migration_pool.island_ids import ID_LIMIT, island_id
from migration_pool.values import MAX_NDIM, dtype_name

FLAG_PACKED = 1
PACKED_SCHEMA = 2
PACKED_DTYPES = ("float16", "float32", "float64")
_HEAD = struct.Struct("<HHQdIHBBB3x")  # 32 bytes

def _pad8(n: int) -> int:
    return -n % 8


def encode_vector_batch(*, run_id: str, source: int, generation: int, created: float,
                        genome_kind: str, genomes: np.ndarray, fitness: np.ndarray,
                        origin: np.ndarray, birth: np.ndarray, lineage: np.ndarray) -> bytes:
    """An enveloped packed batch straight from the island's arrays (no per-value objects).

    The writer checks only what it cannot know by construction (dtypes, shapes, finite
    fitness, ranges); every reader checks everything again.

    Raises:
        FormatError: a value the layout cannot carry.
    """
    k = int(genomes.shape[0]) if isinstance(genomes, np.ndarray) and genomes.ndim >= 1 else -1
    name = dtype_name(genomes.dtype) if k >= 0 else None
    if name not in PACKED_DTYPES or not 0 <= k < 2**16 or genomes.ndim - 1 >= MAX_NDIM:
        raise FormatError(f"genomes must be a [K, *gene_shape] float array, K < 65536, got "
                          f"{getattr(genomes, 'dtype', type(genomes).__name__)} {getattr(genomes, 'shape', '')}")
    columns = [np.ascontiguousarray(a, dtype=t) for a, t in
               ((fitness, np.float64), (birth, np.int64), (lineage, np.int64), (origin, np.int64))]
    if any(c.shape != (k,) for c in columns):
        raise FormatError(f"fitness, birth, lineage and origin must have shape ({k},)")
    fit, bir, lin, org = columns
    if not np.isfinite(fit).all() or (bir < 0).any() or (org < 0).any() or (org >= ID_LIMIT).any():
        raise FormatError("fitness must be finite, birth >= 0 and origin valid island numbers")
    if not np.isfinite(genomes).all():
        raise FormatError("genomes hold NaN or inf")
    if not 0 <= source < ID_LIMIT or not 0 <= generation < 2**63 or not math.isfinite(created):
        raise FormatError(f"source {source}, generation {generation} or created {created} out of range")
    rid, kind = run_id.encode("utf-8"), genome_kind.encode("ascii")
    if not rid or len(rid) >= 2**16 or not kind or len(kind) >= 256 or codec_for(genome_kind) is not None:
        raise FormatError(f"run id {run_id!r} or genome kind {genome_kind!r} cannot be packed")
    shape = genomes.shape[1:]
    head = _HEAD.pack(PACKED_SCHEMA, k, generation, created, source, len(rid), len(kind),
                      len(shape), PACKED_DTYPES.index(name))
    names = rid + kind
    gen_bytes = np.ascontiguousarray(genomes).astype(genomes.dtype.newbyteorder("<"), copy=False).tobytes()
    parts = [head, struct.pack(f"<{len(shape)}I", *shape), names, bytes(_pad8(4 * len(shape) + len(names))),
             gen_bytes, bytes(_pad8(len(gen_bytes))),
             fit.astype("<f8", copy=False).tobytes(), bir.astype("<i8", copy=False).tobytes(),
             lin.astype("<i8", copy=False).tobytes(), org.astype("<u4").tobytes()]
    return fmt.envelope("migrants", b"".join(parts), FLAG_PACKED)


def decode_packed(payload: memoryview, run_id: str | None, genome_kind: str | None,
                  dtype: str | None, gene_shape: tuple[int, ...] | None) -> dict[str, Any]:
    """The fields of the batch in a packed payload (the envelope already checked), every one
    validated, as `batches.MigrantBatch` holds them; FormatError if invalid."""
    n = len(payload)
    if n < _HEAD.size:
        raise FormatError(f"packed batch of {n} bytes is shorter than its header")
    schema, k, generation, created, source, rid_len, kind_len, ndim, code = _HEAD.unpack_from(payload)
    if schema != PACKED_SCHEMA:
        raise FormatError(f"envelope flags 0x{FLAG_PACKED:04x} mark a packed batch, but its "
                          f"schema {schema} is not {PACKED_SCHEMA}")
    if bytes(payload[29:32]) != b"\0\0\0":
        raise FormatError("packed header padding is not zero")
    if ndim >= MAX_NDIM or code >= len(PACKED_DTYPES):
        raise FormatError(f"packed batch has {ndim} gene dimensions or dtype code {code}")
    if generation >= 2**63 or not math.isfinite(created) or source >= ID_LIMIT:
        raise FormatError(f"generation {generation}, created {created} or source {source} out of range")
    at = _HEAD.size + 4 * ndim
    if n < at + rid_len + kind_len:
        raise FormatError("packed batch is shorter than its names")
    shape = struct.unpack_from(f"<{ndim}I", payload, _HEAD.size)
    itemsize = np.dtype(PACKED_DTYPES[code]).itemsize
    genes = math.prod(shape)
    names_end = at + rid_len + kind_len
    genomes_at = names_end + _pad8(names_end - _HEAD.size)
    genome_bytes = k * genes * itemsize
    columns_at = genomes_at + genome_bytes + _pad8(genome_bytes)
    total = columns_at + k * (8 + 8 + 8 + 4)
    if total != n:
        raise FormatError(f"packed batch declares {total} bytes, holds {n}")
    try:
        rid = str(payload[at:at + rid_len], "utf-8")
        kind = str(payload[at + rid_len:names_end], "ascii")
    except UnicodeDecodeError:
        raise FormatError("packed run id or genome kind is not text") from None
    if not rid or not kind or codec_for(kind) is not None:
        raise FormatError(f"packed run id {rid!r} or genome kind {kind!r} is not valid")
    if any(payload[names_end:genomes_at]) or any(payload[genomes_at + genome_bytes:columns_at]):
        raise FormatError("packed padding is not zero")
    name = PACKED_DTYPES[code]
    if run_id is not None and rid != run_id:
        raise FormatError(f"run id {rid!r} is not this run's {run_id!r}")
    if genome_kind is not None and kind != genome_kind:
        raise FormatError(f"genome kind {kind!r} is not this run's {genome_kind!r}")
    if dtype is not None and name != dtype_name(np.dtype(dtype)):
        raise FormatError(f"genome dtype {name!r} is not this run's {dtype!r}")
    if gene_shape is not None and tuple(shape) != tuple(gene_shape):
        raise FormatError(f"gene shape {tuple(shape)} is not this run's {tuple(gene_shape)}")
    buf = bytearray(payload)  # the one copy: every array below is a writable view of it
    genomes = np.frombuffer(buf, np.dtype(name).newbyteorder("<"), k * genes, genomes_at)
    fitness = np.frombuffer(buf, "<f8", k, columns_at)
    birth = np.frombuffer(buf, "<i8", k, columns_at + 8 * k)
    lineage = np.frombuffer(buf, "<i8", k, columns_at + 16 * k)
    origin = np.frombuffer(buf, "<u4", k, columns_at + 24 * k)
    if not np.isfinite(fitness).all():
        raise FormatError("fitness holds NaN or inf")
    if not np.isfinite(genomes).all():  # a gene no box or distance can judge: the whole batch is bad
        raise FormatError("genomes hold NaN or inf")
    if (birth < 0).any() or (origin >= ID_LIMIT).any():
        raise FormatError("birth must be >= 0 and origin valid island numbers")
    return dict(run_id=rid, source=island_id(source), generation=generation,
                created=created, genome_kind=kind,
                genomes=genomes.reshape((k, *shape)).astype(name, copy=False),
                fitness=fitness.astype(np.float64, copy=False),
                origin=origin.astype(np.int64),
                birth=birth.astype(np.int64, copy=False),
                lineage=lineage.astype(np.int64, copy=False))
