"""The SLURM backend without SLURM: option checks, the batch script (run for real by bash with
stand-ins for python and scontrol), the island a task runs, and how status merges SLURM's view."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from islands.errors import ConfigError
from islands.scheduler_state import TaskState, _expand, island_from_env, merge_into_entry
from launcher.errors import PlanError
from launcher.sbatch import SlurmOptions, parse_time, render
from launcher.slurm import ended_code
from migration_pool.rundir import RunDir
from support.procs import signal_pending, wait_for, waits_for_a_child

PLANNED = [f"island-{i:02d}" for i in range(8)]


def script(tmp_path: Path, opts: SlurmOptions = SlurmOptions(), indices=(0, 1, 2, 5), python: str = "/usr/bin/python3",
           env: dict | None = None) -> str:
    return render(opts, run_dir=str(tmp_path / "run"), run_id="ab" * 16, indices=list(indices), planned=PLANNED,
                  python=python, cwd=str(tmp_path), env=env if env is not None else {"PYTHONPATH": "/src:/x y"})


@pytest.mark.parametrize("kwargs, quoted", [
    ({"pattern": "tree"}, "--pattern 'tree'"),
    ({"partition": "a b"}, "--partition 'a b'"),
    ({"account": "x;rm"}, "--account 'x;rm'"),
    ({"time": "0"}, "--time '0'"),
    ({"time": "1:2:3:4"}, "--time '1:2:3:4'"),
    ({"warn_s": 70000}, "--warn-before 70000"),
    ({"max_requeues": -1}, "--max-requeues -1"),
    ({"device": "cuda:1"}, "--device 'cuda:1'"),
    ({"sbatch_args": ("qos=long",)}, "--sbatch-arg 'qos=long'"),
    ({"sbatch_args": ("--array=0-3",)}, "--array is set by islands"),
    ({"sbatch_args": ("-o x",)}, "-o is set by islands"),
    ({"sbatch_args": ("--signal=USR1@60",)}, "--signal is set by islands"),
])
def test_bad_slurm_options_are_refused_quoting_the_option(kwargs, quoted):
    with pytest.raises(PlanError) as e:
        SlurmOptions(**kwargs)
    assert quoted in str(e.value)


def test_slurm_time_formats():
    assert [parse_time(t) for t in ("90", "1:30", "2:00:00", "1-0", "1-2:03", "0:0:61")] == [90, 2, 120, 1440, 1563, 2]


def test_the_array_script_asks_one_core_per_island_the_warning_signal_and_exports_the_code_path(tmp_path):
    text = script(tmp_path, SlurmOptions(partition="short", time="2:00:00", account="lab", sbatch_args=("--qos=x",)))
    lines = text.splitlines()
    for want in ("#SBATCH --array=0-2,5", "#SBATCH --cpus-per-task=1", "#SBATCH --signal=B:USR1@120",
                 "#SBATCH --partition=short", "#SBATCH --time=2:00:00", "#SBATCH --account=lab", "#SBATCH --qos=x",
                 "#SBATCH --requeue", f"#SBATCH --output={tmp_path}/run/slurm/%A_%a.out",
                 "export PYTHONPATH='/src:/x y'"):
        assert want in lines, want
    assert "gpus-per-task" not in text and "srun" not in text
    assert f"/usr/bin/python3 -m islands evolve --slurm --run-dir {tmp_path}/run &" in lines
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_the_step_script_runs_srun_over_the_unfinished_islands_and_cuda_asks_a_gpu_per_task(tmp_path):
    text = script(tmp_path, SlurmOptions(pattern="step", device="cuda", warn_s=0), indices=(3, 6), env={})
    lines = text.splitlines()
    assert "#SBATCH --ntasks=2" in lines and "#SBATCH --gpus-per-task=1" in lines
    assert "export ISLANDS_SLURM_INDICES=3,6" in lines
    assert any(ln.startswith("srun --ntasks=2 --cpus-per-task=1 --cpu-bind=cores ") for ln in lines)
    assert "--signal" not in text and "PYTHONPATH" not in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_a_run_directory_sbatch_cannot_quote_is_refused(tmp_path):
    with pytest.raises(PlanError, match="must not contain"):
        render(SlurmOptions(), run_dir="/tmp/my run", run_id="x" * 32, indices=[0], planned=PLANNED,
               python="python3", cwd="/tmp", env={})


def _fake_task(tmp_path: Path, restarts: int) -> tuple[subprocess.Popen, Path, Path]:
    """The array script run by bash as SLURM would, with stand-ins for the island and scontrol."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.calls"
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    # An island: stops (exit 0) on SIGTERM, as `islands evolve` does; its loop only keeps it running.
    island = tmp_path / "island"
    island.write_text("#!/bin/sh\ntrap 'echo island stopped; exit 0' TERM\necho island started\n"
                      "while :; do sleep 0.05; done\n")
    for f in (bin_dir / "scontrol", island):
        f.chmod(0o755)
    path = tmp_path / "job.sbatch"
    path.write_text(script(tmp_path, python=str(island), env={}))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_ARRAY_JOB_ID": "7",
           "SLURM_ARRAY_TASK_ID": "3", "SLURM_RESTART_COUNT": str(restarts)}
    proc = subprocess.Popen(["bash", str(path)], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    return proc, calls, island


@pytest.mark.parametrize("restarts, requeued", [(0, True), (3, False)])
def test_the_time_limit_warning_stops_the_island_and_requeues_the_task_within_its_budget(tmp_path, restarts, requeued):
    proc, calls, _ = _fake_task(tmp_path, restarts)
    try:
        assert proc.stdout.readline().strip() == "island started"
        # The warning's trap stops the island the shell knows: once the shell waits for it.
        wait_for(lambda: waits_for_a_child(proc.pid), timeout=30, what="the batch shell to wait for its island")
        proc.send_signal(signal.SIGUSR1)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0 and "island stopped" in out
    if requeued:
        assert calls.read_text() == "requeue 7_3\n"
        assert "requeueing 7_3 (requeue 1 of 3)" in out and "task ended" not in out
    else:
        assert not calls.exists()
        assert "requeue budget (3) spent" in out and out.rstrip().endswith("islands: task ended: 7_3 exit 0")


def test_the_batch_shell_ignores_sigterm_and_reports_how_the_island_ended(tmp_path):
    proc, calls, _ = _fake_task(tmp_path, 0)
    try:
        assert proc.stdout.readline().strip() == "island started"  # the shell's traps are set
        proc.send_signal(signal.SIGTERM)  # to the shell only: it must neither die nor requeue
        wait_for(lambda: not signal_pending(proc.pid, signal.SIGTERM), timeout=30,
                 what="the batch shell to take its SIGTERM")
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGTERM)  # as scancel: every process of the job
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not calls.exists()
    assert out.rstrip().endswith("islands: task ended: 7_3 exit 0")
    (tmp_path / "run" / "slurm").mkdir(parents=True)
    (tmp_path / "run" / "slurm" / "7_3.out").write_text(out)
    assert ended_code(RunDir(tmp_path / "run"), "7_3") == 0
    assert ended_code(RunDir(tmp_path / "run"), "7_4") is None  # no output: killed (or never ran)


