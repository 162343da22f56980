"""NEAT genomes in migrant batches: the per-genome layout, registered as a genome codec.

The pool carries genomes it knows nothing about through `migration_pool.genome_codecs`; this
module is NEAT's entry there, registered when `islands.algorithms.neat` is imported (so every
process that can run or read NEAT has it). A NEAT batch is the body map of schema 1
(`migration_pool.batches`) with null ``dtype`` and ``gene_shape``, ``genome_schema`` =
NEAT_SCHEMA_VERSION (= 1, the version of this per-genome layout), and ``genomes`` a list of K
maps, each with exactly the arrays ``nodes`` int64[n] (unique node ids >= 0),
``conn_in``/``conn_out`` int64[c] (ids of listed nodes, each (in, out) pair at most once),
``weight`` float32[c] (finite) and ``enabled`` bool[c]; n <= NEAT_MAX_NODES and
c <= NEAT_MAX_CONNS. What the ids mean (inputs, outputs, cycles) is checked by the algorithm
that adopts the genomes.
"""
from __future__ import annotations

import numpy as np

from migration_pool.errors import FormatError
from migration_pool.genome_codecs import GenomeCodec, register_codec
from migration_pool.values import dtype_name

NEAT_KIND = "neat"
NEAT_SCHEMA_VERSION: int = 1
NEAT_FIELDS: dict[str, str] = {"nodes": "int64", "conn_in": "int64", "conn_out": "int64",
                               "weight": "float32", "enabled": "bool"}
NEAT_MAX_NODES = 4096
NEAT_MAX_CONNS = 65536


def check_genomes(value: object) -> tuple[dict[str, np.ndarray], ...]:
    """Validate NEAT genome maps (see the module docstring); returns them as a tuple.

    Raises:
        FormatError: a map that is not the layout above.
    """
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


CODEC = GenomeCodec(NEAT_KIND, NEAT_SCHEMA_VERSION, check_genomes)


def register() -> None:
    """Make the pool carry NEAT genomes (idempotent; done when the package is imported)."""
    register_codec(CODEC)
