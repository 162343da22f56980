"""Genome exchange across processes: many writers and readers (docs/DESIGN.md,
"Asynchronous"), concurrent garbage collection, and real `islands evolve` processes migrating through one run directory.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from islands.config import MigrationConfig, RunConfig
from islands.runs import join_run
from migration_pool import format as fmt
from migration_pool import batches
from migration_pool.legacy_batches import TEMP_GRACE_S, batch_generation, batch_name
from migration_pool.rundir import RunDir
from support.factories import migrant_batch
from support.procs import child_env, evolve_cmd, result, unreadable_files_possible, wait_for


CHILD_COMMON = r"""
import json, os, sys, time
import numpy as np
from migration_pool import batches, format as fmt
from migration_pool.legacy_batches import batch_name
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir
from factories import migrant_batch

K, D = int(os.environ["K"]), int(os.environ["D"])

def genomes(source, g):
    return (np.arange(K * D, dtype=np.float32).reshape(K, D) + int(source[-2:]) * 1e4 + g)

def batch(source, g):
    return migrant_batch(genomes(source, g), source=source, generation=g, created=time.time())

def start_together(root, name):
    open(os.path.join(root, "ready-" + name), "w").close()
    while not os.path.exists(os.path.join(root, "go")):  # the start line; result() bounds the wait
        time.sleep(0.001)

rd = RunDir(sys.argv[1])
pool = Pool(rd, "run-a", dtype="float32", gene_shape=(D,), warn=lambda message: None)
"""

WRITER = CHILD_COMMON + r"""
island, mode, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
directory = rd.pool_dir(island)
directory.mkdir(parents=True, exist_ok=True)
start_together(sys.argv[1], island)
deadline, g = time.monotonic() + seconds, 0
while time.monotonic() < deadline:
    g += 1
    if mode == "atomic":
        pool.publish(batch(island, g))
    else:  # negative control: write straight into the final name, no protocol
        with open(directory / batch_name(g), "wb") as f:
            f.write(batches.encode_batch(batch(island, g)))
    pool.collect(island, keep=3)  # garbage collection races with the readers
print(json.dumps({"published": g}))
"""

READER = CHILD_COMMON + r"""
name, seconds, sources = sys.argv[2], float(sys.argv[3]), sys.argv[4].split(",")
start_together(sys.argv[1], name)
deadline, last = time.monotonic() + seconds, {}
reads = corrupt = backwards = wrong = 0
while time.monotonic() < deadline:
    got, bad = pool.read_new(sources)
    corrupt += bad
    for b in got:
        reads += 1
        backwards += b.generation <= last.get(b.source, 0)
        last[b.source] = b.generation
        wrong += not np.array_equal(b.genomes, genomes(b.source, b.generation))
print(json.dumps({"reads": reads, "corrupt": corrupt, "backwards": backwards, "wrong": wrong}))
"""


def many_writers_and_readers(tmp_path, reaper, mode: str, n: int = 6, seconds: float = 1.5):
    env = child_env(K="8", D="4096")  # 128 KiB batches: writing one takes a while
    islands = [f"island-{i:02d}" for i in range(n)]
    writers = [reaper.python(WRITER, str(tmp_path), i, mode, str(seconds), env=env) for i in islands]
    readers = [reaper.python(READER, str(tmp_path), f"reader-{i}", str(seconds), ",".join(islands),
                             env=env) for i in range(n)]
    wait_for(lambda: len([f for f in os.listdir(tmp_path) if f.startswith("ready-")]) == 2 * n,
             what="writers and readers")
    (tmp_path / "go").touch()
    return [result(w) for w in writers], [result(r) for r in readers]


@pytest.mark.timeout(120)
def test_6_writers_6_readers_never_see_a_corrupt_or_older_batch(tmp_path, reaper):
    writers, readers = many_writers_and_readers(tmp_path, reaper, "atomic")
    assert all(w["published"] >= 10 for w in writers)
    assert all(r["reads"] >= 10 for r in readers)  # positive control: they did read
    assert [(r["corrupt"], r["backwards"], r["wrong"]) for r in readers] == [(0, 0, 0)] * 6


@pytest.mark.timeout(120)
def test_control_in_place_writes_give_corrupt_reads(tmp_path, reaper):
    writers, readers = many_writers_and_readers(tmp_path, reaper, "inplace")
    assert sum(r["corrupt"] for r in readers) > 0
    assert sum(r["wrong"] for r in readers) == 0  # the CRC still keeps torn data out


# ----------------------------------------------------------------------------- concurrent GC

COLLECTOR = CHILD_COMMON + r"""
islands, seconds, order = sys.argv[2].split(","), float(sys.argv[3]), sys.argv[4]
if order == "reverse":
    islands.reverse()
