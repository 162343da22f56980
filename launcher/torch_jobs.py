"""The launcher's torch work, done in child processes: checking every island's settings before
a run starts, and evaluating the champion on unseen starts after it ends.

Both need torch, which the launcher never loads (docs/DESIGN.md, "Layers"): the settings check
runs `python -m islands.plancheck` (forked from the island template when there is one, which has
torch imported already), the evaluation runs `islands evaluate` as a fresh child.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from islands.errors import debug_wanted
from launcher.child_setup import child_env, pdeathsig_wanted
from launcher.template_client import ForkServer, ForkServerError

CHECK_TIMEOUT_S = 300.0
TICK_S = 0.2  # how often a wait on the check calls its `tick`


def _no_view(text: str | None = None) -> None:
    """No screen to keep alive (a library caller, a test)."""


def view_steps(view: Any) -> dict[str, Callable[..., None]]:
    """The `begin`/`tick` arguments of `check_islands_build` from a launcher view; none from a
    caller's own view that lacks `begin`/`waiting` (`launch(request, view)` takes any view)."""
    if view is None or not hasattr(view, "begin") or not hasattr(view, "waiting"):
        return {}
    return {"begin": view.begin, "tick": view.waiting}


def _wait(proc: Any, tick: Callable[[], None], timeout: float) -> int:
    """`proc.wait(timeout)`, calling `tick` about every TICK_S: the waiting loop is what keeps
    the launcher's screen alive (no thread, docs/DESIGN.md)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proc.wait(timeout=max(0.0, min(TICK_S, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            tick()


def _check_forked(forks: ForkServer, request: str, begin: Callable[[str], None],
                  tick: Callable[[], None]) -> subprocess.CompletedProcess:
    """`python -m islands.plancheck` forked from the island template, its pipes as files."""
    if forks.ready is None:
        begin("starting the island template (loading torch)")
        forks.wait_ready(tick)
    begin("checking settings")
    with tempfile.TemporaryDirectory(prefix="islands-plancheck-") as tmp:
        paths = {k: os.path.join(tmp, k) for k in ("in", "out", "err")}
        with open(paths["in"], "w") as f:
            f.write(request)
        argv = [sys.executable, "-m", "islands.plancheck"]
        proc = forks.spawn(argv, child_env(os.environ), os.getcwd(), paths["out"], (),
                           pdeathsig_wanted(), stdin=paths["in"], stderr=paths["err"])
        try:
            code = _wait(proc, tick, CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            raise
        with open(paths["out"]) as out, open(paths["err"]) as err:
            return subprocess.CompletedProcess(argv, code, out.read(), err.read())


def _check_spawned(request: str, begin: Callable[[str], None], tick: Callable[[], None]) -> subprocess.CompletedProcess:
    """`python -m islands.plancheck` as a fresh child (it imports torch itself), its pipes as files."""
    begin("checking settings (loading torch)")
    argv = [sys.executable, "-m", "islands.plancheck"]
    with tempfile.TemporaryFile("w+") as inp, tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        inp.write(request)
        inp.seek(0)
        proc = subprocess.Popen(argv, stdin=inp, stdout=out, stderr=err, text=True, env=child_env(os.environ),
                                start_new_session=True)
        try:
            code = _wait(proc, tick, CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, code, out.read(), err.read())


def check_islands_build(config: Mapping[str, object], overrides: Mapping[str, Mapping[str, object]],
                        notes: list[str] | None = None, forks: ForkServer | None = None,
                        begin: Callable[[str], None] = _no_view, tick: Callable[[], None] = _no_view,
                        groups: list[dict[str, Any]] | None = None) -> str | None:
    """Build every island's config in a child (`islands.plancheck`); None if all build, else why not.

    With `notes` (the user typed --dim), the child's notices (a problem that fixes its own
    genome length) are appended there.

    A child, because judging algorithm and problem settings needs torch, which the launcher
    never loads. With `groups`, the effective settings per algorithm that only the built
    problem knows (population, target, dtype; `islands.plancheck.check`) are appended there.
    `begin` names each step as it starts and `tick` is called about every TICK_S
    while one lasts (the launcher's view: the screen says what it waits for). Used before a
    new run writes anything, when `--vary` reaches beyond settings
    `RunConfig` checks by itself.
    """
    request = json.dumps({"config": config, "overrides": overrides, "dim_given": notes is not None})
    out: subprocess.CompletedProcess | None = None
    if forks is not None:  # forked from the island template: no torch import of its own
        try:
            out = _check_forked(forks, request, begin, tick)
        except ForkServerError:
            out = None  # the template is unusable: a child of our own, then
        except subprocess.SubprocessError as e:
            return f"cannot check the islands' settings ({e})"
    try:
        out = out or _check_spawned(request, begin, tick)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot check the islands' settings ({e})"
    if debug_wanted() and out.stderr:  # `islands --debug`: the traceback of a failing problem
        sys.stderr.write(out.stderr)
        sys.stderr.flush()
    try:
        answer = json.loads(out.stdout)
        if notes is not None:
            notes.extend(str(n) for n in answer.get("notes") or ())
        if groups is not None:  # the effective settings per algorithm, for the plan line
            groups.extend(g for g in answer.get("groups") or () if isinstance(g, dict))
        return answer["error"]
    except (ValueError, KeyError, TypeError):
        tail = (out.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return f"cannot check the islands' settings (exit {out.returncode}: {tail[0]})"


EVALUATE_TIMEOUT_S = 600.0


def evaluate_champion(root: Path, episodes: int, stopped: Callable[[], bool] = lambda: False) -> tuple[bool, str]:
    """Run `islands evaluate ROOT --episodes N` in a child; (succeeded, its last line or why not).

    A child for the same reason as `check_islands_build`: the evaluation runs the policy in torch.
    The child is killed once `stopped()` (a stop signal reached the launcher) or after
    EVALUATE_TIMEOUT_S.
    """
    cmd = [sys.executable, "-m", "islands", "evaluate", str(root), "--episodes", str(episodes)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=child_env(os.environ),
                                    start_new_session=True)
        except (OSError, subprocess.SubprocessError) as e:
            return False, str(e)
        deadline = time.monotonic() + EVALUATE_TIMEOUT_S
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if stopped() or time.monotonic() > deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return False, "stopped by a signal" if stopped() else f"timed out after {EVALUATE_TIMEOUT_S:g} s"
        (out if code == 0 else err).seek(0)
        lines = (out if code == 0 else err).read().strip().splitlines()
    return code == 0, (lines[-1] if lines else f"exit {code}, no output")
