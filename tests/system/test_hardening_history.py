"""History after kills and hand edits (issue 17, items 6 and 7): one trajectory per island,
resume and status never read a whole history into memory nor fail on a bad line."""
from __future__ import annotations

import json
import os
import signal

from migration_pool.rundir import RunDir
from support.procs import evolve_cmd, kill_group, run, start, status_generation, wait_for

SLOW = ["--problem", "slow_problem:make", "--dim", "10", "--population", "20", "--seed", "5"]


def generations(run_dir, island="island-00") -> list[int]:
    return [r["generation"] for r in RunDir(run_dir).island(island).iter_history()]


def test_sigkill_before_the_first_checkpoint_then_rerun_records_each_generation_once(tmp_path):
    cmd = evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "120", "--checkpoint-every", "1000")
    proc = start(cmd)
    try:
        wait_for(lambda: status_generation(tmp_path, "island-00") >= 20, what="generation 20")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        kill_group(proc)
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
