"""An unchanged ring is recognised by its 64 header bytes alone: no header decode, no batch
decode; any change of those bytes (a new batch, a forged header) is judged in full."""
from __future__ import annotations

import os

import numpy as np

from migration_pool import format_packed as packed
from migration_pool import ring
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir

RUN, DIM = "run-u", 4


def batch(generation: int) -> bytes:
    return packed.encode_vector_batch(
        run_id=RUN, source=1, generation=generation, created=1.5e9, genome_kind="vector",
        genomes=np.full((2, DIM), generation, dtype=np.float32), fitness=np.array([-1.0, -2.0]),
        origin=np.ones(2, np.int64), birth=np.zeros(2, np.int64), lineage=np.arange(2))


def test_an_unchanged_header_is_not_decoded_again_and_a_changed_one_is(tmp_path, monkeypatch):
    w = Pool(RunDir(tmp_path), RUN, dtype="float32", gene_shape=(DIM,))
    r = Pool(RunDir(tmp_path), RUN, dtype="float32", gene_shape=(DIM,), warn=lambda m: None)
    w.publish_ring("island-01", 10, batch(10))
    decoded = []
    real = ring.decode_ring_header
    monkeypatch.setattr(ring, "decode_ring_header", lambda *a: decoded.append(1) or real(*a))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [10] and len(decoded) == 1
    for _ in range(3):
        assert r.read_new(["island-01"]) == ([], 0)
    assert len(decoded) == 1  # three looks, 64 bytes each, nothing decoded
    w.publish_ring("island-01", 20, batch(20))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [20] and len(decoded) == 2
    # A forged header (valid CRC, one field changed) differs in its bytes: judged in full.
    path = os.path.join(RunDir(tmp_path).pool_dir("island-01"), ring.RING_NAME)
    with open(path, "rb") as f:
        head = real(f.read(ring.RING_HEADER_SIZE))
    with open(path, "r+b") as f:
        f.write(ring.encode_ring_header(ring.RingHeader(head.slots, head.slot_bytes, head.ring_id,
                                                        head.counter + 1, head.length, 30)))
    assert r.read_new(["island-01"]) == ([], 1) and len(decoded) >= 3  # the slot claims 20: bad