@pytest.mark.parametrize("env, island", [
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_PROCID": "0"}, "island-05"),
    ({"SLURM_PROCID": "2"}, "island-02"),
    ({"SLURM_PROCID": "1", "ISLANDS_SLURM_INDICES": "3,6"}, "island-06"),
])
def test_a_task_runs_the_planned_island_at_its_index(env, island):
    assert island_from_env(PLANNED, env) == island


@pytest.mark.parametrize("env, message", [
    ({}, "neither SLURM_ARRAY_TASK_ID nor SLURM_PROCID"),
    ({"SLURM_ARRAY_TASK_ID": "8"}, "SLURM_ARRAY_TASK_ID is 8, but the run plans 8"),
    ({"SLURM_PROCID": "2", "ISLANDS_SLURM_INDICES": "3,6"}, "beyond ISLANDS_SLURM_INDICES"),
])
def test_a_task_without_a_planned_island_is_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        island_from_env(PLANNED, env)


def test_pending_array_tasks_expand():
    assert _expand("[0-3,7%2]") == [0, 1, 2, 3, 7]


@pytest.mark.parametrize("state, task, want", [
    ("pending", TaskState("9_1", "pending", "PENDING", "Priority"), "pending"),
    ("stopped", TaskState("9_1", "requeued", "PENDING", "BeginTime", 1), "requeued"),
    ("stale", TaskState("9_1", "failed", "FAILED"), "dead"),  # status says running, its task is gone
    ("running", TaskState("9_1", "gone"), "dead"),
    ("running", TaskState("9_1", "running", "RUNNING"), "running"),
    ("stopped", TaskState("9_1", "cancelled", "CANCELLED"), "stopped"),
    ("finished", TaskState("9_1", "failed", "FAILED"), "finished"),
    # Its host does not answer SLURM: lost at once, whatever its last heartbeat says.
    ("running", TaskState("9_1", "running", "RUNNING", nodes=("node2",),
                          unreachable=(("node2", "MIXED+NOT_RESPONDING"),)), "stale"),
    ("finished", TaskState("9_1", "running", "RUNNING", nodes=("node2",), unreachable=(("node2", "DOWN"),)),
     "finished"),
])
def test_status_merges_the_scheduler_state(state, task, want):
    entry = {"state": state, "note": None}
    merge_into_entry(entry, task)
    assert entry["state"] == want
    assert entry["scheduler"]["job"] == "9_1"
    if want != state:
        assert "9_1" in entry["note"]


