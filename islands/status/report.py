"""The status report of a run: health, progress, diversity and migration, from its files.

`build_report(root)` reads only the run directory (through `migration_pool`) and, for islands
on this host, whether their recorded pid is still alive; it returns a JSON-ready dict whose
schema is `islands.status.schema.SCHEMA`. The islands' files are decoded into the records of
`islands.status.record`; the measures (health, diversity, flows) are pure functions in
`islands.status.metrics`; this module only reads and assembles.

Speed: the report must stay well under a second for 128 islands with long histories, so it
never loads checkpoints (only lists them) and never parses a whole history: it splits the raw
bytes into lines (C speed), keeps the lines that carry `diversity`, and decodes an evenly
spaced sample of them. Nothing here imports torch.
"""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from islands.runs import planned_islands
from islands.status import lineage
from islands.status.settings import settings_section
from islands import scheduler_state as slurm
from islands.status.liveness import pid_alive
from islands.status.metrics import (STALE_AFTER_S, between_island_diversity, classify, count_states,
                                    diversity_over_time, island_order, lease_state, migration_matrix)
from islands.status.record import (MIGRATION_COUNTERS, HistoryLine, IslandStatus, as_float, as_int, as_mapping,
                                   as_str, champion)
from islands.status.schema import SCHEMA_VERSION
from migration_pool import format as fmt
from migration_pool.errors import FormatError, RunDirError
from migration_pool.lease import Lease
from migration_pool.rundir import RunDir

HISTORY_POINTS = 100  # diversity samples decoded per island (2 per bin of diversity_over_time)
_DIVERSITY_KEY = b'"diversity"'


# -- reading the run ----------------------------------------------------------------------
def sample_records(lines: Sequence[bytes], points: int, key: bytes | None = None) -> list[HistoryLine]:
    """Decode at most `points` evenly spaced lines (those containing `key`), always the last."""
    if key is not None:
        lines = [ln for ln in lines if key in ln]
    if points <= 0 or not lines:
        return []
    if len(lines) > points:
        idx = np.unique(np.linspace(0, len(lines) - 1, points).round().astype(np.int64))
        lines = [lines[i] for i in idx]
    out = []
    for ln in lines:
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(HistoryLine.from_body(rec))
    return out


