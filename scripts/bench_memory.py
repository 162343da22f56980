#!/usr/bin/env python3
"""Memory of one island process (RSS), per algorithm and population size.

Runs a real `islands evolve` child for each case (GA and CMA-ES on Rastrigin, the pure GA on
the `cartpole` network task, NEAT on `xor`) at P=100 and P=500 and reports two figures:

- max_rss_mib: the kernel's peak resident set of the child (wait4's ru_maxrss), exact;
- rss_end_mib: the resident set sampled (psutil, every 50 ms) last before the child exited,
  i.e. what an island holds once it evolves; most of it is the Python interpreter and torch.

RSS counts the pages an island shares with others in full. `--launch N` measures what a run of
N islands really costs: a real `islands launch -n N` (GA on Rastrigin D=10, P=100), islands
forked from the template (the default) and then with `--no-fork-server` (fresh processes),
sampling every island's PSS (its shared pages divided among the processes sharing them) and
private memory (USS, what it alone holds) from /proc while all of them evolve.

    python scripts/bench_memory.py [--generations 30] [--populations 100,500] [--json FILE] [--md FILE]
    python scripts/bench_memory.py --launch 4
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import psutil  # noqa: E402

# (label, evolve options): one island of each kind (vector GA and CMA-ES, pure network GA, NEAT).
CASES = (
    ("ga", ["--algorithm", "ga", "--problem", "rastrigin", "--dim", "10"]),
    ("cmaes", ["--algorithm", "cmaes", "--problem", "rastrigin", "--dim", "10"]),
    ("pure", ["--algorithm", "pure", "--problem", "cartpole"]),
    ("neat", ["--algorithm", "neat", "--problem", "xor"]),
)


def measure(label: str, options: list[str], population: int, generations: int) -> dict:
    """One island run to its end; its peak and final RSS in MiB."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        cmd = [sys.executable, "-m", "islands", "evolve", "island-00", "--run-dir", os.path.join(tmp, "run"),
               "--quiet", *options, "--population", str(population), "--generations", str(generations),
               "--migrate-every", "0", "--target", "1e300"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
        t = time.perf_counter()
        errors = open(os.path.join(tmp, "stderr"), "w+b")  # a file: a full pipe would block the child
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        last, done, status, usage = 0, 0, 0, None
        try:
            watched = psutil.Process(proc.pid)
            while not done:
                try:
                    rss = watched.memory_info().rss  # 0 once it exited (a zombie until wait4 reaps it)
                    last = rss or last
                except psutil.Error:
                    pass
                done, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if not done:
                    time.sleep(0.05)
        finally:
            if not done:
                proc.kill()
                os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode(errors="replace")
        errors.close()
        if proc.returncode != 0:
            raise SystemExit(f"{label} P={population} failed ({proc.returncode}): {err.strip()[-500:]}")
        return {"algorithm": label, "population": population, "generations": generations,
                "max_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
                "rss_end_mib": round(last / 2**20, 1), "wall_s": round(time.perf_counter() - t, 2),
                "options": options}


def launched(n: int, fork: bool, seconds: float = 90.0) -> dict:
    """PSS and USS (MiB) of the islands of one `islands launch -n n` sampled for `seconds` while
    they start and evolve: each island's largest sample, median over the processes seen (a
    short-lived helper process of the launcher is one of them; the median is the islands')."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-launch-") as tmp:
        cmd = [sys.executable, "-m", "islands", "launch", "-n", str(n), "--run-dir", os.path.join(tmp, "run"),
               "--problem", "rastrigin", "--dim", "10", "--population", "100", "--generations", "100000",
               "--target", "1e300", "--plain", "--progress-every", "600"] + ([] if fork else ["--no-fork-server"])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        peak: dict[int, tuple[float, float]] = {}
        try:
            end = time.monotonic() + seconds
            launcher = psutil.Process(proc.pid)
            while time.monotonic() < end and proc.poll() is None:
                for c in launcher.children(recursive=True):  # its islands, not the template that forks them
                    try:
                        if "island_template" in " ".join(c.cmdline()) and c.ppid() == proc.pid:
                            continue
                        full = c.memory_full_info()
                    except psutil.Error:
                        continue
                    old = peak.get(c.pid, (0.0, 0.0))
                    peak[c.pid] = (max(old[0], full.pss / 2**20), max(old[1], full.uss / 2**20))
                time.sleep(0.5)
        finally:
            try:
                os.killpg(proc.pid, 15)  # the launcher stops its islands and waits for them
            except ProcessLookupError:
                pass
            proc.wait()
        pss = sorted(v[0] for v in peak.values())
        uss = sorted(v[1] for v in peak.values())
        if len(pss) < n:
            raise SystemExit(f"launch -n {n} ({'forked' if fork else 'fresh'}): only {len(pss)} island processes seen")
        return {"islands": n, "forked": fork, "processes": len(pss), "pss_mib": round(pss[len(pss) // 2], 1),
                "uss_mib": round(uss[len(uss) // 2], 1)}


def markdown(rows: list[dict]) -> str:
    lines = ["| island | P | peak RSS (MiB) | RSS near the end (MiB) |", "|---|---|---|---|"]
    for r in rows:
        what = " ".join(r["options"][1::2][:2])
        lines.append(f"| {what} | {r['population']} | {r['max_rss_mib']:.0f} | {r['rss_end_mib']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=30)
    ap.add_argument("--populations", default="100,500")
    ap.add_argument("--algorithms", default=",".join(c[0] for c in CASES))
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--md", dest="md_path")
    ap.add_argument("--launch", type=int, default=0, help="measure the islands of a real launch -n N instead")
    args = ap.parse_args()
    if args.launch:
        rows = [launched(args.launch, fork) for fork in (True, False)]
        lines = ["| islands | started | PSS per island (MiB) | private (USS) per island (MiB) |", "|---|---|---|---|"]
        lines += [f"| {r['islands']} | {'forked from the template' if r['forked'] else 'fresh processes'} | "
                  f"{r['pss_mib']:.0f} | {r['uss_mib']:.0f} |" for r in rows]
        print("\n".join(lines))
        if args.json_path:
            with open(args.json_path, "w") as f:
                json.dump({"benchmark": "memory-launch", "rows": rows}, f, indent=2)
        return
    chosen = set(args.algorithms.split(","))
    rows = [measure(label, options, int(p), args.generations)
            for label, options in CASES if label in chosen for p in args.populations.split(",")]
    table = markdown(rows)
    print(table, end="")
    result = {"benchmark": "memory", "python": sys.version.split()[0], "rows": rows}
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(result, f, indent=2)
    if args.md_path:
        with open(args.md_path, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
