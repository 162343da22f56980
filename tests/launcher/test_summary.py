"""The champion, the summary and the progress views, from hand-made statuses."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from islands.status.progress import Eta, clock, fraction, number
from islands.status.record import champion
from launcher.launch_view import LiveView, PlainView, Row, headline, states_text
from launcher.summary import champion_record, summarize, summary_lines
from migration_pool.rundir import RunDir
from support.factories import status as make_status


def status(island, best, run_id="r1", genome=True, evaluations=100):
    return make_status(island, run_id=run_id, best_ever=best, evaluations=evaluations,
                       best_genome=np.full(3, best, dtype=np.float64) if genome else None,
                       migration={"events": 1, "sent": 5, "received": 4, "adopted": 3, "rejected": 1, "bad_files": 0})


def test_champion_is_the_best_of_this_run_with_a_genome():
    statuses = {"island-00": status("island-00", -3.0), "island-01": status("island-01", -1.0),
                "island-02": status("island-02", 5.0, run_id="other"),  # another run's file
                "island-03": status("island-03", 9.0, genome=False), "island-04": None}
    assert champion(statuses.values(), "r1").island == "island-01"
    assert champion([None], "r1") is None


def test_champion_file_round_trips_without_pickle(tmp_path):
    rec = champion_record(status("island-01", -1.0), "rastrigin", 3, "r1")
    path = RunDir(tmp_path).write_champion(rec)
    assert path.read_bytes()[:4] == b"ISLD"
    back = RunDir(tmp_path).read_champion()
    assert back["island"] == "island-01" and back["fitness"] == -1.0 and back["dim"] == 3
    assert back["genome"].dtype == np.float64 and back["genome"].tolist() == [-1.0] * 3
    assert back["overrides"] == {"mutation_sigma": 0.1} and back["generation"] == 7


def test_champion_file_carries_the_champion_islands_own_settings(tmp_path):
    """With the run's config, the file says how to rebuild the champion: that island's problem and
    algorithm parameters with its --vary overrides applied, not just the run's."""
    import dataclasses

    from islands.config import RunConfig

    cfg = RunConfig(problem="rastrigin", dim=3, problem_params={"a": 1}, algorithm_params={"b": 2})
    champ = dataclasses.replace(status("island-01", -1.0), overrides={"param.a": 5, "algo.c": 3})
    back = RunDir(tmp_path).read_champion() if RunDir(tmp_path).write_champion(
        champion_record(champ, "rastrigin", 3, "r1", config=cfg)) else None
    assert back["problem_params"] == {"a": 5} and back["algorithm_params"] == {"b": 2, "c": 3}
    assert back["algorithm"] == "ga" and back["population"] == 100


def test_summary_totals_and_rate_count_only_this_launch():
    statuses = {"island-00": status("island-00", -3.0, evaluations=300),
                "island-01": status("island-01", -1.0, evaluations=500)}
    watches = {"island-00": {"state": "finished", "restarts": 2, "hangs": 1},
               "island-01": {"state": "failed", "restarts": 5, "reason": "crashed 6 time(s)"}}
    s = summarize(run_id="r1", run_dir="/x", problem="sphere", dim=3, state="failed", wall_s=10.0,
                  statuses=statuses, baseline={"island-00": 100}, watches=watches)
    json.dumps(s)  # summary.json must be plain JSON
    assert s["evaluations"] == 800 and s["evaluations_this_launch"] == 700 and s["evals_per_sec"] == 70.0
    assert s["restarts"] == 7 and s["hangs"] == 1 and s["finished"] == 1 and s["failed"] == 1
    assert s["migration"] == {"events": 2, "sent": 10, "received": 8, "adopted": 6, "rejected": 2, "bad_files": 0,
                              "publish_errors": 0, "skipped": 0}
    assert s["champion"]["island"] == "island-01"
    text = "\n".join(summary_lines(s))
    assert "1/2 island(s) finished" in text and "failed: island-01: crashed 6 time(s)" in text
    assert "700 in this launch" in text


def rows():
    return [Row("island-00", "running", 5, 10, -2.0, 100.0, 0.5, 1, (0,)),
            Row("island-01", "failed", 3, 10, -1.0, 50.0, 0.4, 5, (1,)),
            Row("island-02", "waiting")]


def test_headline_names_states_generations_best_and_restarts():
    line = headline(rows(), 3723.0)
    assert line.startswith("[1:02:03] 1 running, 1 waiting, 1 failed")
    assert "gen 3-5/10" in line and "best -1 (island-01)" in line and "100 evals/s" in line
    assert "restarts 6" in line


