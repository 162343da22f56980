"""Sharing a run's budget by progress: the pure rule (`islands.budget_share`) and an island's side
of it (`islands.budget_wait`) against statuses other islands wrote in a real run directory."""
from __future__ import annotations

import math
import time

import pytest

from islands import budget_share as bs
from islands import budget_wait
from islands.checkpoint import Progress
from islands.status.record import IslandStatus
from migration_pool.rundir import RunDir


def test_decades_count_orders_of_magnitude_on_either_sign_and_nothing_across_zero():
    assert bs.decades(-10.0, -0.1) == pytest.approx(2.0)
    assert bs.decades(5.0, 500.0) == pytest.approx(2.0)  # a return that grew a hundredfold
    assert bs.decades(-1.0, 1.0) == 0.0 and bs.decades(0.0, 3.0) == 0.0
    assert bs.decades(-1.0, -2.0) == 0.0  # no improvement
    assert bs.decades(-math.inf, -1.0) == 0.0 and bs.decades(-1.0, math.nan) == 0.0


def test_the_rate_looks_back_over_a_share_of_the_island_s_own_evaluations():
    meter = bs.RateMeter(window=0.5, min_window=10)
    assert meter.rate() == 0.0
    for evals, best in [(100, -1e3), (200, -1e2), (300, -1e1), (400, -1e1)]:
        meter.add(evals, best)
    # Half of 400 back is evaluation 200: one decade (1e2 -> 1e1) over 200 evaluations.
    assert meter.rate() == pytest.approx(1.0 / 200)
    for evals in range(500, 1100, 100):  # a stall: the window slides past the last improvement
        meter.add(evals, -1e1)
    assert meter.rate() == 0.0


def test_the_meter_stays_bounded_and_keeps_its_newest_marks():
    meter = bs.RateMeter(capacity=16)
    for i in range(1, 1000):
        meter.add(i * 10, -1000.0 / i)
    assert len(meter.marks) <= 16 and meter.marks[-1] == (9990, -1000.0 / 999)
    assert [m[0] for m in meter.marks] == sorted(m[0] for m in meter.marks)


def test_weights_are_relative_to_the_best_rate_floored_and_even_when_nobody_improves():
    assert bs.weights([0.0, 0.0, 0.0], 0.1) == [1.0, 1.0, 1.0]
    assert bs.weights([0.02, 0.01, 0.0], 0.1) == [1.0, 0.5, 0.1]
    assert bs.weights([math.nan, 0.01], 0.2) == [0.2, 1.0]


def test_allowances_share_what_ended_islands_left_by_weight_and_always_leave_someone_running():
    assert bs.allowances([0, 0, 0, 0], [1.0] * 4, [True] * 4, 4000) == [1000.0] * 4  # the even split
    # island 3 ended after 400: its unspent part goes to the live ones, by weight
    out = bs.allowances([900, 100, 500, 400], [1.0, 0.1, 0.9, 1.0], [True, True, True, False], 4000)
    assert out[3] == 400 and sum(out[:3]) == pytest.approx(3600) and out[0] == pytest.approx(1800)
    for spent in ([3000, 10, 10], [1300, 1300, 1300], [0, 3999, 0]):
        allowed = bs.allowances(spent, [1.0, 0.1, 0.5], [True] * 3, 4000)
        assert any(s < a for s, a in zip(spent, allowed)) or sum(spent) >= 4000


