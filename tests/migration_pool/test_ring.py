"""The migrant ring (one file per island, rewritten in place) and packed schema-2 batches.

What must hold after issue 16's redesign of the hot path: a reader never accepts a torn or
forged batch and counts a bad ring once; the writer never writes through a file it did not
create; packed batches round-trip exactly and every field a hostile file could lie about is
checked before anything is allocated.
"""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest

import islands.algorithms.neat  # noqa: F401  (registers the "neat" genome codec, which is never packed)
from migration_pool import format as fmt
from migration_pool import batches
from migration_pool import format_packed as packed
from migration_pool import ring
from migration_pool.errors import FormatError, RunDirError
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir

RUN = "run-a"
DIM = 4


def encoded(source: int = 1, generation: int = 10, *, k: int = 3, dim: int = DIM,
            dtype: str = "float32", run_id: str = RUN, **over) -> bytes:
    genomes = (source * 1000 + generation + np.arange(k * dim).reshape(k, dim) / 1000).astype(dtype)
    fields = dict(run_id=run_id, source=source, generation=generation, created=1.5e9,
                  genome_kind="vector", genomes=genomes, fitness=-np.arange(k, dtype=np.float64),
                  origin=np.full(k, source), birth=np.full(k, generation), lineage=np.arange(k) + 7)
    fields.update(over)
    return packed.encode_vector_batch(**fields)


def reader(tmp_path) -> Pool:
    return Pool(RunDir(tmp_path), RUN, dtype="float32", gene_shape=(DIM,), warn=lambda m: None)


def writer(tmp_path) -> Pool:
    return Pool(RunDir(tmp_path), RUN, dtype="float32", gene_shape=(DIM,))


def ring_path(tmp_path, island: str = "island-01") -> str:
    return os.path.join(RunDir(tmp_path).pool_dir(island), ring.RING_NAME)


def rewrapped(data: bytes, payload: bytes) -> bytes:
    """A packed envelope around a changed payload, with a valid CRC: only the field is wrong."""
    return fmt.envelope("migrants", payload, packed.FLAG_PACKED)


# -- packed batches ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_packed_batch_round_trips(dtype):
    data = encoded(source=3, generation=42, dtype=dtype)
    b = batches.decode_batch(data, run_id=RUN, genome_kind="vector", dtype=dtype, gene_shape=(DIM,))
    assert (b.source, b.generation, b.run_id, b.genome_kind, b.created) == ("island-03", 42, RUN, "vector", 1.5e9)
    assert b.genomes.dtype == np.dtype(dtype) and b.genomes.shape == (3, DIM)
    assert np.array_equal(b.genomes, (3042 + np.arange(3 * DIM).reshape(3, DIM) / 1000).astype(dtype))
    assert b.origin.tolist() == [3] * 3 and b.birth.tolist() == [42] * 3
    assert b.lineage.tolist() == [7, 8, 9] and b.fitness.tolist() == [0.0, -1.0, -2.0]
    b.genomes[0, 0] = 1.0  # decoded arrays are writable copies
    assert len(b) == 3


def test_packed_batch_with_gene_matrix_and_large_island_numbers():
    g = np.arange(2 * 3 * 5, dtype=np.float64).reshape(2, 3, 5)
    data = encoded(source=123456, genomes=g, k=2, origin=np.array([0, 999999]),
                   fitness=np.zeros(2), birth=np.zeros(2, dtype=np.int64), lineage=np.zeros(2, dtype=np.int64))
    b = batches.decode_batch(data, gene_shape=(3, 5))
    assert b.source == "island-123456" and b.origin.tolist() == [0, 999999]
    assert np.array_equal(b.genomes, g)


@pytest.mark.parametrize("over", [
    {"fitness": np.array([0.0, np.nan, 1.0])}, {"birth": np.array([0, -1, 0])},
    {"origin": np.array([0, 10**6, 0])}, {"origin": np.array([0, -1, 0])},
    {"source": 10**6}, {"generation": 2**63}, {"created": float("inf")}, {"run_id": ""},
    {"genome_kind": "neat"}, {"genomes": np.zeros((3, DIM), dtype=np.int32)},
    {"fitness": np.zeros(2)},
])
def test_packed_writer_refuses_what_the_layout_cannot_carry(over):
    with pytest.raises(FormatError):
        encoded(**over)


def _payload(data: bytes) -> bytearray:
    return bytearray(data[fmt.HEADER_SIZE:])


