"""`islands status`: the pure report helpers, error handling, and real runs.

The real runs are five small `python -m islands evolve` processes started together (one
module fixture): run A, 3 islands migrating on a ring, runs to the end; run B, 2 islands with
`--topology none`, runs "forever" until the test stops one with SIGTERM and kills the other.
"""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import psutil
import pytest
from click.testing import CliRunner

from islands.exit_codes import EXIT_STOPPED
from islands.status import metrics as met
from islands.status import report as rep
from islands.status.reader import sample_records
from islands.status.cli import status as status_cmd
from islands.status.liveness import pid_alive
from islands.status.record import IslandStatus, Migration
from islands.status.schema import SCHEMA, SCHEMA_VERSION, STATES
from migration_pool.island_files import IslandFiles
from migration_pool.rundir import RunDir
from support.factories import status_body
from support.procs import child_env, wait_for

HERE = socket.gethostname()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
WAIT = 120.0  # the deadline of every wait: it only guards against a hang
SMALL = ["--problem", "rastrigin", "--dim", "5", "--population", "24", "--target", "1e9",
         "--checkpoint-every", "50", "--seed", "3"]


def _by_id(report: dict) -> dict[str, dict]:
    return {i["island"]: i for i in report["islands"]}


# -- pure helpers ---------------------------------------------------------------------------
def _status(**kw) -> dict:
    now = 1_000_000.0
    base = {"state": "running", "host": HERE, "pid": 1234, "started": now - 100, "heartbeat": now - 1}
    return {**base, **kw}


@pytest.mark.parametrize("status, alive, expected", [
    (_status(state="finished"), False, "finished"),
    (_status(state="stopped"), False, "stopped"),
    (_status(), True, "running"),
    (_status(heartbeat=1_000_000.0 - 500), True, "stale"),  # alive but silent: hung
    (_status(), False, "dead"),
    (_status(heartbeat=1_000_000.0 - 500), False, "dead"),
    (_status(host="elsewhere"), False, "running"),  # pid not checked on another host
    (_status(host="elsewhere", heartbeat=1_000_000.0 - 500), True, "stale"),
    (_status(heartbeat=None), True, "stale"),
    (_status(state="exploded"), True, "unreadable"),
    # Another host's island that wrote every second (100 writes in 100 s): stale after 30 s ...
    (_status(host="elsewhere", beat=100, heartbeat=1_000_000.0 - 35), True, "stale"),
    (_status(host="elsewhere", beat=100, heartbeat=1_000_000.0 - 25), True, "running"),
    # ... one that wrote every 20 s (slow generations) only after the 60 s threshold
    (_status(host="elsewhere", beat=5, started=1_000_000.0 - 150, heartbeat=1_000_000.0 - 50), True, "running"),
    (_status(host="elsewhere", beat=5, started=1_000_000.0 - 170, heartbeat=1_000_000.0 - 70), True, "stale"),
    # on this host the pid decides: a live pid silent for 35 s is not called hung yet
    (_status(beat=100, heartbeat=1_000_000.0 - 35), True, "running"),
])
def test_classify(status, alive, expected):
    state, note = met.classify(IslandStatus.from_body(status), now=1_000_000.0, here=HERE, alive=lambda pid, started: alive, stale_after=60)
    assert state == expected
    assert (note is None) == (expected in ("running", "finished"))


def test_pid_alive_detects_reuse_exit_and_zombies():
    me = psutil.Process()
    assert pid_alive(os.getpid(), time.time())
    # A status written before this process existed: its pid now belongs to someone else.
    assert not pid_alive(os.getpid(), me.create_time() - 100)
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        started = time.time()
        wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE,
                 timeout=WAIT, what="a zombie")
        assert not pid_alive(child.pid, started)  # exited, not reaped yet
    finally:
        child.wait()
    assert not pid_alive(child.pid, started)  # reaped: gone