def test_an_island_keeps_its_weight_s_share_of_a_better_island_s_pace_and_the_best_one_none():
    inf = math.inf
    # island 0 improves best (weight 1) and spent 1000: island 1 (0.3) may have spent 0.3 x 1000,
    # a tenth ahead, plus the least release (0.2% of 10,000); island 0 itself is never held back.
    out = bs.paced([1000, 50, 990], [1.0, 0.3, 1.0], [True] * 3, 10_000)
    assert out[0] == inf and out[2] == inf  # equal weights never wait for each other
    assert out[1] == pytest.approx(0.3 * 1000 * 1.1 + 20)
    # A better island that is not live holds nobody back; with every weight equal nothing is paced.
    assert bs.paced([1000, 50], [1.0, 0.3], [False, True], 10_000)[1] == inf
    assert bs.paced([5, 500, 50], [1.0] * 3, [True] * 3, 10_000) == [inf] * 3
    # The largest-weight island is unlimited, so paced and allowances together leave someone running.
    for spent, weight in (([3000, 10, 10], [0.3, 1.0, 0.5]), ([0, 3999, 0], [1.0, 0.3, 0.3])):
        limit = [min(a, p) for a, p in zip(bs.allowances(spent, weight, [True] * 3, 4000),
                                           bs.paced(spent, weight, [True] * 3, 4000))]
        assert any(s < a for s, a in zip(spent, limit))


def _status(rundir: RunDir, island: str, evaluations: int, rate: float | str, state: str = "running") -> None:
    body = IslandStatus(island=island, run_id="r", state=state, evaluations=evaluations,
                        heartbeat=time.time()).to_body()
    body["progress_rate"] = rate
    rundir.ensure(island)
    rundir.island(island).write_status(body)


def _share(tmp_path, total=1000):
    rundir = RunDir(tmp_path)
    lines: list[str] = []
    return rundir, None, lines, budget_wait.BudgetShare("island-00", rundir, "r", total, lines.append)


def _progress(evaluations: int, best: float) -> Progress:
    return Progress(evaluations=evaluations, best_ever=best)


def test_an_island_past_its_weighted_part_waits_beating_its_heart_until_told_to_stop(tmp_path):
    rundir, _, lines, share = _share(tmp_path)
    _status(rundir, "island-01", 100, 0.05)  # improving fast, little spent
    beats, asked = [], []
    progress = _progress(600, -1.0)  # no improvement metered: the floor weight; its pace 0.3 x 100 x 1.1 + 2
    reason = share.after_generation(progress, lambda: asked.append(1) or len(asked) > 2, lambda: beats.append(1))
    assert reason is None and len(asked) == 3 and len(beats) == 3  # its status rewritten at every look
    assert progress.budget_weight == pytest.approx(bs.FLOOR)
    assert progress.budget_allowed == 600  # it holds what it spent, no more
    assert any("waiting: it has spent its part of the run's budget (600 of 1000" in line for line in lines)


def test_an_island_takes_only_what_the_others_neither_spent_nor_hold(tmp_path):
    rundir, _, _, share = _share(tmp_path)
    _status(rundir, "island-01", 100, 0.0)
    body = rundir.island("island-01").read_status()
    body["budget_allowed"] = 800  # a live island holding 800 of the 1000 (both equal: no pace)
    rundir.island("island-01").write_status(body)
    progress = _progress(150, -1.0)
    assert share.after_generation(progress, lambda: False, lambda: None) is None
    assert share.allowed == 200 and progress.budget_allowed == 200  # not its even part, 500, nor 150 + 2 x 150


def test_an_island_goes_on_once_the_other_ends_and_ends_when_the_total_is_spent(tmp_path):
    rundir, _, lines, share = _share(tmp_path)
    _status(rundir, "island-01", 300, 0.05, state="finished")  # ended: it left 700
    progress = _progress(600, -1.0)
    assert share.after_generation(progress, lambda: pytest.fail("must not wait"), lambda: None) is None
    _status(rundir, "island-01", 400, 0.05, state="finished")
    share.checked = -math.inf
    assert share.after_generation(_progress(600, -1.0), lambda: False, lambda: None) == "evaluations"
    assert share.after_generation(_progress(1000, -1.0), lambda: False, lambda: None) == "evaluations"


@pytest.mark.parametrize("rate, waits", [(1e308, True), (0.5, True), (math.inf, False), (-5.0, False),
                                         ("fast", False), (None, False)])
