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
from typing import Callable, Mapping

from islands.errors import debug_wanted
from launcher.child_setup import child_env, pdeathsig_wanted
from launcher.template_client import ForkServer, ForkServerError

CHECK_TIMEOUT_S = 300.0


def _check_forked(forks: ForkServer, request: str) -> subprocess.CompletedProcess:
    """`python -m islands.plancheck` forked from the island template, its pipes as files."""
    with tempfile.TemporaryDirectory(prefix="islands-plancheck-") as tmp:
        paths = {k: os.path.join(tmp, k) for k in ("in", "out", "err")}
        with open(paths["in"], "w") as f:
            f.write(request)
        argv = [sys.executable, "-m", "islands.plancheck"]
        proc = forks.spawn(argv, child_env(os.environ), os.getcwd(), paths["out"], (),
                           pdeathsig_wanted(), stdin=paths["in"], stderr=paths["err"])
        try:
            code = proc.wait(timeout=CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            raise
        with open(paths["out"]) as out, open(paths["err"]) as err:
            return subprocess.CompletedProcess(argv, code, out.read(), err.read())


def check_islands_build(config: Mapping[str, object], overrides: Mapping[str, Mapping[str, object]],
                        notes: list[str] | None = None, forks: ForkServer | None = None) -> str | None:
    """Build every island's config in a child (`islands.plancheck`); None if all build, else why not.

    With `notes` (the user typed --dim), the child's notices (a problem that fixes its own
    genome length) are appended there.

    A child, because judging algorithm and problem settings needs torch, which the launcher
    never loads. Used before a new run writes anything, when `--vary` reaches beyond settings
    `RunConfig` checks by itself.
    """
    request = json.dumps({"config": config, "overrides": overrides, "dim_given": notes is not None})
    out: subprocess.CompletedProcess | None = None
    if forks is not None:  # forked from the island template: no torch import of its own
        try:
            out = _check_forked(forks, request)
        except ForkServerError:
            out = None  # the template is unusable: a child of our own, then
        except subprocess.SubprocessError as e:
            return f"cannot check the islands' settings ({e})"
    try:
        out = out or subprocess.run([sys.executable, "-m", "islands.plancheck"], input=request, capture_output=True,
                                    text=True, env=child_env(os.environ), timeout=CHECK_TIMEOUT_S,
                                    start_new_session=True)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot check the islands' settings ({e})"
    if debug_wanted() and out.stderr:  # `islands --debug`: the traceback of a failing problem
        sys.stderr.write(out.stderr)
        sys.stderr.flush()
    try:
        answer = json.loads(out.stdout)
        if notes is not None:
            notes.extend(str(n) for n in answer.get("notes") or ())
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
