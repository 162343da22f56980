"""What the island lease and the mount check cost: `python scripts/bench_lease.py [--run-dir D]`.

Prints medians of a lease renewal (`Claim.refresh`: read the lease back, write it atomically
without fsync), a claim plus release, and `fsinfo.lock_warning`, with the renewal's share of an
island's wall time at one renewal per `lease.REFRESH_S` (the most an island does). Give
`--run-dir` on the shared filesystem you will use: there every file operation is a round trip.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Callable

from migration_pool import fsinfo, lease
from migration_pool.rundir import RunDir


def median_us(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=None, help="where to measure (default: a temporary folder)")
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    root = args.run_dir or tempfile.mkdtemp(prefix="bench-lease-")
    rd = RunDir(root)
    claim = rd.island("island-00").claim()
    try:
        refresh = median_us(lambda: claim.refresh(force=True), args.n)
    finally:
        claim.release()
    take = median_us(lambda: rd.island("island-01").claim().release(), max(1, args.n // 4))
    check = median_us(lambda: fsinfo.lock_warning(root), max(1, args.n // 10))
    info = fsinfo.describe(root)
    where = f"{info.mount.fstype} at {info.mount.mount_point}" if info else "unknown filesystem"
    print(f"run directory {root} ({where})")
    print(f"lease renewal     {refresh:8.1f} us  ({refresh / 1e6 / lease.REFRESH_S:.4%} of wall time at one per "
          f"{lease.REFRESH_S:g} s)")
    print(f"claim + release   {take:8.1f} us")
    print(f"mount check       {check:8.1f} us  (once per evolve/launch)")


if __name__ == "__main__":
    main()
