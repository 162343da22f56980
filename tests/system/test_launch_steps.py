"""A launch never leaves the screen blank: before its plan (which waits for the settings check,
a child that imports torch) it says what it is doing, in plain mode, with and without the
island template; then "starting n/N" while the islands import torch."""
from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from islands.exit_codes import EXIT_STOPPED
from support.procs import child_env


def launch_lines(tmp_path, **env: str) -> list[str]:
    cmd = [sys.executable, "-m", "islands", "launch", "--plain", "-n", "2", "--run-dir", str(tmp_path / "run"),
           "--problem", "sphere", "--dim", "3", "--population", "6", "--generations", "3", "--seed", "1",
           "--cores", "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(**env), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.splitlines()


def first(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


@pytest.mark.parametrize("template", [True, False], ids=["template", "no-template"])
def test_launch_names_each_step_before_its_plan(tmp_path, template):
    lines = launch_lines(tmp_path, **({} if template else {"ISLANDS_NO_FORK_SERVER": "1"}))
    text = "\n".join(lines)
    plan = first(lines, "plan: ")
    if template:  # the template imports torch, then the check is forked from it
        loading = first(lines, "starting the island template (loading torch) ...")
        check = first(lines, "checking settings ...")
        assert loading == 0 and loading < check < plan, text
    else:  # the check is a fresh child that imports torch itself
        assert first(lines, "checking settings (loading torch) ...") == 0 < plan, text
    # A step that lasts says so again with its seconds; never after it ended.
    assert all(line.endswith(" s") for line in lines[1:plan] if "..." in line and not line.endswith("..."))
    assert not any("loading torch" in line or "checking settings" in line for line in lines[plan:]), text
    assert plan < first(lines, "[0:00:0") and "starting 0/2" in lines[first(lines, "[0:00:0")], text


def test_the_plan_of_a_mixed_archipelago_names_each_algorithms_settings(tmp_path):
    cmd = [sys.executable, "-m", "islands", "launch", "--plain", "-n", "3", "--run-dir", str(tmp_path / "run"),
           "--problem", "sphere", "--dim", "3", "--generations", "2", "--seed", "1", "--cores", "0",
           "--vary", "algorithm=cmaes,de,ga", "--max-evaluations", "3000"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    head = first(lines, "settings: ")
    assert "algorithm" not in lines[head] and "population" not in lines[head], lines[head]
    # A mixed archipelago shares its budget by progress (--budget-share auto).
    for part in ("budget 3,000 evaluations shared by progress", "at most 2 generations", "(the problem's)",
                 "stop: each island at its target", "dtype float64"):
        assert part in lines[head], (part, lines[head])
    groups = lines[head + 1:head + 4]
    # The built algorithms' own populations (sized from the genome length), not the GA's 100 for all.
    assert [g.split(",")[0].strip() for g in groups] == ["algorithm cmaes", "algorithm de", "algorithm ga"], groups
    assert all(re.fullmatch(r"  algorithm \w+, population \d+( \([^)]*\))?  \(1 island\(s\): 0\d\)", g) for g in groups), groups
    assert "ladder" not in "".join(groups), groups  # cmaes on island 0 starts at the ladder's foot
    assert "population 100" in groups[2] and "population 100" not in groups[0], groups


def test_a_resumed_launch_names_the_template_while_it_loads_torch(tmp_path, reaper):
    root = tmp_path / "run"
    cmd = [sys.executable, "-m", "islands", "launch", "--plain", "-n", "1", "--run-dir", str(root), "--cores", "0",
           "--problem", "slow_problem:make", "--param", "delay=0.05", "--dim", "3", "--population", "6",
           "--generations", "100000", "--seed", "1", "--checkpoint-seconds", "0"]
    first_run = reaper.start(cmd, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    for line in first_run.stdout:  # stopped once its island runs: a planned run with an unfinished island
        if line.startswith("[") and "1 running" in line:
            break
    first_run.send_signal(signal.SIGINT)
    first_run.stdout.read()
    assert first_run.wait(timeout=120) == EXIT_STOPPED
    resumed = reaper.start(cmd, stdout=subprocess.PIPE, text=True, cwd=tmp_path)  # the same command resumes
    lines: list[str] = []
    for line in resumed.stdout:  # up to the first progress line, then stopped again
        lines.append(line.rstrip("\n"))
        if line.startswith("[0:00:0"):
            break
    resumed.send_signal(signal.SIGINT)
    resumed.stdout.read()
    assert resumed.wait(timeout=120) == EXIT_STOPPED
    text = "\n".join(lines)
    # No settings check on resume; the template's torch import is named before the first island starts.
    assert not any(line.startswith("checking settings") for line in lines), text
    assert first(lines, "run ") < first(lines, "starting the island template (loading torch) ...") \
        < first(lines, "[0:00:0"), text
