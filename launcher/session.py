"""The launcher's controller: plan a run, start its islands, supervise them, stop them.

`launch(request)` is the library form of `islands launch`. It checks every input before it
touches anything (`launcher.request`: a new run's plan, or the one a resumed run recorded),
joins (or creates) the run's manifest, holds the run's launcher lock, starts each unfinished
island as its own process and then loops: reap exits and apply the restart policy, read heartbeats, kill hung islands, redraw the progress view. From its
start until its summary is written, SIGINT, SIGTERM and SIGUSR1 are requests
(`launcher.stop_requests`): the first asks every island to checkpoint and stop (one that comes
while the launch is still planning starts none), a second SIGINT (or the end of the grace
period) kills them, repeated SIGTERMs change nothing (a scheduler may send several); a stopped
launch always writes its summary. Islands are killed by their process groups, by the launcher
itself, and every child is seen to end (bounded) before `launch` returns.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Mapping

from islands.tuning import study_export
from islands.tuning.config import tuner_line
from islands.budget import run_total
from islands.evaluate import evaluates, recorded
from islands.exit_codes import EXIT_ERROR, NO_FITNESS_BEFORE, REASON_NO_FITNESS
from islands.runs import Run
from islands.loggers import island_environ
from islands.status.progress import fraction, number
from islands.status.reader import read_status
from islands.status import lineage
from islands.status.record import HistoryLine, IslandStatus, champion
from launcher import plan as planning
from launcher.errors import PlanError
from launcher.failures import log_tail, start_error_text, why_failed
from launcher.launch_view import PlainView, Row
from launcher.request import LaunchRequest, join, new_plan, new_run_config, planned_count, refuse_inline
from launcher.spawn import Child, spawn_island
from launcher.stop_requests import StopRequests
from launcher.summary import champion_record, summarize, summary_lines, time_to_target
from launcher.supervise import Action, IslandWatch
from launcher.template_client import ForkServer, ForkServerError, fork_server_wanted, start_template
from launcher.torch_jobs import evaluate_champion, view_steps
from migration_pool.errors import FormatError, IslandBusy
from migration_pool.rundir import RunDir

__all__ = ["LaunchRequest", "LaunchResult", "launch", "read_status"]  # LaunchRequest: the library API's import

STATUS_EVERY_S = 0.5  # how often heartbeats are read (less often beyond 50 islands)
STATE_EVERY_S = 2.0  # how often the launcher state file is rewritten without an event
KILL_WAIT_S = 10.0  # how long killed islands may take to be seen gone before the launcher gives up on them


@dataclass(frozen=True)
class LaunchResult:
    state: str  # finished, failed or stopped
    summary: dict[str, Any]
    signal: int | None  # the signal that stopped the launch, if any
    killed: bool = False  # a second SIGINT killed the islands without their checkpoint


def launch(request: LaunchRequest, view: Any = None, stops: StopRequests | None = None) -> LaunchResult:
    """Plan, start and supervise the run's islands until they end; see the module docstring.

    `stops`: stop requests the caller installed already (the CLI, from before this call until
    its process exits); without it `launch` records them itself and restores the handlers.

    Raises:
        PlanError / ManifestConflict: bad input or a contradiction of the manifest (nothing started).
        RunDirError: the run directory cannot be used. LauncherBusy: another launcher runs it.
    """
    view = view or PlainView()
    if stops is not None:
        return _launch(request, view, stops)
    with StopRequests() as own:
        return _launch(request, view, own)


def _launch(request: LaunchRequest, view: Any, stops: StopRequests) -> LaunchResult:
    cores = planning.parse_cores(request.cores, planning.available_cores()) if request.cores is not None \
        else planning.available_cores()
    specs = [planning.parse_vary(v) for v in request.vary]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise PlanError(f"--vary names a setting twice: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
    if request.device is not None:
        planning.assign_devices(1, request.device, ["0"])  # syntax only; GPUs are checked below
    rundir = RunDir(request.root)
    refuse_inline(rundir, request.config)
    if request.fresh or not rundir.is_run():
        new_run_config(request, cores)  # a budget that cannot be split is refused before anything starts
    if not request.allow_shared_run:
        rundir.check_private()  # before anything is written or any island imports its problem
    # A new run's plan is checked in full (against the config, and the GPUs) before the
    # run directory is created; a resumed run's plan is checked against its manifest.
    forks = None
    if request.fork_server and fork_server_wanted():  # it imports while the plan is made, and checks it
        forks = start_template(rundir, max(planned_count(rundir), request.islands or len(cores)), request.device)
    try:
        fresh = new_plan(new_run_config(request, cores), request, cores, specs, forks, view) \
            if request.fresh or not rundir.is_run() else None
        if request.fresh:
            rundir.reset_run()  # refuses while a launcher or an island of the run is alive
        lock = rundir.claim_launcher()
        try:
            run, plan = join(rundir, request, cores, specs, fresh, forks, view)
            return _Session(rundir, run, plan, request, view, forks, stops.signals).run()
        finally:
            lock.release()
    finally:
        if forks is not None:
            forks.close()


class _Session:
    """One launch of a planned run: the supervision loop and its bookkeeping."""

    probe_job: str | None = None  # the scheduler task it runs in, for its claim probes (launcher.node_launch)

    def __init__(self, rundir: RunDir, run: Run, plan: planning.Plan, request: LaunchRequest, view: Any,
                 forks: ForkServer | None = None, signals: list[int] | None = None) -> None:
        self.rundir, self.run_, self.plan, self.request, self.view = rundir, run, plan, request, view
        self.by_id = {p.island: p for p in plan.islands}
        self.watches = {i: IslandWatch(i, request.policy, random.Random()) for i in plan.ids}
        self.children: dict[str, Child] = {}
        self.statuses: dict[str, IslandStatus | None] = {i: read_status(rundir, i) for i in plan.ids}
        self.reported: set[str] = set()  # islands whose current process has written a status
        self.baseline = {i: (s.evaluations or 0) if s is not None and self._ours(s) else 0
                         for i, s in self.statuses.items()}
        self.prior_restarts = self._prior_restarts()
        self.signals: list[int] = [] if signals is None else signals  # appended to by `StopRequests`
        self.stopping_since: float | None = None
        self.killed = False
        self.interrupted = False  # killed by a second SIGINT
        self.started_wall, self.started = time.time(), time.monotonic()
        self._status_at = self._state_at = float("-inf")
        self.forks = forks  # the island template CPU islands are forked from (closed by `launch`)
        # Statuses carry genomes: with many islands (or big genomes) read them less often.
        self.status_every = max(STATUS_EVERY_S, len(plan.ids) / 100)

    def _ours(self, status: IslandStatus | None) -> bool:
        return status is not None and status.run_id == self.run_.run_id

    def _prior_restarts(self) -> dict[str, int]:
        try:
            prev = self.rundir.read_launcher_state() or {}
        except (FormatError, OSError):
            prev = {}
        if prev.get("run_id") != self.run_.run_id:
            return {}
        return {i: int((v or {}).get("restarts", 0)) for i, v in (prev.get("islands") or {}).items()}

    # -- main loop ------------------------------------------------------------------------
    def _check_not_running(self) -> None:
        """Refuse to start while an island of this run still runs (an earlier launcher's
        orphan, or `islands evolve` in a terminal): its claim lock is held."""
        busy = []
        for isl in self.plan.ids:
            try:
                self.rundir.island(isl).claim(job_id=self.probe_job).release()
            except IslandBusy:
                st = self.statuses.get(isl)
                pid = st.pid if st is not None else None
                busy.append(f"{isl} (pid {pid})" if pid else isl)
        if busy:
            raise IslandBusy(f"already running in {self.rundir.root}: {', '.join(busy)}; stop them first")

    def run(self) -> LaunchResult:
        self._check_not_running()
        if self.request.start_line:  # accepted: now the run folder a launch without --run-dir picked is said
            self.view.message(self.request.start_line)
        for line in self.plan.describe():
            self.view.message(line)
        for line in planning.settings_lines(self.run_.config, len(self.plan.ids), self.plan.setting_groups(self.run_.config)):
            self.view.message(line)
        for note in self.plan.notes:
            self.view.message(note)
        self.view.message(planning.migration_line(self.run_.config.migration, len(self.plan.ids)))
        tuning = tuner_line(self.run_.config.tuner, self.run_.config.generations)
        if tuning is not None:
            self.view.message(tuning)
        self.view.message(f"run {self.run_.run_id} in {self.rundir.root}")
        try:
            for isl in self.plan.ids:
                st = self.statuses[isl]
                # Stopped by another island's target marker that is no longer one: evolve on.
                voided = st is not None and st.reason == "target-elsewhere" \
                    and not self.rundir.target_reached(self.run_.run_id, st.target)
                if st is not None and self._ours(st) and st.state == "finished" and not voided:
                    w = self.watches[isl]
                    if st.reason == REASON_NO_FITNESS:  # it found nothing: a failed island, as when it ended
                        w.state, w.reason = "failed", NO_FITNESS_BEFORE
                        self.view.message(f"{isl}: FAILED earlier: {NO_FITNESS_BEFORE}")
                    else:
                        w.state = "finished"
                        self.view.message(f"{isl}: already finished ({st.reason}), not rerun")
            self._loop()
        finally:
            self._kill_all()  # only does something if the loop died of an exception
        self._watch_template()  # one found not answering while the islands were stopped: say so
        return self._finish()

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            self._watch_template()
            self._handle_signals(now)
            self._reap(now)
            if now - self._status_at >= self.status_every:
                self._status_at = now
                self._heartbeats(now)
            if self.stopping_since is None:
                for isl, w in self.watches.items():
                    if w.due(now) and isl not in self.children:
                        self._start(isl, now)
            waiting = any(w.state == "waiting" for w in self.watches.values())
            if not self.children and (self.stopping_since is not None or not waiting):
                break
            if now - self._state_at >= STATE_EVERY_S:
                self._write_state("stopping" if self.stopping_since is not None else "running")
            self.view.update(self._rows(), now - self.started)
            time.sleep(self.request.poll_s)

    def _spawn(self, island: str, attempt: int) -> Child:
        p = self.by_id[island]
        env = island_environ(os.environ, self.request.loggers)  # None: the launcher's own
        if self.forks is not None:
            if self.forks.ready is None and self.forks.answering:  # a resumed run: nothing waited on it yet
                steps = view_steps(self.view)
                if steps:
                    steps["begin"]("starting the island template (loading torch)")
                self.forks.wait_ready(steps.get("tick", lambda: None))
            try:
                return spawn_island(self.rundir, island, cores=p.cores, device=p.device, env=env,
                                    cuda_visible=p.cuda_visible, attempt=attempt, forks=self.forks)
            except ForkServerError as e:
                if self.forks.answering:
                    self.view.message(f"note: {island} could not be forked ({e}); starting it as a fresh process")
                self._watch_template()
        return spawn_island(self.rundir, island, cores=p.cores, device=p.device, env=env,
                            cuda_visible=p.cuda_visible, attempt=attempt)

    def _start(self, island: str, now: float) -> None:
        w = self.watches[island]
        try:
            child = self._spawn(island, w.starts + 1)
        except (OSError, subprocess.SubprocessError, FormatError) as e:  # fork/exec failed, or its log is a FIFO: a start failure
            w.started(now)
            d = w.exited(EXIT_ERROR, now, finished=False)
            if d.action is Action.FAIL:
                w.reason = f"{d.reason}: {start_error_text(e)}"
            self.view.message(f"{island}: cannot start ({e}); "
                              + (f"retrying in {d.delay:.1f} s" if d.action is Action.RESTART else f"FAILED: {w.reason}"))
            return
        self.children[island] = child
        self.reported.discard(island)  # "starting" until this process reports
        w.started(now)
        self._state_at = float("-inf")  # record the new pid soon

    def _watch_template(self) -> None:
        """A template that died or stopped answering forks no more islands; those it forked are
        watched through /proc and signalled by the launcher itself (`ForkedProc`)."""
        if self.forks is None or self.forks.answering:
            return
        why = "gone" if self.forks.dead else f"not answering ({self.forks.hung})"
        self.view.message(f"note: island template {why}; its islands are watched by pid, "
                          "new ones start as fresh processes")
        if self.forks.dead:  # closing a live template would kill every island forked from it
            self.forks.close()
        self.forks = None  # `launch` closes it at the end

    def _reap(self, now: float) -> None:
        for isl, child in list(self.children.items()):
            code = child.poll()
            if code is None:
                continue
            del self.children[isl]
            self._state_at = float("-inf")
            st = read_status(self.rundir, isl)
            self.statuses[isl] = st if self._ours(st) else self.statuses[isl]
            finished = st is not None and child.owns(st) and st.state == "finished"
            w = self.watches[isl]
            if self.stopping_since is not None:
                if code == 0 and finished:
                    w.exited(0, now, True)
                else:
                    w.stopped(code)
                continue
            d = w.exited(code, now, finished)
            if d.action is Action.RESTART:
                self.view.message(f"{isl}: {d.reason}; restarting in {d.delay:.1f} s (from its last checkpoint)")
            elif d.action is Action.FAIL:
                tail = log_tail(self.rundir, isl)
                w.reason = f"{d.reason}: {why_failed(self.rundir.root, tail)}"
                self.view.message(f"{isl}: FAILED: {w.reason}; log {self.rundir.island(isl).log_path}"
                                  + "".join(f"\n    {line}" for line in tail[-3:]))
            elif finished and st is not None:
                self.view.message(f"{isl}: finished ({st.reason}) at generation {st.generation}, "
                                  f"best {'?' if st.best_ever is None else number(st.best_ever)}")
            else:
                self.view.message(f"{isl}: {d.reason or 'stopped'}; not restarted (the same command resumes it)")

    def _heartbeats(self, now: float) -> None:
        for isl, child in self.children.items():
            st = read_status(self.rundir, isl)
            if st is None or not child.owns(st):
                st = None
            else:
                self.statuses[isl] = st
                self.reported.add(isl)
                self.watches[isl].beat((child.pid, st.beat), now)
            w = self.watches[isl]
            if self.stopping_since is None and w.hung(now):
                w.hang()
                self.view.message(f"{isl}: hung (no heartbeat for {self.request.policy.hang_timeout_s:g} s); killing it")
                child.kill()

    def _handle_signals(self, now: float) -> None:
        if self.signals and self.stopping_since is None:
            self.stopping_since = now
            self.view.message(f"{signal.Signals(self.signals[0]).name}: asking {len(self.children)} island(s) to "
                              "checkpoint and stop (Ctrl+C again to kill them at once)")
            for w in self.watches.values():
                if w.state == "waiting":
                    w.stopped(w.last_exit if w.last_exit is not None else 0)
            for child in self.children.values():
                child.signal(signal.SIGTERM)
        if self.killed or self.stopping_since is None:
            return
        if self.signals.count(signal.SIGINT) > 1:  # a person insisting; a scheduler's repeats are not
            self.view.message("second Ctrl+C: killing every island now")
            self.interrupted = True
            self._kill_all()
        elif now - self.stopping_since > self.request.grace_s:
            self.view.message(f"grace period of {self.request.grace_s:g} s over: killing {', '.join(self.children)}")
            self._kill_all()

    def _kill_all(self) -> None:
        """SIGKILL every island still running, by its process group (the launcher itself, not
        through the template), and see it end; one still there after KILL_WAIT_S is given up."""
        self.killed = True
        for child in self.children.values():
            child.kill()
        deadline = time.monotonic() + KILL_WAIT_S
        while any(c.poll() is None for c in self.children.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for isl, child in list(self.children.items()):
            if child.poll() is None:
                self.view.message(f"{isl}: pid {child.pid} still there {KILL_WAIT_S:g} s after SIGKILL; giving up on it")
            self.watches[isl].stopped(child.exit_code if child.exit_code is not None else -signal.SIGKILL)
            del self.children[isl]

    # -- reporting ------------------------------------------------------------------------
    def _rows(self) -> list[Row]:
        rows, budget = [], self.run_.config.max_evaluations
        for isl in self.plan.ids:
            st = self.statuses.get(isl)
            st = st if st is not None and self._ours(st) else IslandStatus()
            state = self.watches[isl].state
            if state == "running" and isl not in self.reported:
                state = "starting"  # spawned, importing torch or reading its checkpoint
            rows.append(Row(isl, state, st.generation, st.generations, st.best_ever,
                            st.evals_per_sec if state != "starting" else None, st.diversity, self._restarts(isl),
                            self.by_id[isl].cores, fraction(st.generation, st.generations, st.evaluations, budget,
                                                            finished=state == "finished")))
        return rows

    def _restarts(self, island: str) -> int:
        return self.prior_restarts.get(island, 0) + self.watches[island].restarts

    def _write_state(self, state: str) -> None:
        self._state_at = time.monotonic()
        islands = {}
        for isl, w in self.watches.items():
            child = self.children.get(isl)
            islands[isl] = {**w.snapshot(), "restarts": self._restarts(isl),
                            "pid": child.pid if child else None, "cores": list(self.by_id[isl].cores)}
        body = {"run_id": self.run_.run_id, "pid": os.getpid(), "host": socket.gethostname(),
                "started": self.started_wall, "updated": time.time(), "state": state, "islands": islands}
        try:
            self.rundir.write_launcher_state(body)
        except OSError as e:  # bookkeeping only: a full disk must not stop supervision
            self.view.message(f"warning: cannot write the launcher state: {e}")

    def _to_target(self, statuses: Mapping[str, IslandStatus | None]) -> tuple[dict[str, Any] | None, list]:
        """Evaluations and wall time until the first island reached its target, and the
        archipelago's lineage curve (both from the histories; read only when an island reached
        its target: the curve then tells a takeover before the target from one after it)."""
        targets = {i: s.target for i, s in statuses.items() if s is not None and self._ours(s)}
        if not any(s is not None and s.reason == "target" for s in statuses.values()):
            return None, []  # no island stopped at its target: skip reading every history
        started = float(self.run_.manifest.get("created") or self.started_wall)
        try:
            histories = {i: list(self.rundir.island(i).iter_history()) for i in targets}
        except (FormatError, OSError):  # a history past the whole-read cap: no figure, the summary stays
            return None, []
        points = {i: [(h.generation, h.origins, h.time) for h in map(HistoryLine.from_body, recs)
                      if h.generation is not None and h.origins] for i, recs in histories.items()}
        return time_to_target(histories, targets, started), lineage.over_time(points)

    def _evaluate(self, summary: dict[str, Any]) -> None:
        """The champion on unseen starts, in a child (`islands evaluate`: torch stays out of the
        launcher); it records the figure in the run and summary.json, and we show its line."""
        ok, text = evaluate_champion(self.rundir.root, self.request.evaluate_episodes, lambda: bool(self.signals))
        self.view.message(text if ok else f"warning: could not evaluate the champion on unseen starts: {text}")
        if ok:
            result = recorded(self.rundir, self.run_.run_id)
            summary["generalisation"] = None if result is None else result.summary()

    def _end_state(self) -> str:
        """finished, failed or stopped: how the launch ended, from its islands and the signals."""
        states = [w.state for w in self.watches.values()]
        if self.signals:
            return "stopped"
        if "failed" in states:
            return "failed"
        return "finished" if all(s == "finished" for s in states) else "stopped"

    def _finish(self) -> LaunchResult:
        state = self._end_state()
        self.view.update(self._rows(), time.monotonic() - self.started, force=True)
        self.view.end()  # the last frame stays above; the summary below is the last thing shown
        self._write_state(state)
        statuses = {i: read_status(self.rundir, i) for i in self.plan.ids}
        cfg = self.run_.config
        champ = champion(statuses.values(), self.run_.run_id)
        if champ is not None:
            self.rundir.write_champion(champion_record(champ, cfg.problem, cfg.dim, self.run_.run_id, config=cfg))
        watches = {i: {**w.snapshot(), "restarts": self._restarts(i)} for i, w in self.watches.items()}
        to_target, trend = self._to_target(statuses)
        summary = summarize(run_id=self.run_.run_id, run_dir=str(self.rundir.root), problem=cfg.problem,
                            dim=cfg.dim, state=state, wall_s=time.monotonic() - self.started,
                            statuses=statuses, baseline=self.baseline, watches=watches,
                            to_target=to_target, lineage_trend=trend,
                            budget=run_total(cfg, len(self.plan.ids)))
        self.rundir.write_summary(summary)
        for line in summary_lines(summary):
            self.view.message(line)
        for line in study_export.after_launch(self.rundir.root, self.run_.config, self.plan, statuses):
            self.view.message(line)  # RUN/optuna.journal for optuna-dashboard
        if state == "finished" and champ is not None and self.request.evaluate_episodes and evaluates(cfg.problem):
            self._evaluate(summary)
        if state == "stopped":
            hint = self.request.resume_hint or f"islands launch --run-dir {self.rundir.root}"
            self.view.message(f"stopped; to resume from the islands' checkpoints, run the same command: {hint}")
        return LaunchResult(state, summary, self.signals[0] if self.signals else None, self.interrupted)
