"""Migrant batches: the `MigrantBatch` record and its "migrants" file, in either schema.

A batch carries K genomes of one kind with their provenance. Two schemas share the envelope
of `format`, told apart by its flags:

- 2, the packed binary layout of `format_packed` (flags = 1): what islands write for array
  genomes.
- 1 (SCHEMA_VERSION), a body map (flags = 0): genome kinds with a registered per-genome codec
  (`genome_codecs`), and every batch of earlier versions, still read. Fields: ``schema``,
  ``run_id``, ``source``, ``generation``, ``created``, ``genome_kind``, ``dtype``,
  ``gene_shape``, ``count``, ``genomes``, ``fitness`` float64[K], ``origin`` (K island ids),
  ``birth`` int64[K], ``lineage`` int64[K].

  - array genomes (any kind without a codec: "vector", ...): ``genomes`` is one array
    ``[K, *gene_shape]`` of a float dtype, described by ``dtype`` and ``gene_shape``.
  - a kind with a codec: ``genomes`` is a list of K per-genome maps, validated by the codec;
    ``dtype`` and ``gene_shape`` are null, and the extra field ``genome_schema`` holds the
    codec's schema version. A reader without the codec refuses the batch (a bad file).

In memory the origins are island numbers (int64[K]); on disk schema 1 spells them as ids.
This module dispatches between the schemas, so neither schema module imports the other.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from migration_pool import format as fmt
from migration_pool.errors import FormatError
from migration_pool.format_packed import FLAG_PACKED, decode_packed
from migration_pool.genome_codecs import codec_for
from migration_pool.island_ids import ID_LIMIT, check_island_id, island_id, island_number
from migration_pool.values import DECODER_ERRORS, MAX_NDIM, dtype_name, masked

SCHEMA_VERSION: int = 1  # migrant batches as a body map; schema 2 is format_packed's
_BATCH_KEYS = frozenset({"schema", "run_id", "source", "generation", "created", "genome_kind",
                         "dtype", "gene_shape", "count", "genomes", "fitness", "origin",
                         "birth", "lineage"})
_GENOME_DTYPES = ("float16", "float32", "float64")


@dataclass(frozen=True, eq=False)
class MigrantBatch:
    """The K genomes one island publishes in one migration event, with provenance.

    Validated on construction (FormatError), so an invalid batch can be neither built
    nor published. ``fitness``/``birth``/``lineage`` given in a dtype that casts safely
    are converted to float64/int64; ``origin`` may be island ids or island numbers and is
    held as int64 island numbers.
    """

    run_id: str
    source: str
    generation: int
    created: float
    genome_kind: str
    genomes: np.ndarray | tuple[dict[str, np.ndarray], ...]  # a tuple of maps for coded kinds
    fitness: np.ndarray
    origin: np.ndarray
    birth: np.ndarray
    lineage: np.ndarray

    def __post_init__(self) -> None:
        _validate_batch(self)

    def __len__(self) -> int:
        if isinstance(self.genomes, tuple):
            return len(self.genomes)
        return int(self.genomes.shape[0])


def _trusted(fields: dict[str, Any]) -> MigrantBatch:
    """A MigrantBatch whose fields a decoder has already validated, vectorised."""
    batch = object.__new__(MigrantBatch)
    for key, value in fields.items():
        object.__setattr__(batch, key, value)
    return batch


def _validate_batch(b: MigrantBatch) -> None:
    set_ = lambda name, value: object.__setattr__(b, name, value)  # noqa: E731 (frozen)
    for name in ("run_id", "genome_kind"):
        if not isinstance(getattr(b, name), str) or not getattr(b, name):
            raise FormatError(f"{name} must be a non-empty str, got {getattr(b, name)!r}")
    check_island_id(b.source, "source")
    if type(b.generation) is not int or not 0 <= b.generation < 2**63:
        raise FormatError(f"generation must be an int in [0, 2**63), got {b.generation!r}")
    if isinstance(b.created, bool) or not isinstance(b.created, (int, float)) \
            or not math.isfinite(b.created):
        raise FormatError(f"created must be a finite unix time, got {b.created!r}")
    set_("created", float(b.created))
    codec = codec_for(b.genome_kind)
    if codec is not None:
        set_("genomes", codec.check(b.genomes))
    elif not isinstance(b.genomes, np.ndarray) or dtype_name(b.genomes.dtype) not in _GENOME_DTYPES \
            or not 1 <= b.genomes.ndim <= MAX_NDIM:
        raise FormatError(f"genomes must be a [K, *gene_shape] array of {_GENOME_DTYPES}, got "
                          f"{getattr(b.genomes, 'dtype', type(b.genomes).__name__)} "
                          f"{getattr(b.genomes, 'shape', '')}")
    elif not np.isfinite(b.genomes).all():
        raise FormatError("genomes hold NaN or inf")
    k = len(b)
    set_("fitness", _column("fitness", b.fitness, np.float64, k))
    if not np.isfinite(b.fitness).all():
        raise FormatError(f"fitness holds NaN or inf at {np.flatnonzero(~np.isfinite(b.fitness))}")
    set_("birth", _column("birth", b.birth, np.int64, k))
    if (b.birth < 0).any():
        raise FormatError("birth generations must be >= 0")
    set_("lineage", _column("lineage", b.lineage, np.int64, k))
    set_("origin", _origin(b.origin, k))


def _origin(value: object, k: int) -> np.ndarray:
    """Island ids or numbers as int64 island numbers, each checked."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise FormatError(f"origin must be a sequence of island ids, got {value!r}")
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.ndim == 1:
        numbers = value.astype(np.int64, copy=False)
        if value.dtype.kind == "u" and value.dtype.itemsize == 8 and (value >= 2**63).any():
            raise FormatError("origin holds numbers that are not island numbers")
    else:
        items = value.tolist() if isinstance(value, np.ndarray) else list(value)  # type: ignore[call-overload]
        numbers = np.fromiter((_origin_number(o) for o in items), np.int64, len(items))
    if numbers.shape != (k,):
        raise FormatError(f"origin has {len(numbers)} entries for {k} genomes")
    if ((numbers < 0) | (numbers >= ID_LIMIT)).any():
        raise FormatError("origin holds numbers that are not island numbers")
    return numbers


