"""A node crash on a real 3-host SLURM cluster: islands on the lost host come back by themselves.

The cluster is `../shared/slurm/multi-node.sh` (or the script ISLANDS_MULTI_NODE names): a
controller and three compute hosts on this machine, each its own network, hostname and PID
namespace, sharing the filesystem as a coherent NFS would. `.ci/run` starts it with a short
credential expiry (MN_CRED_EXPIRE=30); the tests skip at collection, with the reason, where it
does not answer. `crash NODE` is a power loss: every process of the host dies at once.

What is checked, on 9 islands of one job array over the hosts: the crashed host's islands are
shown lost by `islands status` within SLURM's node timeout plus a few heartbeat intervals (not
after the 60 s stale threshold), SLURM requeues their tasks, the replacements start while the
dead holders' leases are still fresh (here: at once, `scontrol update StartTime=now`) and take
them over as the same task, and every island finishes with a history free of gaps and repeats.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from islands.status.record import HistoryLine
from islands.status.report import build_report
from migration_pool.rundir import RunDir
from support.procs import island_status, REPO, child_env, wait_for

SCRIPT = Path(os.environ.get("ISLANDS_MULTI_NODE", REPO.parent / "shared" / "slurm" / "multi-node.sh"))


def _cluster_conf() -> tuple[str | None, str]:
    """(SLURM_CONF of the running multi-host cluster, "") or (None, why the tests skip)."""
    if not SCRIPT.exists():
        return None, f"no multi-host SLURM script at {SCRIPT} (set ISLANDS_MULTI_NODE)"
    try:
        env = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, timeout=30)
        conf = re.search(r"SLURM_CONF=(\S+)", env.stdout)
        if conf is None:
            return None, "the multi-host cluster script prints no SLURM_CONF"
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15,
                              env={**os.environ, "SLURM_CONF": conf.group(1).strip("'\"")})
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"the multi-host cluster cannot be asked ({e})"
    if "UP" not in ping.stdout:
        return None, f"the multi-host cluster is not running ({SCRIPT} start)"
    return conf.group(1).strip("'\""), ""


CONF, REASON = _cluster_conf()
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(420),
              pytest.mark.skipif(CONF is None, reason=REASON)]
ISLANDS = [f"island-{i:02d}" for i in range(9)]
GENERATIONS = 300


def _slurm(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=check,
                          env={**os.environ, "SLURM_CONF": CONF or ""})


def _sshfs_hosts() -> str | None:
    """Why the sshfs test skips, or None when node2 and node3 see sshfs at /mnt/shared."""
    if CONF is None:
        return REASON
    out = subprocess.run(["bash", str(REPO / "scripts" / "sshfs-share"), "status"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "ISLANDS_MULTI_NODE": str(SCRIPT)})
    if out.stdout.split() != ["node2:", "fuse.sshfs", "node3:", "fuse.sshfs"]:
        return f"no sshfs share on node2 and node3 (scripts/sshfs-share start): {(out.stdout + out.stderr).strip()[-200:]}"
    return None


@pytest.fixture
def cluster(monkeypatch):
    """The cluster's client configuration for this process; every host is up again afterwards,
    with the sshfs share mounted again if it was (a revived host boots without it)."""
    monkeypatch.setenv("SLURM_CONF", CONF)
    share = _sshfs_hosts() is None
    crashed: list[str] = []
    yield crashed
    for node in crashed:
        subprocess.run(["bash", str(SCRIPT), "revive", node], capture_output=True, timeout=120)
    if crashed and share:
        subprocess.run(["bash", str(REPO / "scripts" / "sshfs-share"), "start"], capture_output=True, timeout=300,
                       env={**os.environ, "ISLANDS_MULTI_NODE": str(SCRIPT)})


@pytest.mark.nightly  # ~50 s on a quiet machine, most of it SLURM's: 15 s to call the host lost, ~15 s to requeue
def test_a_crashed_hosts_islands_are_shown_lost_requeued_and_finish_without_gaps(tmp_path, cluster):
    run = tmp_path / "run"
    barrier = tmp_path / "barrier"  # the islands evolve together, whatever their start-up skew
    launch = subprocess.run(
        [sys.executable, "-m", "islands", "launch", "--backend", "slurm", "--run-dir", str(run), "-n", "9",
         "--problem", "slow_problem:make", "--dim", "4", "--population", "8", "--generations", str(GENERATIONS),
         "--param", "delay=0.01", "--param", f"barrier={barrier}", "--param", "parties=9",
         "--migrate-every", "5", "--checkpoint-every", "5", "--checkpoint-seconds", "0", "--detach", "--plain"],
        cwd=tmp_path, env=child_env(SLURM_CONF=CONF), capture_output=True, text=True, timeout=120)
    assert launch.returncode == 0 and "detached" in launch.stdout + launch.stderr, launch.stdout + launch.stderr
    wait_for(lambda: all((island_status(run, i).generation or 0) >= 20 for i in ISLANDS), timeout=180,
             what="every island past generation 20")
    hosts = {i: island_status(run, i).host for i in ISLANDS}
    victim = max(sorted(set(hosts.values())), key=lambda h: list(hosts.values()).count(h))
    lost = sorted(i for i, h in hosts.items() if h == victim)
    assert 0 < len(lost) < 9, hosts
    cluster.append(victim)
    subprocess.run(["bash", str(SCRIPT), "crash", victim], check=True, capture_output=True, timeout=60)
    crashed_at = time.monotonic()

    seen: set[str] = set()

    def shown_lost() -> bool:
        """Each lost island shown so (stale, "lost: its host ... does not answer SLURM") before
        SLURM declares the host down and requeues it: what heartbeats alone would take 60 s for."""
        entries = {e["island"]: e for e in build_report(run)["islands"]}
        seen.update(i for i in lost if entries[i]["state"] == "stale" and "lost: its host" in (entries[i]["note"] or ""))
        return seen == set(lost)

    wait_for(shown_lost, timeout=90, interval=0.3, what=f"status to show {lost} on {victim} lost")
    seen_after = time.monotonic() - crashed_at
    # SLURM marks the host NOT_RESPONDING after ~8 s (SlurmdTimeout 15 s in the cluster script):
    # well before the 60 s after which a silent island's heartbeat makes it stale.
    print(f"lost shown {seen_after:.1f} s after the crash of {victim} ({len(lost)} island(s))")
    assert seen_after < 40, seen_after
    nudged = [0.0]

    def all_finished() -> bool:
        if time.monotonic() - nudged[0] > 3:  # a requeued task may start again at once: inside the lease's ttl
            nudged[0] = time.monotonic()
            for island in lost:
                job = RunDir(run).scheduler.read_slurm_jobs()[-1]["job_id"]
                _slurm("scontrol", "update", f"JobId={job}_{ISLANDS.index(island)}", "StartTime=now")
        return all(island_status(run, i).state == "finished" for i in ISLANDS)

    wait_for(all_finished, timeout=300, interval=0.5, what="every island finished after the crash")
    for island in ISLANDS:
        gens = [HistoryLine.from_body(r).generation for r in RunDir(run).island(island).iter_history()]
        assert gens == list(range(GENERATIONS + 1)), (island, gens[:5], len(gens))
    logs = "".join(p.read_text(errors="replace") for p in (run / "slurm").glob("*.out"))
    assert "already running" not in logs, logs[-2000:]  # no replacement was refused by a dead holder's lease
    for island in lost:
        assert island_status(run, island).host != victim  # it ran to its end on another host
        assert f"{island}: taking over the lease of host {victim}" in logs, logs[-3000:]


@pytest.mark.skipif(CONF is None or _sshfs_hosts() is not None, reason=str(_sshfs_hosts() if CONF else REASON))
def test_a_run_directory_over_sshfs_between_two_hosts(cluster):
    """sshfs: renames and in-place writes are seen across hosts at once, flock is node-local. A
    run there works (the lease, not the flock, keeps islands single), and each island says
    once that the filesystem's locks do not reach the other hosts."""
    run = Path("/mnt/shared") / f"run-{os.getpid()}-{time.time_ns()}"
    try:
        out = subprocess.run(
            [sys.executable, "-m", "islands", "launch", "--backend", "slurm", "--run-dir", str(run), "-n", "4",
             "--problem", "slow_problem:make", "--dim", "4", "--population", "8", "--generations", "60",
             "--param", "delay=0.005", "--param", f"barrier={run}-barrier", "--param", "parties=4",
             "--migrate-every", "5", "--plain", "--sbatch-arg=--exclude=node1"],
            env=child_env(SLURM_CONF=CONF), capture_output=True, text=True, timeout=240)
        text = out.stdout + out.stderr
        assert out.returncode == 0 and "all 4 island(s) finished" in text, text
        statuses = {i: island_status(run, i) for i in ISLANDS[:4]}
        assert {s.host for s in statuses.values()} == {"node2", "node3"}, {i: s.host for i, s in statuses.items()}
        assert all(s.generation == 60 for s in statuses.values())
        hosts = {i: s.host for i, s in statuses.items()}
        received_across = sum(n for i, s in statuses.items() for key, n in s.migration.received_from.items()
                              if hosts.get(key) not in (None, s.host))
        assert received_across > 0, statuses  # migrants crossed the sshfs mount between the hosts
        # Each island warns on its stderr; SLURM appends stdout and stderr to one output file,
        # which sshfs does not append to atomically, so a line there can be lost: ask a host.
        said = subprocess.run(["bash", str(SCRIPT), "exec", "node2", sys.executable, "-c",
                               f"from migration_pool.fsinfo import lock_warning; print(lock_warning({str(run)!r}))"],
                              env=child_env(), capture_output=True, text=True, timeout=60)
        assert "is on sshfs" in said.stdout and "only the islands' leases keep an island" in said.stdout, said
    finally:
        subprocess.run(["rm", "-rf", str(run), f"{run}-barrier"], timeout=60)