def test_plain_view_prints_at_most_once_per_interval():
    out = io.StringIO()
    view = PlainView(out, every_s=3600)
    view.update(rows(), 1.0)
    view.update(rows(), 2.0)
    view.message("island-01: FAILED")
    view.update(rows(), 3.0, force=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[1] == "island-01: FAILED"


def test_live_view_draws_a_table_per_island():
    from rich.console import Console

    out = io.StringIO()
    view = LiveView(every_s=0.0, console=Console(file=out, width=140, force_terminal=False))
    view.update(rows(), 1.0, force=True)
    view.message("hello")
    view.close()
    text = out.getvalue()
    assert all(i in text for i in ("island-00", "island-01", "island-02", "hello")) and "failed" in text


def test_islands_start_until_they_report_and_no_rate_is_shown_meanwhile():
    starting = [Row("island-00", "starting"), Row("island-01", "starting"), Row("island-02", "running", 1, 10)]
    line = headline(starting, 5.0)
    assert "starting 1/3" in line and "evals/s" not in line and "ETA" in line
    assert states_text([Row("island-00", "running"), Row("island-01", "finished")]) == "1 running, 1 finished"


def test_eta_waits_for_every_island_then_extrapolates_from_there():
    eta = Eta()
    assert eta.update(0.5, 0.0, settled=False) is None  # a resumed island's first report: no speed
    assert eta.update(0.6, 10.0, settled=True) is None  # baseline fixed here
    assert eta.update(0.7, 20.0, settled=True) == pytest.approx(30.0)  # 0.1 per 10 s, 0.3 left
    assert eta.update(1.0, 21.0, settled=True) == 0.0
    assert fraction(5, 10) == 0.5 and fraction(5, 10, 900, 1000) == 0.9 and fraction(1, 10, finished=True) == 1.0
    assert fraction(None, None) is None and clock(3723.4) == "1:02:03" and clock(None) == "?"


def test_figures_are_rounded_in_every_view():
    raw = -12.577276229858398
    r = [Row("island-00", "running", 5, 10, raw, 1234.5678, 0.123456789, 0, (0,))]
    out = io.StringIO()
    PlainView(out, every_s=0).update(r, 1.0)
    assert "-12.5773" in out.getvalue() and "12.577276" not in out.getvalue()
    assert number(raw) == "-12.5773" and number(None) == "-"


def test_live_view_shows_a_bar_with_eta_and_the_summary_after_the_last_frame():
    from rich.console import Console

    out = io.StringIO()
    view = LiveView(every_s=0.0, console=Console(file=out, width=140, force_terminal=True, color_system=None))
    view.update([Row("island-00", "starting"), Row("island-01", "starting")], 1.0, force=True)
    for t, gen in ((2.0, 2), (6.0, 4)):
        view.update([Row("island-00", "running", gen, 10, -1.5, 100.0), Row("island-01", "running", gen, 10)], t,
                    force=True)
    view.end()
    view.message("SUMMARY")
    view.close()
    text = out.getvalue()
    assert "starting 0/2" in text and "━" in text and "40%" in text
    assert "ETA 0:00:12" in text  # 20% in 4 s since every island reported, 60% left
    assert text.rstrip().endswith("SUMMARY")  # nothing drawn after the summary


def test_evolve_shows_one_bar_on_a_terminal_and_plain_lines_otherwise(monkeypatch):
    from rich.console import Console

    from islands.status import island_view
    from islands.status.record import IslandStatus

    clock_s = [100.0]
    monkeypatch.setattr(island_view.time, "monotonic", lambda: clock_s[0])

    def st(gen, evals, state="running"):
        return IslandStatus(island="island-00", state=state, generation=gen, generations=100, evaluations=evals,
                            best_ever=-12.577276229858398, evals_per_sec=1234.5, diversity=0.123456)

    out = io.StringIO()
    bar = island_view.BarIslandView("island-00", lambda: 1000, every_s=0.0,
                                    console=Console(file=out, width=120, force_terminal=True, color_system=None))
    bar.log("resuming")  # before the bar starts: a plain line
    for t, gen, evals in ((100.0, 10, 100), (110.0, 20, 300)):
        clock_s[0] = t
        bar.status(st(gen, evals))
    bar.close()
    text = out.getvalue()
    assert text.startswith("resuming") and "━" in text and "30%" in text  # evaluations: the nearer budget
    assert "ETA 0:00:35" in text and "-12.5773" in text and "12.577276" not in text  # 20% in 10 s, 70% left

    lines: list[str] = []
    plain = island_view.make_island_view("island-00", lines.append, terminal=False, max_evaluations=lambda: None)
    clock_s[0] = 200.0
    plain.status(st(10, 100))
    clock_s[0] = 201.0
    plain.status(st(11, 110))  # within 2 s of the last line: not printed
    plain.status(st(100, 1000, state="finished"))
    assert len(lines) == 2 and lines[0].startswith("island-00  gen 10/100  10% ETA ?") and "100% ETA 0:00:00" in lines[1]


def test_the_share_done_does_not_jump_when_islands_fail():
    """Islands at 24% and 10%: the second fails. Before, a failed island counted as done, so the
    share jumped from 17% to 62%; it now counts at what it did, so the share does not move."""
    from launcher.launch_view import overall

    going = [Row("island-00", "running", done=0.24), Row("island-01", "running", done=0.10)]
    assert overall(going)[0] == pytest.approx(0.17)
    assert overall([going[0], Row("island-01", "failed", done=0.10)])[0] == pytest.approx(0.17)
    assert overall([going[0], Row("island-01", "finished", done=1.0)])[0] == pytest.approx(0.62)
    assert overall([going[0], Row("island-01", "starting")])[0] == pytest.approx(0.12)  # not reporting: 0