def _origin_number(value: object) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
            and 0 <= value < ID_LIMIT:
        return int(value)
    return island_number(value, "origin")


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
    codec = codec_for(batch.genome_kind)
    coded = codec is not None
    body = {
        "schema": SCHEMA_VERSION, "run_id": batch.run_id, "source": batch.source,
        "generation": batch.generation, "created": batch.created,
        "genome_kind": batch.genome_kind,
        "dtype": None if coded else dtype_name(batch.genomes.dtype),
        "gene_shape": None if coded else list(batch.genomes.shape[1:]), "count": len(batch),
        "genomes": list(batch.genomes) if coded else batch.genomes,
        "fitness": batch.fitness, "origin": [island_id(n) for n in batch.origin.tolist()],
        "birth": batch.birth, "lineage": batch.lineage,
    }
    if coded:
        body["genome_schema"] = codec.schema
        return fmt.encode("migrants", body)  # per-genome maps: the full walk (not the hot path)
    # An array batch was validated on construction (types, dtypes, ranges, ids), so the
    # generic check_value walk of encode() would only repeat it; masked arrays are what it
    # alone refuses, and they are refused here.
    for array in (batch.genomes, batch.fitness, batch.birth, batch.lineage):
        if masked(array):
            raise FormatError("masked arrays are not supported (the mask would be lost)")
    return fmt.pack("migrants", body)