def test_whole_node_jobs_fork_each_hosts_islands_from_one_template(tmp_path, cluster):
    """`--pattern node --nodes 3`: one task per host runs a node-local launcher that forks its
    share of the 6 islands (every third one) from one island template; every island finishes,
    migrants cross the hosts, and the submitting launch writes the run's champion."""
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "islands", "launch", "--backend", "slurm", "--run-dir", str(run), "-n", "6",
         "--pattern", "node", "--nodes", "3", "--problem", "slow_problem:make", "--dim", "4", "--population", "8",
         "--generations", "80", "--param", "delay=0.005", "--param", f"barrier={tmp_path / 'barrier'}",
         "--param", "parties=6", "--migrate-every", "5", "--plain"],
        cwd=tmp_path, env=child_env(SLURM_CONF=CONF), capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "all 6 island(s) finished" in text, text
    statuses = {i: island_status(run, i) for i in ISLANDS[:6]}
    hosts = {i: s.host for i, s in statuses.items()}
    assert len(set(hosts.values())) == 3, hosts
    for k in range(3):  # rank k's slice: islands k and k + 3, on one host
        assert hosts[ISLANDS[k]] == hosts[ISLANDS[k + 3]], hosts
    for island in ISLANDS[:6]:
        head = (run / "islands" / island / "island.log").read_text().splitlines()[0]
        assert "forked from the island template" in head, head
        assert statuses[island].generation == 80
    assert sum(n for i, s in statuses.items() for src, n in s.migration.received_from.items()
               if hosts.get(src) not in (None, hosts[i])) > 0
    assert (run / "champion.isld").exists()
    (job,) = {str(r["job_id"]) for r in RunDir(run).scheduler.read_slurm_jobs()}
    out_file = run / "slurm" / f"{job}.out"  # the batch script's last line comes just after the islands end
    wait_for(lambda: "task ended" in out_file.read_text(), timeout=60, what="the job's end line")
    logs = out_file.read_text()
    assert logs.count("node node") >= 3 and f"task ended: {job} exit 0" in logs, logs[-2000:]
