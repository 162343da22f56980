"""Stop signals of an island (issue 12, item 3), with real processes and real signals.

A scheduler may send SIGTERM more than once, and warns of a time limit with SIGUSR1: the
island must still finish its generation, checkpoint and exit EXIT_STOPPED (75). Only a second
SIGINT (a person pressing Ctrl+C again) exits at once.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from islands.exit_codes import EXIT_STOPPED, NO_RESTART
from launcher.supervise import Action, IslandWatch, RestartPolicy
from migration_pool.rundir import RunDir
from support.procs import child_env, evolve_cmd, kill_group, signal_at_generation, start, wait_for

# 1.2 s per generation (almost all of it asleep: no CPU). Signals are sent while the island
# is inside the evaluation of its generation 2 or later (slow_problem's trace says when), and
# each once the island has handled the one before: Python runs a signal handler between
# bytecodes and merges repeats of a signal whose handler has not run yet.
SLOW = ["--problem", "slow_problem:make", "--param", "delay=1.2", "--dim", "5", "--population", "10",
        "--seed", "5", "--generations", "100000", "--checkpoint-every", "1000", "--checkpoint-seconds", "0"]


def checkpoint_generation(root) -> int | None:
    record, errors = RunDir(root).island("island-00").load_checkpoint()
    assert not errors
    return None if record is None else record["generation"]


def read_trace(path) -> list[str]:
    """What the island did, in order: `evaluate` per evaluation, `signal N` per handler run."""
    return path.read_text().splitlines() if path.exists() else []


def signal_island(root, *signums: int) -> tuple[int, str, list[str]]:
    """Sends `signums` one after another to a running island; returns its exit code, its
    output and its trace."""
    trace = root.parent / f"{root.name}-trace"
    proc = start(evolve_cmd("island-00", root, *SLOW, "--param", f"trace={trace}"))
    try:
        # Evaluations 1 and 2 are the first population's and generation 1's.
        wait_for(lambda: read_trace(trace).count("evaluate") >= 3, what="the evaluation of generation 2",
                 interval=0.005)
        for k, signum in enumerate(signums, 1):
            proc.send_signal(signum)
            wait_for(lambda: sum(line.startswith("signal") for line in read_trace(trace)) >= k
                     or proc.poll() is not None, interval=0.005,
                     what=f"the island to handle signal {k} ({signal.Signals(signum).name})")
        out, _ = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    return proc.returncode, out, read_trace(trace)


def handled_in_one_generation(trace: list[str], signums: tuple[int, ...]) -> int:
    """The generation during which every signal was handled (and none began after them)."""
    evaluations = trace.count("evaluate")
    assert trace == ["evaluate"] * evaluations + [f"signal {s}" for s in signums], trace
    return evaluations - 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signums", [(signal.SIGTERM, signal.SIGTERM, signal.SIGTERM),
                                     (signal.SIGUSR1, signal.SIGTERM)],
                         ids=["term-term-term", "usr1-term"])
def test_repeated_stop_signals_still_checkpoint_and_exit_75(tmp_path, signums):
    code, out, trace = signal_island(tmp_path, *signums)
    assert code == EXIT_STOPPED, out
    generation = handled_in_one_generation(trace, signums)  # every repeat reached a handler
    status = RunDir(tmp_path).island("island-00").read_status()
    assert status["state"] == "stopped" and status["reason"] == "stopped"
    # No periodic checkpoint is due before generation 1000: this one was written at the stop,
    # once the generation the signals came in had been finished.
    assert checkpoint_generation(tmp_path) == status["generation"] == generation >= 2
    assert ("time limit (SIGUSR1)" in out) == (signums[0] == signal.SIGUSR1)


@pytest.mark.timeout(120)
def test_a_second_sigint_exits_at_once_without_a_checkpoint(tmp_path):
    code, _, trace = signal_island(tmp_path, signal.SIGINT, signal.SIGINT)
    assert code == 128 + signal.SIGINT
    handled_in_one_generation(trace, (signal.SIGINT, signal.SIGINT))
    assert checkpoint_generation(tmp_path) is None  # control: it did not wait for its checkpoint


HOOKED = r"""
import json, subprocess, sys
from pathlib import Path
from islands.config import RunConfig
from islands.island import StopFlag, install_stop_handlers
from islands.runs import evolve
from migration_pool.rundir import RunDir

