"""The island's recorders that judge what they see: the target marker of `--stop-when first`
(a file that is not a marker is counted once per file) and the fitness check (an island that
never saw a finite fitness ends with reason `no-finite-fitness`, whatever limit ended it)."""
from __future__ import annotations

import math

import pytest
import torch

from islands.config import RunConfig
from islands.exit_codes import REASON_NO_FITNESS
from islands.recorders import TargetMarker
from islands.runs import evolve
from islands.stopping import StopFlag
from migration_pool import format as fmt
from migration_pool.rundir import RunDir
from support.factories import QUIET

RUN = "run-a"


def look(marker: TargetMarker) -> bool:
    marker.checked = float("-inf")  # as if MARKER_CHECK_S had passed
    return marker.elsewhere()


def test_a_file_that_is_not_a_marker_is_counted_once_per_file_and_warned_about_once(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.ensure("island-01")
    said: list[str] = []
    marker = TargetMarker(rundir, RUN, "island-00", said.append, target=-1e-6)
    assert not look(marker) and marker.ignored == 0 and said == []
    rundir.target_marker_path.write_bytes(b"")
    assert not look(marker) and not look(marker) and marker.ignored == 1
    rundir.target_marker_path.write_bytes(b"\0" * 10)  # another file: counted, not warned again
    assert not look(marker) and not look(marker) and marker.ignored == 2
    assert len(said) == 1 and "ignoring a target marker" in said[0], said
    body = {"island": "island-01", "run_id": RUN, "generation": 3, "evaluations": 60,
            "best_ever": -1e-6, "target": -1e-6, "time": 0.0}  # exactly at the target: reached
    rundir.target_marker_path.write_bytes(fmt.encode("target", body))
    assert look(marker) and marker.ignored == 2


@pytest.mark.parametrize("limit", [dict(generations=6), dict(generations=10_000, max_evaluations=40),
                                   dict(generations=10_000, stagnation_limit=4)])
def test_an_island_without_a_finite_fitness_ends_so_whatever_limit_ended_it(tmp_path, limit):
    said: list[str] = []
    result = evolve("island-00", tmp_path, RunConfig(dim=3, population=8, **limit),
                    problem=lambda g: torch.full((g.shape[0],), math.nan, dtype=g.dtype), bounds=(-1.0, 1.0),
                    log=said.append)
    assert result.reason == REASON_NO_FITNESS and result.best == -math.inf, result
    assert RunDir(tmp_path).island("island-00").read_status()["reason"] == REASON_NO_FITNESS
    assert sum("no finite fitness" in s for s in said) == 1, said


def test_a_stopped_island_without_a_finite_fitness_stays_stopped(tmp_path):
    stop = StopFlag()
    stop.request()  # asked to stop before its first generation: resumable, not a verdict
    result = evolve("island-00", tmp_path, RunConfig(dim=3, population=8, generations=50),
                    problem=lambda g: torch.full((g.shape[0],), math.nan, dtype=g.dtype), bounds=(-1.0, 1.0),
                    stop=stop, **QUIET)
    assert result.reason == "stopped", result


@pytest.mark.parametrize("since_s, used, writes", [
    (0.1, (0.01, 50, 0), False),   # within STATUS_INTERVAL_S: never
    (0.6, (0.01, 50, 5), True),    # it blocked (a sleeping or external evaluation): the wall pace
    (0.6, (0.01, 0, 40), False),   # preempted, little CPU used: crowded, it waits
    (0.6, (0.25, 0, 40), True),    # crowded, but STATUS_CPU_S of CPU used since the last write
    (6.0, (0.01, 0, 40), True),    # crowded and starved: at least every STATUS_MAX_S
])
def test_the_heartbeat_keeps_the_wall_pace_unless_the_machine_is_crowded(monkeypatch, since_s, used, writes):
    import time

    from islands import recorders
    start = (3.0, 100, 100)  # CPU seconds, voluntary and involuntary switches at the last write
    now = tuple(a + b for a, b in zip(start, used))
    monkeypatch.setattr(recorders, "_usage", lambda: now)
    beat = recorders.Heartbeat.__new__(recorders.Heartbeat)
    beat.last, beat.usage_last = time.monotonic() - since_s, start
    written: list[str] = []
    beat.write = lambda state, progress, phase, reason: written.append(phase)
    beat.generation(None, None, None)
    assert written == (["running"] if writes else [])
