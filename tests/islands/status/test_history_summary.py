"""The history summary (`islands.status.summary`): what it keeps, how a resumed island takes it
up, and how the status report reads it or, without a usable one, samples the history."""
from __future__ import annotations

import math

import numpy as np
import pytest

from islands.recorders import HistoryRecorder
from islands.status import summary as hs
from islands.status.reader import open_run
from islands.status.record import HistoryLine
from migration_pool import format as fmt
from migration_pool.rundir import RunDir

RUN = "r" * 32


def line(g: int) -> HistoryLine:
    sampled = g % 10 == 0
    return HistoryLine(generation=g, best=-1.0 / (g + 1), mean=-2.0, best_ever=-1.0 / (g + 1), evaluations=10 * g,
                       time=1000.0 + g, diversity=0.5 / (g + 1) if sampled else None, foreign=0.1 if sampled else None,
                       origins={0: 6, 1 + g % 3: 4} if sampled else {})


def test_it_keeps_evenly_spread_sampled_lines_and_always_the_latest():
    s = hs.HistorySummary(RUN, "island-00")
    for g in range(20_001):
        s.add(line(g))
    pts = s.series()
    gens = [p.generation for p in pts]
    assert hs.POINTS <= len(s.points) <= 2 * hs.POINTS and gens[-1] == 20_000
    assert all(g % 10 == 0 for g in gens) and all(g % s.step == 0 for g in gens[:-1])  # on the stride,
    assert gens == sorted(set(gens)) and gens[0] == 0  # but the latest line, whatever its generation
    gaps = np.diff(gens[:-1])
    assert gaps.max() == gaps.min() == math.lcm(10, s.step)  # evenly spread: every sampled line on the stride
    assert pts[-1].origins == line(20_000).origins and pts[-1].best_ever == line(20_000).best_ever


def test_the_body_round_trips_through_the_file_format():
    s = hs.HistorySummary(RUN, "island-03")
    for g in range(0, 3001):
        s.add(line(g))
    view = hs.from_body(fmt.decode(fmt.encode("summary", s.to_body()), "summary"))
    assert (view.run_id, view.island, view.step) == (RUN, "island-03", s.step)
    pts = s.series()
    assert view.generation.tolist() == [p.generation for p in pts]
    assert view.diversity.tolist() == [p.diversity for p in pts] and view.time.tolist() == [p.time for p in pts]
    assert view.origin_maps(np.arange(len(pts))) == [p.origins for p in pts]
    back = view.to_summary()
    assert [p.generation for p in back.points] == [p.generation for p in s.points] and back.step == s.step


@pytest.mark.parametrize("change", [
    {"version": 2}, {"step": 3}, {"step": 0}, {"points": np.zeros((3, 3))},
    {"origins": np.array([[500, 0, 1]], dtype=np.int64)},  # a point index past the points
    {"origins": np.array([[0, 0, 0]], dtype=np.int64)},  # an empty count
    {"points": np.array([[np.nan, 0, 0, 0]])},  # a generation that is not a number
])
def test_a_body_that_breaks_the_schema_is_no_summary(change):
    s = hs.HistorySummary(RUN, "island-00")
    for g in range(0, 101):
        s.add(line(g))
    assert hs.from_body(s.to_body()) is not None
    assert hs.from_body({**s.to_body(), **change}) is None


def _recorder(rundir: RunDir, island: str = "island-00") -> HistoryRecorder:
    return HistoryRecorder(rundir, island, algo=None, number=0, run_id=RUN)


def _record(rec: HistoryRecorder, gens: range) -> None:
    for g in gens:
        rec.pending.append(line(g))
        if g % 37 == 0:  # flushed now and then, as with each status write
            rec.flush(durable=g % 74 == 0)
    rec.flush()


def test_a_resumed_island_takes_its_summary_up_from_its_checkpoint(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.ensure("island-00")
    first = _recorder(rundir)
    _record(first, range(0, 1500))
    files = rundir.island("island-00")
    assert hs.from_body(files.read_summary()).generation[-1] == 1490  # written with its lines
    # The island is killed at 1499; its checkpoint was at 1200: the history is cut back, the
    # summary taken from its file and cut back alike, then the replay goes on to 3000.
    files.truncate_history(1200)
    again = _recorder(rundir)
    again.resume(1200, False)
    assert again.summary.series()[-1].generation == 1200
    # On file at once: a crash before the first flush must not leave points beyond the history.
    assert hs.from_body(files.read_summary()).generation[-1] == 1200
    _record(again, range(1201, 3000))
    straight = _recorder(RunDir(tmp_path / "other"))
    RunDir(tmp_path / "other").ensure("island-00")
    _record(straight, range(0, 3000))
    assert [p.generation for p in again.summary.series()] == [p.generation for p in straight.summary.series()]
    view = hs.from_body(files.read_summary())
    assert view.generation.tolist() == [p.generation for p in straight.summary.series()]


def test_without_a_usable_summary_a_resume_rebuilds_it_from_the_history(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.ensure("island-00")
    _record(_recorder(rundir), range(0, 800))
    files = rundir.island("island-00")
    want = hs.from_body(files.read_summary()).generation.tolist()
    files.write_summary({**hs.HistorySummary("another-run", "island-00").to_body()})  # not this run's
    again = _recorder(rundir)
    again.resume(799, False)
    assert [p.generation for p in again.summary.series()] == want
    files.summary_path.write_bytes(b"garbage")  # corrupt: rebuilt too
    again = _recorder(rundir)
    again.resume(799, False)
    assert [p.generation for p in again.summary.series()] == want


def test_the_reader_takes_only_this_runs_and_islands_summary(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.create_or_read_manifest(lambda: {"schema": 1, "run_id": RUN, "created": 0.0, "config": {},
                                            "islands": ["island-00", "island-01"], "overrides": {}})
    for island in ("island-00", "island-01"):
        rundir.ensure(island)
        _record(_recorder(rundir, island), range(0, 200))
    reader = open_run(tmp_path)
    assert reader.summary("island-00").generation[-1] == 190
    body = rundir.island("island-00").read_summary()
    rundir.island("island-01").write_summary(body)  # island-00's summary in island-01's folder
    rundir.island("island-00").write_summary({**body, "run_id": "another-run"})
    assert reader.summary("island-01") is None and reader.summary("island-00") is None


def test_a_fresh_start_drops_the_summary_with_the_history(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.ensure("island-00")
    _record(_recorder(rundir), range(0, 50))
    files = rundir.island("island-00")
    assert files.read_summary() is not None
    files.truncate_history(-1)
    assert files.read_summary() is None and files.read_history() == []
