"""Run-level data files that other processes may have forged or replaced: the target marker
(`--stop-when first`) and the islands' histories.

A marker ends every island of a run, so it counts only when it decodes to this run's record
of one of its islands reaching the target; a history is read by the launcher's summary, the
Python API and `islands status`, and none of them may block on a FIFO or read a device.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from migration_pool import format as fmt
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir
from support.procs import bounded

RUN = "run-a"
TARGET = -1e-6


def marker(**over) -> dict:
    body = {"island": "island-01", "run_id": RUN, "generation": 7, "evaluations": 140,
            "best_ever": -1e-9, "target": TARGET, "time": 1.7e9}
    body.update(over)
    return body


def run_with_islands(tmp_path, *islands: str) -> RunDir:
    rundir = RunDir(tmp_path)
    for island in islands:
        rundir.ensure(island)
    return rundir


# -- the target marker ------------------------------------------------------------------

def test_a_marker_of_this_run_ends_it_once_and_the_first_stays(tmp_path):
    rundir = run_with_islands(tmp_path, "island-01", "island-02")
    assert not rundir.target_reached(RUN, TARGET) and rundir.target_marker(RUN, TARGET) == (None, None)
    assert rundir.mark_target_reached(marker())
    assert not rundir.mark_target_reached(marker(island="island-02", generation=9))
    assert rundir.target_reached(RUN, TARGET)
    assert rundir.target_marker(RUN, TARGET)[0]["island"] == "island-01"


def test_a_best_exactly_at_the_target_reaches_it(tmp_path):
    """An island stops on `best >= target`; a fitness landing on the target itself (an integer
    count, an exact optimum) is a marker every other island must honour, as its own or the reader's."""
    rundir = run_with_islands(tmp_path, "island-01")
    rundir.target_marker_path.write_bytes(fmt.encode("target", marker(target=12.0, best_ever=12.0)))
    assert rundir.target_reached(RUN, 12.0) and rundir.target_reached(RUN, None)
    assert not rundir.target_reached(RUN, 12.5)  # a reader aiming higher is not there yet
    assert rundir.target_marker(RUN, 12.0)[1] is None


FORGED = {
    "empty": b"",
    "garbage": b"\x00" * 64,
    "another kind": fmt.encode("champion", marker()),
    "another run": fmt.encode("target", marker(run_id="run-b")),
    "no run id": fmt.encode("target", {k: v for k, v in marker().items() if k != "run_id"}),
    "an island not of the run": fmt.encode("target", marker(island="island-07")),
    "not an island id": fmt.encode("target", marker(island="../../etc")),
    "a best below the target": fmt.encode("target", marker(best_ever=-0.5)),
    "a best below its own target": fmt.encode("target", marker(target=1.0, best_ever=0.5)),
    "a NaN best": fmt.encode("target", marker(best_ever=float("nan"))),
    "an infinite best": fmt.encode("target", marker(best_ever=float("inf"))),
    "a text best": fmt.encode("target", marker(best_ever="1")),
    "a negative generation": fmt.encode("target", marker(generation=-1)),
}


@pytest.mark.parametrize("content", FORGED.values(), ids=FORGED.keys())
def test_a_marker_that_is_not_this_runs_record_is_ignored_with_a_reason(tmp_path, content):
    rundir = run_with_islands(tmp_path, "island-01")
    rundir.target_marker_path.write_bytes(content)
    body, why = rundir.target_marker(RUN, TARGET)
    assert body is None and why, why
    assert not rundir.target_reached(RUN, TARGET)
    # The island that really reaches the target replaces it, and that marker counts.
    assert rundir.mark_target_reached(marker())
    assert rundir.target_reached(RUN, TARGET) and rundir.target_marker(RUN, TARGET)[1] is None


def test_a_marker_that_is_a_fifo_or_a_symlink_is_refused_without_blocking(tmp_path):
    rundir = run_with_islands(tmp_path, "island-01")
    real = tmp_path / "elsewhere.isld"
    real.write_bytes(fmt.encode("target", marker()))
    os.symlink(real, rundir.target_marker_path)
    assert rundir.target_marker(RUN, TARGET)[0] is None and not rundir.target_reached(RUN, TARGET)
    os.unlink(rundir.target_marker_path)
    os.mkfifo(rundir.target_marker_path)
    assert bounded(lambda: rundir.target_reached(RUN, TARGET)) is False