def test_between_island_diversity():
    assert met.between_island_diversity([]) is None
    assert met.between_island_diversity([np.zeros(4)]) is None
    assert met.between_island_diversity([np.full(4, 0.3)] * 3) == pytest.approx(0.0, abs=1e-7)
    assert met.between_island_diversity([np.zeros(4), np.ones(4)]) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    pts = rng.random((7, 6))
    brute = np.mean([np.linalg.norm(pts[i] - pts[j]) for i in range(7) for j in range(i + 1, 7)]) / math.sqrt(6)
    # an odd-shaped centroid and a None are ignored, not an error
    assert met.between_island_diversity(list(pts) + [np.zeros(3), None]) == pytest.approx(brute)


def test_migration_matrix():
    m = met.migration_matrix({i: Migration.from_body(c) for i, c in {
        "island-01": {"from:island-00": 7, "from:island-02": 3, "sent": 9},
        "island-00": {"from:island-05": 2},
        "island-02": {},
    }.items()})
    assert m["receivers"] == ["island-00", "island-01", "island-02"]
    assert m["sources"] == ["island-00", "island-01", "island-02", "island-05"]
    assert "counts" not in m  # dense only when asked for
    assert m["flows"] == [["island-01", "island-00", 7], ["island-01", "island-02", 3], ["island-00", "island-05", 2]]
    assert m["flows_total"] == 3
    full = met.migration_matrix({i: Migration.from_body(c) for i, c in {
        "island-01": {"from:island-00": 7, "from:island-02": 3, "sent": 9},
        "island-00": {"from:island-05": 2},
        "island-02": {},
    }.items()}, full=True, max_flows=2)
    assert full["counts"] == [[0, 0, 0, 2], [7, 0, 3, 0], [0, 0, 0, 0]]
    assert len(full["flows"]) == 2 and full["flows_total"] == 3  # the list is capped, the total is not


def test_diversity_over_time_weighs_islands_equally():
    chatty = (np.arange(0, 100), np.full(100, 0.5))  # reports every generation
    quiet = (np.array([5, 55]), np.array([0.1, 0.1]))
    out = met.diversity_over_time({"a": chatty, "b": quiet}, bins=2)
    assert [p["islands"] for p in out] == [2, 2]
    assert [p["mean"] for p in out] == pytest.approx([0.3, 0.3])
    assert [p["min"] for p in out] == pytest.approx([0.1, 0.1])
    assert all(0 <= p["generation"] <= 99 for p in out)
    assert met.diversity_over_time({"a": (np.array([], dtype=int), np.array([]))}) == []


def test_history_sampling(tmp_path):
    rd = RunDir(tmp_path)
    rd.ensure("island-00")
    rd.island("island-00").append_history([{"generation": g, "diversity": g / 10} if g % 2 else {"generation": g}
                                    for g in range(101)])
    with open(rd.island("island-00").history_path, "ab") as f:
        f.write(b'not json\n{"generation": 999, "diversity": 1')  # a bad line, then a torn one
    lines = rd.island("island-00").history_lines()
    assert len(lines) == 102  # the torn line is not a line
    sample = sample_records(lines, 10, b'"diversity"')
    assert 2 <= len(sample) <= 10
    assert sample[0].generation == 1 and sample[-1].generation == 99
    assert all(r.diversity is not None for r in sample)
    assert len(sample_records(lines, 1000)) == 101  # everything but the bad line


# -- synthetic runs: errors and launcher state ----------------------------------------------
def _fake_run(root: Path, islands: int = 2, state: str = "finished") -> RunDir:
    rd = RunDir(root)
    ids = [f"island-{i:02d}" for i in range(islands)]
    rd.create_or_read_manifest(lambda: {"schema": 1, "run_id": "r1", "created": 0.0, "islands": ids,
                                        "overrides": {i: {"mutation_sigma": 0.2} for i in ids}, "config": {"problem": "sphere", "dim": 3,
                                                                    "migration": {"every": 0}}})
    for n, island in enumerate(ids):
        rd.ensure(island)
        rd.island(island).write_status(status_body(island, state=state, best=-1.0 - n, mean=-2.0, best_ever=-0.5 - n,
                                            best_genome=np.arange(3.0), evals_per_sec=50.0, diversity=0.1,
                                            foreign_share=0.0, centroid=np.full(3, 0.5), host=HERE, pid=1,
                                            started=0.0, heartbeat=time.time()))
    return rd


