"""The test support itself: the slow plug-in problem and the process helpers other tests trust."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest
import torch

from islands.problems import make_problem
from support.procs import alive, bounded, result, wait_for
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
    assert sorted(os.listdir(barrier)) == sorted(["other-island", str(os.getpid())])


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