def _field(payload: bytearray, fmt_: str, offset: int, value) -> bytes:
    struct.pack_into(fmt_, payload, offset, value)
    return bytes(payload)


@pytest.mark.parametrize("change, reason", [
    (lambda p: _field(p, "<H", 0, 1), "schema"),  # schema
    (lambda p: _field(p, "<H", 2, 4), "declares"),  # count larger than the bytes present
    (lambda p: _field(p, "<H", 2, 65535), "declares"),
    (lambda p: _field(p, "<I", 32, 2**32 - 1), "declares"),  # a huge gene dimension
    (lambda p: _field(p, "<B", 27, 200), "dimensions"),
    (lambda p: _field(p, "<B", 28, 7), "dtype"),
    (lambda p: _field(p, "<Q", 4, 2**63), "range"),
    (lambda p: _field(p, "<d", 12, float("nan")), "range"),
    (lambda p: _field(p, "<I", 20, 10**6), "range"),
    (lambda p: _field(p, "<B", 30, 1), "padding"),
    (lambda p: bytes(p[:-1]), "declares"),  # truncated
    (lambda p: bytes(p) + b"\0" * 8, "declares"),  # trailing bytes
    (lambda p: _field(p, "<d", len(p) - 3 * 28 + 8, float("inf")), "NaN or inf"),  # fitness[1]
    (lambda p: _field(p, "<q", len(p) - 2 * 28, -5), "birth"),  # birth[0]
    (lambda p: _field(p, "<I", len(p) - 4, 10**6), "origin"),  # origin[2]
    (lambda p: _field(p, "<B", 36, 0xFF), "text"),  # run id no longer utf-8
])
def test_packed_reader_rejects_each_lying_field(change, reason):
    data = encoded()
    bad = rewrapped(data, change(_payload(data)))
    with pytest.raises(FormatError, match=reason):
        batches.decode_batch(bad)


def test_packed_reader_checks_the_expectations_and_the_crc():
    data = encoded()
    for kw in ({"run_id": "other"}, {"dtype": "float64"}, {"gene_shape": (5,)}, {"genome_kind": "neat"}):
        with pytest.raises(FormatError):
            batches.decode_batch(data, **kw)
    flipped = bytearray(data)
    flipped[-10] ^= 1
    with pytest.raises(FormatError, match="CRC"):
        batches.decode_batch(bytes(flipped))
    with pytest.raises(FormatError, match="flags"):  # readers of other kinds refuse it
        fmt.decode(data, "migrants")


# -- the ring ---------------------------------------------------------------------------

