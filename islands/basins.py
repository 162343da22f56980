"""Basins the islands' restarts found, shared through the run directory: `basins.isld`.

A CMA-ES island keeps the basins its runs ended in (`islands.algorithms.cmaes_restarts`: centre,
radius, best fitness) so a restart starts away from them. Shared, they let every island start
away from the basins any island found, and they are the run's output of distinct optima
(`open_run(r).optima()`, `islands status`). This module owns the record: its body (`to_body`),
its tolerant decoder (`from_body`) and the merge into k distinct optima (`distinct`). No torch:
the report reads it.

A body: `island`, `run_id`, `dim`, `centres` float64 [k, dim] and `radius` float64 [k] (genome
coordinates; the restarts measure in box widths and convert by the root mean square width),
`best` float64 [k]. Other islands' records are untrusted like migrants: bounded in bytes, at most the MAX_BASINS best rows
are read, rows that are not finite or have a radius <= 0, and records of another run or
dimension, are dropped; the algorithm clips centres to its box and caps radii as its own. What a forged record can do is make restarts start elsewhere; it never ends a run,
so at worst it costs a restart's choice of place, never the optimum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

MAX_BASINS = 64  # rows read from one island's record
SAME = 1e-6  # relative and absolute tolerance at which two points are one optimum


@dataclass(frozen=True)
class Basin:
    """One optimum found: where, how far its basin reaches (genome coordinates) and the best
    fitness found in it, with the island that found it (radius 0: an island's best-ever)."""

    centre: np.ndarray
    radius: float
    best: float
    island: str

    def to_dict(self) -> dict[str, Any]:
        return {"island": self.island, "best": self.best, "radius": self.radius,
                "centre": [float(x) for x in self.centre]}


def to_body(island: str, run_id: str, rows: np.ndarray) -> dict[str, Any]:
    """A record of `rows` [k, dim + 2] (centre in genome coordinates, radius, best)."""
    rows = np.asarray(rows, dtype=np.float64)[:MAX_BASINS]
    dim = rows.shape[1] - 2
    return {"island": island, "run_id": run_id, "dim": dim, "centres": np.ascontiguousarray(rows[:, :dim]),
            "radius": np.ascontiguousarray(rows[:, dim]), "best": np.ascontiguousarray(rows[:, dim + 1])}


def from_body(body: Mapping[str, Any] | None, dim: int, run_id: str | None = None) -> np.ndarray:
    """The valid rows [k, dim + 2] of another island's record (none for another run's, another
    dimension's or a malformed one)."""
    empty = np.zeros((0, dim + 2))
    if not body or (run_id is not None and body.get("run_id") != run_id) or body.get("dim") != dim:
        return empty
    centres, radius, best = (body.get(k) for k in ("centres", "radius", "best"))
    if not all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in (centres, radius, best)):
        return empty
    if centres.ndim != 2 or centres.shape[1] != dim or radius.shape != (centres.shape[0],) or best.shape != radius.shape:
        return empty
    rows = np.concatenate([centres, radius[:, None], best[:, None]], axis=1)
    rows = rows[np.isfinite(rows).all(axis=1) & (rows[:, dim] > 0)]
    return rows[np.argsort(-rows[:, dim + 1], kind="stable")][:MAX_BASINS]  # the file is bounded: sorting is cheap


def distinct(records: Mapping[str, np.ndarray], k: int = 10) -> list[Basin]:
    """The k best distinct optima of every island's rows: two whose centres lie within the
    larger of their radii (or agree to SAME, for best-ever points of radius 0) are the same
    optimum; the better one stands for it and takes the larger radius.

    One pass, best first, compares each row with the at most 4k kept so far (a report of
    thousands of islands costs thousands of small comparisons, not their square); a last pass
    merges kept optima that a radius taken over later now covers, and the k best remain.
    """
    rows = [(island, r) for island, rs in records.items() for r in rs]
    kept: list[Basin] = []
    for island, r in sorted(rows, key=lambda t: -float(t[1][-1])):
        centre, radius = r[:-2], float(r[-2])
        j = _same(kept, centre, radius)
        if j is not None:
            a = kept[j]
            kept[j] = Basin(a.centre, max(a.radius, radius), a.best, a.island)
        elif len(kept) < 4 * k:  # room for kept ones the last pass merges
            kept.append(Basin(centre, radius, float(r[-1]), island))
    final: list[Basin] = []
    for b in kept:
        j = _same(final, b.centre, b.radius)
        if j is None:
            final.append(b)
        else:
            a = final[j]
            final[j] = Basin(a.centre, max(a.radius, b.radius), a.best, a.island)
    return final[:k]


def _same(kept: Sequence[Basin], centre: np.ndarray, radius: float) -> int | None:
    """The first of `kept` that `centre` (with `radius`) is the same optimum as, or None."""
    alike = [i for i, b in enumerate(kept) if b.centre.shape == centre.shape]  # islands of another length differ
    if not alike:
        return None
    centres = np.stack([kept[i].centre for i in alike])
    reach = np.maximum(np.array([kept[i].radius for i in alike]), radius)
    same = (np.linalg.norm(centres - centre, axis=1) <= reach) | np.isclose(centres, centre, SAME, SAME).all(axis=1)
    hits = np.flatnonzero(same)
    return alike[int(hits[0])] if hits.size else None


def merged(rows: Sequence[np.ndarray], dim: int) -> np.ndarray:
    """Rows of several records as one array [k, dim + 2], best first."""
    stack = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1, dim + 2) for r in rows]) if rows else \
        np.zeros((0, dim + 2))
    return stack[np.argsort(-stack[:, -1], kind="stable")]
