"""The status report of a run: health, progress, diversity and migration, from its files.

`build_report(root)` reads only the run directory (through `islands.status.reader`) and, for islands
on this host, whether their recorded pid is still alive; it returns a JSON-ready dict whose
schema is `islands.status.schema.SCHEMA`. The islands' files are decoded into the records of
`islands.status.record`; the measures (health, diversity, flows) are pure functions in
`islands.status.metrics`; an island entry's recorded fields are those `IslandStatus` declares
shown (`record.island_entry_fields`); this module only assembles and derives (health, progress,
heartbeat age).

Speed: the report must stay well under a second for 128 islands with long histories, so it
never loads checkpoints (only lists them) and never parses a whole history: it splits the raw
bytes into lines (C speed), keeps the lines that carry `diversity`, and decodes an evenly
spaced sample of them. Nothing here imports torch.
"""
from __future__ import annotations

import functools
import gc
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from islands import scheduler_state as slurm
from islands.evaluate import Generalisation
from islands.runs import planned_islands
from islands.status import lineage, lineage_curve
from islands.status.liveness import pid_alive
from islands.status.metrics import (STALE_AFTER_S, between_island_diversity, classify, count_states,
                                    diversity_over_time, island_order, lease_state, migration_matrix)
from islands.status.progress import fraction
from islands.status.reader import RunReader, open_run
from islands.status.record import (MIGRATION_COUNTERS, IslandStatus, as_float, as_int, as_mapping, as_str,
                                   champion, island_entry_fields, plain)
from islands.status.schema import SCHEMA_VERSION
from islands.status.settings import settings_section
from islands.status.tuning import tuning_section
from migration_pool.lease import Lease

HISTORY_POINTS = 100  # diversity samples decoded per island (2 per bin of diversity_over_time)
OPTIMA_SHOWN = 5  # distinct optima the report lists (`open_run(r).optima()` gives more)
_DIVERSITY_KEY = b'"diversity"'


