"""A launch never leaves the screen blank: before its plan (which waits for the settings check,
a child that imports torch) it says what it is doing, in plain mode, with and without the
island template; then "starting n/N" while the islands import torch."""
from __future__ import annotations

import subprocess
import sys

import pytest

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
