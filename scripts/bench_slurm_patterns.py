#!/usr/bin/env python3
"""Whole-node jobs against one task per island, on a real multi-host SLURM: start-up and memory.

For each pattern (`array`: one array task per island, a fresh interpreter importing torch each;
`node`: one task per node whose node-local launcher forks its islands from one template) a run
of N islands is submitted side by side in the same window and measured:
  - start: seconds from the submission until every island has written its first status;
  - memory per island, from /proc/PID/smaps_rollup of every process of the run (islands, and
    for `node` its templates and node launchers, shared out over the islands): PSS and private.

Needs the multi-host cluster (../shared/slurm/multi-node.sh start, or ISLANDS_MULTI_NODE) and
prints the machine's load beside the figures. Usage:

    python scripts/bench_slurm_patterns.py [--islands 6] [--nodes 3] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration_pool.rundir import RunDir  # noqa: E402

SCRIPT = Path(os.environ.get("ISLANDS_MULTI_NODE", ROOT.parent / "shared" / "slurm" / "multi-node.sh"))


def conf() -> str:
    out = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"SLURM_CONF=(\S+)", out)
    if found is None:
        sys.exit(f"no multi-host cluster: {SCRIPT} env printed no SLURM_CONF (start it first)")
    return found.group(1).strip("'\"")


def run_processes(run: Path) -> list[int]:
    """Pids (this machine's view) of every process whose command line names the run directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(run).encode() in args and not args[0].endswith(b"srun") and b"bash" not in args[0]:
                pids.append(int(entry.name))
    return pids + templates(set(pids))


def templates(parents: set[int]) -> list[int]:
    """The island templates the node launchers among `parents` started (their argv is padding)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                args = (entry / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid in parents and b"islands.island_template" in args:
                found.append(int(entry.name))
    return found


def memory(pid: int) -> tuple[float, float]:
    """(PSS, private) in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")
        fields[key] = int(value.split()[0])
    return fields["Pss"] / 1024, (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024


def one(pattern: str, islands: int, nodes: int, env: dict[str, str], work: Path) -> dict[str, float]:
    run = work / f"{pattern}-{time.time_ns()}"
    extra = ["--pattern", "node", "--nodes", str(nodes)] if pattern == "node" else []
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "islands", "launch", "--backend", "slurm", "--run-dir", str(run),
                    "-n", str(islands), *extra, "--problem", "slow_problem:make", "--dim", "4", "--population", "8",
                    "--generations", "100000", "--param", "delay=0.01", "--plain", "--detach"],
                   env=env, check=True, capture_output=True, timeout=300)
    ids = [f"island-{i:02d}" for i in range(islands)]
    rd = RunDir(run)
    while not all(rd.island(i).status_path.exists() for i in ids):
        if time.monotonic() - started > 300:
            raise SystemExit(f"{pattern}: islands did not all report within 300 s")
        time.sleep(0.1)
    start_s = time.monotonic() - started
    time.sleep(3)  # steady state: every island past its first generations
    mem = [memory(p) for p in run_processes(run)]
    job = [str(r["job_id"]) for r in rd.scheduler.read_slurm_jobs()]
    subprocess.run(["scancel", *job], env=env, timeout=60)
    return {"start_s": start_s, "pss": sum(m[0] for m in mem) / islands, "private": sum(m[1] for m in mem) / islands,
            "processes": len(mem)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--islands", type=int, default=6)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    env = {**os.environ, "SLURM_CONF": conf(),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "support")])}
    work = Path(tempfile.mkdtemp(prefix="bench-patterns-", dir="/tmp"))
    rows: dict[str, list[dict[str, float]]] = {"array": [], "node": []}
    print(f"{a.islands} islands on {a.nodes} hosts, {a.rounds} round(s), interleaved; "
          f"load average {os.getloadavg()[0]:.1f}")
    for r in range(a.rounds):
        for pattern in ("array", "node") if r % 2 == 0 else ("node", "array"):
            row = one(pattern, a.islands, a.nodes, env, work)
            rows[pattern].append(row)
            print(f"  round {r + 1} {pattern:5s}: start {row['start_s']:5.1f} s, per island PSS {row['pss']:6.1f} MiB, "
                  f"private {row['private']:6.1f} MiB ({row['processes']} processes)")
    print("median:")
    for pattern, got in rows.items():
        print(f"  {pattern:5s}: start {statistics.median(x['start_s'] for x in got):5.1f} s, per island PSS "
              f"{statistics.median(x['pss'] for x in got):6.1f} MiB, private {statistics.median(x['private'] for x in got):6.1f} MiB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