def launcher_info(
    reader: RunReader, alive: Callable[[int, float | None], bool] = pid_alive,
) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Restarts per island, failed islands (with the launcher's reason) and run-level notes.

    The launcher writes {"run_id", "pid", "host", "started", "state", "islands": {id:
    {"restarts": n, "state": ..., "reason": ...}}} through `RunDir.write_launcher_state`; a
    state from another run in the same directory is ignored. No state: nothing recorded.
    """
    state = reader.launcher_state()  # unreadable: the reader's note says restarts are unknown
    restarts: dict[str, int] = {}
    failed: dict[str, str] = {}
    if state is None:
        return restarts, failed, []
    for island, info in as_mapping(state.get("islands")).items():
        if isinstance(info, Mapping):
            restarts[str(island)] = max(0, as_int(info.get("restarts")) or 0)
            if info.get("state") == "failed":
                failed[str(island)] = as_str(info.get("reason")) or ""
    notes = []
    pid = as_int(state.get("pid"))
    if state.get("state") in ("running", "stopping") and state.get("host") == socket.gethostname() \
            and pid is not None and not alive(pid, as_float(state.get("started"))):
        notes.append(f"the launcher (pid {pid}) is gone without finishing: nothing restarts crashed islands; "
                     "run the same launch command to resume")
    return restarts, failed, notes


def _without_gc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with the cyclic garbage collector paused: the report allocates a few hundred objects
    per island and frees them all, and generational collections over them cost a sixth of its
    CPU time (reference counting still frees everything)."""
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()
    return wrapped


@_without_gc
def build_report(
    root: str | Path,
    *,
    now: float | None = None,
    stale_after: float = STALE_AFTER_S,
    history_points: int = HISTORY_POINTS,
    alive: Callable[[int, float | None], bool] = pid_alive,
    full_matrix: bool = False,
) -> dict[str, Any]:
    """The report of the run at `root` (see `islands.status.schema.SCHEMA`); `full_matrix` adds
    the dense N x N migration matrix to its sparse flows.

    Raises:
        RunDirError: `root` does not exist or holds no run.
        FormatError: the manifest is corrupt (per-island problems are notes, not errors).
    """
    reader = open_run(root)
    rundir, manifest = reader.rundir, reader.manifest
    now = time.time() if now is None else now
    here = socket.gethostname()
    run = _run_section(manifest)
    ids = sorted(set(reader.present()) | set(reader.planned), key=island_order)
    restarts, failed, launcher_notes = launcher_info(reader, alive)
    names = lineage.origin_names(ids)  # island number -> id, once (not once per island)
    planned_overrides = as_mapping(manifest.get("overrides"))
    islands: list[dict[str, Any]] = []
    scheduler = slurm.island_states(rundir)  # None: SLURM cannot be asked; {}: nothing submitted
    statuses: dict[str, IslandStatus] = {}
    div_points = {}
    origin_points: dict[str, lineage_curve.Series] = {}
    best_points: dict[str, list[tuple[float, float]]] = {}
    for island in ids:
        status = reader.status(island)
        entry = _island_entry(island, status, reader.problems.get(island), now=now, here=here, alive=alive,
                              stale_after=stale_after, restarts=restarts.get(island, 0),
                              failed=failed.get(island), lease=reader.lease(island),
                              budget=as_int(as_mapping(manifest.get("config")).get("max_evaluations")), known=names)
        if not entry["overrides"]:  # not started yet, or an unreadable status: the manifest knows
            entry["overrides"] = {str(k): plain(v) for k, v in as_mapping(planned_overrides.get(island)).items()}
        slurm.merge_into_entry(entry, (scheduler or {}).get(island))
        entry["checkpoint_generation"] = ckpt = reader.checkpoint_generation(island)
        if entry["state"] in ("dead", "stale", "stopped", "failed") and ckpt is not None:
            entry["note"] = f"{entry['note']}; resumes from its checkpoint at generation {ckpt}"
        if entry["state"] in ("dead", "failed") and rundir.island(island).log_path.is_file():
            entry["note"] = f"{entry['note']}; log: {rundir.island(island).log_path}"
        islands.append(entry)
        if status is not None:
            statuses[island] = status
        div_points[island], origin_points[island], best_points[island] = _history_points(
            reader, island, history_points, None if status is None else status.target)
    run["genome_kind"], run["genome_size"] = _genome_size(statuses.values())
    champion = _champion(reader, statuses)
    generalisation = _generalisation(reader, champion)
    tuning = tuning_section(rundir, ids, as_mapping(manifest.get("config")), champion["island"] if champion else None)
    notes = launcher_notes + reader.notes  # the launcher's fate first, then files skipped, in reading order
    between = as_float(between_island_diversity([s.centroid for s in statuses.values()]))
    within = _mean(i["diversity"] for i in islands)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated": now,
        "host": here,
        "run_dir": str(root),
        "stale_after_s": float(stale_after),
        "run": run,
        "totals": _totals(islands),
        "islands": islands,
        "archipelago": {
            "champion": champion,
            "generalisation": generalisation,
            "between_island_diversity": between,
            "mean_diversity": within,
            "separation": between / within if between is not None and within else None,
            "lineage": _lineage(statuses, ids, origin_points, best_points),
            "mean_foreign_share": _mean(i["foreign_share"] for i in islands),
            "migrants": {k: sum(i["migration"][k] for i in islands) for k in MIGRATION_COUNTERS if k != "events"},
            "migration_matrix": migration_matrix({i: s.migration for i, s in statuses.items()}, full=full_matrix),
            "diversity_over_time": diversity_over_time(div_points),
            "optima": _optima(reader, statuses),
        },
        # A tuned island's first settings say little of what it ran: its segments are ranked instead.
        "settings": None if tuning else settings_section(islands, migration_every=run["migration"]["every"],
                                                         champion=champion["island"] if champion else None),
        "tuning": tuning,
        "notes": notes,
    }


def _history_points(reader: RunReader, island: str, points: int, target: float | None) -> tuple[
        tuple[np.ndarray, np.ndarray], lineage_curve.Series, list[tuple[float, float]]]:
    """At most `points` samples of an island's history, as arrays: (generations, diversities),
    (generations, times, origin rows) for the lineage curve, and the first sample at or above
    `target` as (time, best_ever), the one `lineage.first_reach_time` looks for. From the
    island's summary (`islands.status.summary`), else (an island of an earlier version) from
    a sample of its history's tail."""
    view = reader.summary(island)
    if view is not None:
        gen, times, best, div, rows = view.generation, view.time, view.best_ever, view.diversity, view.origins
        if len(gen) > points:  # a summary keeps at most 2 x summary.POINTS + 1: fewer asked for
            idx = view.pick(points)
            gen, times, best, div = gen[idx], times[idx], best[idx], div[idx]
            rows = rows[np.isin(rows[:, 0], idx)]
            rows = np.column_stack([np.searchsorted(idx, rows[:, 0]), rows[:, 1:]]) if len(rows) else rows
    else:
        recs = [r for r in reader.sampled_history(island, points, _DIVERSITY_KEY) if r.generation is not None]
        gen = np.array([r.generation for r in recs], dtype=np.int64)
        times, best, div = (np.array([np.nan if x is None else x for x in col], dtype=np.float64) for col in
                            zip(*[(r.time, r.best_ever, r.diversity) for r in recs])) if recs else (np.zeros(0),) * 3
        rows = np.array([(i, k, v) for i, r in enumerate(recs) for k, v in sorted(r.origins.items())],
                        dtype=np.int64).reshape(-1, 3)
    ok = ~np.isnan(div)
    hit = np.flatnonzero(~np.isnan(times) & (best >= target)) if target is not None else ()
    first = [(float(times[hit[0]]), float(best[hit[0]]))] if len(hit) else []
    return (gen[ok], div[ok]), (gen, times, rows), first


