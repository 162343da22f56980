"""History after kills and hand edits (issue 17, items 6 and 7): one trajectory per island,
resume and status never read a whole history into memory nor fail on a bad line; no reader
blocks on a history that is a FIFO or reads one that is a link to /dev/zero."""
from __future__ import annotations

import json
import os

import pytest

from islands.config import RunConfig
from islands.results import open_run
from islands.runs import new_manifest
from islands.status.report import build_report
from launcher.summary import time_to_target
from migration_pool.rundir import RunDir
from support.procs import bounded, evolve_cmd, run, sigkill_at_generation, start

SLOW = ["--problem", "slow_problem:make", "--dim", "10", "--population", "20", "--seed", "5"]


def generations(run_dir, island="island-00") -> list[int]:
    return [r["generation"] for r in RunDir(run_dir).island(island).iter_history()]


def test_sigkill_before_the_first_checkpoint_then_rerun_records_each_generation_once(tmp_path):
    cmd = evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "120", "--checkpoint-every", "1000")
    proc = start(cmd)
    sigkill_at_generation(proc, tmp_path, 20)
    assert not RunDir(tmp_path).island("island-00").checkpoint_paths(), "the test must kill before the first checkpoint"
    assert len(generations(tmp_path)) >= 20  # the killed attempt left lines behind
    done = run(evolve_cmd("island-00", tmp_path))
    assert done.returncode == 0, done.stderr
    assert generations(tmp_path) == list(range(121))


def _write_history(rundir: RunDir, island: str, lines: list[bytes]) -> None:
    rundir.ensure(island)
    rundir.island(island).history_path.write_bytes(b"".join(lines))


def test_truncate_streams_and_drops_lines_without_an_integer_generation(tmp_path):
    rundir = RunDir(tmp_path)
    lines = [json.dumps({"generation": g}).encode() + b"\n" for g in range(10)]
    lines[3] = b'{"generation": null}\n'
    lines.insert(5, b'{"generation": ' + str(2**70).encode() + b"}\n")
    lines.insert(6, b"x" * (2 << 20) + b"\n")  # an absurd line is skipped, never held whole
    lines.append(b'{"generation": 4')  # torn
    _write_history(rundir, "island-00", lines)
    rundir.island("island-00").truncate_history(6)
    assert generations(tmp_path) == [0, 1, 2, 4, 5, 6]
    rundir.island("island-00").truncate_history(-1)
    assert generations(tmp_path) == []
    assert [p.name for p in rundir.island("island-00").dir.iterdir() if p.name.startswith(".tmp")] == []


def test_history_lines_reads_only_the_tail(tmp_path):
    rundir = RunDir(tmp_path)
    lines = [json.dumps({"generation": g, "pad": "y" * 80}).encode() + b"\n" for g in range(5000)]
    _write_history(rundir, "island-00", lines)
    tail = rundir.island("island-00").history_lines(max_bytes=10_000)
    assert 0 < len(tail) < 200
    assert [json.loads(t)["generation"] for t in tail] == list(range(5000 - len(tail), 5000))
    assert len(rundir.island("island-00").history_lines()) == 5000


def _hostile_history_run(tmp_path, kind: str) -> RunDir:
    """A run whose island-00 history is a FIFO or a symlink to /dev/zero; island-01's is real."""
    rundir = RunDir(tmp_path)
    rundir.create_or_read_manifest(lambda: new_manifest(RunConfig(problem="sphere", dim=2)))
    for island in ("island-00", "island-01"):
        rundir.ensure(island)
    path = rundir.island("island-00").history_path
    os.mkfifo(path) if kind == "fifo" else os.symlink("/dev/zero", path)
    rundir.island("island-01").append_history([{"generation": 0, "best_ever": -1.0, "evaluations": 10,
                                                "time": 100.0}])
    return rundir


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_the_python_api_and_the_summary_read_the_other_islands(tmp_path, kind):
    rundir = _hostile_history_run(tmp_path, kind)
    run = open_run(tmp_path)
    rows, notes = bounded(lambda: (run.history(), run.reader.notes))
    assert [(r["island"], r["generation"]) for r in rows] == [("island-01", 0)]
    assert any("island-00: history unreadable" in n for n in notes), notes
    histories = {i: rundir.island(i).iter_history() for i in ("island-00", "island-01")}
    hit = bounded(lambda: time_to_target(histories, {"island-00": -2.0, "island-01": -2.0}, 99.0))
    assert hit is not None and hit["island"] == "island-01"


def test_status_of_a_run_with_a_fifo_history_returns_and_shows_both_islands(tmp_path):
    _hostile_history_run(tmp_path, "fifo")
    report = bounded(lambda: build_report(tmp_path))
    assert {"island-00", "island-01"} <= {entry["island"] for entry in report["islands"]}, report["islands"]