def test_record_slurm_job_appends_one_line_per_submission(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.scheduler.record_slurm_job({"job_id": "1", "pattern": "array", "islands": {"0": "island-00"}})
    with open(rundir.scheduler.slurm_dir / "jobs", "ab") as f:
        f.write(b"not json\n")
    rundir.scheduler.record_slurm_job({"job_id": "2", "pattern": "step", "islands": {"0": "island-01"}})
    assert [r["job_id"] for r in rundir.scheduler.read_slurm_jobs()] == ["1", "2"]


@pytest.mark.parametrize("signals, answer, choice", [
    ([signal.SIGINT], "c", "cancel"),
    ([signal.SIGINT], "", "detach"),
    ([signal.SIGTERM], "c", "detach"),  # not a person at a terminal: the jobs keep running
])
def test_ctrl_c_asks_whether_to_cancel_or_detach(tmp_path, signals, answer, choice):
    from launcher.request import LaunchRequest
    from launcher.slurm import SlurmLaunch

    launch = SlurmLaunch(LaunchRequest(root=tmp_path / "run", islands=2), SlurmOptions(), ask=lambda _q: answer)
    launch.signals = list(signals)
    assert launch._stop_choice(cancelled=False) == choice


def test_slurm_options_without_the_slurm_backend_are_refused(tmp_path):
    from click.testing import CliRunner

    from launcher.cli import launch

    out = CliRunner().invoke(launch, ["-n", "2", "--run-dir", str(tmp_path / "run"), "--partition", "short"])
    assert out.exit_code == 2 and "error: --partition needs --backend slurm" in out.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, flag", [(["--evaluate", "5"], "--evaluate"), (["--no-fork-server"], "--no-fork-server"),
                                         (["--grace", "3"], "--grace"), (["--hang-timeout", "9"], "--hang-timeout")])
def test_local_only_options_are_refused_with_the_slurm_backend(tmp_path, extra, flag):
    from click.testing import CliRunner

    from launcher.cli import launch

    out = CliRunner().invoke(launch, ["--backend", "slurm", "-n", "2", "--run-dir", str(tmp_path / "run"), *extra])
    assert out.exit_code == 2 and f"error: {flag} applies to local launches" in out.output, out.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--fresh", "--fresh-run"])
def test_a_slurm_task_cannot_start_the_run_over(tmp_path, flag):
    from click.testing import CliRunner

    from islands.cli import main

    run = tmp_path / "run"
    out = CliRunner().invoke(main, ["evolve", "--slurm", flag, "--yes", "--run-dir", str(run)])
    assert out.exit_code == 2 and "--slurm runs a task of a planned run" in out.output
    assert not run.exists()


@pytest.mark.parametrize("state, active", [("pending", True), ("running", True), ("preempted", True),
                                           ("resv_del_hold", True), ("completed", False), ("cancelled", False),
                                           ("timeout", False), ("failed", False), ("gone", False)])
