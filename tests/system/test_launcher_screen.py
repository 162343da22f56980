"""The launch screen as a person sees it (issue 14, item 3): a real `islands launch -n 3` on a
terminal of fixed size (a detached tmux session), its screen captured while it runs and after.

Before the plan, the step torch is loaded for turns a spinner; while islands import torch they show "starting"; once they report, an overall bar with an ETA;
at the end the summary is the last thing on screen, below the last frame of the table (which
used to print after it and push it off screen), with no raw float such as -12.577276229858398.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest

from support.procs import child_env, wait_for

TMUX = shutil.which("tmux")
pytestmark = [pytest.mark.skipif(TMUX is None, reason="tmux is not installed (scripts/_python.sh installs it as root)"),
              pytest.mark.slow]
COLS, ROWS = 150, 50
ETA = re.compile(r"ETA \d+:\d\d:\d\d")
RAW_FLOAT = re.compile(r"\d\.\d{8,}")  # more digits than any rounded figure shows
DONE = "[launch exited "


@pytest.fixture
def tmux():
    """Runs tmux commands on a private server (never a user's), killed at teardown. The server
    and its panes get the children's environment without COLUMNS/LINES (set under pytest), which
    would override the pane's size."""
    socket = f"islands-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in child_env().items() if k not in ("COLUMNS", "LINES")}

    def cmd(*args: str) -> str:
        return subprocess.run([TMUX, "-L", socket, *args], capture_output=True, text=True, check=True,
                              timeout=30, env=env).stdout

    yield cmd
    subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True, timeout=30)


def screen(tmux) -> list[str]:
    """The visible screen (not the scroll-back): what a person sees now."""
    return [line.rstrip() for line in tmux("capture-pane", "-p", "-t", "launch").splitlines()]


def test_launch_screen_shows_starting_a_bar_with_eta_and_ends_with_the_summary(tmp_path, tmux):
    root = tmp_path / "run"
    launch = [sys.executable, "-m", "islands", "launch", "-n", "3", "--run-dir", str(root),
              "--problem", "slow_problem:make", "--param", "delay=0.04", "--dim", "3", "--population", "6",
              "--generations", "50", "--seed", "1", "--checkpoint-seconds", "0", "--progress-every", "0.2"]
    shell = f"cd {shlex.quote(str(tmp_path))} && {shlex.join(launch)}; echo '{DONE}'$?']'; sleep 600"
    tmux("new-session", "-d", "-s", "launch", "-x", str(COLS), "-y", str(ROWS), shell)

    seen: list[list[str]] = []

    def ended() -> bool:  # every frame polled is kept: the test judges them all
        seen.append(screen(tmux))
        return any(line.startswith(DONE) for line in seen[-1])

    wait_for(ended, timeout=120, what="the launch to end on the terminal", interval=0.1)
    final = [line for line in seen[-1] if line]
    assert final[-1] == f"{DONE}0]", "\n".join(final)

    during = [s for s in seen[:-1] if not any(line.startswith(DONE) for line in s)]
    text = ["\n".join(s) for s in during]
    # Never blank: while torch loads (before the plan) a spinner says so, with its seconds.
    assert any(re.search(r"(starting the island template|checking settings) \(loading torch\) \.\.\. \d+ s", t)
               for t in text), "no step named while torch loaded:\n" + text[0]
    assert any("starting 0/3" in t for t in text), "no 'starting' state before the islands reported"
    running = [t for t in text if "━" in t and ETA.search(t) and "running" in t]
    assert running, "no bar with an ETA while the islands ran:\n" + text[-1]
    heads = [line for s in during for line in s if line.startswith("[") and "starting 0/3" in line]
    assert heads and not any("evals/s" in line for line in heads)  # no "0 evals/s" while importing torch

    # The end: the last frame of the table, then the summary, then nothing but the shell's line.
    last_frame = max(i for i, line in enumerate(final) if line.startswith("└"))
    head = next(i for i, line in enumerate(final) if re.match(r"run \w+ finished: 3/3 island\(s\) finished", line))
    assert last_frame < head, "\n".join(final)
    summary = final[head:-1]
    assert any(line.startswith("champion: ") for line in summary) and any(line.startswith("migration: ") for line in summary)
    assert not any(line.startswith(("│", "└", "┏")) for line in summary)
    assert not any(RAW_FLOAT.search(line) for line in final), "\n".join(final)
