"""Run-level data files that other processes may have forged or replaced: the target marker
(`--stop-when first`) and the islands' histories.

A marker ends every island of a run, so it counts only when it decodes to this run's record
of one of its islands reaching the target; a history is read by the launcher's summary, the
Python API and `islands status`, and none of them may block on a FIFO or read a device.
"""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from migration_pool import format as fmt
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

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

def bounded(call, timeout: float = 20.0):
    """`call()` in a thread; fails (never hangs the suite) if it has not returned in time."""
    out: dict = {}

    def target() -> None:
        try:
            out["value"] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{call} still blocked after {timeout} s"
    if "error" in out:
        raise out["error"]
    return out["value"]