def test_only_end_states_let_a_task_be_resubmitted(state, active):
    """PREEMPTED may requeue and unknown states may run again: resubmitting then would start a
    second copy of the island."""
    from islands.scheduler_state import TaskState

    assert TaskState("7_3", state).active is active


def test_a_stop_signal_while_preparing_submits_nothing_and_kills_nothing(tmp_path, monkeypatch):
    """SIGTERM (a scheduler's stop) while the run is prepared, i.e. before sbatch: recorded, not
    fatal; nothing is submitted, and the handlers are back as they were afterwards. Before the
    fix the handlers were only installed for the watch, so the signal killed the launcher
    (exit 143) wherever it came, sbatch's job record included."""
    from launcher.request import LaunchRequest
    from launcher.slurm import SlurmLaunch

    submitted: list = []
    launch = SlurmLaunch(LaunchRequest(root=tmp_path / "run", islands=2), SlurmOptions())

    def prepare():
        os.kill(os.getpid(), signal.SIGTERM)
        return SimpleNamespace(run_id="ab" * 16), ["island-00", "island-01"], [0, 1]

    monkeypatch.setattr(launch, "prepare", prepare)
    monkeypatch.setattr(launch, "submit", lambda *a: submitted.append(a))
    before = signal.getsignal(signal.SIGTERM)
    result = launch.run()
    assert result.state == "stopped" and result.signal == signal.SIGTERM
    assert submitted == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_repeated_sigterm_during_the_summary_cannot_cut_it_short(tmp_path, monkeypatch):
    """The summary (champion, last table) runs under the same requests: SIGTERMs arriving while it
    is written are recorded and the result still comes back."""
    from launcher.request import LaunchRequest
    from launcher.slurm import SlurmLaunch, SlurmResult

    launch = SlurmLaunch(LaunchRequest(root=tmp_path / "run", islands=1), SlurmOptions())
    monkeypatch.setattr(launch, "prepare", lambda: (SimpleNamespace(run_id="ab" * 16), ["island-00"], []))

    def watch(_run, _planned):
        for _ in range(5):
            os.kill(os.getpid(), signal.SIGTERM)
        return SlurmResult("finished")

    monkeypatch.setattr(launch, "_watch", watch)
    assert launch.run().state == "finished"
    assert launch.signals == [signal.SIGTERM] * 5


@pytest.mark.parametrize("reason, shown", [("generations", "finished"), ("no-finite-fitness", "failed")])
def test_an_island_that_ended_without_a_finite_fitness_is_failed_in_the_slurm_watch(tmp_path, reason, shown):
    """As in a local launch: such an island found nothing, so the run is not "all finished"."""
    from islands.status.record import IslandStatus
    from launcher.request import LaunchRequest
    from launcher.slurm import SlurmLaunch

    launch = SlurmLaunch(LaunchRequest(root=tmp_path / "run", islands=1), SlurmOptions())
    st = IslandStatus(run_id="ab" * 16, state="finished", reason=reason, generation=5, generations=5)
    row = launch._row(SimpleNamespace(run_id="ab" * 16, config=SimpleNamespace(max_evaluations=None)),
                      "island-00", st, None, 0.0)
    assert row.state == shown


# What `scontrol -o show job` and `show node` print (Slurm 22.05, trimmed): node2 was crashed.
JOB_LINES = (
    "JobId=12 ArrayJobId=10 ArrayTaskId=2 JobState=RUNNING Reason=None Restarts=0 NodeList=node2 BatchHost=node2\n"
    "JobId=11 ArrayJobId=10 ArrayTaskId=1 JobState=RUNNING Reason=None Restarts=0 NodeList=node1 BatchHost=node1\n"
    "JobId=10 ArrayJobId=10 ArrayTaskId=0 JobState=PENDING Reason=BeginTime Restarts=1 NodeList=(null) BatchHost=(null)\n")
NODE_LINES = ("NodeName=node1 Arch=x86_64 State=ALLOCATED+FAIL\n"  # FAILING: its jobs run on
              "NodeName=node2 Arch=x86_64 State=MIXED+NOT_RESPONDING\n")


