"""The migrant pool: publish, read newest, count bad files once, garbage-collect.

A hostile directory (docs/DESIGN.md, "Untrusted pool") and the file-descriptor half of garbage
collection are here; the concurrent halves (many writers and readers, concurrent GC) are in test_exchange.py.
"""
from __future__ import annotations

import errno
import os
import struct
import time
import zlib

import numpy as np
import pytest

from islands.algorithms.neat import codec as neat_codec
from migration_pool import atomic
from migration_pool import format as fmt
from migration_pool import batches
from migration_pool.legacy_batches import TEMP_GRACE_S, batch_generation, batch_name
from migration_pool.pool import WARNINGS_PER_READ, Pool
from migration_pool.rundir import RunDir
from support.procs import result
from support.factories import migrant_batch

RUN = "run-a"
DIM = 4


def make_batch(source: str = "island-01", generation: int = 10, *, run_id: str = RUN,
               dim: int = DIM, k: int = 3, dtype: str = "float32") -> batches.MigrantBatch:
    """A batch whose genomes encode its source and generation, so a reader can check them."""
    base = int(source.rsplit("-", 1)[1]) * 1000 + generation
    genomes = (base + np.arange(k * dim).reshape(k, dim) / 1000).astype(dtype)
    return migrant_batch(genomes, run_id=run_id, source=source, generation=generation,
                         fitness=-np.arange(k, dtype=np.float64), birth=np.full(k, generation),
                         lineage=np.arange(k) + base)


def reader(tmp_path, **kw) -> Pool:
    return Pool(RunDir(tmp_path), RUN, dtype="float32", gene_shape=(DIM,), **kw)


def same(a: batches.MigrantBatch, b: batches.MigrantBatch) -> bool:
    return (a.source, a.generation, a.run_id, a.origin.tolist()) == (b.source, b.generation, b.run_id, b.origin.tolist()) \
        and all(np.array_equal(getattr(a, f), getattr(b, f))
                for f in ("genomes", "fitness", "birth", "lineage"))


def put(tmp_path, island: str, name: str, data: bytes) -> str:
    d = RunDir(tmp_path).pool_dir(island)
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
    return str(d / name)


def with_header(data: bytes, *, version: int | None = None, length: int | None = None) -> bytes:
    """`data` with header fields changed and the CRC recomputed, so only that field is wrong."""
    magic, ver, flags, kind, size, _ = fmt.HEADER.unpack_from(data)
    head = fmt.HEADER.pack(magic, ver if version is None else version, flags, kind,
                           size if length is None else length, 0)[:28]
    payload = data[fmt.HEADER_SIZE:]
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


# ----------------------------------------------------------------------------- names

def test_batch_names_are_canonical():
    assert batch_name(7) == "gen-00000007.isld" and batch_generation("gen-00000007.isld") == 7
    assert batch_generation(batch_name(123456789012)) == 123456789012
    for odd in ("gen-0000007.isld", "gen-000000007.isld", "gen-00000007.isld\n", "gen-0000000x.isld",
                "gen-٠٠٠٠٠٠٠٧.isld", ".tmp-gen-00000007.isld.1.ab", "gen-00000007.isld.bak",
                "status.isld", "gen--0000007.isld"):
        assert batch_generation(odd) is None, odd


# ----------------------------------------------------------------------------- publish and read

def test_publish_then_read_newest_only_once(tmp_path):
    writer, r = reader(tmp_path), reader(tmp_path)
    assert r.read_new(["island-01"]) == ([], 0)  # no directory yet: nothing, no error
    path = writer.publish(make_batch(generation=10))
    assert path == RunDir(tmp_path).pool_dir("island-01") / "gen-00000010.isld"
    assert os.listdir(path.parent) == [path.name]  # no temporary left behind
    got, bad = r.read_new(["island-01"])
    assert bad == 0 and len(got) == 1 and same(got[0], make_batch(generation=10))
    assert r.read_new(["island-01"]) == ([], 0)  # nothing new
    for g in (20, 30, 40):
        writer.publish(make_batch(generation=g))
    got, _ = r.read_new(["island-01", "island-01"])  # duplicates in the list read once
    assert [b.generation for b in got] == [40]  # newest only: 20 and 30 are skipped
    assert r.seen == {"island-01": 40}


