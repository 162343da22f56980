"""One node of a whole-node SLURM job (`--pattern node`): a node-local launcher for a slice of islands.

On a many-core node a task per island pays a fresh island's start each time (torch imported
per task: seconds of CPU and ~150 MiB private memory per island). A whole-node job instead runs
one task per node (`srun --ntasks-per-node=1`); each runs `python -m launcher.node_launch`,
which takes its slice of the islands the batch script lists (ISLANDS_SLURM_INDICES, every
`ranks`-th one from its rank, SLURM_NODEID), forks them from one island template pinned to
the node's cores (`available_cores`: the CPUs SLURM gave the task) and supervises them as
`islands launch` does, restarting a crashed island from its checkpoint.

The run, its manifest and planned islands were written by the submitting launch, which also
watches every island and writes the champion: a node launcher joins the run, holds a lock of
its own rank (RUN/slurm/node-<rank>.lock, so two copies of one rank never run) and writes no
run-level file (no summary, champion or launcher state; those are the submitting launch's).
Its exit code is the batch script's report of the task: 0 finished, 75 stopped (resumable), 1
an island failed (resubmitted by the watching launch), 2 an island failed with an exit no
restart fixes (a failing problem, an unusable checkpoint: given up). srun reports the highest
of the nodes' codes; a stop (75) outranks them, as a stop is the whole job's (scancel, a limit).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from islands.config import RunConfig
from islands.exit_codes import EXIT_ERROR, EXIT_STOPPED, EXIT_USAGE, NO_RESTART
from islands.cli_errors import failure
from islands.errors import IslandsError
from islands.runs import join_run, planned_islands
from islands.scheduler_state import INDICES_ENV
from islands.stopping import ignore_stop_signals
from launcher import plan as planning
from launcher.errors import PlanError
from launcher.launch_view import PlainView
from launcher.request import LaunchRequest
from launcher.session import LaunchResult, _Session
from launcher.stop_requests import StopRequests
from launcher.supervise import RestartPolicy
from launcher.template_client import fork_server_wanted, start_template
from migration_pool import files
from migration_pool.errors import PoolError
from migration_pool.lease import scheduler_job_id
from migration_pool.rundir import RunDir



def node_slice(planned: Sequence[str], indices: Sequence[int], rank: int, ranks: int) -> list[str]:
    """The islands of node `rank` of `ranks`: every `ranks`-th submitted index from `rank` on, so
    the slices are disjoint, cover every index, and differ in size by at most one."""
    if not 0 <= rank < ranks:
        raise PlanError(f"node rank {rank} is outside 0..{ranks - 1}")
    return [planned[i] for i in indices[rank::ranks] if 0 <= i < len(planned)]


def rank_from_env(env: Mapping[str, str]) -> tuple[int, int, list[int]]:
    """(rank, ranks, indices) of this task, from SLURM's environment and the batch script's."""
    rank, ranks = env.get("SLURM_NODEID", env.get("SLURM_PROCID", "")), env.get("SLURM_NNODES", env.get("SLURM_NTASKS", ""))
    text = env.get(INDICES_ENV, "")
    if not (rank.isdigit() and ranks.isdigit() and int(ranks) > 0):
        raise PlanError("not a task of a whole-node SLURM job (SLURM_NODEID and SLURM_NNODES unset)")
    if not text or not all(p.isdigit() for p in text.split(",")):
        raise PlanError(f"{INDICES_ENV} is not a list of island indices: {text[:80]!r}")
    return int(rank), int(ranks), [int(p) for p in text.split(",")]


class _NodeSession(_Session):
    """The local launcher's supervision of one node's slice; the run-level files are not its own.

    Its probe of each island's claim names the job, so the fresh leases of a crashed host's
    islands, the same job's, are taken over when SLURM requeues the job (`lease.take`)."""

    probe_job = scheduler_job_id()

    def _write_state(self, state: str) -> None:
        pass  # RUN/launcher.isld is the submitting launch's (several nodes would overwrite it)

    def _finish(self) -> LaunchResult:
        state = self._end_state()
        self.view.update(self._rows(), time.monotonic() - self.started, force=True)
        self.view.end()
        counts = {s: sum(w.state == s for w in self.watches.values()) for s in ("finished", "stopped", "failed")}
        self.view.message(f"node {os.uname().nodename}: {state}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        return LaunchResult(state, {}, self.signals[0] if self.signals else None, self.interrupted)


def run_node(run_dir: Path, env: Mapping[str, str], view: Any = None) -> LaunchResult:
    """Join the run in `run_dir` and run this node's slice of it to its end (see the module docstring)."""
    with StopRequests() as stops:  # from the first step: a SIGTERM while joining is a clean stop too
        return _run_node(run_dir, env, view, stops)


def _run_node(run_dir: Path, env: Mapping[str, str], view: Any, stops: StopRequests) -> LaunchResult:
    rank, ranks, indices = rank_from_env(env)
    rundir = RunDir(run_dir)
    if rundir.read_manifest() is None:
        raise PlanError(f"no run in {rundir.root}: a whole-node job joins the run its launch planned")
    run, _ = join_run(rundir.root, RunConfig(), {}, allow_shared=True)  # the submitting launch checked the folder
    planned = list(planned_islands(run.manifest))
    ids = node_slice(planned, indices, rank, ranks)
    view = view or PlainView()
    if not ids:  # more nodes than islands
        view.message(f"node {os.uname().nodename} (rank {rank} of {ranks}): no island of its own")
        return LaunchResult("finished", {}, None)
    cores = planning.available_cores()
    recorded = run.manifest.get("plan") or {}
    plan = planning.make_plan(ids, cores, recorded.get("device", "cpu"), None,
                              {i: o for i, o in (run.manifest.get("overrides") or {}).items() if i in ids}, ())
    request = LaunchRequest(root=rundir.root, policy=RestartPolicy(), allow_shared_run=True, evaluate_episodes=0,
                            resume_hint=f"resubmit the job (islands launch --backend slurm --run-dir {rundir.root})")
    (rundir.root / "slurm").mkdir(parents=True, exist_ok=True)
    lock = files.hold(rundir.root / "slurm" / f"node-{rank}.lock",
                      PlanError(f"node rank {rank} of this run is already running"))
    forks = None
    try:
        if stops.signals:
            return LaunchResult("stopped", {}, stops.signals[0])
        if fork_server_wanted():
            forks = start_template(rundir, len(ids), recorded.get("device", "cpu"))
        view.message(f"node {os.uname().nodename} (rank {rank} of {ranks}): {len(ids)} island(s) "
                     f"{', '.join(ids)} on core(s) {planning.format_cores(cores)}")
        session = _NodeSession(rundir, run, plan, request, view, forks, stops.signals)
        result = session.run()
        hopeless = [w for w in session.watches.values() if w.state == "failed" and w.last_exit in NO_RESTART]
        return replace(result, state="hopeless") if result.state == "failed" and hopeless else result
    finally:
        if forks is not None:
            forks.close()
        lock.release()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m launcher.node_launch RUN_DIR`, as the batch script of `--pattern node` runs it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m launcher.node_launch RUN_DIR (a task of a whole-node SLURM job)", file=sys.stderr)
        return EXIT_USAGE
    ignore_stop_signals()  # after the StopRequests of run_node: a late repeat cannot kill the exit
    try:
        result = run_node(Path(args[0]), os.environ)
    except (IslandsError, PoolError, OSError) as e:  # one line and the documented code, as `islands` commands
        line, code = failure(e)
        print(f"error: {line}", file=sys.stderr)
        return code
    # "hopeless": an island failed with an exit no restart fixes (a failing problem, ...): exit 2,
    # so the submitting launch gives the job's islands up instead of resubmitting whole nodes.
    return {"finished": 0, "stopped": EXIT_STOPPED, "hopeless": EXIT_USAGE}.get(result.state, EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
