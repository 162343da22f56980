"""NEAT genomes in the pool format: round trips, validation, versioning, the pool itself."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from islands.algorithms.neat import codec as neat_codec
from migration_pool import format as fmt
from migration_pool import batches
from migration_pool.errors import FormatError
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir
from support.factories import migrant_batch


def genome(nodes, conns, weight_dtype="float32") -> dict[str, np.ndarray]:
    src, dst = (np.array([c[0] for c in conns], np.int64), np.array([c[1] for c in conns], np.int64))
    return {"nodes": np.array(nodes, np.int64), "conn_in": src, "conn_out": dst,
            "weight": np.linspace(-1, 1, len(conns)).astype(weight_dtype),
            "enabled": np.arange(len(conns)) % 3 != 0}


GOOD = genome([0, 1, 2, 3, 2**40], [(0, 3), (1, 3), (0, 2**40), (2**40, 3)])


def batch(genomes, **changes) -> batches.MigrantBatch:
    k = len(genomes)
    fields = dict(run_id="run-n", source="island-02", generation=40, genome_kind="neat",
                  fitness=np.linspace(0, 1, k), origin=["island-01"] * k, birth=np.arange(k), lineage=np.arange(k) + 7)
    fields.update(changes)
    return migrant_batch(fields.pop("genomes", genomes), **fields)


def same_genomes(a, b) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(x[f].dtype == y[f].dtype and np.array_equal(x[f], y[f]) for f in x)
        for x, y in zip(a, b))


@st.composite
def neat_genomes(draw) -> dict[str, np.ndarray]:
    ids = draw(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=12, unique=True))
    pairs = draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)), max_size=30, unique=True))
    w = draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=len(pairs), max_size=len(pairs)))
    on = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    return {"nodes": np.array(ids, np.int64), "conn_in": np.array([p[0] for p in pairs], np.int64),
            "conn_out": np.array([p[1] for p in pairs], np.int64), "weight": np.array(w, np.float32),
            "enabled": np.array(on, bool)}


@given(st.lists(neat_genomes(), max_size=5))
def test_neat_batches_round_trip(genomes):
    b = batch(genomes)
    got = batches.decode_batch(batches.encode_batch(b), run_id="run-n", genome_kind="neat")
    assert got.genome_kind == "neat" and len(got) == len(genomes) == len(got.genomes)
    assert same_genomes(genomes, got.genomes)
    assert np.array_equal(got.fitness, b.fitness) and np.array_equal(got.origin, b.origin)


def test_the_body_records_the_neat_schema_and_no_vector_header():
    body = fmt.decode(batches.encode_batch(batch([GOOD, GOOD])), "migrants")
    assert body["genome_schema"] == neat_codec.NEAT_SCHEMA_VERSION == 1
    assert (body["dtype"], body["gene_shape"], body["count"]) == (None, None, 2)
    assert isinstance(body["genomes"], list) and set(body["genomes"][0]) == set(neat_codec.NEAT_FIELDS)


def test_an_object_array_of_genomes_is_accepted():
    """What np.asarray makes of a list of genome maps (the migrator may pass one)."""
    b = batch(np.asarray([GOOD, GOOD], dtype=object))
    assert isinstance(b.genomes, tuple) and len(b) == 2


@pytest.mark.parametrize("bad, message", [
    ({**GOOD, "nodes": GOOD["nodes"].astype(np.int32)}, "nodes must be a 1-d int64"),
    ({**GOOD, "weight": GOOD["weight"].astype(np.float64)}, "weight must be a 1-d float32"),
    ({**GOOD, "enabled": GOOD["enabled"][:2]}, "differ in length"),
    ({k: v for k, v in GOOD.items() if k != "enabled"}, "fields"),
    ({**GOOD, "extra": GOOD["nodes"]}, "fields"),
    (genome([0, 1, 1, 3], [(0, 3)]), "unique"),
    (genome([-1, 1, 2, 3], [(1, 3)]), ">= 0"),
    (genome([0, 1, 2, 3], [(0, 9)]), "does not list"),
    (genome([0, 1, 2, 3], [(0, 3), (0, 3)]), "appears twice"),
    ({**GOOD, "weight": np.array([0, np.nan, 0, 0], np.float32)}, "NaN"),
    (genome(list(range(neat_codec.NEAT_MAX_NODES + 1)), [(0, 3)]), "caps"),
    (genome([0, 1, 2, 3], [(0, 3)])["nodes"], "fields"),
])
def test_invalid_neat_genomes_cannot_be_built(bad, message):
    with pytest.raises(FormatError, match=message):
        batch([GOOD, bad])


def encoded_body(**changes) -> bytes:
    body = fmt.decode(batches.encode_batch(batch([GOOD])), "migrants")
    body.update(changes)
    return fmt.encode("migrants", {k: v for k, v in body.items() if v is not KeyError})


@pytest.mark.parametrize("changes, message", [
    ({"genome_schema": 2}, "neat genome schema 2"),
    ({"genome_schema": KeyError}, "missing"),
    ({"dtype": "float32"}, "null dtype"),
    ({"count": 3}, "count"),
    ({"genomes": [{**GOOD, "conn_out": np.array([3, 3, 3, 3], np.int64)}]}, "appears twice"),
    ({"genomes": GOOD["weight"]}, "lists"),
])
def test_decoding_checks_neat_files(changes, message):
    with pytest.raises(FormatError, match=message):
        batches.decode_batch(encoded_body(**changes))


def test_kinds_do_not_cross():
    neat = batches.encode_batch(batch([GOOD]))
    with pytest.raises(FormatError, match="not this run's 'vector'"):
        batches.decode_batch(neat, genome_kind="vector")
    with pytest.raises(FormatError, match="no dtype or gene shape"):
        batches.decode_batch(neat, dtype="float32", gene_shape=(4,))
    vector = batches.encode_batch(batch(np.zeros((1, 4), np.float32), genome_kind="vector"))
    with pytest.raises(FormatError, match="not this run's 'neat'"):
        batches.decode_batch(vector, genome_kind="neat")
    flipped = bytearray(neat)
    flipped[-5] ^= 1
    with pytest.raises(FormatError):
        batches.decode_batch(bytes(flipped))


def test_the_pool_carries_neat_batches(tmp_path):
    rundir = RunDir(tmp_path)
    writer = Pool(rundir, "run-n", genome_kind="neat")
    writer.publish(batch([GOOD, GOOD], source="island-02", generation=40))
    reader = Pool(rundir, "run-n", genome_kind="neat")
    got, bad = reader.read_new(["island-02"])
    assert bad == 0 and len(got) == 1 and same_genomes(got[0].genomes, (GOOD, GOOD))
    vector_reader = Pool(rundir, "run-n", genome_kind="vector", dtype="float32", gene_shape=(4,))
    assert vector_reader.read_new(["island-02"]) == ([], 1)


def dense(connections: int) -> dict[str, np.ndarray]:
    """A genome of 257 nodes with `connections` distinct (in, out) pairs among them."""
    pairs = np.arange(connections)
    src, dst = pairs // 257, pairs % 257
    return {"nodes": np.arange(257, dtype=np.int64), "conn_in": src.astype(np.int64),
            "conn_out": dst.astype(np.int64), "weight": np.zeros(connections, np.float32),
            "enabled": np.ones(connections, bool)}


def test_the_connection_cap_holds_in_construction_and_on_disk():
    at_cap = batch([dense(neat_codec.NEAT_MAX_CONNS)])  # positive control: exactly the cap is fine
    assert batches.decode_batch(batches.encode_batch(at_cap)).genomes[0]["conn_in"].size == neat_codec.NEAT_MAX_CONNS
    with pytest.raises(FormatError, match="65537 connections exceed the caps"):
        batch([dense(neat_codec.NEAT_MAX_CONNS + 1)])
    body = fmt.decode(batches.encode_batch(at_cap), "migrants")
    body["genomes"] = [dense(neat_codec.NEAT_MAX_CONNS + 1)]  # a file written without the constructor
    with pytest.raises(FormatError, match="exceed the caps"):
        batches.decode_batch(fmt.encode("migrants", body))