def launcher_info(
    rundir: RunDir, run_id: str | None = None, alive: Callable[[int, float | None], bool] = pid_alive,
) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Restarts per island, failed islands (with the launcher's reason) and run-level notes.

    The launcher writes {"run_id", "pid", "host", "started", "state", "islands": {id:
    {"restarts": n, "state": ..., "reason": ...}}} through `RunDir.write_launcher_state`; a
    state from another run in the same directory is ignored. No state: nothing recorded.
    """
    try:
        state = rundir.read_launcher_state()
    except FileNotFoundError:
        return {}, {}, []
    except (FormatError, OSError) as e:
        return {}, {}, [f"launcher state unreadable, restarts unknown: {e}"]
    restarts: dict[str, int] = {}
    failed: dict[str, str] = {}
    if not isinstance(state, Mapping) or state.get("run_id") not in (None, run_id):
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


def open_rundir(root: str | Path) -> tuple[RunDir, dict[str, Any]]:
    """The run directory and its manifest; RunDirError with a plain message if it is no run."""
    rundir = RunDir(root)
    try:
        manifest = rundir.read_manifest()  # FormatError if corrupt: shown as one line by the CLI
    except NotADirectoryError:
        raise RunDirError(f"{root} is not a directory") from None
    if manifest is None:
        if not Path(root).exists():
            raise RunDirError(f"run directory {root} does not exist")
        raise RunDirError(f"{root} is not a run directory (no manifest.isld; start one with `islands launch` or `islands evolve`)")
    return rundir, manifest


def build_report(
    root: str | Path,
    *,
    now: float | None = None,
    stale_after: float = STALE_AFTER_S,
    history_points: int = HISTORY_POINTS,
    alive: Callable[[int, float | None], bool] = pid_alive,
) -> dict[str, Any]:
    """The report of the run at `root` (see `islands.status.schema.SCHEMA`).

    Raises:
        RunDirError: `root` does not exist or holds no run.
        FormatError: the manifest is corrupt (per-island problems are notes, not errors).
    """
    rundir, manifest = open_rundir(root)
    now = time.time() if now is None else now
    here = socket.gethostname()
    run = _run_section(manifest)
    run_id = run["run_id"]
    planned = {i for i in run["planned_islands"] if fmt.ISLAND_ID_RE.match(i)}
    ids = sorted(set(rundir.island_ids()) | planned, key=island_order)
    restarts, failed, notes = launcher_info(rundir, run_id, alive)
    planned_overrides = as_mapping(manifest.get("overrides"))
    islands: list[dict[str, Any]] = []
    scheduler = slurm.island_states(rundir)  # None: SLURM cannot be asked; {}: nothing submitted
    statuses: dict[str, IslandStatus] = {}
    div_points = {}
    origin_points: dict[str, list[tuple[int, Mapping[int, int]]]] = {}
    for island in ids:
        status, problem = _read_status(rundir, island, run_id)
        entry = _island_entry(island, status, problem, now=now, here=here, alive=alive,
                              stale_after=stale_after, restarts=restarts.get(island, 0),
                              failed=failed.get(island), lease=_read_lease(rundir, island))
        if not entry["overrides"]:  # not started yet, or an unreadable status: the manifest knows
            entry["overrides"] = {str(k): _plain(v) for k, v in as_mapping(planned_overrides.get(island)).items()}
        slurm.merge_into_entry(entry, (scheduler or {}).get(island))
        entry["checkpoint_generation"] = ckpt = _checkpoint_generation(rundir, island)
        if entry["state"] in ("dead", "stale", "stopped", "failed") and ckpt is not None:
            entry["note"] = f"{entry['note']}; resumes from its checkpoint at generation {ckpt}"
        if entry["state"] in ("dead", "failed") and rundir.log_path(island).is_file():
            entry["note"] = f"{entry['note']}; log: {rundir.log_path(island)}"
        islands.append(entry)
        if status is not None:
            statuses[island] = status
        try:
            recs = sample_records(rundir.history_lines(island), history_points, _DIVERSITY_KEY)
        except (FormatError, OSError) as e:
            notes.append(f"{island}: history unreadable: {e}")
            recs = []
        gens = [(r.generation, r.diversity) for r in recs if r.generation is not None and r.diversity is not None]
        origin_points[island] = [(r.generation, r.origins) for r in recs if r.generation is not None and r.origins]
        div_points[island] = (np.array([g for g, _ in gens], dtype=np.int64), np.array([d for _, d in gens], dtype=np.float64))
    run["genome_kind"], run["genome_size"] = _genome_size(statuses.values())
    champion, note = _champion(rundir, statuses, run_id)
    if note:
        notes.append(note)
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
            "generalisation": _generalisation(rundir, run_id, champion, notes),
            "between_island_diversity": between,
            "mean_diversity": within,
            "separation": between / within if between is not None and within else None,
            "lineage": _lineage(statuses, ids, origin_points),
            "mean_foreign_share": _mean(i["foreign_share"] for i in islands),
            "migrants": {k: sum(i["migration"][k] for i in islands) for k in MIGRATION_COUNTERS if k != "events"},
            "migration_matrix": migration_matrix({i: s.migration for i, s in statuses.items()}),
            "diversity_over_time": diversity_over_time(div_points),
        },
        "settings": settings_section(islands, migration_every=run["migration"]["every"],
                                     champion=champion["island"] if champion else None),
        "notes": notes,
    }


def _read_status(rundir: RunDir, island: str, run_id: str | None) -> tuple[IslandStatus | None, str | None]:
    try:
        body = rundir.read_status(island)
    except FormatError as e:
        return None, f"status file corrupt: {e}"
    except OSError as e:
        return None, f"status file unreadable: {e.strerror or e}"
    if body is None:
        return None, None
    status = IslandStatus.from_body(body)
    if status.island not in (None, island):
        return None, f"status file names another island ({status.island!r})"
    if run_id is not None and status.run_id not in (None, run_id):
        return None, f"status file is from another run ({status.run_id!r})"
    return status, None


def _read_lease(rundir: RunDir, island: str) -> Lease | None:
    """The island's claim lease; None if it has none or it cannot be read (it is advice only)."""
    try:
        return rundir.read_lease(island)
    except (FormatError, OSError):
        return None


def _island_entry(island: str, status: IslandStatus | None, problem: str | None, *, now: float, here: str,
                  alive: Callable[[int, float | None], bool], stale_after: float, restarts: int,
                  failed: str | None, lease: Lease | None = None) -> dict[str, Any]:
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
    beat, gen, total = s.heartbeat, s.generation, s.generations
    return {
        "island": island,
        "state": state,
        "note": note,
        "reason": s.reason,
        "host": s.host,
        "pid": s.pid,
        "device": s.device,
        "generation": gen,
        "generations": total,
        # A finished island is done whatever generation it stopped at (a target, a stagnation limit).
        "progress": 1.0 if state == "finished" else (min(1.0, gen / total) if gen is not None and total else None),
        "best": s.best,
        "mean": s.mean,
        "best_ever": s.best_ever,
        "best_ever_generation": s.best_ever_generation,
        "evaluations": s.evaluations,
        "evals_per_sec": s.evals_per_sec,
        "restarts": restarts,
        "migration": {k: getattr(s.migration, k) for k in MIGRATION_COUNTERS},
        "diversity": s.diversity,
        "foreign_share": s.foreign_share,
        "effective_origins": lineage.effective_origins(s.origins) if s.origins else None,
        "overrides": {k: _plain(v) for k, v in s.overrides.items()},
        "own_gain": s.own_gain,
        "adopted_gain": s.adopted_gain,
        "own_log_gain": s.own_log_gain,
        "adopted_log_gain": s.adopted_log_gain,
        "own_improvements": s.own_improvements,
        "adopted_improvements": s.adopted_improvements,
        "started": s.started,
        "heartbeat_age_s": None if beat is None else round(max(0.0, now - beat), 3),
    }


def _lineage(statuses: Mapping[str, IslandStatus], ids: Sequence[str],
             points: Mapping[str, Sequence[tuple[int, Mapping[int, int]]]]) -> dict[str, Any]:
    """The archipelago's lineage diversity: the islands' latest origin counts pooled."""
    counted = [s.origins for s in statuses.values() if s.origins]
    counts = lineage.name_origins(lineage.pooled(counted), ids)
    top, share = lineage.dominant(counts)
    return {
        "effective_origins": lineage.effective_origins(counts) if counts else None,
        "islands_counted": len(counted),
        "individuals": sum(counts.values()),
        "origins": counts,
        "dominant_origin": top,
        "dominant_share": share,
        "warning": lineage.takeover_warning(counts, len(counted)),
        "over_time": lineage.over_time(points),
    }


def _checkpoint_generation(rundir: RunDir, island: str) -> int | None:
    try:
        paths = rundir.checkpoint_paths(island)
    except OSError:
        return None
    return int(paths[0].name.split("-")[1].split(".")[0]) if paths else None


def _champion(rundir: RunDir, statuses: Mapping[str, IslandStatus], run_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The better of the islands' champion (`record.champion`) and the launcher's champion file."""
    best: dict[str, Any] | None = None
    top = champion(statuses.values())
    if top is not None:
        island = next(i for i, s in statuses.items() if s is top)
        best = {"island": island, "fitness": top.best_ever, "generation": top.best_ever_generation,
                "source": "status", "genome": _genome(top.best_genome)}
    note = None
    try:
        champ = rundir.read_champion()
    except FormatError as e:
        champ, note = None, f"champion file unreadable: {e}"
    if isinstance(champ, Mapping) and champ.get("run_id") in (None, run_id):
        fit = as_float(champ.get("fitness"))
        if fit is not None and (best is None or fit > best["fitness"]):
            best = {"island": str(champ.get("island")), "fitness": fit, "generation": None,
                    "source": "champion_file", "genome": _genome(champ.get("genome"))}
    return best, note


def _generalisation(rundir: RunDir, run_id: str | None, champ: Mapping[str, Any] | None,
                    notes: list[str]) -> dict[str, Any] | None:
    """The champion's recorded evaluation on unseen starts (`islands evaluate`), if any."""
    from islands.evaluate import Generalisation

    try:
        body = rundir.read_evaluation()
    except (FormatError, OSError) as e:
        notes.append(f"evaluation file unreadable: {e}")
        return None
    if body is None or body.get("run_id") != run_id:
        return None
    result = Generalisation.from_body(body)
    if result is None:
        notes.append("evaluation file unreadable: not an evaluation record")
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
        "migration": {"every": as_int(mig.get("every")), "topology": as_str(mig.get("topology")),
                      "migrants": as_int(mig.get("migrants"))},
        "planned_islands": list(planned),
    }


def _totals(islands: list[dict[str, Any]]) -> dict[str, Any]:
    gens = [i["generation"] for i in islands if i["generation"] is not None]
    return {
        "islands": len(islands),
        "states": count_states(islands),
        "evaluations": sum(max(0, i["evaluations"] or 0) for i in islands),
        "evals_per_sec": float(sum(i["evals_per_sec"] or 0.0 for i in islands if i["state"] == "running")),
        "generation_min": min(gens) if gens else None,
        "generation_max": max(gens) if gens else None,
        "progress": _mean(i["progress"] for i in islands),
    }


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals else None


def _plain(v: Any) -> Any:
    """A JSON-safe copy of an override value (numbers, strings, bools, lists)."""
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return as_float(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    return str(v)


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
    return _plain(g.astype(np.float64).tolist())
