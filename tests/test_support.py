"""The test support itself: the slow plug-in problem and the process helpers other tests trust."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from islands.problems import make_problem
from support.procs import alive, bounded, child_env, result, signal_pending, wait_for, waits_for_a_child
from support.slow_problem import make

# What an island does with `--problem slow_problem:make --param base=...`, in a child process.
LOAD = r"""
import json, torch
from islands.problems import make_problem
out = {}
for base in ("rastrigin", "sphere"):
    p = make_problem("slow_problem:make", 3, delay=0.0, base=base)
    out[base] = [p.name, p.solved_at, p.evaluate(torch.full((1, 3), 0.5, dtype=torch.float64)).item()]
print(json.dumps(out))
"""


def test_slow_problem_is_a_sphere_without_target():
    p = make(3, delay=0.0, base="sphere")
    fit = p.evaluate(torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], dtype=torch.float64))
    assert fit.tolist() == [0.0, -9.0]
    assert p.solved_at is None


def test_slow_rastrigin_is_rastrigin_without_target():
    slow, plain = make(4, delay=0.0), make_problem("rastrigin", 4)
    x = torch.linspace(-3, 3, 8, dtype=torch.float64).reshape(2, 4)
    assert torch.equal(slow.evaluate(x), plain.evaluate(x))
    assert (slow.name, slow.solved_at, plain.solved_at is not None) == ("slow-rastrigin", None, True)
    assert (slow.lower, slow.upper) == (plain.lower, plain.upper)


def test_slow_problem_rejects_an_unknown_base():
    with pytest.raises(ValueError, match="base must be one of"):
        make(3, base="ackley")


def test_barrier_is_met_once_every_party_has_arrived(tmp_path):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    (barrier / "other-island").touch()  # the other party is already there
    p = make(2, delay=0.0, barrier=str(barrier), parties=2)
    p.evaluate(torch.zeros(2, 2, dtype=torch.float64))  # a new run's check of two genomes: no party
    assert os.listdir(barrier) == ["other-island"]
    p.evaluate(torch.zeros(3, 2, dtype=torch.float64))
    assert sorted(os.listdir(barrier)) == sorted(["other-island", f"{os.uname().nodename}-{os.getpid()}"])


# An island's turn lasts from one population evaluation to the next, so what it writes
# between two lands in its turn; the one-genome evaluation (a screened immigrant) takes none.
# The last turn ends with its evaluation (an island's run ends there).
TAKE_TURNS = r"""
import os, sys, torch
from slow_problem import make
p = make(2, delay=0.0, barrier=sys.argv[1], parties=2, turns=4, rows=2)
for _ in range(3):
    p.evaluate(torch.zeros(2, 2, dtype=torch.float64))
    p.evaluate(torch.zeros(1, 2, dtype=torch.float64))
    with open(sys.argv[2], "a") as f:
        f.write(os.environ["SLOW_PROBLEM_PLACE"])