def _island_entry(island: str, status: IslandStatus | None, problem: str | None, *, now: float, here: str,
                  alive: Callable[[int, float | None], bool], stale_after: float, restarts: int,
                  failed: str | None, lease: Lease | None = None, budget: int | None = None,
                  known: Mapping[int, str] | Sequence[str] = ()) -> dict[str, Any]:
    s = status or IslandStatus()
    if problem is not None:
        state, note = "unreadable", problem
    elif status is None:
        state, note = lease_state(lease, now=now, here=here, alive=alive) or (
            "pending", "no status yet (not started, or still starting)")
    else:
        state, note = classify(status, now=now, here=here, alive=alive, stale_after=stale_after, lease=lease)
    if failed is not None and state != "finished":  # the launcher gave up on it
        state, note = "failed", "; ".join(x for x in ("the launcher gave up restarting it", failed, note) if x)
    if s.joined_at:  # its generations count from a later start than the others'
        note = "; ".join(x for x in (f"joined at gen {s.joined_at}", note) if x)
    beat, gen, total = s.heartbeat, s.generation, s.generations
    # The recorded fields come as `IslandStatus` declares them; only derived values are written here.
    return {
        "island": island,
        "state": state,
        "note": note,
        **island_entry_fields(s),
        # A finished island is done whatever generation it stopped at (a target, a stagnation limit).
        "progress": fraction(gen, total, s.evaluations, budget, finished=state == "finished"),
        "restarts": restarts,
        "effective_origins": lineage.effective_origins(s.origins) if s.origins else None,
        **_island_lineage(s.origins, known),
        "heartbeat_age_s": None if beat is None else round(max(0.0, now - beat), 3),
    }


def _island_lineage(origins: Mapping[int, int], known: Mapping[int, str] | Sequence[str]) -> dict[str, Any]:
    """An island's largest lineage and its share of the island (`lineage.island_lineage`)."""
    top, share = lineage.island_lineage(lineage.name_origins(origins, known)) if origins else (None, None)
    return {"lineage_origin": top, "lineage_share": share}


def _lineage(statuses: Mapping[str, IslandStatus], ids: Sequence[str], points: Mapping[str, lineage_curve.Series],
             bests: Mapping[str, Sequence[tuple[float, float]]]) -> dict[str, Any]:
    """The archipelago's lineage diversity: the islands' latest origin counts pooled, its curve
    (each island at its latest known origins), and whether a takeover is trouble (it began
    before the run reached its target) or convergence on a reached target."""
    counted = [s.origins for s in statuses.values() if s.origins]
    counts = lineage.name_origins(lineage.pooled(counted), ids)
    top, share = lineage.dominant(counts)
    trend = lineage_curve.over_time(list(points.values()))
    reach = lineage.first_reach_time(lineage.target_reach(statuses), statuses, bests)
    verdict = lineage.takeover_verdict(counts, len(counted), reach, trend)
    line = lineage.verdict_line(verdict)
    return {
        "effective_origins": lineage.effective_origins(counts) if counts else None,
        "islands_counted": len(counted),
        "individuals": sum(counts.values()),
        "origins": counts,
        "dominant_origin": top,
        "dominant_share": share,
        "warning": line if verdict is not None and verdict["kind"] == "before-target" else None,
        "note": line if verdict is not None and verdict["kind"] == "after-target" else None,
        "takeover": verdict,
        "over_time": trend,
    }


def _champion(reader: RunReader, statuses: Mapping[str, IslandStatus]) -> dict[str, Any] | None:
    """The better of the islands' champion (`record.champion`) and the launcher's champion file."""
    best: dict[str, Any] | None = None
    top = champion(statuses.values())
    if top is not None:
        island = next(i for i, s in statuses.items() if s is top)
        best = {"island": island, "fitness": top.best_ever, "generation": top.best_ever_generation,
                "source": "status", "genome": _genome(top.best_genome)}
    champ = reader.champion_file()
    fit = None if champ is None else as_float(champ.get("fitness"))
    if champ is not None and fit is not None and (best is None or fit > best["fitness"]):
        best = {"island": str(champ.get("island")), "fitness": fit, "generation": None,
                "source": "champion_file", "genome": _genome(champ.get("genome"))}
    return best