def test_read_new_reads_each_neighbour(tmp_path):
    writer, r = reader(tmp_path), reader(tmp_path)
    for island, g in (("island-01", 5), ("island-02", 7), ("island-03", 9)):
        writer.publish(make_batch(island, g))
    got, bad = r.read_new(["island-03", "island-01", "island-09"])
    assert bad == 0 and [(b.source, b.generation) for b in got] == [("island-03", 9), ("island-01", 5)]


def test_migrant_batches_are_not_fsynced_unless_durable(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    reader(tmp_path).publish(make_batch(generation=1))
    assert calls == []  # atomic only: migrants need no durability (docs/DESIGN.md, "Write-once migrants")
    reader(tmp_path, durable=True).publish(make_batch(generation=2))
    assert len(calls) == 2  # the file, then its directory
    got, _ = reader(tmp_path).read_new(["island-01"])
    assert [b.generation for b in got] == [2]


def test_publish_errors_are_os_errors_and_leave_no_temporary(tmp_path):
    (tmp_path / "pool").write_text("not a directory")
    with pytest.raises(OSError):
        reader(tmp_path).publish(make_batch())
    assert sorted(os.listdir(tmp_path)) == ["pool"]


def test_a_reset_neighbour_is_read_again_from_its_new_start(tmp_path):
    writer, r = reader(tmp_path), reader(tmp_path)
    writer.publish(make_batch(generation=40))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [40]
    RunDir(tmp_path).island("island-01").reset_island()  # what `islands evolve --fresh` does
    writer.publish(make_batch(generation=5))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [5]


def test_a_file_collected_between_listing_and_reading_is_simply_gone(tmp_path, monkeypatch):
    writer, r = reader(tmp_path), reader(tmp_path)
    writer.publish(make_batch(generation=10))
    newest = writer.publish(make_batch(generation=20))
    real = atomic.read_capped

    def collected_first(path, max_bytes):
        if str(path) == str(newest):
            os.unlink(path)  # a collector wins the race
        return real(path, max_bytes)

    monkeypatch.setattr(atomic, "read_capped", collected_first)
    got, bad = r.read_new(["island-01"])
    assert bad == 0 and [b.generation for b in got] == [10]


def test_genomes_of_other_kinds_travel_too(tmp_path):
    genome = {"nodes": np.arange(3, dtype=np.int64), "conn_in": np.array([0, 1], np.int64),
              "conn_out": np.array([2, 2], np.int64), "weight": np.array([0.5, -1], np.float32),
              "enabled": np.array([True, False])}
    batch = migrant_batch([genome], run_id=RUN, generation=4, created=0.0, genome_kind=neat_codec.NEAT_KIND,
                          fitness=[1.0], birth=[0], lineage=[1])
    writer = Pool(RunDir(tmp_path), RUN, genome_kind=neat_codec.NEAT_KIND)
    writer.publish(batch)
    got, bad = Pool(RunDir(tmp_path), RUN, genome_kind=neat_codec.NEAT_KIND).read_new(["island-01"])
    assert bad == 0 and len(got) == 1 and np.array_equal(got[0].genomes[0]["weight"], genome["weight"])
    assert reader(tmp_path).read_new(["island-01"]) == ([], 1)  # a vector island rejects it
    assert writer.collect("island-01", keep=1) == 0


# ----------------------------------------------------------------------------- hostile directory

def hostile_directory(tmp_path) -> tuple[batches.MigrantBatch, list[str]]:
    """A neighbour's directory with one good batch among every kind of bad file."""
    good = make_batch(generation=5)
    data = batches.encode_batch(make_batch(generation=9))
    d = RunDir(tmp_path).pool_dir("island-01")
    bad = [
        put(tmp_path, "island-01", batch_name(9), data[: len(data) // 2]),  # truncated
        put(tmp_path, "island-01", batch_name(10), b""),  # empty
        put(tmp_path, "island-01", batch_name(11),
            with_header(batches.encode_batch(make_batch(generation=11)), version=2)),  # future version
        put(tmp_path, "island-01", batch_name(12),
            with_header(batches.encode_batch(make_batch(generation=12)), length=2**40)),  # huge length
        put(tmp_path, "island-01", batch_name(13),
            batches.encode_batch(make_batch("island-02", 13))),  # island id disagrees with the name
        put(tmp_path, "island-01", batch_name(14), batches.encode_batch(make_batch(generation=3))),
        put(tmp_path, "island-01", batch_name(15),
            batches.encode_batch(make_batch(generation=15, run_id="run-b"))),  # another run
        put(tmp_path, "island-01", batch_name(16),
            batches.encode_batch(make_batch(generation=16, dim=DIM + 1))),  # another genome shape
        put(tmp_path, "island-01", batch_name(17),
            batches.encode_batch(make_batch(generation=17, dtype="float64"))),  # another dtype
    ]
    flipped = bytearray(batches.encode_batch(make_batch(generation=18)))
    flipped[-7] ^= 0x10
    bad.append(put(tmp_path, "island-01", batch_name(18), bytes(flipped)))  # CRC catches it
    sparse = d / batch_name(19)
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)  # 1 GiB of nothing: must not be read
    os.mkfifo(d / batch_name(20))  # opening it for reading would block forever
    os.symlink("/dev/zero", d / batch_name(21))  # an endless file
    (d / batch_name(22)).mkdir()
    bad += [str(sparse), str(d / batch_name(20)), str(d / batch_name(21)), str(d / batch_name(22))]
    # Not batches at all, so neither read nor counted: a temporary and a non-canonical name.
    (d / ".tmp-gen-00000030.isld.99.abcdef").write_bytes(batches.encode_batch(make_batch(generation=30)))
    (d / "gen-000000031.isld").write_bytes(batches.encode_batch(make_batch(generation=31)))
    put(tmp_path, "island-01", batch_name(5), batches.encode_batch(good))
    return good, bad


@pytest.mark.timeout(30)  # a FIFO or /dev/zero read would hang: the timeout turns that into a failure
def test_hostile_directory_yields_exactly_the_good_batch_and_counts_each_bad_file_once(tmp_path,
                                                                                       monkeypatch):
    good, bad = hostile_directory(tmp_path)
    warnings: list[str] = []
    r = reader(tmp_path, warn=warnings.append)
    read_bytes = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: read_bytes.append(len(b := real_read(fd, n))) or b)
    got, n_bad = r.read_new(["island-01"])
    assert len(got) == 1 and same(got[0], good)
    assert n_bad == len(bad) == r.rejected
    assert sum(read_bytes) < 64 * 1024  # the 1 GiB file and /dev/zero were never read
    # One warning line per bad file, capped per call, the rest summed up in one line.
    assert len(warnings) == WARNINGS_PER_READ + 1
    assert warnings[-1] == f"... and {len(bad) - WARNINGS_PER_READ} more bad migrant file(s)"
    assert all(w.startswith("skipping bad migrant file: ") for w in warnings[:-1])
    # Nothing is counted twice, and the good batch is not read twice.
    assert r.read_new(["island-01"]) == ([], 0)
    # A bad file replaced under the same name is judged afresh.
    os.replace(put(tmp_path, "island-01", "x", batches.encode_batch(make_batch(generation=9))), bad[0])
    got, n_bad = r.read_new(["island-01"])
    assert n_bad == 0 and [b.generation for b in got] == [9]


def test_unreadable_files_count_once_but_transient_errors_are_retried(tmp_path, monkeypatch):
    writer, r = reader(tmp_path), reader(tmp_path)
    denied = str(writer.publish(make_batch(generation=8)))
    busy = str(writer.publish(make_batch(generation=9)))
    writer.publish(make_batch(generation=7))
    failures = {denied: errno.EACCES, busy: errno.EMFILE}
    real = atomic.read_capped

    def failing(path, max_bytes):
        if str(path) in failures:
            raise OSError(failures[str(path)], os.strerror(failures[str(path)]), str(path))
        return real(path, max_bytes)

    monkeypatch.setattr(atomic, "read_capped", failing)
    got, bad = r.read_new(["island-01"])
    # EMFILE says nothing about the file: not counted; EACCES does: counted, then skipped.
    assert bad == 1 and [b.generation for b in got] == [7]
    del failures[busy]
    writer.publish(make_batch(generation=6))
    got, bad = r.read_new(["island-01"])
    assert bad == 0 and [b.generation for b in got] == [9]


def test_decoder_bugs_are_not_swallowed(tmp_path, monkeypatch):
    reader(tmp_path).publish(make_batch())
    monkeypatch.setattr(batches, "decode_batch", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # only the format's own error means "bad file"
        reader(tmp_path).read_new(["island-01"])


# ----------------------------------------------------------------------------- garbage collection

def test_collect_keeps_the_newest_valid_batches_and_fresh_temporaries(tmp_path):
    p = reader(tmp_path)
    for g in range(1, 11):
        p.publish(make_batch("island-03", g))
    d = RunDir(tmp_path).pool_dir("island-03")
    put(tmp_path, "island-03", batch_name(99), b"garbage, newer than everything")
    put(tmp_path, "island-03", batch_name(10), b"torn")  # the newest real batch is bad
    (d / batch_name(2)).unlink()
    (d / batch_name(2)).mkdir()  # a directory among the old ones: cannot be unlinked, no crash
    now = time.time()
    stale, young = d / ".tmp-gen-00000011.isld.1.aa", d / ".tmp-gen-00000012.isld.2.bb"
    for tmp, age in ((stale, 2 * TEMP_GRACE_S), (young, 1.0)):
        tmp.write_bytes(b"partial")
        os.utime(tmp, (now - age, now - age))
    warnings: list[str] = []
    p.warn = warnings.append
    removed = p.collect("island-03", keep=3, now=now)
    left = sorted(os.listdir(d))
    # Kept: the three newest *valid* (9, 8, 7), the bad ones newer than them (10, 99),
    # the young temporary and the directory; removed: 1, 3..6 and the stale temporary.
    assert left == sorted([batch_name(g) for g in (2, 7, 8, 9, 10, 99)] + [young.name])
    assert removed == 6
    assert len(warnings) == 1 and batch_name(2) in warnings[0]
    assert p.collect("island-03", keep=3, now=now) == 0  # idempotent
    with pytest.raises(ValueError):
        p.collect("island-03", keep=0)
    assert p.collect("island-77", keep=3) == 0  # no directory: nothing to do


def test_collect_tolerates_files_vanishing_under_it(tmp_path, monkeypatch):
    p = reader(tmp_path)
    for g in range(1, 9):
        p.publish(make_batch("island-03", g))
    real_unlink = os.unlink

    def raced(path, *a, **k):  # another collector deletes each file just before us
        real_unlink(path)
        return real_unlink(path)

    monkeypatch.setattr(os, "unlink", raced)
    assert p.collect("island-03", keep=2) == 0  # nothing removed by *this* call, no error
    assert sorted(os.listdir(RunDir(tmp_path).pool_dir("island-03"))) == [batch_name(7), batch_name(8)]


def test_collect_trusts_only_what_this_pool_wrote(tmp_path, monkeypatch):
    writer = reader(tmp_path)
    for g in range(1, 5):
        writer.publish(make_batch("island-03", g))
    put(tmp_path, "island-03", batch_name(9), b"junk, newer than the kept ones")
    decoded = []
    real = batches.decode_batch
    monkeypatch.setattr(batches, "decode_batch", lambda *a, **k: decoded.append(1) or real(*a, **k))
    assert reader(tmp_path).collect("island-03", keep=2) == 0  # wrote nothing: removes nothing
    writer.publish(make_batch("island-03", 5))
    assert writer.collect("island-03", keep=2) == 3
    assert decoded == []  # judged by its own record, not by reading the files
    assert sorted(os.listdir(RunDir(tmp_path).pool_dir("island-03"))) == [
        batch_name(4), batch_name(5), batch_name(9)]


def forged(source: str, generation: int) -> bytes:
    """A valid batch of this run under `source`'s name, as anyone who can write the pool can make."""
    genomes = np.full((3, DIM), 666.0, np.float32)
    return fmt.encode(  # written with the generic encoder, not through a Pool
        "migrants", {"schema": batches.SCHEMA_VERSION, "run_id": RUN, "source": source,
                     "generation": generation, "created": 0.0, "genome_kind": "vector",
                     "dtype": "float32", "gene_shape": [DIM], "count": 3, "genomes": genomes,
                     "fitness": np.zeros(3), "origin": [source] * 3,
                     "birth": np.zeros(3, np.int64), "lineage": np.zeros(3, np.int64)})


def test_a_forged_far_future_batch_does_not_silence_its_source(tmp_path):
    owner, r = reader(tmp_path), reader(tmp_path)
    owner.publish(make_batch(generation=10))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [10]
    put(tmp_path, "island-01", batch_name(99999992), forged("island-01", 99999992))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [99999992]  # read once
    for g in (15, 20):
        owner.publish(make_batch(generation=g))
        got, bad = r.read_new(["island-01"])
        assert bad == 0 and [b.generation for b in got] == [g]  # the real batches still come
    assert r.read_new(["island-01"]) == ([], 0)


def test_forged_batches_do_not_make_the_owner_collect_its_real_ones(tmp_path):
    owner = reader(tmp_path)
    for g in range(99999990, 99999994):
        put(tmp_path, "island-01", batch_name(g), forged("island-01", g))
    for g in range(1, 4):
        owner.publish(make_batch(generation=g))
        owner.collect("island-01", keep=2)
    left = sorted(os.listdir(RunDir(tmp_path).pool_dir("island-01")))
    assert left == sorted([batch_name(2), batch_name(3)]
                          + [batch_name(g) for g in range(99999990, 99999994)])
    got, _ = reader(tmp_path).read_new(["island-01"])
    assert [b.generation for b in got] == [99999993]  # a reader meets the forgery once ...
    r = reader(tmp_path)
    r.read_new(["island-01"])
    owner.publish(make_batch(generation=4))
    assert [b.generation for b in r.read_new(["island-01"])[0]] == [4]  # ... then the real ones



# ----------------------------------------------------------------------------- GC descriptors

FD_CYCLES = r"""
import json, os, resource, sys
import numpy as np
from migration_pool import format as fmt
from migration_pool.legacy_batches import batch_name
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir
from factories import migrant_batch

root = sys.argv[1]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (48, hard))
rd = RunDir(root)

def batch(source, g):
    return migrant_batch(np.full((3, 4), g, np.float32), source=source, generation=g, created=0.0)

islands = ["island-00", "island-01", "island-02", "island-03"]
pools = {i: Pool(rd, "run-a", dtype="float32", gene_shape=(4,)) for i in islands}
d = rd.pool_dir("island-03"); d.mkdir(parents=True)
os.mkfifo(d / batch_name(10**6)); os.symlink("/dev/zero", d / batch_name(10**6 + 1))
(d / batch_name(10**6 + 2)).write_bytes(b"junk")
fds = lambda: len(os.listdir("/proc/self/fd"))
baseline, samples, received = fds(), [], 0
for cycle in range(1, 1001):
    for i in islands[:3]:
        pools[i].publish(batch(i, cycle))
    for i in islands:
        got, _ = pools[i].read_new([j for j in islands if j != i])
        received += len(got)
        pools[i].collect(i, keep=3)
    if cycle % 100 == 0:
        samples.append(fds())
leaked = [os.open(root, os.O_RDONLY) for _ in range(5)]  # negative control: a real leak shows
print(json.dumps({"baseline": baseline, "samples": samples, "received": received,
                  "bad": {i: p.rejected for i, p in pools.items()}, "control": fds()}))
"""


@pytest.mark.timeout(120)
def test_descriptors_return_to_baseline_after_1000_cycles_under_a_low_fd_limit(tmp_path, reaper):
    out = result(reaper.python(FD_CYCLES, str(tmp_path)), timeout=110)
    assert out["samples"] == [out["baseline"]] * 10
    assert out["control"] == out["baseline"] + 5  # the measurement sees a leak of 5
    assert out["received"] == 9 * 1000  # every island read each publishing neighbour every cycle
    # island-03's three hostile files are counted once by each of its three readers.
    assert out["bad"] == {"island-00": 3, "island-01": 3, "island-02": 3, "island-03": 0}