def test_each_new_batch_is_read_once_and_an_unchanged_ring_costs_no_decode(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    for generation in range(10, 80, 10):  # more batches than slots: the ring wraps
        w.publish_ring("island-01", generation, encoded(generation=generation))
        batches, bad = r.read_new(["island-01"])
        assert [b.generation for b in batches] == [generation] and bad == 0
        assert r.read_new(["island-01"]) == ([], 0)
    assert os.listdir(os.path.dirname(ring_path(tmp_path))) == [ring.RING_NAME]  # one file, no garbage
    w.close()


def test_a_torn_slot_is_never_accepted_and_a_bad_one_counted_once(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    w.publish_ring("island-01", 10, encoded(generation=10))
    head = ring.decode_ring_header(open(ring_path(tmp_path), "rb").read(ring.RING_HEADER_SIZE))
    with open(ring_path(tmp_path), "r+b") as f:  # half of the newest batch overwritten
        f.seek(head.offset + head.length // 2)
        f.write(b"\xAA" * 16)
    assert r.read_new(["island-01"]) == ([], 1)
    assert r.read_new(["island-01"]) == ([], 0)  # the same ring state is not counted again
    w.publish_ring("island-01", 20, encoded(generation=20))  # the next batch is read
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [20]


@pytest.mark.parametrize("content", [b"", b"ISLR" + b"\0" * 60, b"\xff" * 200])
def test_a_garbage_ring_is_counted_once_until_it_changes(tmp_path, content):
    d = RunDir(tmp_path).pool_dir("island-01")
    d.mkdir(parents=True)
    (d / ring.RING_NAME).write_bytes(content)
    r = reader(tmp_path)
    assert r.read_new(["island-01"]) == ([], 1)
    assert r.read_new(["island-01"]) == ([], 0)
    os.unlink(d / ring.RING_NAME)
    writer(tmp_path).publish_ring("island-01", 30, encoded(generation=30))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [30]


def test_a_header_pointing_past_the_end_or_claiming_a_huge_file_is_refused(tmp_path):
    w = writer(tmp_path)
    w.publish_ring("island-01", 10, encoded(generation=10))
    path = ring_path(tmp_path)
    good = ring.decode_ring_header(open(path, "rb").read(ring.RING_HEADER_SIZE))
    for head in (ring.RingHeader(64, good.slot_bytes, good.ring_id, 64, good.length, 10),
                 ring.RingHeader(64, 2**40, good.ring_id, 1, 100, 10)):
        with open(path, "r+b") as f:
            f.write(ring.encode_ring_header(head))
        with pytest.raises(FormatError):
            ring.read_ring(path, 64 * 1024 * 1024, None)


def test_a_batch_claiming_another_source_or_generation_is_refused(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    w.publish_ring("island-01", 10, encoded(source=2, generation=10))  # island-02's batch in 01's ring
    assert r.read_new(["island-01"]) == ([], 1)
    w.publish_ring("island-01", 20, encoded(source=1, generation=21))
    assert r.read_new(["island-01"]) == ([], 1)


def test_a_symlinked_or_fifo_ring_is_not_followed_and_does_not_block(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    w = writer(outside)
    w.publish_ring("island-01", 10, encoded(generation=10))
    d = RunDir(tmp_path / "run").pool_dir("island-01")
    d.mkdir(parents=True)
    os.symlink(ring_path(outside), d / ring.RING_NAME)
    r = reader(tmp_path / "run")
    assert r.read_new(["island-01"]) == ([], 1)
    assert r.read_new(["island-01"]) == ([], 0)
    os.unlink(d / ring.RING_NAME)
    os.mkfifo(d / ring.RING_NAME)
    assert r.read_new(["island-01"]) == ([], 1)


def test_the_writer_never_writes_through_a_file_it_did_not_create(tmp_path):
    w = writer(tmp_path)
    w.publish_ring("island-01", 10, encoded(generation=10))
    path = ring_path(tmp_path)
    keep = tmp_path / "kept-link"
    os.link(path, keep)  # the writer's inode, reachable from elsewhere
    before = keep.read_bytes()
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"not yours")
    os.replace(foreign, path)  # someone swapped the ring for another file
    w.publish_ring("island-01", 20, encoded(generation=20))
    assert keep.read_bytes() == before  # the old inode was not written
    batches, _ = reader(tmp_path).read_new(["island-01"])
    assert [b.generation for b in batches] == [20]  # a fresh ring replaced the foreign file
    assert os.stat(path).st_nlink == 1


def test_a_symlinked_pool_directory_is_refused_before_a_ring_is_created(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    RunDir(run).pool_dir().mkdir(parents=True)
    os.symlink(outside, RunDir(run).pool_dir("island-01"))
    with pytest.raises(RunDirError):
        Pool(RunDir(run), RUN).publish_ring("island-01", 10, encoded(generation=10))
    assert os.listdir(outside) == []


def test_a_batch_larger_than_its_slot_gets_a_new_ring(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    w.publish_ring("island-01", 10, encoded(generation=10, k=1))
    first = os.stat(ring_path(tmp_path)).st_ino
    w.publish_ring("island-01", 20, encoded(generation=20, k=2000))
    assert os.stat(ring_path(tmp_path)).st_ino != first
    assert [len(b) for b in r.read_new(["island-01"])[0]] == [2000]


def test_a_ring_hides_its_islands_old_batch_files_but_gen_files_alone_are_still_read(tmp_path):
    from migration_pool.legacy_batches import batch_name
    old = batches.encode_batch(batches.decode_batch(encoded(generation=5)))  # a schema-1 file
    d = RunDir(tmp_path).pool_dir("island-01")
    d.mkdir(parents=True)
    (d / batch_name(5)).write_bytes(old)
    r = reader(tmp_path)
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [5]
    writer(tmp_path).publish_ring("island-01", 10, encoded(generation=10))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [10]
    (d / batch_name(15)).write_bytes(batches.encode_batch(batches.decode_batch(encoded(generation=15))))
    assert r.read_new(["island-01"]) == ([], 0)  # a past life's files: the ring is current


def test_a_read_that_the_writer_lapped_is_retried_not_counted(tmp_path, monkeypatch):
    w, r = writer(tmp_path), reader(tmp_path)
    w.publish_ring("island-01", 10, encoded(generation=10))
    stale = ring.read_ring(ring_path(tmp_path), 2**26, None)
    w.publish_ring("island-01", 20, encoded(generation=20))  # the header moved on meanwhile
    real = ring.read_ring
    monkeypatch.setattr(ring, "read_ring", lambda *a: ring.RingRead(stale.header, b"\0" * len(stale.data)))
    assert r.read_new(["island-01"]) == ([], 0)
    monkeypatch.setattr(ring, "read_ring", real)
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [20]


def _island(tmp_path, number: int):
    import torch
    from pathlib import Path
    from islands.algorithms import make_algorithm
    from islands.checkpoint import Progress
    from islands.config import MigrationConfig, RunConfig, island_id
    from islands.island import IslandSpec
    from islands.migration import PoolMigrator
    from islands.problems.registry import make_problem
    cfg = RunConfig(problem="rastrigin", dim=DIM, population=20,
                    migration=MigrationConfig(every=1, migrants=3, topology="ring"))
    ids = ("island-00", "island-01")
    algo = make_algorithm(cfg, make_problem("rastrigin", DIM))
    gen = torch.Generator()
    gen.manual_seed(number)
    spec = IslandSpec(island=island_id(number), run_dir=Path(tmp_path), run_id=RUN, config=cfg, planned=ids)
    rundir = RunDir(tmp_path)
    rundir.ensure(island_id(number))
    return PoolMigrator(spec, rundir, lambda _m: None), algo, algo.evaluate(algo.init(20, number, gen)), Progress(), gen


def test_unchanged_emigrants_are_not_published_again_while_the_ring_holds_them(tmp_path):
    mig, algo, state, progress, gen = _island(tmp_path, 0)
    counter = lambda: ring.decode_ring_header(open(ring_path(tmp_path, "island-00"), "rb").read(64)).counter  # noqa: E731
    state = mig.exchange(algo, state, progress, gen)
    assert mig.last_event.sent == 3 and counter() == 1
    progress.generation += 1
    state = mig.exchange(algo, state, progress, gen)  # same population, same emigrants
    assert mig.last_event.sent == 0 and counter() == 1
    os.unlink(ring_path(tmp_path, "island-00"))  # the ring is gone: send again
    progress.generation += 1
    state = mig.exchange(algo, state, progress, gen)
    assert mig.last_event.sent == 3 and counter() == 1
    progress.generation += 1
    state = algo.evaluate(algo.step(state, progress.generation, gen))
    mig.exchange(algo, state, progress, gen)  # new emigrants: published
    assert mig.last_event.sent == 3 and counter() == 2


def test_two_islands_exchange_through_their_rings(tmp_path):
    a, b = _island(tmp_path, 0), _island(tmp_path, 1)
    for step in range(3):
        for mig, algo, state, progress, gen in (a, b):
            progress.generation = step
            mig.exchange(algo, state, progress, gen)
    assert a[3].migration["received"] > 0 and b[3].migration["received"] > 0
    assert a[3].migration["bad_files"] == b[3].migration["bad_files"] == 0
    assert sorted(os.listdir(RunDir(tmp_path).pool_dir("island-00"))) == [ring.RING_NAME]


def test_an_island_run_in_process_leaves_no_ring_file_open(tmp_path):
    """A program that runs islands one after another (notebooks, sweeps) keeps no descriptors."""
    import os

    from islands.config import MigrationConfig, RunConfig
    from islands.runs import evolve

    cfg = RunConfig(problem="sphere", dim=4, population=12, generations=12, seed=2,
                    migration=MigrationConfig(every=2))

    def open_rings() -> list[str]:
        fds = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        return [p for p in fds if p.startswith(str(tmp_path)) and p.endswith("ring.isld")]  # this run's only

    for island in ("island-00", "island-01"):
        evolve(island, tmp_path / "run", cfg, log=lambda _m: None)
    assert (tmp_path / "run" / "pool" / "island-00" / "ring.isld").exists()  # a ring was written
    assert open_rings() == []


# -- non-finite genes ---------------------------------------------------------------------

def _genomes_at(run_id: str = RUN, kind: str = "vector", ndim: int = 1) -> int:
    names_end = 32 + 4 * ndim + len(run_id) + len(kind)
    return names_end + (-(names_end - 32)) % 8


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_packed_reader_refuses_a_genome_that_is_not_finite(dtype, bad):
    data = encoded(dtype=dtype)
    payload, item = _payload(data), np.dtype(dtype).itemsize
    at = _genomes_at() + 5 * item  # genome 1, gene 1
    le = np.dtype(dtype).newbyteorder("<")
    assert np.frombuffer(bytes(payload[at:at + item]), le)[0] == batches.decode_batch(data).genomes[1, 1]
    payload[at:at + item] = np.array([bad], le).tobytes()
    with pytest.raises(FormatError, match="genomes hold NaN or inf"):
        batches.decode_batch(rewrapped(data, bytes(payload)))


def test_both_writers_refuse_genomes_that_are_not_finite_and_a_body_map_reader_too():
    genomes = np.zeros((3, DIM))
    genomes[2, 3] = np.inf
    with pytest.raises(FormatError, match="NaN or inf"):
        encoded(genomes=genomes, dtype="float64")
    good = batches.decode_batch(encoded(dtype="float64"))
    with pytest.raises(FormatError, match="NaN or inf"):
        batches.encode_batch(batches.MigrantBatch(**{**vars(good), "genomes": genomes}))
    body = fmt.decode(batches.encode_batch(good), "migrants")  # schema 1, a body map
    body["genomes"] = genomes
    with pytest.raises(FormatError, match="NaN or inf"):
        batches.decode_batch(fmt.encode("migrants", body))


def test_a_ring_batch_with_a_nan_gene_is_a_counted_bad_file(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    data = encoded(generation=10)
    payload = _payload(data)
    payload[_genomes_at():_genomes_at() + 4] = np.array([np.nan], "<f4").tobytes()
    w.publish_ring("island-01", 10, rewrapped(data, bytes(payload)))
    assert r.read_new(["island-01"]) == ([], 1)
    w.publish_ring("island-01", 20, encoded(generation=20))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [20]


def test_an_island_publishes_only_the_emigrants_whose_genes_and_fitness_are_finite(tmp_path):
    from islands.population import Migrants
    mig, algo, state, progress, gen = _island(tmp_path, 0)
    pool = mig._pool(algo, Migrants(np.zeros((1, DIM)), np.zeros(1), np.zeros(1, np.int64),
                                    np.zeros(1, np.int64), np.zeros(1, np.int64)))
    genomes = np.arange(4 * DIM, dtype=np.float64).reshape(4, DIM)
    genomes[1, 2] = np.nan
    fitness = np.array([-1.0, -2.0, np.nan, -4.0])
    sent = mig._publish(pool, Migrants(genomes, fitness, np.zeros(4, np.int64), np.zeros(4, np.int64),
                                       np.arange(4)), progress)
    assert sent == 2
    got, bad = Pool(RunDir(tmp_path), RUN, gene_shape=(DIM,)).read_new(["island-00"])
    assert bad == 0 and got[0].lineage.tolist() == [0, 3] and np.isfinite(got[0].genomes).all()


# -- forged and restarted rings -----------------------------------------------------------

def _header(tmp_path, island: str = "island-01") -> ring.RingHeader:
    with open(ring_path(tmp_path, island), "rb") as f:
        return ring.decode_ring_header(f.read(ring.RING_HEADER_SIZE))


def _forge(tmp_path, head: ring.RingHeader, island: str = "island-01") -> None:
    with open(ring_path(tmp_path, island), "r+b") as f:
        f.write(ring.encode_ring_header(head))  # a valid CRC: anyone can compute one


def test_a_restarted_islands_new_ring_at_the_same_counter_is_read(tmp_path):
    r = reader(tmp_path)
    first = writer(tmp_path)
    first.publish_ring("island-01", 10, encoded(generation=10))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [10]
    old = _header(tmp_path)
    first.close()
    # The island restarts from a checkpoint at the same generation: a new process, a new ring,
    # the same counter, generation and length; only the ring id tells it from the old one.
    writer(tmp_path).publish_ring("island-01", 10, encoded(generation=10))
    new = _header(tmp_path)
    assert (new.counter, new.generation, new.length) == (old.counter, old.generation, old.length)
    assert new.ring_id != old.ring_id
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [10]


def test_a_forged_header_one_ahead_never_hides_the_real_batch_at_that_counter(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    w.publish_ring("island-01", 10, encoded(generation=10))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [10]
    good = _header(tmp_path)
    # counter + 1 points at an empty slot: a bad ring, counted once ...
    _forge(tmp_path, ring.RingHeader(good.slots, good.slot_bytes, good.ring_id, good.counter + 1, good.length, 20))
    assert r.read_new(["island-01"]) == ([], 1)
    assert r.read_new(["island-01"]) == ([], 0)
    # ... and the writer's real batch at that counter (same length, same generation: the
    # forger guessed everything) is read all the same.
    w.publish_ring("island-01", 20, encoded(generation=20))
    assert _header(tmp_path) == ring.RingHeader(good.slots, good.slot_bytes, good.ring_id, good.counter + 1,
                                                good.length, 20)
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [20]


def test_a_forged_header_replaying_an_old_slot_never_hides_the_next_real_batch(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    for generation in (10, 20, 30, 40):  # every slot full
        w.publish_ring("island-01", generation, encoded(generation=generation))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [40]
    good = _header(tmp_path)
    # counter + 1 names slot 0, which still holds generation 10's batch: a valid old batch, harmless
    _forge(tmp_path, ring.RingHeader(good.slots, good.slot_bytes, good.ring_id, good.counter + 1, good.length, 10))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [10]
    w.publish_ring("island-01", 50, encoded(generation=50))  # the writer's real batch at that counter
    assert _header(tmp_path).counter == good.counter + 1
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [50]


def test_a_header_whose_checksum_does_not_match_is_refused(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    w.publish_ring("island-01", 10, encoded(generation=10))
    raw = bytearray(open(ring_path(tmp_path), "rb").read(ring.RING_HEADER_SIZE))
    assert ring.decode_ring_header(bytes(raw)).generation == 10
    for offset in (50, 40, 24):  # a reserved byte, the generation, the counter: the CRC is stale
        bad = bytearray(raw)
        bad[offset] ^= 0x01
        with pytest.raises(FormatError, match="checksum"):
            ring.decode_ring_header(bytes(bad))
    raw[50] ^= 0x01  # only the reserved bytes differ: without the CRC the header reads the same
    with open(ring_path(tmp_path), "r+b") as f:
        f.write(raw)
    assert r.read_new(["island-01"]) == ([], 1)
    assert r.read_new(["island-01"]) == ([], 0)


# -- reading by generation (synchronous migration) -------------------------------------

def test_read_generation_finds_each_batch_the_ring_still_holds(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    assert r.read_generation("island-01", 10) == ("behind", None)  # no ring yet
    for g in (10, 20, 30, 40, 50, 60):
        w.publish_ring("island-01", g, encoded(generation=g))
    for g in (30, 40, 50, 60):  # the four newest: the older ones by their own envelope's length
        state, batch = r.read_generation("island-01", g)
        assert state == "found" and batch.generation == g and batch.source == "island-01"
        assert batch.genomes[0, 0] == np.float32(1000 + g)
    assert r.read_generation("island-01", 20) == ("ahead", None)  # overwritten: gone for good
    assert r.read_generation("island-01", 70) == ("behind", None)  # not yet published
    assert r.read_generation("island-01", 35) == ("ahead", None)  # never published


def test_a_bad_older_slot_is_passed_over_not_taken(tmp_path):
    w, r = writer(tmp_path), reader(tmp_path)
    for g in (10, 20):
        w.publish_ring("island-01", g, encoded(generation=g))
    head = ring.header_now(ring_path(tmp_path), fmt.MAX_FILE_BYTES)
    with open(ring_path(tmp_path), "r+b") as f:  # flip a payload byte of the older slot (slot 0)
        f.seek(ring.RING_HEADER_SIZE + fmt.HEADER_SIZE + 5)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert head.counter == 2
    assert r.read_generation("island-01", 10) == ("ahead", None)
    assert r.read_generation("island-01", 20)[0] == "found"


def test_a_carrying_writers_fresh_ring_keeps_the_older_batches(tmp_path):
    first = writer(tmp_path)
    for g in (10, 20, 30, 40):
        first.publish_ring("island-01", g, encoded(generation=g))
    first.close()
    restarted = Pool(RunDir(tmp_path), RUN, dtype="float32", gene_shape=(DIM,), carry=True)
    restarted.publish_ring("island-01", 30, encoded(generation=30))  # resumed before 30: redoes it
    r = reader(tmp_path)
    # 40 is the past life's, not carried: it comes again when the island gets there
    assert [r.read_generation("island-01", g)[0] for g in (10, 20, 30, 40)] == ["found", "found", "found", "behind"]
    plain = writer(tmp_path)  # without carry, a new ring holds only its own batch
    plain.publish_ring("island-01", 50, encoded(generation=50))
    assert r.read_generation("island-01", 20) == ("ahead", None)
    assert r.read_generation("island-01", 50)[0] == "found"