def test_a_forged_or_broken_rate_cannot_starve_an_island_for_longer_than_the_live_window(tmp_path, monkeypatch,
                                                                                        rate, waits):
    rundir, _, _, share = _share(tmp_path)
    _status(rundir, "island-01", 100, rate)
    clock = [1000.0]
    monkeypatch.setattr(budget_wait.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(budget_wait.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    progress = _progress(700, -1.0)
    share.meter.add(100, -10.0)  # this island improved by a decade over 600 evaluations
    reason = share.after_generation(progress, lambda: False, lambda: None)
    # A huge rate is capped but still the best: the island waits, but the forger never spends, so after
    # LIVE_S it holds nothing and the wait ends. A rate that is no number counts as no progress.
    waited = clock[0] - 1000.0
    assert reason is None and waited <= budget_wait.LIVE_S + 1.0
    assert (waited >= budget_wait.LIVE_S) == waits


def test_a_status_of_another_run_counts_as_an_island_not_started_yet(tmp_path):
    rundir, _, _, share = _share(tmp_path)
    _status(rundir, "island-01", 900, 0.0, state="finished")
    body = rundir.island("island-01").read_status()
    body["run_id"] = "an earlier run"  # left in the folder: its 900 evaluations are not this run's
    rundir.island("island-01").write_status(body)
    progress = _progress(100, -1.0)
    assert share.after_generation(progress, lambda: pytest.fail("must not wait"), lambda: None) is None
    # Counted, the other run's 900 would leave it 100; not counted, half each (500), of which it
    # takes two check intervals of its spending ahead: 100 + 2 x 100.
    assert share.allowed == 300


def test_a_small_budget_never_leaves_an_island_waiting_once_another_ended(tmp_path):
    rundir, _, lines, share = _share(tmp_path, total=90)
    _status(rundir, "island-01", 10, 0.05)  # improving fast: this one waits at its small part
    looks = []

    def stopped() -> bool:  # while it waits, island-01 ends having spent 18 of the 90
        if not looks:
            _status(rundir, "island-01", 18, 0.05, state="finished")
        looks.append(1)
        return len(looks) > 50  # never reached when it goes on

    assert share.after_generation(_progress(10, -1.0), stopped, lambda: None) is None
    assert 1 <= len(looks) <= 3 and share.allowed > 10
    assert any("going on after waiting" in line for line in lines)


def test_a_slower_island_waits_for_a_better_one_to_spend_and_then_goes_on(tmp_path):
    rundir, _, lines, share = _share(tmp_path, total=100_000)
    _status(rundir, "island-01", 100, 0.05)  # improving fast; this island's weight is the floor
    looks = []

    def stopped() -> bool:  # while this one waits, island-01 spends 1,000 more
        if not looks:
            _status(rundir, "island-01", 1100, 0.05)
        looks.append(1)
        return len(looks) > 50  # never reached when it goes on

    progress = _progress(300, -1.0)  # ahead of its pace: 0.3 x 100 x 1.1 + 200 (0.2% of the total)
    assert share.after_generation(progress, stopped, lambda: None) is None
    assert 1 <= len(looks) <= 3 and share.allowed > 300  # its pace is now 0.3 x 1,100 x 1.1 + 200
    assert any("waiting" in line for line in lines) and any("going on after waiting" in line for line in lines)


def test_a_synchronous_run_keeps_no_pace(tmp_path):
    """At a sync migration barrier an island spends nothing: a paced neighbour would wait for it
    while it waits for that neighbour's batch, so a sync run shares by parts only."""
    rundir, _, _, _ = _share(tmp_path, total=100_000)
    share = budget_wait.BudgetShare("island-00", rundir, "r", 100_000, lambda m: None, paced=False)
    _status(rundir, "island-01", 100, 0.05)  # improving fast; this island far ahead of its pace
    assert share.after_generation(_progress(300, -1.0), lambda: pytest.fail("must not wait"), lambda: None) is None
    assert share.allowed > 300