p.evaluate(torch.zeros(2, 2, dtype=torch.float64))
print("[]")
"""


def test_islands_with_turns_go_one_after_the_other(tmp_path, reaper):
    barrier, log = tmp_path / "barrier", tmp_path / "log"
    # The second place starts first: the order of turns is the places', not the starts'.
    children = [reaper.python(TAKE_TURNS, str(barrier), str(log), env=child_env(SLOW_PROBLEM_PLACE=place))
                for place in ("1", "0")]
    for child in children:
        result(child)
    assert log.read_text() == "010101"
    assert sorted(os.listdir(barrier / "turns")) == [f"done-{t}" for t in range(8)]


def test_a_turn_that_never_comes_fails_the_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("SLOW_PROBLEM_PLACE", "1")
    monkeypatch.setattr("support.slow_problem.TURN_TIMEOUT_S", 0.05)
    (tmp_path / "2").touch()  # the other party met the barrier, then never took its turn
    p = make(2, delay=0.0, barrier=str(tmp_path), parties=2, turns=3, rows=2)
    with pytest.raises(RuntimeError, match="turn 1 did not come"):
        p.evaluate(torch.zeros(2, 2, dtype=torch.float64))


def test_children_find_the_plug_in_by_its_command_line_name(reaper):
    out = result(reaper.python(LOAD))
    # At x = 0.5: sphere -0.75; rastrigin -(30 + 0.75 - 30 cos(pi)) = -60.75.
    assert out["sphere"] == ["slow-sphere", None, pytest.approx(-0.75)]
    assert out["rastrigin"] == ["slow-rastrigin", None, pytest.approx(-60.75)]


def test_wait_for_returns_the_value_and_fails_when_it_never_comes():
    calls = iter([0, "", "ready"])
    assert wait_for(lambda: next(calls), timeout=60, interval=0.001) == "ready"
    with pytest.raises(AssertionError, match="timed out waiting for never"):
        wait_for(lambda: False, timeout=0, what="never")


def test_alive_tells_a_running_process_from_a_reaped_or_reused_pid():
    assert alive(os.getpid())
    assert not alive(os.getpid(), created=psutil.Process().create_time() - 100)
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.wait()
    assert not alive(child.pid)


def test_bounded_returns_the_value_raises_the_error_and_kills_a_call_that_blocks():
    assert bounded(lambda: {"a": [1, 2]}) == {"a": [1, 2]}
    with pytest.raises(ValueError, match="boom"):
        bounded(lambda: (_ for _ in ()).throw(ValueError("boom")))
    started = time.monotonic()
    with pytest.raises(AssertionError, match="did not return within 0.5 s"):
        bounded(lambda: time.sleep(60), timeout=0.5)
    assert time.monotonic() - started < 10


# A test that runs until the file $RELEASE exists (at most 60 s), after one that ends at once.
BLOCKING_TESTS = """
import os, time

def test_quick():
    pass

def test_blocks():
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["RELEASE"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(os.environ["RELEASE"])
"""


def test_a_long_running_test_is_named_on_the_terminal_while_it_runs(tmp_path, reaper):
    """support.still_running (loaded by tests/conftest.py) in a real pytest process: the
    notice comes while the test runs (the test only ends once we saw it) and names it."""
    (tmp_path / "test_inner.py").write_text(BLOCKING_TESTS)
    release = tmp_path / "release"
    proc = reaper.start([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "still_running",
                         "test_inner.py"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        env=child_env(ISLANDS_TEST_STILL_RUNNING="1", RELEASE=str(release)))
    seen = []
    for line in proc.stdout:  # ends at the latest when the inner test gives up after 60 s
        seen.append(line)
        if line.startswith("still running:"):
            break
    release.touch()
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0, "".join(seen) + rest
    assert seen[-1].strip() == "still running: test_inner.py::test_blocks (1 s)", "".join(seen)
    notices = [ln for ln in ("".join(seen) + rest).splitlines() if ln.startswith("still running:")]
    assert all("test_blocks" in ln for ln in notices), notices
    assert "2 passed" in rest

def test_waits_for_a_child_tells_a_shell_in_wait_from_one_that_sleeps(reaper, tmp_path):
    waiting = reaper.start(["bash", "-c", "sleep 600 & wait"])
    sleeping = reaper.start(["sh", "-c", f": > {tmp_path}/ready; exec sleep 600"])
    wait_for(lambda: waits_for_a_child(waiting.pid), timeout=30, what="the shell in wait")
    wait_for((tmp_path / "ready").exists, timeout=30, what="the sleeping shell")
    assert not waits_for_a_child(sleeping.pid)  # control: asleep, but not waiting for a child
    assert not waits_for_a_child(2**22 + 1)  # no such process


BLOCKS_USR1 = r"""
import signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print("blocked", flush=True)
sys.stdin.readline()
signal.signal(signal.SIGUSR1, lambda *_: print("handled", flush=True))
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
time.sleep(600)  # lives on until the test kills it
"""


def test_signal_pending_until_the_process_takes_the_signal(reaper):
    child = reaper.python(BLOCKS_USR1, stdin=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "blocked"
    assert not signal_pending(child.pid, signal.SIGUSR1)
    child.send_signal(signal.SIGUSR1)
    wait_for(lambda: signal_pending(child.pid, signal.SIGUSR1), timeout=30, what="SIGUSR1 pending")
    assert not signal_pending(child.pid, signal.SIGTERM)
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "handled"
    assert not signal_pending(child.pid, signal.SIGUSR1)
