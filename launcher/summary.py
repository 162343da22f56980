"""The end of a launch: the champion and the run's summary, from the islands' statuses.

The champion is the island status with the highest `best_ever` (fitness is maximised). It is
saved as `champion.isld` through `RunDir.write_champion`: the run directory's envelope of kind
"champion" around one msgpack map, never pickle::

    island      str     e.g. "island-03"
    fitness     float   best-ever fitness (maximised; minimisation problems report -f(x))
    genome      ndarray the genome, float, shape [dim]; for NEAT a map of arrays
                        (nodes, conn_in, conn_out, weight, enabled)
    problem     str     the problem name or import path of the run
    dim         int
    run_id      str
    generation  int     the island generation at which it was found
    overrides   map     that island's --vary values
    created     float   unix time

Load it with `migration_pool.rundir.RunDir(run_dir).read_champion()`.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

MIGRATION_KEYS = ("events", "sent", "received", "adopted", "rejected", "bad_files")


def pick_champion(statuses: Mapping[str, Mapping[str, Any] | None], run_id: str) -> Mapping[str, Any] | None:
    """The status of this run with the best `best_ever` that carries a genome; None if none does."""
    best = None
    for status in statuses.values():
        if not status or status.get("run_id") != run_id:
            continue
        fit, genome = status.get("best_ever"), status.get("best_genome")
        if fit is None or genome is None:
            continue
        if best is None or fit > best["best_ever"]:
            best = status
    return best


def champion_record(status: Mapping[str, Any], problem: str, dim: int, run_id: str) -> dict[str, Any]:
    """The champion file's body (see the module docstring)."""
    return {
        "island": status["island"],
        "fitness": float(status["best_ever"]),
        "genome": _genome(status["best_genome"]),
        "problem": problem,
        "dim": int(dim),
        "run_id": run_id,
        "generation": int(status.get("best_ever_generation") or 0),
        "overrides": dict(status.get("overrides") or {}),
        "created": time.time(),
    }


def _genome(genome: Any) -> Any:
    """Vector genomes as one array; structured genomes (NEAT's map of arrays) as they are."""
    return genome if isinstance(genome, Mapping) else np.asarray(genome)


def summarize(
    *,
    run_id: str,
    run_dir: str,
    problem: str,
    dim: int,
    state: str,
    wall_s: float,
    statuses: Mapping[str, Mapping[str, Any] | None],
    baseline: Mapping[str, int],
    watches: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The summary of one launch, JSON-ready.

    `baseline` holds each island's evaluations when this launch began, so the rate counts
    only the work done now; `watches` holds the launcher's per-island bookkeeping.
    """
    islands: dict[str, Any] = {}
    migration = dict.fromkeys(MIGRATION_KEYS, 0)
    total = done_now = 0
    for isl in sorted(set(statuses) | set(watches)):
        st = statuses.get(isl) or {}
        if st.get("run_id") not in (None, run_id):
            st = {}
        w = watches.get(isl, {})
        evals = int(st.get("evaluations") or 0)
        total += evals
        done_now += max(0, evals - int(baseline.get(isl, 0)))
        for k in MIGRATION_KEYS:
            migration[k] += int((st.get("migration") or {}).get(k, 0))
        islands[isl] = {
            "state": w.get("state", st.get("state", "unknown")),
            "reason": w.get("reason") or st.get("reason"),
            "generation": st.get("generation"),
            "best_ever": st.get("best_ever"),
            "evaluations": evals,
            "restarts": int(w.get("restarts", 0)),
            "hangs": int(w.get("hangs", 0)),
            "overrides": dict(st.get("overrides") or {}),
        }
    champ = pick_champion(statuses, run_id)
    counts = {s: sum(1 for v in islands.values() if v["state"] == s) for s in ("finished", "stopped", "failed")}
    return {
        "run_id": run_id,
        "run_dir": run_dir,
        "problem": problem,
        "dim": dim,
        "state": state,
        "wall_s": round(wall_s, 3),
        "islands": islands,
        **counts,
        "champion": None if champ is None else {
            "island": champ["island"], "fitness": champ["best_ever"],
            "generation": champ.get("best_ever_generation"), "file": "champion.isld"},
        "evaluations": total,
        "evaluations_this_launch": done_now,
        "evals_per_sec": round(done_now / wall_s, 3) if wall_s > 0 else 0.0,
        "migration": migration,
        "restarts": sum(v["restarts"] for v in islands.values()),
        "hangs": sum(v["hangs"] for v in islands.values()),
        "ended": time.time(),
    }


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary as a few lines for people."""
    n = len(summary["islands"])
    lines = [f"run {summary['run_id']} {summary['state']}: {summary['finished']}/{n} island(s) finished, "
             f"{summary['stopped']} stopped, {summary['failed']} failed"]
    champ = summary["champion"]
    if champ:
        lines.append(f"champion: {champ['island']} fitness {champ['fitness']:.6g} "
                     f"(generation {champ['generation']}), genome in {summary['run_dir']}/champion.isld")
    m = summary["migration"]
    lines.append(f"evaluations: {summary['evaluations']:,} in total, {summary['evaluations_this_launch']:,} "
                 f"in this launch over {summary['wall_s']:.1f} s ({summary['evals_per_sec']:,.0f}/s)")
    lines.append(f"migration: {m['events']} events, {m['sent']} sent, {m['received']} received, "
                 f"{m['adopted']} adopted, {m['bad_files']} bad files; restarts {summary['restarts']}, "
                 f"hangs {summary['hangs']}")
    for isl, v in summary["islands"].items():
        if v["state"] == "failed":
            lines.append(f"failed: {isl}: {v['reason']}")
    return lines