def decode_batch(data: bytes, *, run_id: str | None = None, genome_kind: str | None = None,
                 dtype: str | None = None, gene_shape: tuple[int, ...] | None = None,
                 max_bytes: int = fmt.MAX_FILE_BYTES, path: str | None = None) -> MigrantBatch:
    """Decode and validate a "migrants" file; optional arguments must match the file.

    Raises:
        FormatError: corrupt or invalid file, or one from another run / genome kind /
            dtype / gene shape than requested.
    """
    view = memoryview(data).cast("B")
    if fmt.flags_of(view) == FLAG_PACKED:  # schema 2
        try:
            payload = fmt.open_envelope(view, "migrants", max_bytes, FLAG_PACKED)
            return _trusted(decode_packed(payload, run_id, genome_kind, dtype, gene_shape))
        except FormatError as exc:
            raise FormatError(exc.args[0], path) from None
        except DECODER_ERRORS as exc:  # belt and braces: the sizes were checked first
            raise FormatError(f"corrupt packed batch: {type(exc).__name__}: {exc}", path) from None
    body = fmt.decode(data, "migrants", max_bytes=max_bytes, path=path)
    try:
        return _batch_from_body(body, run_id, genome_kind, dtype, gene_shape)
    except FormatError as exc:
        raise FormatError(exc.args[0], path) from None


def _batch_from_body(body: dict, run_id: str | None, genome_kind: str | None,
                     dtype: str | None, gene_shape: tuple[int, ...] | None) -> MigrantBatch:
    codec = codec_for(body.get("genome_kind"))
    keys = _BATCH_KEYS | {"genome_schema"} if codec is not None else _BATCH_KEYS
    if body.keys() != keys:
        missing, extra = keys - body.keys(), body.keys() - keys
        raise FormatError(f"migrant batch fields differ: missing {sorted(missing)}, "
                          f"unexpected {sorted(extra)}")
    if body["schema"] != SCHEMA_VERSION or type(body["schema"]) is not int:
        raise FormatError(f"schema version {body['schema']!r} is not {SCHEMA_VERSION}")
    if codec is not None:
        return _coded_batch_from_body(body, codec.kind, codec.schema, run_id, genome_kind, dtype, gene_shape)
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
        fitness=body["fitness"], origin=body["origin"], birth=body["birth"],
        lineage=body["lineage"],
    )
    _ids_on_disk(body["origin"])
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


def _coded_batch_from_body(body: dict, kind: str, schema: int, run_id: str | None,
                           genome_kind: str | None, dtype: str | None,
                           gene_shape: tuple[int, ...] | None) -> MigrantBatch:
    """A batch of per-genome maps (a kind with a registered codec)."""
    if body["genome_schema"] != schema or type(body["genome_schema"]) is not int:
        raise FormatError(f"{kind} genome schema {body['genome_schema']!r} is not {schema}")
    if body["dtype"] is not None or body["gene_shape"] is not None:
        raise FormatError(f"a {kind} batch must have null dtype and gene_shape")
    if dtype is not None or gene_shape is not None:
        raise FormatError(f"{kind} genomes have no dtype or gene shape; this run expects {dtype!r} {gene_shape!r}")
    for name, want in (("fitness", "float64"), ("birth", "int64"), ("lineage", "int64")):
        if not isinstance(body[name], np.ndarray) or dtype_name(body[name].dtype) != want:
            raise FormatError(f"{name} is not a {want} array")
    if not isinstance(body["origin"], list) or not isinstance(body["genomes"], list):
        raise FormatError("origin and genomes must be lists")
    batch = MigrantBatch(
        run_id=body["run_id"], source=body["source"], generation=body["generation"],
        created=body["created"], genome_kind=kind, genomes=tuple(body["genomes"]),
        fitness=body["fitness"], origin=body["origin"], birth=body["birth"],
        lineage=body["lineage"],
    )
    _ids_on_disk(body["origin"])
    if body["count"] != len(batch) or type(body["count"]) is not int:
        raise FormatError(f"header count {body['count']!r} disagrees with {len(batch)} genomes")
    if run_id is not None and batch.run_id != run_id:
        raise FormatError(f"run id {batch.run_id!r} is not this run's {run_id!r}")
    if genome_kind is not None and genome_kind != kind:
        raise FormatError(f"genome kind {kind!r} is not this run's {genome_kind!r}")
    return batch


def _ids_on_disk(origin: list) -> None:
    """Schema 1 spells origins as ids: a number there (which memory accepts) is refused."""
    for island in origin:
        check_island_id(island, "origin")