start_together(sys.argv[1], "collector-" + order)
deadline, removed, passes = time.monotonic() + seconds, 0, 0
while time.monotonic() < deadline:
    for island in islands:
        removed += pool.collect(island, keep=4)
    passes += 1
print(json.dumps({"removed": removed, "passes": passes}))
"""

PUBLISHER = CHILD_COMMON + r"""
islands, seconds, first = sys.argv[2].split(","), float(sys.argv[3]), int(sys.argv[4])
start_together(sys.argv[1], "publisher-" + islands[0])
deadline, g, newest, removed = time.monotonic() + seconds, first, {}, 0
while time.monotonic() < deadline:
    for island in islands:
        pool.publish(batch(island, g))
        newest[island] = g
        removed += pool.collect(island, keep=4)  # the owner collects; the collectors race it
    g += 1
print(json.dumps({"newest": newest, "removed": removed}))
"""


@pytest.mark.timeout(120)
def test_concurrent_gc_keeps_the_newest_valid_batches_and_fresh_temporaries(tmp_path, reaper):
    env = child_env(K="2", D="4")
    rd = RunDir(tmp_path)
    islands = [f"island-{i:02d}" for i in range(32)]
    now, created = time.time(), 0
    for island in islands:
        d = rd.pool_dir(island)
        d.mkdir(parents=True)
        k = int(island[-2:])
        for g in range(1, 61):
            genomes = np.arange(8, dtype=np.float32).reshape(2, 4) + k * 1e4 + g
            data = batches.encode_batch(migrant_batch(genomes, source=island, generation=g, created=now))
            (d / batch_name(g)).write_bytes(data if g != 30 else b"garbage among the old ones")
        (d / batch_name(10**6)).write_bytes(b"garbage newer than everything")
        for j, age in enumerate((3 * TEMP_GRACE_S, 2 * TEMP_GRACE_S, 0, 1)):
            tmp = d / f".tmp-{batch_name(61 + j)}.{j}.abcdef"
            tmp.write_bytes(b"half a batch")
            os.utime(tmp, (now - age, now - age))
        created += 60 + 1 + 4
    names = ",".join(islands)
    procs = [
        reaper.python(COLLECTOR, str(tmp_path), names, "1.5", "forward", env=env),
        reaper.python(COLLECTOR, str(tmp_path), names, "1.5", "reverse", env=env),
        reaper.python(PUBLISHER, str(tmp_path), ",".join(islands[0::2]), "1.5", "61", env=env),
        reaper.python(PUBLISHER, str(tmp_path), ",".join(islands[1::2]), "1.5", "61", env=env),
        reaper.python(READER, str(tmp_path), "reader", "1.5", names, env=env),
    ]
    wait_for(lambda: len([f for f in os.listdir(tmp_path) if f.startswith("ready-")]) == 5,
             what="collectors, publishers and the reader")
    (tmp_path / "go").touch()
    collectors = [result(p) for p in procs[:2]]
    publishers = [result(procs[2]), result(procs[3])]
    newest = {**publishers[0]["newest"], **publishers[1]["newest"]}
    read = result(procs[4])
    published = sum(g - 60 for g in newest.values())
    assert all(c["passes"] >= 2 for c in collectors) and published >= 64
    assert set(newest) == set(islands)  # every owner published (and so collected) at least once
    removed = sum(c["removed"] for c in collectors) + sum(p["removed"] for p in publishers)
    remaining = 0
    for island in islands:
        files = os.listdir(rd.pool_dir(island))
        remaining += len(files)
        top = newest.get(island, 60)
        kept = sorted(g for f in files if (g := batch_generation(f)) is not None)
        assert kept == [top - 3, top - 2, top - 1, top, 10**6], island
        temps = sorted(f for f in files if f.startswith(".tmp-"))
        assert temps == [f".tmp-{batch_name(63)}.2.abcdef", f".tmp-{batch_name(64)}.3.abcdef"]
    # Every removal was counted by exactly one collector: racing ones saw ENOENT and moved on.
    assert created + published == remaining + removed
    # The reader met each island's newest garbage once and never read anything torn or stale.
    assert (read["corrupt"], read["backwards"], read["wrong"]) == (32, 0, 0)
    assert read["reads"] >= 32


# ----------------------------------------------------------------------------- real islands

GENERATIONS = 60
EVENTS = list(range(5, GENERATIONS, 5))  # the generations that migrate (--migrate-every 5)


def run_islands(tmp_path, reaper, n: int, topology: str, stall: str | None = None) -> RunDir:
    """`n` real islands that take turns (tests/support/slow_problem.py): each evaluates and
    migrates while the others wait, so what they exchange does not depend on the machine's
    load. With `stall`, that island is stopped (SIGSTOP) at its first evaluation until the
    others have run as far as they can without it: a descheduled neighbour, only longer."""
    tmp_path.mkdir(exist_ok=True)
    root = tmp_path / "run"
    barrier = tmp_path / "barrier"
    options = ["--problem", "slow_problem:make", "--param", "delay=0.003",
               "--param", f"barrier={barrier}", "--param", f"parties={n}",
               "--param", f"turns={GENERATIONS + 1}", "--param", "rows=40",
               "--dim", "10", "--population", "40", "--generations", str(GENERATIONS),
               "--migrate-every", "5", "--migrants", "3", "--topology", topology,
               "--checkpoint-every", "20", "--seed", "3"]
    logs = [open(tmp_path / f"log-{i}", "w") for i in range(n)]
    procs = [reaper.start(evolve_cmd(f"island-{i:02d}", root, *options, quiet=False), stdout=log, stderr=log,
                          env=child_env(SLOW_PROBLEM_PLACE=str(i)))
             for i, log in enumerate(logs)]
    if stall is not None:
        place = int(stall[-2:])
        stalled, others = procs[place], [p for j, p in enumerate(procs) if j != place]
        wait_for(lambda: barrier.is_dir() and len([f for f in os.listdir(barrier) if f != "turns"]) == n,
                 what="every island at its first evaluation", interval=0.001)
        os.kill(stalled.pid, signal.SIGSTOP)
        wait_for(lambda: all(p.poll() is not None for p in others) or waiting_for(barrier / "turns", place, n),
                 what=f"the islands beside the stopped {stall} to finish or wait for it")
        ended = sorted(os.listdir(barrier / "turns")) if (barrier / "turns").is_dir() else []
        (tmp_path / "turns-ended-in-the-stall").write_text(" ".join(ended))
        os.kill(stalled.pid, signal.SIGCONT)
    for i, p in enumerate(procs):
        code = p.wait(timeout=120)
        logs[i].close()
        assert code == 0, (tmp_path / f"log-{i}").read_text()[-2000:]
    return RunDir(root)


def waiting_for(turns, place: int, n: int) -> bool:
    """Whether every island but the one at `place`, stopped, has run as far as it can without
    it. Stopped in its first turn, the island has not ended that turn (`done-<place>`) and
    its predecessors have ended theirs; stopped after it, the others have ended every turn
    up to its second one (`done-<n + place - 1>`)."""
    def done(turn: int) -> bool:
        return turn < 0 or (turns / f"done-{turn}").exists()
    return turns.is_dir() and (done(n + place - 1) if done(place) else done(place - 1))


def origins(rd: RunDir, island: str) -> tuple[np.ndarray, np.ndarray]:
    checkpoint, errors = rd.island(island).load_checkpoint()
    assert checkpoint is not None and not errors
    return np.asarray(checkpoint["state"]["origin"]), np.asarray(checkpoint["state"]["lineage"])


def migration_events(rd: RunDir, island: str) -> list[dict]:
    return [h["migration"] for h in rd.island(island).read_history() if "migration" in h]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("n", [2, 4])
def test_real_islands_on_a_ring_exchange_genomes(tmp_path, reaper, n):
    rd = run_islands(tmp_path, reaper, n, "ring")
    events = {i: migration_events(rd, f"island-{i:02d}") for i in range(n)}
    foreign = {}
    for i in range(n):
        island, before = f"island-{i:02d}", (i - 1) % n
        source = f"island-{before:02d}"
        status = rd.island(island).read_status()
        m = status["migration"]
        assert status["state"] == "finished" and status["generation"] == GENERATIONS
        assert m["events"] == len(EVENTS) and m["sent"] == 3 * len(EVENTS)
        # Ring: island i reads only island i-1, and it did.
        assert [k for k in m if k.startswith("from:")] == [f"from:{source}"]
        assert m[f"from:{source}"] == m["received"] > 0
        assert 0 < m["adopted"] <= m["received"] and m["rejected"] == m["received"] - m["adopted"]
        assert m["bad_files"] == 0
        assert len(events[i]) == len(EVENTS)
        for key in ("sent", "received", "adopted", "rejected"):
            assert sum(e[key] for e in events[i]) == m[key]
        # The islands take turns in order, so at each event island i finds the batch its
        # predecessor published at the same event if that one went first, at the event before
        # if it goes after (island-00 reads the last island); each batch is read once.
        published = [e["sent"] for e in events[before]]
        if before > i:
            published = [0] + published[:-1]
        assert [e["received"] for e in events[i]] == published, island
        assert [e["sources"] for e in events[i]] == [[source] if k else [] for k in published]
        origin, lineage = origins(rd, island)
        assert set(origin.tolist()) <= set(range(n))
        assert ((lineage >> 32) == origin).all()  # provenance travels with every genome
        # Adopted immigrants join the population as foreign lineages (the sampled history
        # lines' share), whether or not a lineage then survives to the last generation.
        foreign[island] = max(h["foreign"] for h in rd.island(island).read_history() if h.get("foreign") is not None)
    assert sum(1 for v in foreign.values() if v > 0) >= 1, foreign


def exchanged(rd: RunDir, n: int) -> dict:
    """What each island sent, received and adopted at each event, and where its genomes came from."""
    out = {}
    for i in range(n):
        island = f"island-{i:02d}"
        origin, _ = origins(rd, island)
        out[island] = {"events": migration_events(rd, island), "origin": origin.tolist(),
                       "best": rd.island(island).read_status()["best_ever"]}
        for e in out[island]["events"]:
            del e["seconds"]
    return out


@pytest.mark.timeout(240)
def test_a_stalled_neighbour_changes_nothing_the_islands_exchange(tmp_path, reaper):
    # A loaded machine deschedules a process for a while; here island-01 is stopped at its
    # first evaluation until island-00 has gone as far as it can without it.
    calm = exchanged(run_islands(tmp_path / "calm", reaper, 2, "ring"), 2)
    stalled = exchanged(run_islands(tmp_path / "stalled", reaper, 2, "ring", stall="island-01"), 2)
    for island in calm:
        assert [e["received"] for e in stalled[island]["events"]] == [e["received"] for e in calm[island]["events"]], island
    assert stalled == calm
    # The stall was real: island-00 went on to the end of its first turn meanwhile.
    assert "done-0" in (tmp_path / "stalled" / "turns-ended-in-the-stall").read_text().split()


@pytest.mark.timeout(240)
def test_isolated_islands_keep_only_their_own_genomes(tmp_path, reaper):
    rd = run_islands(tmp_path, reaper, 2, "none")
    for i in range(2):
        island = f"island-{i:02d}"
        m = rd.island(island).read_status()["migration"]
        assert m["sent"] > 0 and m["received"] == 0 and m["adopted"] == 0
        assert not [k for k in m if k.startswith("from:")]
        origin, lineage = origins(rd, island)
        assert (origin == i).all() and ((lineage >> 32) == i).all()


# ----------------------------------------------------------------------------- hostile pool

def hostile_run(tmp_path) -> tuple[RunDir, str]:
    config = RunConfig(problem="rastrigin", dim=10, population=40, generations=40,
                       migration=MigrationConfig(every=5, migrants=3, topology="ring"))
    run, _ = join_run(tmp_path / "run", config, {})
    rd = RunDir(run.root)
    rd.ensure("island-01")  # a neighbour that exists but whose pool is full of trouble
    return rd, run.run_id


def neighbour_batch(run_id: str, generation: int, *, dim: int = 10) -> bytes:
    # In the run's dtype (rastrigin evolves in float64): the pool pins a run's genome dtype.
    genomes = np.linspace(-1, 1, 3 * dim, dtype=np.float64).reshape(3, dim) * (generation + 1) / 10
    return batches.encode_batch(migrant_batch(genomes, run_id=run_id, generation=generation, created=time.time(),
                                          lineage=np.full(3, 1 << 32)))


def evolve_beside(rd: RunDir, tmp_path, reaper, **popen) -> tuple[dict, str]:
    with open(tmp_path / "log", "w") as log:
        proc = reaper.start(evolve_cmd("island-00", rd.root, quiet=False), stdout=log, stderr=log, **popen)
        code = proc.wait(timeout=120)
    assert code == 0, (tmp_path / "log").read_text()[-2000:]
    status = rd.island("island-00").read_status()
    assert status["state"] == "finished" and status["generation"] == 40
    return status["migration"], (tmp_path / "log").read_text()


@pytest.mark.timeout(120)
def test_an_island_keeps_evolving_beside_garbage_foreign_and_huge_files(tmp_path, reaper):
    rd, run_id = hostile_run(tmp_path)
    d = rd.pool_dir("island-01")
    (d / batch_name(1)).write_bytes(neighbour_batch(run_id, 1))  # the one good batch
    bad = {
        2: os.urandom(3000),
        3: neighbour_batch("another-run", 3),
        4: neighbour_batch(run_id, 4, dim=11),
        5: fmt.HEADER.pack(fmt.MAGIC, fmt.FORMAT_VERSION, 0, b"migrants", 2**62, 0) + b"\x80",
    }
    for g, data in bad.items():
        (d / batch_name(g)).write_bytes(data)
    with open(d / batch_name(6), "wb") as f:
        f.truncate(300 << 20)  # sparse, over the reader's size cap
    (d / "README.txt").write_text("not a batch: ignored, not counted")
    m, log = evolve_beside(rd, tmp_path, reaper)
    assert m["bad_files"] == 5  # each counted once, though read_new ran at 7 events
    assert m["received"] == 3 and m["from:island-01"] == 3 and m["adopted"] == 3
    for g in (2, 3, 4, 5, 6):
        assert batch_name(g) in log  # one warning names each bad file
    first = next(h["migration"] for h in rd.island("island-00").read_history() if "migration" in h)
    assert first["bad_files"] == 5 and first["sources"] == ["island-01"]


@pytest.mark.timeout(120)
def test_an_island_counts_a_file_it_may_not_read(tmp_path, reaper):
    possible, preexec, reason = unreadable_files_possible(tmp_path)
    # Fail loudly: a skipped check reads as a passed one (as root, the child must drop the
    # capabilities that let root ignore file modes).
    assert possible, f"cannot make file modes bind here: {reason}"
    rd, run_id = hostile_run(tmp_path)
    d = rd.pool_dir("island-01")
    (d / batch_name(1)).write_bytes(neighbour_batch(run_id, 1))
    secret = d / batch_name(2)
    secret.write_bytes(neighbour_batch(run_id, 2))  # valid, but unreadable to the island
    secret.chmod(0)
    m, log = evolve_beside(rd, tmp_path, reaper, preexec_fn=preexec)
    assert m["bad_files"] == 1 and m["received"] == 3
    assert "Permission denied" in log and batch_name(2) in log
