"""The restart policy (docs/DESIGN.md, "Restart policy"), driven by a fake clock (no processes, no sleeping)."""
from __future__ import annotations

import random

import pytest

from islands.exit_codes import EXIT_BUSY, EXIT_CHECKPOINT, EXIT_USAGE
from launcher.errors import PlanError
from launcher.supervise import Action, IslandWatch, RestartPolicy, describe_exit


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self, dt: float = 0.0) -> float:
        self.t += dt
        return self.t


def crash_at_start(w: IslandWatch, clock: Clock, code: int = 1):
    """Start the island; it dies 0.5 s later without ever writing a heartbeat."""
    w.started(clock())
    return w.exited(code, clock(0.5), finished=False)


def crash_after_running(w: IslandWatch, clock: Clock, uptime: float, code: int = -9):
    w.started(clock())
    w.beat(("pid", 1), clock(0.1))
    return w.exited(code, clock(uptime), finished=False)


def test_start_failure_forever_ends_failed_after_k_tries_with_growing_jittered_delays():
    policy = RestartPolicy(max_restarts=100, start_failures=4, backoff_s=1.0, backoff_cap_s=60.0)
    clock = Clock()
    runs = []
    for seed in (1, 2):
        w, delays = IslandWatch("island-00", policy, random.Random(seed)), []
        while True:
            d = crash_at_start(w, clock)
            if d.action is not Action.RESTART:
                break
            delays.append(d.delay)
            assert not w.due(clock()) and w.due(clock(d.delay))
        assert d.action is Action.FAIL and w.state == "failed" and "failed at start 4 time(s)" in d.reason
        assert w.starts == 4 and len(delays) == 3
        for k, delay in enumerate(delays):  # equal jitter: step/2 <= delay <= step, step = 2^k
            assert 2 ** k / 2 <= delay <= 2 ** k
        assert delays == sorted(delays) and delays[0] < delays[-1]
        runs.append(delays)
    assert runs[0] != runs[1]  # jitter: two islands do not restart in step


def test_control_without_a_start_failure_threshold_a_bad_config_storms():
    # Negative control: the same start failures with the threshold out of reach keep
    # restarting well past K, which is the restart storm the threshold prevents.
    w = IslandWatch("island-00", RestartPolicy(max_restarts=100, start_failures=1000), random.Random(0))
    clock = Clock()
    assert all(crash_at_start(w, clock).action is Action.RESTART for _ in range(10))


def test_crash_budget_per_window_then_failed():
    policy = RestartPolicy(max_restarts=3, window_s=100.0, healthy_s=1000.0, start_failures=3)
    w, clock = IslandWatch("island-01", policy, random.Random(0)), Clock()
    decisions = [crash_after_running(w, clock, uptime=5.0) for _ in range(4)]
    assert [d.action for d in decisions] == [Action.RESTART] * 3 + [Action.FAIL]
    assert "crashed 4 time(s) within 100 s" in decisions[-1].reason and w.restarts == 3


def test_crashes_older_than_the_window_are_forgotten():
    policy = RestartPolicy(max_restarts=2, window_s=50.0, healthy_s=1000.0)
    w, clock = IslandWatch("island-01", policy, random.Random(0)), Clock()
    assert crash_after_running(w, clock, 5.0).action is Action.RESTART
    assert crash_after_running(w, clock, 5.0).action is Action.RESTART
    clock(60.0)  # both crashes fall out of the window
    assert crash_after_running(w, clock, 5.0).action is Action.RESTART


@pytest.mark.parametrize("healthy_run", [True, False])
def test_a_long_healthy_run_resets_the_budget(healthy_run):
    policy = RestartPolicy(max_restarts=2, window_s=10_000.0, healthy_s=300.0, backoff_s=1.0)
    w, clock = IslandWatch("island-02", policy, random.Random(0)), Clock()
    assert crash_after_running(w, clock, 5.0).action is Action.RESTART
    assert crash_after_running(w, clock, 5.0).action is Action.RESTART
    d = crash_after_running(w, clock, 400.0 if healthy_run else 5.0)
    if healthy_run:
        assert d.action is Action.RESTART and d.delay <= 1.0  # back to the first backoff step
        assert len(w.crashes) == 1
    else:  # control: the same third crash without the healthy run exhausts the budget
        assert d.action is Action.FAIL


def test_hang_is_detected_from_the_beat_counter_and_counted():
    policy = RestartPolicy(hang_timeout_s=60.0, startup_s=100.0, healthy_s=1000.0)
    w, clock = IslandWatch("island-03", policy, random.Random(0)), Clock()
    w.started(clock())
    assert not w.hung(clock(99.0))  # before the first heartbeat: the startup allowance
    w.beat((42, 1), clock())
    w.beat((42, 2), clock(30.0))
    assert not w.hung(clock(59.0))
    w.beat((42, 2), clock(0.5))  # the same counter again is not progress
    assert w.hung(clock(1.0))
    w.hang()
    d = w.exited(-9, clock(0.1), finished=False)
    assert w.hangs == 1 and d.action is Action.RESTART and "SIGKILL" in d.reason
    w.started(clock(d.delay))
    assert not w.hung(clock(99.0)) and w.hung(clock(2.0))  # a new incarnation, a fresh allowance


def test_a_start_that_never_beats_is_a_hang_after_the_startup_allowance():
    w, clock = IslandWatch("island-03", RestartPolicy(hang_timeout_s=5.0, startup_s=30.0), random.Random(0)), Clock()
    w.started(clock())
    assert not w.hung(clock(29.0)) and w.hung(clock(2.0))


def test_control_hang_detection_off_never_reports_a_hang():
    w, clock = IslandWatch("island-03", RestartPolicy(hang_timeout_s=0.0), random.Random(0)), Clock()
    w.started(clock())
    assert not w.hung(clock(1e9))


def test_exit_zero_is_done_and_config_error_codes_are_never_restarted():
    clock = Clock()
    w = IslandWatch("island-04", RestartPolicy(), random.Random(0))
    w.started(clock())
    assert w.exited(0, clock(1.0), finished=True).action is Action.DONE and w.state == "finished"
    w.started(clock())
    assert w.exited(0, clock(1.0), finished=False).action is Action.DONE and w.state == "stopped"
    for code in (EXIT_USAGE, EXIT_CHECKPOINT, EXIT_BUSY):
        w = IslandWatch("island-04", RestartPolicy(max_restarts=100), random.Random(0))
        w.started(clock())
        d = w.exited(code, clock(100.0), finished=False)
        assert d.action is Action.FAIL and f"exit {code}" in d.reason and w.restarts == 0


def test_zero_max_restarts_fails_on_the_first_crash():
    w, clock = IslandWatch("island-05", RestartPolicy(max_restarts=0), random.Random(0)), Clock()
    assert crash_after_running(w, clock, 5.0).action is Action.FAIL


def test_stopped_while_the_launcher_stops_is_not_restarted():
    w, clock = IslandWatch("island-06", RestartPolicy(), random.Random(0)), Clock()
    w.started(clock())
    w.stopped(-15)
    assert w.state == "stopped" and w.last_exit == -15 and not w.due(clock(1e6))


def test_policy_rejects_bad_limits_and_exits_are_described():
    with pytest.raises(PlanError, match="--max-restarts"):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(PlanError, match="--hang-timeout"):
        RestartPolicy(hang_timeout_s=-5)
    assert describe_exit(-9) == "signal 9 (SIGKILL)"
    assert describe_exit(3) == "exit 3 (unusable checkpoint)" and describe_exit(1) == "exit 1"