def _invoke(*args: str):
    return CliRunner().invoke(status_cmd, list(args))


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "not a run directory"),
    (lambda p: (p / "file").write_text("x") and p / "file", "is not a directory"),
])
def test_not_a_run_is_a_clear_error(tmp_path, make, message):
    result = _invoke("--run-dir", str(make(tmp_path)))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    _fake_run(tmp_path)
    RunDir(tmp_path).manifest_path.write_bytes(b"ISLD garbage")
    result = _invoke("--run-dir", str(tmp_path))
    assert result.exit_code == 1 and result.output.startswith("error:")
    assert isinstance(result.exception, SystemExit)


def test_corrupt_and_missing_status_are_shown_per_island(tmp_path):
    rd = _fake_run(tmp_path, islands=3)
    rd.island("island-01").status_path.write_bytes(b"\x00" * 40)
    rd.island("island-02").status_path.unlink()
    result = _invoke("--run-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    VALIDATOR.validate(report)
    islands = _by_id(report)
    assert islands["island-00"]["state"] == "finished" and islands["island-00"]["generation"] == 10
    assert islands["island-01"]["state"] == "unreadable" and "corrupt" in islands["island-01"]["note"]
    assert islands["island-02"]["state"] == "pending" and islands["island-02"]["generation"] is None
    assert islands["island-00"]["overrides"] == {"mutation_sigma": 0.1}  # the island's own word
    assert islands["island-02"]["overrides"] == {"mutation_sigma": 0.2}  # from the manifest
    assert report["totals"]["states"] == {"finished": 1, "pending": 1, "unreadable": 1}
    # The run's share: the islands not reporting count at 0 (before: left out, so the share
    # was the finished island's 100% until the others reported).
    assert report["totals"]["progress"] == pytest.approx(1 / 3)
    table = _invoke("--run-dir", str(tmp_path))
    assert table.exit_code == 0 and "unreadable" in table.output and "corrupt" in table.output


def test_launcher_state_gives_restarts_and_failed(tmp_path, monkeypatch):
    _fake_run(tmp_path, islands=2)
    state = {"run_id": "r1", "islands": {"island-00": {"restarts": 2, "state": "failed", "reason": "exit 1 at start"},
                                         "island-01": {"restarts": 1, "state": "running"}}}
    monkeypatch.setattr(RunDir, "read_launcher_state", lambda self: state, raising=False)
    islands = _by_id(rep.build_report(tmp_path))
    assert (islands["island-00"]["state"], islands["island-00"]["restarts"]) == ("finished", 2)  # finished wins
    monkeypatch.setattr(IslandFiles, "read_status", lambda self: None)
    islands = _by_id(rep.build_report(tmp_path))
    assert (islands["island-00"]["state"], islands["island-01"]["state"]) == ("failed", "pending")
    assert "exit 1 at start" in islands["island-00"]["note"]
    assert islands["island-01"]["restarts"] == 1
    assert rep.build_report(tmp_path)["notes"] == []  # a launcher that ended: nothing to say
    state.update(state="running", pid=os.getpid(), host=HERE, started=time.time())
    assert rep.build_report(tmp_path)["notes"] == []  # alive
    gone = rep.build_report(tmp_path, alive=lambda pid, started: False)["notes"]
    assert len(gone) == 1 and f"launcher (pid {os.getpid()}) is gone" in gone[0]
    state["run_id"] = "an older run"  # a leftover state file of another run is ignored
    islands = _by_id(rep.build_report(tmp_path))
    assert islands["island-00"]["state"] == "pending" and islands["island-00"]["restarts"] == 0


def test_schema_is_valid_and_has_teeth(tmp_path):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    report = rep.build_report(_fake_run(tmp_path).root)
    VALIDATOR.validate(report)
    assert report["archipelago"]["champion"] == {"island": "island-00", "fitness": -0.5, "generation": 7,
                                                 "source": "status", "genome": [0.0, 1.0, 2.0]}
    broken = [json.loads(json.dumps(report)) for _ in range(4)]
    broken[0]["islands"][0]["state"] = "sleeping"
    del broken[1]["archipelago"]["migration_matrix"]
    broken[2]["islands"][0]["undocumented"] = 1
    broken[3]["schema_version"] = SCHEMA_VERSION + 1
    for doc in broken:
        assert not VALIDATOR.is_valid(doc)
    assert set(STATES) >= set(report["totals"]["states"])


def test_watch_refreshes_and_ctrl_c_exits_zero(tmp_path, monkeypatch):
    _fake_run(tmp_path, state="running")  # a finished run would end the watch by itself
    calls = []
    real = rep.build_report

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    def sleep(_s):  # the third pause is "Ctrl+C"
        if len(calls) >= 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("islands.status.cli.build_report", counting)
    monkeypatch.setattr("islands.status.cli.time.sleep", sleep)
    result = _invoke("--run-dir", str(tmp_path), "--watch", "0.5")
    assert result.exit_code == 0 and len(calls) == 3
    assert "island-01" in result.output


def test_report_does_not_import_torch(tmp_path):
    _fake_run(tmp_path)
    code = ("import sys; from islands.status.cli import status; from islands.status.report import build_report; "
            f"build_report({str(tmp_path)!r}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True,
                         start_new_session=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- real runs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run A (3 islands, ring migration, 200 generations) and run B (2 isolated, endless)."""
    base = tmp_path_factory.mktemp("status-runs")
    a, b = base / "A", base / "B"
    procs: dict[tuple[str, str], subprocess.Popen] = {}

    def start(root: Path, island: str, *extra: str) -> None:
        cmd = [sys.executable, "-m", "islands", "evolve", island, "--run-dir", str(root), "--quiet", *SMALL, *extra]
        procs[(root.name, island)] = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL,
                                                      stderr=subprocess.PIPE, start_new_session=True)

    try:
        # The first island of each run creates its manifest; the others join it.
        # Every batch adopted however far ahead its island ran (the default refuses batches from a
        # neighbour ahead: under load the figures checked here could then have no migrants at all).
        start(a, "island-00", "--generations", "200", "--migrate-every", "5", "--topology", "ring",
              "--migration-max-lead", "-1")
        start(b, "island-00", "--generations", "10000000", "--migrate-every", "5", "--topology", "none")
        wait_for(lambda: RunDir(a).is_run() and RunDir(b).is_run(), timeout=WAIT, what="the manifests")
        for island in ("island-01", "island-02"):
            start(a, island)
        start(b, "island-01")
        for island in ("island-00", "island-01", "island-02"):
            p = procs[("A", island)]
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err.decode()[-2000:]
        yield a, b, procs
    finally:
        for p in procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()
            if p.stderr:
                p.stderr.close()


def test_real_run_agrees_with_checkpoints_and_history(runs, tmp_path):
    from islands.problems import make_problem

    a, _, _ = runs
    rd = RunDir(a)
    report = rep.build_report(a, full_matrix=True)
    VALIDATOR.validate(report)
    islands = _by_id(report)
    assert sorted(islands) == ["island-00", "island-01", "island-02"]
    problem = make_problem("rastrigin", 5)
    best_ever = {}
    for n, (island, entry) in enumerate(sorted(islands.items())):
        ckpt, errors = rd.island(island).load_checkpoint()
        history = rd.island(island).read_history()
        assert ckpt is not None and not errors
        assert entry["state"] == "finished" and entry["reason"] == "generations"
        assert entry["generation"] == ckpt["generation"] == history[-1]["generation"] == 200
        assert entry["checkpoint_generation"] == 200 and entry["progress"] == 1.0
        assert entry["evaluations"] == ckpt["evaluations"] == history[-1]["evaluations"]
        assert entry["best_ever"] == ckpt["best_ever"] == history[-1]["best_ever"]
        assert entry["best_ever_generation"] == ckpt["best_ever_generation"]
        pop = ckpt["state"]
        fitness = np.asarray(pop["fitness"], dtype=np.float64)
        assert entry["best"] == pytest.approx(fitness.max(), rel=1e-6)
        assert entry["mean"] == pytest.approx(fitness.mean(), rel=1e-5)
        genomes = np.asarray(pop["genomes"], dtype=np.float64)
        spread = (genomes.std(axis=0) / (problem.upper - problem.lower)).mean()
        assert entry["diversity"] == pytest.approx(spread, rel=1e-4)
        assert entry["diversity"] == pytest.approx(history[-1]["diversity"], abs=1e-6)
        assert entry["foreign_share"] == pytest.approx(float(np.mean(np.asarray(pop["origin"]) != n)))
        for key in ("events", "sent", "received", "adopted", "rejected"):
            assert entry["migration"][key] == ckpt["migration"][key]
        events = [h["migration"] for h in history if "migration" in h]
        assert len(events) == entry["migration"]["events"] > 0
        for key in ("sent", "received", "adopted", "rejected"):
            assert entry["migration"][key] == sum(e[key] for e in events)
        best_ever[island] = ckpt["best_ever"]
    arch = report["archipelago"]
    mat = arch["migration_matrix"]
    for island, row in zip(mat["receivers"], mat["counts"]):
        assert sum(row) == islands[island]["migration"]["received"]
        sources = {s for h in rd.island(island).read_history() for s in h.get("migration", {}).get("sources", [])}
        assert {s for s, c in zip(mat["sources"], row) if c} == sources
        assert row[mat["sources"].index(island)] == 0  # never from itself
    assert sum(map(sum, mat["counts"])) > 0
    dense = {(r, src): c for r, row in zip(mat["receivers"], mat["counts"]) for src, c in zip(mat["sources"], row) if c}
    assert {(r, src): c for r, src, c in mat["flows"]} == dense and mat["flows_total"] == len(dense)
    champion = max(best_ever, key=best_ever.get)
    assert (arch["champion"]["island"], arch["champion"]["fitness"]) == (champion, best_ever[champion])
    shares = [i["foreign_share"] for i in islands.values()]
    assert arch["mean_foreign_share"] == pytest.approx(sum(shares) / len(shares))
    # Adopted immigrants joined as foreign lineages (the sampled history lines' share), whether or
    # not one of them survives to the last generation (on this timing-dependent run, at times none).
    assert any((h.get("foreign") or 0) > 0 for i in islands for h in rd.island(i).read_history())
    assert 0 < arch["between_island_diversity"] < 1
    assert arch["diversity_over_time"] and all(0 <= p["mean"] <= 1 for p in arch["diversity_over_time"])
    assert report["totals"]["states"] == {"finished": 3}
    assert report["totals"]["evaluations"] == sum(i["evaluations"] for i in islands.values())
    # The islands kept history summaries; without them (an earlier version's islands) the report
    # samples the histories instead, and with 21 sampled lines each both see every one of them.
    assert all(rd.island(i).summary_path.is_file() for i in islands)
    copy = tmp_path / "without-summaries"
    shutil.copytree(a, copy, ignore=shutil.ignore_patterns("summary.isld", ".claim", "*.lock"))
    sampled = rep.build_report(copy, full_matrix=True)
    assert sampled["archipelago"]["diversity_over_time"] == arch["diversity_over_time"]
    before, after = sampled["archipelago"]["lineage"], arch["lineage"]
    assert (before["takeover"], before["effective_origins"]) == (after["takeover"], after["effective_origins"])
    assert len(before["over_time"]) == len(after["over_time"]) > 0
    for p, q in zip(before["over_time"], after["over_time"]):
        assert p == {**q, "effective_origins": pytest.approx(q["effective_origins"])}


def test_real_cli_json_validates_and_plot_opens(runs, tmp_path):
    from PIL import Image

    a, _, _ = runs
    out = subprocess.run([sys.executable, "-m", "islands", "status", "--run-dir", str(a), "--json"],
                         env=child_env(), capture_output=True, text=True, start_new_session=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    VALIDATOR.validate(report)
    assert report["totals"]["states"] == {"finished": 3}
    assert "counts" not in report["archipelago"]["migration_matrix"]  # sparse unless asked
    full = _invoke("--run-dir", str(a), "--json", "--full-matrix")
    assert full.exit_code == 0, full.output
    mat = json.loads(full.output)["archipelago"]["migration_matrix"]
    VALIDATOR.validate(json.loads(full.output))
    assert len(mat["counts"]) == len(mat["receivers"]) and mat["flows"] == report["archipelago"]["migration_matrix"]["flows"]
    png = tmp_path / "run.png"
    result = _invoke("--run-dir", str(a), "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert "finished" in result.output and "champion" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as img:
        img.load()
        assert img.size[0] >= 600 and img.size[1] >= 400
    bad = _invoke("--run-dir", str(a), "--plot", str(tmp_path / "no" / "such" / "dir.png"))
    assert bad.exit_code == 1 and "cannot write the plot" in bad.output


def test_isolated_islands_then_stopped_and_killed(runs):
    _, b, procs = runs
    rd = RunDir(b)

    def both_going():
        statuses = [rd.island(i).read_status() for i in ("island-00", "island-01")]
        return all(s and s["generation"] >= 30 and s["migration"].get("events", 0) >= 2 for s in statuses)

    wait_for(both_going, timeout=WAIT, what="run B to get going")
    report = rep.build_report(b)
    VALIDATOR.validate(report)
    islands = _by_id(report)
    for entry in islands.values():
        assert entry["state"] == "running" and entry["note"] is None
        assert entry["foreign_share"] == 0.0
        assert entry["migration"]["sent"] > 0 and entry["migration"]["received"] == 0
    assert report["archipelago"]["mean_foreign_share"] == 0.0
    assert report["archipelago"]["migration_matrix"]["flows"] == []

    stopped, killed = procs[("B", "island-00")], procs[("B", "island-01")]
    stopped.send_signal(signal.SIGTERM)  # checkpoint and exit 75 (stopped, not finished)
    assert stopped.wait(timeout=60) == EXIT_STOPPED
    killed.send_signal(signal.SIGKILL)
    wait_for(lambda: psutil.Process(killed.pid).status() == psutil.STATUS_ZOMBIE,
             timeout=WAIT, what="the kill")
    islands = _by_id(rep.build_report(b))  # the killed one is a zombie here: not yet reaped
    assert islands["island-00"]["state"] == "stopped" and islands["island-00"]["reason"] == "stopped"
    assert islands["island-01"]["state"] == "dead" and str(killed.pid) in islands["island-01"]["note"]
    killed.wait()
    islands = _by_id(rep.build_report(b))
    assert islands["island-01"]["state"] == "dead"
    assert islands["island-01"]["generation"] >= 30
    result = _invoke("--run-dir", str(b))
    assert result.exit_code == 0 and "dead" in result.output and "stopped" in result.output


def test_watch_of_an_ended_run_shows_it_once_and_exits(runs):
    a, _, _ = runs  # every island finished
    for extra in ((), ("--json",)):
        out = subprocess.run([sys.executable, "-m", "islands", "status", "--run-dir", str(a), "--watch", "0.1", *extra],
                             env=child_env(), capture_output=True, text=True, start_new_session=True, timeout=60)
        assert out.returncode == 0, out.stderr
        if extra:
            lines = out.stdout.splitlines()
            assert len(lines) == 1 and {i["state"] for i in json.loads(lines[0])["islands"]} == {"finished"}
        else:
            assert out.stdout.count("island-02") >= 1 and "watch over" in out.stderr, out.stdout + out.stderr


def test_json_watch_real_process_stops_cleanly(runs):
    _, b, _ = runs  # never all ended (running, or stopped and dead): the watch goes on until a signal
    for sig in (signal.SIGINT, signal.SIGTERM):
        p = subprocess.Popen([sys.executable, "-m", "islands", "status", "--run-dir", str(b), "--json", "--watch", "0.1"],
                             env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            docs = [json.loads(p.stdout.readline()) for _ in range(2)]  # two refreshes: it is in the loop
            for doc in docs:
                VALIDATOR.validate(doc)
            p.send_signal(sig)
            _, err = p.communicate(timeout=30)
            assert p.returncode == 0, err.decode()
            assert b"Traceback" not in err
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            p.stdout.close()
            p.stderr.close()