def _generalisation(reader: RunReader, champ: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The champion's recorded evaluation on unseen starts (`islands evaluate`), if any."""
    body = reader.evaluation()
    if body is None:
        return None
    result = Generalisation.from_body(body)
    if result is None:
        reader.notes.append("evaluation file unreadable: not an evaluation record")
        return None
    current = champ is None or (champ["island"] == result.island and champ["fitness"] == result.fitness)
    return {**result.summary(), "current": current}


def _run_section(manifest: Mapping[str, Any]) -> dict[str, Any]:
    cfg = as_mapping(manifest.get("config"))
    mig = as_mapping(cfg.get("migration"))
    planned = planned_islands(manifest)
    return {
        "run_id": as_str(manifest.get("run_id")),
        "created": as_float(manifest.get("created")),
        "problem": as_str(cfg.get("problem")),
        "dim": as_int(cfg.get("dim")),
        "genome_kind": None,  # from the islands' statuses, once read
        "genome_size": None,
        "algorithm": as_str(cfg.get("algorithm")),
        "population": as_int(cfg.get("population")),
        "generations": as_int(cfg.get("generations")),
        "max_evaluations": as_int(cfg.get("max_evaluations")),
        "evaluation_budget": as_int(cfg.get("evaluation_budget")),
        "budget_share": as_str(cfg.get("budget_share")),
        "migration": {"every": as_int(mig.get("every")), "topology": as_str(mig.get("topology")),
                      "migrants": as_int(mig.get("migrants"))},
        "planned_islands": list(planned),
    }


def _optima(reader: Any, statuses: dict[str, IslandStatus]) -> list[dict[str, Any]]:
    """The best distinct optima (`RunReader.optima`) when some island's restarts recorded basins
    (CMA-ES); none otherwise (the islands' best-evers alone are the island table). No centres:
    a genome each would make the report as large as the islands' genomes (`optima()` has them)."""
    return [{"island": b.island, "best": b.best, "radius": b.radius}
            for b in reader.optima(OPTIMA_SHOWN, statuses, basins_only=True)]


def _totals(islands: list[dict[str, Any]]) -> dict[str, Any]:
    gens = [i["generation"] for i in islands if i["generation"] is not None]
    return {
        "islands": len(islands),
        "states": count_states(islands),
        "evaluations": sum(max(0, i["evaluations"] or 0) for i in islands),
        "evals_per_sec": float(sum(i["evals_per_sec"] or 0.0 for i in islands if i["state"] == "running")),
        "generation_min": min(gens) if gens else None,
        "generation_max": max(gens) if gens else None,
        # Every island at the share it has done (a failed one at what it did, one not reporting
        # yet at 0): the share moves with the work done, never jumps when islands fail or come late.
        "progress": _mean([i["progress"] or 0.0 for i in islands]
                          if any(i["progress"] is not None for i in islands) else ()),
    }


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals else None


def problem_label(run: Mapping[str, Any]) -> str:
    """"rastrigin dim 10", "cartpole dim 25" (the genome's real length, not an unused --dim) or
    "xor NEAT 12 connections": how the header and the plot title name the task."""
    kind, size = run.get("genome_kind"), run.get("genome_size")
    if kind == "neat":
        return f"{run['problem']} NEAT" + (f" {size} connections" if size is not None else "")
    return f"{run['problem']} dim {size if size is not None else run['dim']}"


def _genome_size(statuses: Iterable[IslandStatus]) -> tuple[str | None, int | None]:
    """The kind and length of the islands' genomes, read from their best genomes (the manifest's
    dim is what was asked; a network task fixes its own weight count). The most common wins."""
    sizes: list[tuple[str, int]] = []
    for s in statuses:
        g = s.best_genome
        if isinstance(g, np.ndarray):
            sizes.append(("vector", int(g.size)))
        elif isinstance(g, Mapping) and isinstance(g.get("weight"), np.ndarray):
            sizes.append(("neat", int(g["weight"].size)))
    if not sizes:
        return None, None
    return max(set(sizes), key=sizes.count)


def _genome(g: Any) -> list[Any] | None:
    """A numeric genome as nested lists (non-finite values as null); None for other kinds."""
    if not isinstance(g, np.ndarray) or g.dtype.kind not in "biuf":
        return None
    return plain(g.astype(np.float64).tolist())