root = Path(sys.argv[1])
stop = StopFlag()
install_stop_handlers(stop)
CLAIM = "from migration_pool.rundir import RunDir; import sys; RunDir(sys.argv[1]).island('island-00').claim().release()"

def requeue(result):
    # What a scheduler backend does here (scontrol requeue): a new copy of the island must be
    # able to claim it and find the checkpoint written at the stop.
    record, _ = RunDir(root).island("island-00").load_checkpoint()
    claim = subprocess.run([sys.executable, "-c", CLAIM, str(root)], capture_output=True, text=True)
    (root / "hook.json").write_text(json.dumps({"generation": result.generation, "signal": result.stop_signal,
        "checkpoint": record["generation"], "claim_rc": claim.returncode, "claim_err": claim.stderr}))

config = RunConfig(problem="slow_problem:make", problem_params={"delay": 0.1}, dim=5, population=10,
                   generations=100000, checkpoint_every=1000, checkpoint_seconds=0.0)
result = evolve("island-00", root, config, stop=stop, log=lambda m: None, on_time_limit=requeue)
print(json.dumps({"reason": result.reason}))
"""


@pytest.mark.timeout(120)
def test_sigusr1_checkpoints_then_calls_the_requeue_hook_with_the_island_released(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOOKED, str(tmp_path)], env=child_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = signal_at_generation(proc, tmp_path, 3, signal.SIGUSR1, timeout=60)
    assert proc.returncode == 0 and json.loads(out.splitlines()[-1]) == {"reason": "stopped"}, err
    hook = json.loads((tmp_path / "hook.json").read_text())
    assert hook["claim_rc"] == 0, hook["claim_err"]
    assert hook["signal"] == signal.SIGUSR1 and hook["checkpoint"] == hook["generation"] >= 3


def test_a_launched_island_that_exits_75_is_stopped_not_restarted_nor_failed():
    watch = IslandWatch("island-00", RestartPolicy())
    watch.started(0.0)
    decision = watch.exited(EXIT_STOPPED, 50.0, finished=False)
    assert decision.action is Action.DONE and watch.state == "stopped"
    assert watch.reason == "stopped by a signal before finishing (exit 75)"
    assert EXIT_STOPPED in NO_RESTART
    crash = IslandWatch("island-01", RestartPolicy())
    crash.started(0.0)
    assert crash.exited(76, 50.0, finished=False).action is Action.RESTART  # control: a crash is restarted


def test_an_island_run_in_process_does_not_leave_stop_signals_ignored_for_later_programs(tmp_path):
    """An ignored signal is inherited across exec: after `islands evolve` ran inside this
    process (as tests and notebooks do), a program started later must still be stoppable by
    SIGTERM and able to trap it (a shell cannot trap a signal ignored on entry)."""
    from click.testing import CliRunner

    from islands.cli import main

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        res = CliRunner().invoke(main, ["evolve", "island-00", "--run-dir", str(tmp_path / "run"), "--problem",
                                        "sphere", "--dim", "3", "--population", "8", "--generations", "3", "--quiet"])
        assert res.exit_code == 0, res.output
        assert all(signal.getsignal(s) != signal.SIG_IGN for s in before)
        # The shell says when its trap is set; its loop only keeps it running until the signal.
        ready = tmp_path / "trap-set"
        child = subprocess.Popen(["sh", "-c", "trap 'exit 7' TERM; : > \"$1\"; while :; do sleep 0.05; done",
                                  "sh", str(ready)])
        wait_for(ready.exists, timeout=30, what="the shell to set its trap")
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 7
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