def test_with_no_target_of_its_own_a_reader_still_checks_the_markers_target(tmp_path):
    rundir = run_with_islands(tmp_path, "island-01")
    rundir.target_marker_path.write_bytes(fmt.encode("target", marker(target=0.0, best_ever=-1.0)))
    assert not rundir.target_reached(RUN, None)
    rundir.target_marker_path.write_bytes(fmt.encode("target", marker()))
    assert rundir.target_reached(RUN, None)


# -- history reads ------------------------------------------------------------------------
def _history_run(tmp_path, kind: str) -> RunDir:
    """island-00's history is `kind` (a FIFO, a symlink to /dev/zero, a directory); island-01's is real."""
    rundir = run_with_islands(tmp_path, "island-00", "island-01")
    path = rundir.island("island-00").history_path
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    elif kind == "dir":
        os.mkdir(path)
    rundir.island("island-01").append_history([{"generation": 0, "best_ever": -1.0, "evaluations": 10,
                                                "time": 100.0}])
    return rundir


HOSTILE = ["fifo", "dev-zero", "dir"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_every_history_reader_refuses_a_fifo_or_a_device_without_blocking(tmp_path, kind):
    rundir = _history_run(tmp_path, kind)
    files = rundir.island("island-00")
    for read in (files.read_history, files.history_lines, lambda: files.truncate_history(3),
                 lambda: files.append_history([{"generation": 0}])):
        with pytest.raises(FormatError, match="regular file|symlink"):
            bounded(read)
    assert os.path.lexists(files.history_path)  # refused, not replaced


def test_a_whole_history_read_stops_at_the_cap_and_says_so(tmp_path):
    rundir = run_with_islands(tmp_path, "island-00")
    files = rundir.island("island-00")
    lines = [json.dumps({"generation": g, "pad": "x" * 40}).encode() + b"\n" for g in range(100)]
    files.history_path.write_bytes(b"".join(lines))
    cap = sum(len(x) for x in lines[:10]) + 5  # the 11th line is cut by the cap: not a record
    got = []
    with pytest.raises(FormatError, match="cap"):
        for rec in files.iter_history(max_bytes=cap):
            got.append(rec["generation"])
    assert got == list(range(10))
    assert [r["generation"] for r in files.iter_history()] == list(range(100))
    # A sparse file of absurd size is read only up to the cap, not to its end.
    with open(files.history_path, "r+b") as f:
        f.truncate(1 << 40)
    started = time.monotonic()
    with pytest.raises(FormatError, match="cap"):
        bounded(lambda: sum(1 for _ in files.iter_history(max_bytes=1 << 20)))
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("kind", HOSTILE)
def test_an_island_log_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    rundir = run_with_islands(tmp_path, "island-00")
    log = rundir.island("island-00").log_path
    {"fifo": os.mkfifo, "dev-zero": lambda p: os.symlink("/dev/zero", p), "dir": os.mkdir}[kind](log)
    with pytest.raises(FormatError, match="regular file|symlink"):
        bounded(rundir.island("island-00").open_log)
    assert bounded(lambda: rundir.island("island-00").read_log_tail()) == ""


def test_a_history_or_log_symlinked_to_a_real_file_is_refused_and_the_file_left_alone(tmp_path):
    """A symlink to a regular file (someone's ~/.bashrc, another run's history) is refused too,
    not followed: truncating or appending to the history must never write through it."""
    rundir = run_with_islands(tmp_path, "island-00")
    files = rundir.island("island-00")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b'{"generation": 0}\n' * 4)
    os.symlink(victim, files.history_path)
    os.symlink(victim, files.log_path)
    for use in (files.read_history, files.history_lines, lambda: files.truncate_history(1),
                lambda: files.append_history([{"generation": 9}]), files.open_log):
        with pytest.raises(FormatError, match="symlink"):
            bounded(use)
    assert files.read_log_tail() == ""
    assert victim.read_bytes() == b'{"generation": 0}\n' * 4


def test_the_log_and_history_of_an_island_still_work_as_files(tmp_path):
    rundir = run_with_islands(tmp_path, "island-00")
    files = rundir.island("island-00")
    with files.open_log() as log:
        log.write(b"x" * 5000 + b"end\n")
    assert files.read_log_tail(10) == "xxxxxxend\n"
    files.append_history([{"generation": g} for g in range(5)])
    files.truncate_history(2)
    assert [r["generation"] for r in files.iter_history()] == [0, 1, 2]
    assert files.history_lines() == [b'{"generation":0}', b'{"generation":1}', b'{"generation":2}']
