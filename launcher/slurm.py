"""`islands launch --backend slurm`: plan the run, submit its islands to SLURM, watch them.

Order matters: every option is checked (including `sbatch --test-only`, which asks the
controller whether it would accept the job) before anything is written; then the manifest,
with the planned island list, is written before anything is queued, so every task joins the
same run. Then RUN/slurm/job.sbatch is written and submitted, and the job id recorded in
RUN/slurm/jobs. Running the same command again resubmits only the islands that have not
finished and are not still queued or running (their array indices).

The watch shows the local launcher's live view, each island's state merged from its status
file (generation, best, heartbeat) and SLURM (`islands.scheduler_state`: pending, requeued, running).
An island whose task ended without finishing (killed, failed node) is reported dead and
resubmitted, up to --max-restarts times per island; one cancelled by `scancel` is stopped.
Ctrl+C asks whether to `scancel` the jobs or detach (without a terminal: detach).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from islands import scheduler_state as sched
from islands.exit_codes import EXIT_BUSY, EXIT_STOPPED, NO_RESTART, REASON_NO_FITNESS
from islands.runs import Run, join_run, new_manifest, planned_islands
from islands.status.progress import fraction
from islands.status.record import IslandStatus, champion
from launcher import plan as planning
from launcher.errors import LauncherError, PlanError
from launcher.launch_view import PlainView, Row
from launcher.request import LaunchRequest, planned_config
from launcher.sbatch import ENDED_MARK, SlurmOptions, render
from launcher.session import read_status
from launcher.stop_requests import StopRequests
from launcher.summary import champion_record
from launcher.torch_jobs import check_islands_build, view_steps
from migration_pool.errors import ManifestConflict
from migration_pool.rundir import RunDir

SUBMIT_TIMEOUT_S = 60.0
QUERY_EVERY_S = 1.0
GONE_GRACE_S = 3.0
# An island that exits so stopped on request (scancel, a time limit): resumable, not resubmitted.
# 143 (SIGTERM): an island stopped before it installed its handlers (still importing), nothing lost.
STOPPED_CODES = frozenset({0, EXIT_STOPPED, 128 + signal.SIGTERM})  # a task SLURM forgets right after it ends: wait for the island's last status


@dataclass(frozen=True)
class Submission:
    job_id: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class SlurmResult:
    state: str  # finished, failed, stopped, detached, submitted
    signal: int | None = None


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_S)
    except FileNotFoundError:
        raise LauncherError(f"{cmd[0]} not found: SLURM's client commands are not installed here") from None
    except subprocess.TimeoutExpired:
        raise LauncherError(f"{cmd[0]} did not answer within {SUBMIT_TIMEOUT_S:g} s (is slurmctld up?)") from None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def new_plan(request: LaunchRequest, device: str, view: Any = None) -> planning.Plan:
    """A new run's plan: ids, --vary overrides, every island's settings built once (in a child,
    while `view` says so)."""
    if request.islands is None:
        raise PlanError("--backend slurm needs -n/--islands for a new run (there are no local cores to count)")
    specs = [planning.parse_vary(v) for v in request.vary]
    ids = planning.island_ids(request.islands)
    config = planned_config(request, len(ids))
    overrides = planning.sample_overrides(specs, ids, config.seed)
    planning.check_overrides(config, overrides, specs)
    steps = view_steps(view)
    error = check_islands_build(config.to_dict(), overrides, [] if "dim" in request.explicit else None, **steps)
    if error is not None:
        raise PlanError(error)
    # Each task sees only its own GPU, as cuda:0; cores are SLURM's to choose.
    return planning.make_plan(ids, (0,), device, ["0"] if device == "cuda" else None, overrides, specs)


def ended_code(rundir: RunDir, task: str) -> int | None:
    """The exit code the batch script of `task` ("JOB_TASK" or "JOB") reported in its output
    file as its last act; None when it reported none (killed, or its output is elsewhere)."""
    try:
        tail = rundir.scheduler.read_slurm_output(task)
    except OSError:
        return None
    if tail is None:
        return None
    for line in reversed(tail.splitlines()):
        if line.startswith(f"{ENDED_MARK} {task} exit "):
            code = line.rsplit(" ", 1)[-1]
            return int(code) if code.isdigit() else None
    return None


class SlurmLaunch:
    """One `islands launch --backend slurm`: prepare, submit, watch."""

    def __init__(self, request: LaunchRequest, opts: SlurmOptions, view: Any = None,
                 ask: Callable[[str], str] | None = None, stops: StopRequests | None = None) -> None:
        self.request, self.opts, self.view = request, opts, view or PlainView()
        self.rundir = RunDir(request.root)
        self.ask = ask
        self.stops = stops  # the caller's, held until its process exits; else `run` holds its own
        self.signals: list[int] = stops.signals if stops is not None else []
        self.resubmits: dict[str, int] = {}
        self.gone_since: dict[str, float] = {}
        self.reported: set[str] = set()
        self.lock: Any = None  # the run's launcher lock, from the first write on

    # -- preparing ----------------------------------------------------------------------------
    def script(self, indices: list[int] | None = None, run_id: str = "0" * 32,
               planned: list[str] | None = None) -> str:
        planned = planned if planned is not None else planning.island_ids(self.request.islands or 1)
        return render(self.opts, run_dir=str(self.rundir.root.absolute()), run_id=run_id,
                      indices=list(range(len(planned))) if indices is None else indices, planned=planned,
                      python=sys.executable, cwd=os.getcwd(), env=os.environ)

    def test_only(self, text: str) -> None:
        """Ask the controller whether it would take this job (bad partition, time, account, args)."""
        out = _run(["sbatch", "--test-only"], text)
        if out.returncode != 0:
            raise PlanError(f"sbatch refuses the job: {_last_line(out.stderr or out.stdout)}")

    def prepare(self) -> tuple[Run, list[str], list[int]]:
        """Join or create the run and pick the islands to submit (indices into the planned list)."""
        if not self.request.allow_shared_run:
            self.rundir.check_private()
        manifest = self.rundir.read_manifest()
        if manifest is None:
            plan = new_plan(self.request, self.opts.device, self.view)
            self.test_only(self.script(planned=plan.ids))  # nothing written yet
            self._claim()
            fields = plan.manifest_fields()
            fields["plan"] = {**fields["plan"], "backend": "slurm", "pattern": self.opts.pattern}
            config = planned_config(self.request, len(plan.ids))
            run, _ = join_run(self.rundir.root, config, self.request.explicit,
                              make_manifest=lambda: new_manifest(config, **fields),
                              allow_shared=self.request.allow_shared_run)
        else:
            self._claim()
            run, _ = join_run(self.rundir.root, self.request.config, self.request.explicit,
                              allow_shared=self.request.allow_shared_run)
        planned = list(planned_islands(run.manifest))
        if not planned:
            raise PlanError(f"the run in {self.rundir.root} plans no islands; it was not started by a launcher")
        if self.request.islands is not None and self.request.islands != len(planned):
            raise ManifestConflict("islands", len(planned), self.request.islands)
        states = sched.island_states(self.rundir) or {}
        todo = [i for i, isl in enumerate(planned)
                if not self._finished(run, isl) and not (isl in states and states[isl].active)]
        return run, planned, todo

    def _claim(self) -> None:
        """Hold the run, so two launchers never submit the same islands twice."""
        if self.lock is None:
            self.lock = self.rundir.claim_launcher()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _finished(self, run: Run, island: str) -> bool:
        st = read_status(self.rundir, island)
        return st is not None and st.run_id == run.run_id and st.state == "finished"

    def submit(self, run: Run, planned: list[str], indices: list[int]) -> Submission:
        text = self.script(indices, run.run_id, planned)
        self.test_only(text)  # a resumed run's new --partition, --time, ... are checked before writing
        path = self.rundir.scheduler.write_slurm_script(text)
        out = _run(["sbatch", "--parsable", str(path)])
        job = out.stdout.strip().split(";")[0] if out.returncode == 0 else ""
        if not job.isdigit():
            raise LauncherError(f"sbatch failed: {_last_line(out.stderr or out.stdout)}")
        keys = indices if self.opts.pattern == "array" else range(len(indices))
        self.rundir.scheduler.record_slurm_job({"job_id": job, "pattern": self.opts.pattern, "submitted": time.time(),
                                      "islands": {str(k): planned[i] for k, i in zip(keys, indices)}})
        self.view.message(f"submitted SLURM job {job}: {len(indices)} island(s) "
                          f"({', '.join(planned[i] for i in indices)}), script {path}")
        return Submission(job, tuple(indices))

    # -- watching -----------------------------------------------------------------------------
    def run(self, detach: bool = False) -> SlurmResult:
        """Prepare, submit and watch. From the first step to the summary a stop signal is only
        recorded (the module's `StopRequests`): one that comes while sbatch runs cannot lose the
        job's record, and one during the summary cannot cut it short; the watch acts on it."""
        own = StopRequests().install() if self.stops is None else None
        if own is not None:
            self.signals = own.signals
        try:
            run, planned, todo = self.prepare()
            if self.request.start_line:  # accepted: now the run folder a launch without --run-dir picked is said
                self.view.message(self.request.start_line)
            self.view.message(f"run {run.run_id} in {self.rundir.root}: {len(planned)} island(s) planned, "
                              f"{len(todo)} to submit, pattern {self.opts.pattern}")
            if self.signals and todo:  # asked to stop before anything was submitted: submit nothing
                sig = self.signals[0]
                self.view.message(f"stopped before submitting (signal {sig}); nothing submitted. "
                                  f"Resume: {self._hint()}")
                return SlurmResult("stopped", sig)
            if todo:
                self.submit(run, planned, todo)
            if detach:
                self.view.message(f"detached; watch with: islands status --run-dir {self.rundir.root}")
                return SlurmResult("submitted")
            return self._watch(run, planned)
        finally:
            self.release()
            if own is not None:
                own.restore()

    def _watch(self, run: Run, planned: list[str]) -> SlurmResult:
        started, cancelled = time.monotonic(), False
        budget = self.request.policy.max_restarts
        states: dict[str, sched.TaskState] | None = {}
        queried = float("-inf")
        while True:
            now = time.monotonic()
            if self.signals:
                choice = self._stop_choice(cancelled)
                self.signals.clear()
                if choice == "detach":
                    self.view.message(f"detached; the jobs keep running. Watch: islands status --run-dir "
                                      f"{self.rundir.root}; reattach or resume: {self._hint()}")
                    return SlurmResult("detached", signal.SIGINT)
                cancelled = True
                self._cancel(states or {})
            if now - queried >= QUERY_EVERY_S:
                queried, states = now, sched.island_states(self.rundir)
            statuses = {i: read_status(self.rundir, i) for i in planned}
            rows = [self._row(run, i, statuses[i], (states or {}).get(i), now) for i in planned]
            dead = [r.island for r in rows if r.state == "dead" and self.resubmits.get(r.island, 0) <= budget]
            if dead and not cancelled and states is not None:
                if self._resubmit(run, planned, dead, {i: t.raw for i, t in states.items()}):
                    queried = float("-inf")
                    continue
            self.view.update(rows, now - started)
            if states is not None and not any(r.state in sched.ACTIVE for r in rows):
                break
            time.sleep(self.request.poll_s)
        return self._finish(run, rows, started, cancelled)

    def _row(self, run: Run, island: str, st: IslandStatus | None, task: sched.TaskState | None, now: float) -> Row:
        ours = st is not None and st.run_id == run.run_id
        s = st if ours and st is not None else IslandStatus()
        if ours and s.state == "finished":
            state = "failed" if s.reason == REASON_NO_FITNESS else "finished"
        elif task is None:
            state = "stopped"  # never submitted here (finished earlier, or SLURM not asked yet)
        elif task.active:
            state, self.gone_since[island] = task.state, now
        elif now - self.gone_since.setdefault(island, now) < GONE_GRACE_S:
            state = "stopping"  # ended a moment ago: its last status may still be on its way
        else:
            state = self._ended(island, task)
        return Row(island, state, s.generation, s.generations, s.best_ever, s.evals_per_sec, s.diversity,
                   self.resubmits.get(island, 0), done=fraction(s.generation, s.generations, s.evaluations,
                                                                run.config.max_evaluations, state == "finished"))

    def _ended(self, island: str, task: sched.TaskState) -> str:
        """stopped (its batch script ended by itself: the island stopped on request or gave up),
        failed (it exited with a code no restart fixes) or dead (killed: resubmit it)."""
        code = ended_code(self.rundir, task.job)
        if code is None:
            return "dead"
        if code in STOPPED_CODES:
            if island not in self.reported:
                self.reported.add(island)
                self.view.message(f"{island}: stopped ({task.raw or task.state}); not resubmitted")
            return "stopped"
        # Refused by a lease (EXIT_BUSY) is worth another try here: the holder may be an island of
        # a crashed node whose lease outlived the task's wait (migration_pool.lease.take).
        return "failed" if code in NO_RESTART and code != EXIT_BUSY else "dead"

    def _resubmit(self, run: Run, planned: list[str], dead: list[str],
                  states_raw: dict[str, str] | None = None) -> bool:
        """Resubmit dead islands within their budget; whether anything was submitted."""
        states_raw = states_raw or {}
        budget = self.request.policy.max_restarts
        again = [i for i in dead if self.resubmits.get(i, 0) < budget]
        for isl in dead:
            if isl not in again:
                self.view.message(f"{isl}: dead again after {budget} resubmission(s); giving it up (FAILED)")
                self.resubmits[isl] = budget + 1
        if not again:
            return False
        for isl in again:
            self.resubmits[isl] = self.resubmits.get(isl, 0) + 1
            why = states_raw.get(isl, "")
            self.view.message(f"{isl}: its SLURM task ended{f' ({why})' if why else ''} without finishing (dead); resubmitting "
                              f"({self.resubmits[isl]} of {budget}) from its checkpoint")
            self.gone_since.pop(isl, None)
        self.submit(run, planned, sorted(planned.index(i) for i in again))
        return True

    def _stop_choice(self, cancelled: bool) -> str:
        if cancelled or signal.SIGTERM in self.signals:
            return "detach"
        if self.ask is None and not sys.stdin.isatty():
            return "detach"
        ask = self.ask or (lambda q: input(q))
        try:
            answer = ask("\nCtrl+C: [c]ancel the SLURM jobs (islands checkpoint and stop) or [d]etach? [d] ")
        except (EOFError, KeyboardInterrupt):
            return "detach"
        return "cancel" if answer.strip().lower().startswith("c") else "detach"

    def _cancel(self, states: dict[str, sched.TaskState]) -> None:
        jobs = sorted({t.job.split("_")[0] for t in states.values() if t.active})
        if jobs:
            out = _run(["scancel", *jobs])
            self.view.message(f"scancel {' '.join(jobs)}: " + ("the islands checkpoint and stop" if out.returncode == 0
                                                               else _last_line(out.stderr)))

    def _hint(self) -> str:
        return self.request.resume_hint or f"islands launch --backend slurm --run-dir {self.rundir.root}"

    def _finish(self, run: Run, rows: list[Row], started: float, cancelled: bool) -> SlurmResult:
        if cancelled:  # ended because we cancelled them
            rows = [replace(r, state="stopped") if r.state == "dead" else r for r in rows]
        self.view.update(rows, time.monotonic() - started, force=True)
        statuses = {r.island: read_status(self.rundir, r.island) for r in rows}
        champ = champion(statuses.values(), run.run_id)
        if champ is not None:
            cfg = run.config
            self.rundir.write_champion(champion_record(champ, cfg.problem, cfg.dim, run.run_id, config=cfg))
        states = [r.state for r in rows]
        if all(s == "finished" for s in states):
            self.view.message(f"all {len(rows)} island(s) finished"
                              + (f"; best {champ.best_ever:.6g} ({champ.island})" if champ and champ.best_ever is not None else ""))
            return SlurmResult("finished")
        left = [r.island for r in rows if r.state != "finished"]
        self.view.message(f"{len(left)} island(s) not finished ({', '.join(left)}); to resume from their "
                          f"checkpoints, run the same command: {self._hint()}")
        if cancelled:
            return SlurmResult("stopped", signal.SIGINT)
        return SlurmResult("failed" if "dead" in states or "failed" in states else "stopped")


def script_text(request: LaunchRequest, opts: SlurmOptions) -> str:
    """What `islands slurm-script` prints: the batch script for the run's unfinished islands.

    A new run's manifest (with its planned islands) is written first, as `islands launch`
    would: every task the user submits must join that one run."""
    launch = SlurmLaunch(request, opts)
    try:
        run, planned, todo = launch.prepare()
        return launch.script(todo, run.run_id, planned)
    finally:
        launch.release()
