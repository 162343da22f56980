"""The scheduler's side of a run: what SLURM says about its islands, which island a SLURM task is.

Both `islands status` (this package) and `islands launch --backend slurm` (the launcher) need
the scheduler's view, so it lives here, below the launcher. It only runs the client commands
(`scontrol`), never imports torch, and answers "unknown" rather than failing when SLURM is
absent: on a login node a run's liveness must come from heartbeats and the scheduler, never
from pids of processes on other hosts.

Submissions are recorded in RUN/slurm/jobs (`RunDir.scheduler.record_slurm_job`), one JSON line each:
{"job_id": "123", "pattern": "array"|"step", "islands": {"3": "island-03", ...}, ...} where
the keys are array task ids (pattern array) or task ranks (pattern step).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from islands.errors import ConfigError
from migration_pool.rundir import RunDir

INDICES_ENV = "ISLANDS_SLURM_INDICES"  # the planned islands' indices a step or node job runs
QUERY_TIMEOUT_S = 10.0  # scontrol gives up on a silent controller after its MessageTimeout (10 s) too
ACTIVE = frozenset({"pending", "requeued", "running", "stopping"})
# States after which SLURM runs the task no more; any other (PREEMPTED, which may requeue, a
# hold, a state this table does not know) counts as still active, so a task is never
# resubmitted while SLURM may still run it (two copies would race for the island).
ENDED = frozenset({"completed", "cancelled", "timeout", "failed", "gone"})
# JobState -> what an island's row says (scontrol's names, as of Slurm 22.05)
_STATES = {
    "PENDING": "pending", "REQUEUED": "requeued", "REQUEUE_HOLD": "requeued", "REQUEUE_FED": "requeued",
    "RUNNING": "running", "CONFIGURING": "running", "RESIZING": "running", "SUSPENDED": "running",
    "COMPLETING": "stopping", "STAGE_OUT": "stopping", "SIGNALING": "stopping",
    "COMPLETED": "completed", "CANCELLED": "cancelled", "TIMEOUT": "timeout", "PREEMPTED": "preempted",
    "FAILED": "failed", "NODE_FAIL": "failed", "BOOT_FAIL": "failed", "OUT_OF_MEMORY": "failed",
    "DEADLINE": "failed", "SPECIAL_EXIT": "failed",
}


@dataclass(frozen=True)
class TaskState:
    """One array task (or one job) as SLURM reports it."""

    job: str  # "123_4" for an array task, "123" for a plain job
    state: str  # one of _STATES' values, or "gone" (no longer known to SLURM)
    raw: str = ""  # scontrol's JobState
    reason: str = ""
    restarts: int = 0
    exit_code: str = ""
    nodes: tuple[str, ...] = ()  # the hosts it runs on (NodeList, expanded), while it runs
    unreachable: tuple[tuple[str, str], ...] = ()  # (host, State) of those SLURM cannot reach

    @property
    def active(self) -> bool:
        return self.state not in ENDED

    def lost_on(self, host: str | None) -> tuple[str, str] | None:
        """(host, its State) when the island, running on `host` (its status's; None: not known),
        sits on a host of this task that SLURM cannot reach: lost (a power loss, a crash) long
        before its heartbeats look old; SLURM requeues the task once the node is DOWN. A task
        over several hosts (pattern step or node) loses only the islands of the lost host."""
        down = dict(self.unreachable)
        if not self.active or not down:
            return None
        if host:
            short = host.split(".")[0]
            return (short, down[short]) if short in down else None
        return (self.nodes[0], down[self.nodes[0]]) if len(self.nodes) == 1 and self.nodes[0] in down else None


def available(env: Mapping[str, str] = os.environ) -> bool:
    """Whether SLURM's client commands are here (not whether a controller answers)."""
    return shutil.which("scontrol", path=env.get("PATH")) is not None


def _fields(line: str) -> dict[str, str]:
    out = {}
    for word in line.split():
        key, eq, value = word.partition("=")
        if eq and key not in out:
            out[key] = value
    return out


def query(job_ids: Sequence[str]) -> dict[str, TaskState] | None:
    """Every task of `job_ids` SLURM still knows, by "JOB_TASK" (array) or "JOB"; None when
    SLURM cannot be asked (no client, no controller). A job it no longer knows is absent."""
    if not available():
        return None
    found: dict[str, TaskState] = {}
    for job in dict.fromkeys(job_ids):
        try:
            out = subprocess.run(["scontrol", "-o", "show", "job", str(job)], capture_output=True, text=True,
                                 timeout=QUERY_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0:
            if "Invalid job id" in out.stderr:
                continue  # finished more than MinJobAge ago, or never existed
            return None
        for line in out.stdout.splitlines():
            f = _fields(line)
            if "JobId" not in f:
                continue
            task = f.get("ArrayTaskId", "N/A")
            key = f"{f.get('ArrayJobId')}_{task}" if task not in ("N/A", "") and "ArrayJobId" in f else f["JobId"]
            raw = f.get("JobState", "")
            state = _STATES.get(raw, raw.lower() or "unknown")
            restarts = int(f.get("Restarts", "0") or 0) if f.get("Restarts", "0").isdigit() else 0
            if state == "pending" and restarts > 0:
                state = "requeued"
            nodes = tuple(expand_hosts(f.get("NodeList", ""))) if state in ("running", "stopping") else ()
            if "-" in task or "," in task:  # pending tasks not yet split off: one line for many
                for t in _expand(task):
                    found[f"{f.get('ArrayJobId')}_{t}"] = TaskState(f"{f.get('ArrayJobId')}_{t}", state, raw,
                                                                    f.get("Reason", ""), restarts, f.get("ExitCode", ""))
                continue
            found[key] = TaskState(key, state, raw, f.get("Reason", ""), restarts, f.get("ExitCode", ""), nodes)
    return found


# A node's State words that mean its processes cannot be reached (scontrol's; a trailing "*" is
# NOT_RESPONDING): a task there is lost, whatever its island's last heartbeat says. FAIL(ING)
# is not one: jobs there run on until they end.
UNREACHABLE = ("NOT_RESPONDING", "DOWN", "POWERED_DOWN")
MAX_HOSTS = 65536  # a host list that would expand further is not believed


def expand_hosts(text: str) -> list[str]:
    """SLURM's host list -> host names: "node[1-3,07],gpu1" -> node1 node2 node3 node07 gpu1
    (one bracket group per name, zero padding kept); "(null)" and garbage give what parses."""
    out: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", text or ""):
        m = re.fullmatch(r"([\w.-]*)\[([\d,-]+)\]([\w.-]*)", part)
        if m is None:
            if re.fullmatch(r"[\w.-]+", part) and part not in ("None",):
                out.append(part[:256])
            continue
        for rng in m.group(2).split(","):
            lo, _, hi = rng.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                continue
            end = int(hi) if hi else int(lo)
            if end - int(lo) > MAX_HOSTS - len(out):
                return out
            out += [f"{m.group(1)}{i:0{len(lo)}d}{m.group(3)}" for i in range(int(lo), end + 1)]
    return out


def unreachable_nodes(nodes: Sequence[str]) -> dict[str, str]:
    """{node: State} of those of `nodes` SLURM reports unreachable; {} when it cannot be asked
    (the view then rests on heartbeats alone, as without SLURM)."""
    wanted = sorted({n for n in nodes if n})
    if not wanted or not available():
        return {}
    try:
        out = subprocess.run(["scontrol", "-o", "show", "node", ",".join(wanted)], capture_output=True,
                             text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.stdout.splitlines():
        f = _fields(line)
        name, state = f.get("NodeName", ""), f.get("State", "")
        if name in wanted and any(word in UNREACHABLE for word in state.replace("*", "+NOT_RESPONDING").split("+")):
            found[name] = state[:64]
    return found


def _expand(spec: str) -> list[int]:
    """"[0-3,7%2]" -> [0, 1, 2, 3, 7] (scontrol's list of pending array tasks)."""
    out: list[int] = []
    for part in spec.strip("[]").split("%")[0].split(","):
        lo, dash, hi = part.partition("-")
        if lo.isdigit() and (not dash or hi.isdigit()):
            out.extend(range(int(lo), int(hi if dash else lo) + 1))
    return out


def island_jobs(rundir: RunDir) -> dict[str, str]:
    """Each island's latest SLURM task ("JOB_TASK" or "JOB"), from RUN/slurm/jobs."""
    latest: dict[str, str] = {}
    for rec in rundir.scheduler.read_slurm_jobs():
        job, islands = str(rec.get("job_id", "")), rec.get("islands")
        if not job or not isinstance(islands, dict):
            continue
        for key, island in islands.items():
            latest[str(island)] = f"{job}_{key}" if rec.get("pattern") == "array" else job
    return latest


def island_states(rundir: RunDir) -> dict[str, TaskState] | None:
    """The scheduler's state of each island submitted in this run: {} when none was, None when
    SLURM cannot be asked. An island whose job SLURM no longer knows is "gone"."""
    jobs = island_jobs(rundir)
    if not jobs:
        return {}
    states = query(sorted({j.split("_")[0] for j in jobs.values()}))
    if states is None:
        return None
    down = unreachable_nodes([n for t in states.values() for n in t.nodes])
    if down:
        states = {k: replace(t, unreachable=tuple((n, down[n]) for n in t.nodes if n in down))
                  for k, t in states.items()}
    return {isl: states.get(job, TaskState(job, "gone")) for isl, job in jobs.items()}


def island_from_env(planned: Sequence[str], env: Mapping[str, str] = os.environ) -> str:
    """The island a SLURM task runs: the planned list's entry at SLURM_ARRAY_TASK_ID (a job
    array) or at SLURM_PROCID (`srun -n N`); ISLANDS_SLURM_INDICES (set by a resumed step job,
    which starts only some islands) maps a rank to a planned index first."""
    if not planned:
        raise ConfigError("--slurm: the run's manifest plans no islands (start the run with "
                          "`islands launch --backend slurm`, or give the island id)")
    indices = env.get(INDICES_ENV, "").strip()
    if indices and env.get("SLURM_PROCID", "").isdigit():
        ranks = [int(i) for i in indices.split(",") if i.strip().isdigit()]
        rank = int(env["SLURM_PROCID"])
        if rank >= len(ranks):
            raise ConfigError(f"--slurm: SLURM_PROCID {rank} is beyond ISLANDS_SLURM_INDICES {indices!r}")
        index, source = ranks[rank], f"SLURM_PROCID {rank} (ISLANDS_SLURM_INDICES)"
    elif env.get("SLURM_ARRAY_TASK_ID", "").isdigit():
        index, source = int(env["SLURM_ARRAY_TASK_ID"]), "SLURM_ARRAY_TASK_ID"
    elif env.get("SLURM_PROCID", "").isdigit():
        index, source = int(env["SLURM_PROCID"]), "SLURM_PROCID"
    else:
        raise ConfigError("--slurm: neither SLURM_ARRAY_TASK_ID nor SLURM_PROCID is set (not a SLURM task?)")
    if index >= len(planned):
        raise ConfigError(f"--slurm: {source} is {index}, but the run plans {len(planned)} island(s)")
    return str(planned[index])


def merge_into_entry(entry: dict, task: TaskState | None) -> None:
    """Refine one island of the `islands status` report with SLURM's view of its task.

    The island's own status (heartbeat; a pid only on this host) says how far it got; SLURM
    says whether it is waiting to run (pending, requeued) or whether its task is gone while
    the status still says running (dead, whatever host it ran on).
    """
    entry["scheduler"] = None if task is None else {
        "job": task.job, "state": task.state, "slurm_state": task.raw or None,
        "reason": task.reason or None, "restarts": task.restarts, "nodes": list(task.nodes) or None,
        "unreachable": dict(task.unreachable) or None}
    if task is None or entry["state"] in ("finished", "failed", "unreadable"):
        return
    why = f" ({task.reason})" if task.reason and task.reason != "None" else ""
    if task.state in ("pending", "requeued"):
        again = f", requeued {task.restarts} time(s)" if task.restarts else ""
        entry["state"] = task.state
        entry["note"] = f"SLURM task {task.job} is waiting to run{why}{again}"
    elif (lost := task.lost_on(entry.get("host"))) and entry["state"] in ("running", "stale", "pending"):
        entry["state"] = "stale"
        entry["note"] = (f"lost: its host {lost[0]} does not answer SLURM ({lost[1]}); "
                         f"SLURM requeues task {task.job} once the node is down, and it resumes from its checkpoint")
    elif task.active:
        if entry["state"] in ("stopped", "dead"):  # a new incarnation is starting
            entry["state"], entry["note"] = "pending", f"SLURM task {task.job} is running; the island is starting"
    elif entry["state"] in ("running", "stale", "pending"):
        ended = "is no longer known to SLURM" if task.state == "gone" else f"ended ({task.raw})"
        entry["state"], entry["note"] = "dead", f"its SLURM task {task.job} {ended} without finishing"
    else:
        entry["note"] = "; ".join(x for x in (entry.get("note"), f"SLURM task {task.job}: {task.raw or task.state}") if x)
