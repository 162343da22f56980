"""Genome codecs: how a genome kind that is not one array travels in a migrant batch.

The pool knows paths, bytes and arrays, not algorithms. A batch of array genomes
(`[K, *gene_shape]`, any kind name) needs nothing from the algorithm. A kind whose genomes
are per-genome maps of arrays (variable-size graphs, say) registers a `GenomeCodec` here,
from the algorithm's own package at import: its batches then travel as the msgpack map of
schema 1 with the field `genome_schema`, and `check` validates the decoded list of maps.
A process that reads such a batch without the codec registered counts it as a bad file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from migration_pool.errors import PoolError


@dataclass(frozen=True)
class GenomeCodec:
    """A genome kind carried as per-genome maps.

    `check(value)` receives what a writer passed or a reader decoded (a list or tuple of
    maps, or a 1-d object array of them), validates every map (FormatError otherwise) and
    returns them as a tuple. `schema` is the version of that per-genome layout, recorded in
    each batch as `genome_schema`.
    """

    kind: str
    schema: int
    check: Callable[[object], tuple]


_CODECS: dict[str, GenomeCodec] = {}


def register_codec(codec: GenomeCodec) -> None:
    """Make `codec` the one used for its kind (registering the same kind again replaces it)."""
    if not isinstance(codec.kind, str) or not codec.kind or type(codec.schema) is not int:
        raise PoolError(f"a genome codec needs a kind name and an int schema, got {codec!r}")
    _CODECS[codec.kind] = codec


def codec_for(kind: object) -> GenomeCodec | None:
    """The codec registered for `kind`; None for array genomes (and unknown kinds)."""
    return _CODECS.get(kind) if isinstance(kind, str) else None