def test_island_states_mark_a_task_on_an_unreachable_host_lost(tmp_path, monkeypatch):
    from islands import scheduler_state as sched

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "job.txt").write_text(JOB_LINES)
    (tmp_path / "node.txt").write_text(NODE_LINES)
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\ncat {tmp_path}/"$3".txt\n')
    (bin_dir / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    rundir = RunDir(tmp_path / "run")
    rundir.scheduler.record_slurm_job({"job_id": "10", "pattern": "array",
                                       "islands": {"0": "island-00", "1": "island-01", "2": "island-02"}})
    states = sched.island_states(rundir)
    assert [states[i].lost_on(None) for i in ("island-00", "island-01")] == [None, None]
    assert states["island-02"].lost_on(None) == ("node2", "MIXED+NOT_RESPONDING")
    assert states["island-02"].lost_on("node2.cluster.example") == ("node2", "MIXED+NOT_RESPONDING")
    assert states["island-00"].state == "requeued" and states["island-00"].nodes == ()
    assert (tmp_path / "calls").read_text().splitlines()[-1] == "-o show node node1,node2"
    (tmp_path / "node.txt").write_text("garbage\n\x00")  # a malformed answer: nobody is lost
    assert not any(t.lost_on(None) for t in sched.island_states(rundir).values())


def test_a_task_over_several_hosts_loses_only_the_islands_of_the_lost_host():
    """Patterns step and node map every island to one job over several hosts: an island is lost
    only if its own host (its status's) is unreachable; FAILING is no loss (jobs run on there)."""
    from islands.scheduler_state import expand_hosts

    nodes = tuple(expand_hosts("node[1-3]"))
    assert nodes == ("node1", "node2", "node3") and expand_hosts("nid[007-009],gpu1") == ["nid007", "nid008", "nid009", "gpu1"]
    task = TaskState("9", "running", "RUNNING", nodes=nodes, unreachable=(("node2", "DOWN+NOT_RESPONDING"),))
    assert task.lost_on("node2") == ("node2", "DOWN+NOT_RESPONDING") and task.lost_on("node1") is None
    assert task.lost_on(None) is None  # which host? not known: not called lost
    entry = {"state": "running", "note": None, "host": "node1"}
    merge_into_entry(entry, task)
    assert entry["state"] == "running"
    entry = {"state": "running", "note": None, "host": "node2"}
    merge_into_entry(entry, task)
    assert entry["state"] == "stale" and "lost: its host node2" in entry["note"]


@pytest.mark.parametrize("reported, state", [
    (None, "dead"),  # no end line: killed (node failure, OOM): resubmit it
    (1, "dead"),  # a crash: a restart may get past it
    (0, "stopped"), (75, "stopped"), (143, "stopped"),  # stopped on request: resumable, not resubmitted
    (2, "failed"), (3, "failed"), (5, "failed"),  # no restart fixes these: failed at once
    (4, "dead"),  # refused by a lease: its holder may be a crashed node's island whose lease outlived the wait
])
def test_how_a_task_ended_decides_between_resubmitting_it_and_giving_it_up(tmp_path, reported, state):
    """A task whose batch script reported an exit code no restart fixes (a failing problem, an
    unusable checkpoint, no finite fitness) is failed at once, not resubmitted --max-restarts
    times to fail the same way. One refused by a lease (exit 4) is resubmitted within the
    budget: after a node crash, the dead node's lease can outlive the replacement's wait
    (before, the island stayed failed until a person relaunched)."""
    from launcher.request import LaunchRequest
    from launcher.slurm import SlurmLaunch

    launch = SlurmLaunch(LaunchRequest(root=tmp_path / "run", islands=1), SlurmOptions())
    slurm_dir = tmp_path / "run" / "slurm"
    slurm_dir.mkdir(parents=True)
    lines = "islands: time limit near; checkpointed; requeue budget (3) spent, not requeued\n"
    if reported is not None:
        lines += f"islands: task ended: 7_3 exit {reported}\n"
    (slurm_dir / "7_3.out").write_text(lines)
    assert launch._ended("island-00", TaskState("7_3", "completed")) == state
