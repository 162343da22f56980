"""`islands status` liveness from leases (issue 12, item 6): an island whose lease names another
host is judged by heartbeats, never by a pid, which names nothing on this host."""
from __future__ import annotations

import socket
import time

import pytest

from islands.config import RunConfig
from islands.runs import join_run
from islands.status import metrics as met
from islands.status.record import IslandStatus
from islands.status.report import build_report
from migration_pool import atomic, format as fmt, lease
from migration_pool.lease import Lease
from migration_pool.rundir import RunDir

NOW = 1_000_000.0
HERE = "login-1"
OTHER = "node-7"


def status(**kw) -> IslandStatus:
    base = {"island": "island-00", "state": "running", "host": HERE, "pid": 1234, "started": NOW - 100,
            "heartbeat": NOW - 1}
    return IslandStatus.from_body({**base, **kw})


def held(host: str = OTHER, *, pid: int = 99, started: float = NOW - 10, age: float = 2.0) -> Lease:
    return Lease(island="island-00", host=host, pid=pid, job_id="5_0", started=started, heartbeat=NOW - age,
                 ttl=60.0, token="t")


class Pids:
    """An `alive` that records what it was asked and answers from a fixed set."""

    def __init__(self, live: set[int] = frozenset()) -> None:
        self.live, self.asked = live, []

    def __call__(self, pid: int, started: float | None) -> bool:
        self.asked.append(pid)
        return pid in self.live


@pytest.mark.parametrize("st, lease_, live, expected", [
    # This host's writer is dead, but a newer copy on another host holds a fresh lease.
    (status(), held(), set(), "running"),
    (status(state="stopped"), held(), set(), "running"),  # requeued after a time-limit stop
    (status(), held(age=500.0), set(), "dead"),  # its lease went stale: the status decides
    (status(), held(started=NOW - 200), set(), "dead"),  # older than the status: tells nothing
    # Another host's status, silent past the threshold, but its own lease was renewed since.
    (status(host=OTHER, pid=99, heartbeat=NOW - 500), held(started=NOW - 200), set(), "running"),
    (status(host=OTHER, pid=99, heartbeat=NOW - 500), held(started=NOW - 200, age=400.0), set(), "stale"),
    # A newer holder on this host counts while its pid is alive, and only then.
    (status(), held(host=HERE, pid=77), {77}, "running"),
    (status(), held(host=HERE, pid=77), set(), "dead"),
])
def test_classify_with_a_lease(st, lease_, live, expected):
    pids = Pids(live)
    state, note = met.classify(st, now=NOW, here=HERE, alive=pids, stale_after=60, lease=lease_)
    assert state == expected, note
    if lease_.host != HERE:
        assert lease_.pid not in pids.asked  # never a pid check for another host's process
    if expected == "running" and lease_.started > (st.started or 0):
        assert f"host {lease_.host}" in note


def test_an_island_with_only_a_lease():
    pids = Pids()
    assert met.lease_state(held(), now=NOW, here=HERE, alive=pids)[0] == "running"
    assert met.lease_state(held(age=500.0), now=NOW, here=HERE, alive=pids) is None
    assert met.lease_state(None, now=NOW, here=HERE, alive=pids) is None
    assert pids.asked == []


def test_the_report_takes_liveness_from_another_hosts_lease(tmp_path):
    run, _ = join_run(tmp_path / "run", RunConfig(problem="sphere", dim=3, generations=5), {})
    rd = RunDir(run.root)
    here, now = socket.gethostname(), time.time()
    # island-00: written here by a process now gone, then taken over by a job on another host;
    # island-01: a job on another host that has not written its status yet.
    rd.ensure("island-00")
    rd.island("island-00").write_status(IslandStatus(island="island-00", run_id=run.run_id, state="running", host=here,
                                              pid=2**22 + 1, started=now - 300, heartbeat=now - 200).to_body())
    for island in ("island-00", "island-01"):
        rd.ensure(island)
        body = Lease(island=island, host=OTHER, pid=os_pid_here(), job_id="8_1", started=now - 5,
                     heartbeat=now - 1, ttl=60.0, token="x").to_body()
        atomic.publish(rd.island(island).dir / lease.LEASE_FILE, fmt.encode("lease", body))
    pids = Pids()
    report = build_report(run.root, alive=pids)
    states = {i["island"]: (i["state"], i["note"]) for i in report["islands"]}
    assert states["island-00"][0] == "running" and f"host {OTHER}" in states["island-00"][1]
    assert states["island-01"][0] == "running" and "job 8_1" in states["island-01"][1]
    assert os_pid_here() not in pids.asked  # the other host's pid was never looked up here


def os_pid_here() -> int:
    """A pid that is alive on this host: a pid check of the other host's lease would say so."""
    import os

    return os.getpid()
