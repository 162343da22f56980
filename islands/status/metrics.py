"""Pure measures of a run for the status report: island health, diversity, migration flows.

Records and plain data in, plain data out (numpy arrays at most), so each is tested without a
run; `classify` is given the pid check (`islands.status.liveness.pid_alive`) as a parameter.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from islands.status.record import IslandStatus, Migration
from islands.status.schema import STATES
from migration_pool.lease import Lease

STALE_AFTER_S = 60.0  # default heartbeat age beyond which a silent island is "stale"
# An island of another host whose heartbeats came often is stale sooner: after this many of its
# own mean intervals between status writes, but never sooner than STALE_MIN_S.
STALE_INTERVALS = 20
STALE_MIN_S = 30.0
DIVERSITY_BINS = 50


def classify(
    status: IslandStatus,
    *,
    now: float,
    here: str,
    alive: Callable[[int, float | None], bool],
    stale_after: float = STALE_AFTER_S,
    lease: Lease | None = None,
) -> tuple[str, str | None]:
    """The state of an island from its (readable) status, and a note saying why if not plain.

    Heartbeats are wall-clock times of the writer, so across hosts clock skew adds to the
    age; a pid is checked only when the status was written on this host. The island's claim
    `lease` (`migration_pool.lease`) tells of a newer process that has taken the island over
    (a requeued job on another node) before it wrote a status: on another host it counts as
    running while its lease is fresh, never by its pid.
    """
    newer = lease_state(lease, now=now, here=here, alive=alive, after=status.started)
    if newer is not None:
        return newer
    phase = status.state
    if phase == "finished":
        return "finished", None
    if phase == "stopped":
        return "stopped", "stopped on request"
    if phase != "running":
        return "unreadable", f"status has an unknown state {phase!r}"
    beat = status.heartbeat
    if lease is not None and (lease.host, lease.pid) == (status.host, status.pid) and beat is not None:
        beat = max(beat, lease.heartbeat)  # the same process: its latest sign of life
    age = None if beat is None else max(0.0, now - beat)
    silent = age is None or age > stale_after
    pid = status.pid
    if status.host == here and pid is not None:
        if not alive(pid, status.started):
            return "dead", f"process {pid} is gone without finishing (killed or crashed)"
        if silent:
            return "stale", f"process {pid} is alive but silent for {_age(age)} (hung?)"
        return "running", None
    if age is None or age > elsewhere_limit(status, stale_after):
        return "stale", f"no heartbeat for {_age(age)} from host {status.host!r}"
    return "running", None


def elsewhere_limit(status: IslandStatus, stale_after: float) -> float:
    """How long an island of another host may be silent before it is stale: STALE_INTERVALS of
    its own mean interval between status writes (its process's writes `beat` over the time since
    it `started`), at least STALE_MIN_S, at most `stale_after`. A crashed host's islands, which
    wrote every second, are stale after 30 s, not 60 (a live island's pauses: a sync-migration
    wait, a checkpoint on a slow filesystem, rarely last that long); a slow island's long
    generations still count as life. On this host the pid decides, so `stale_after` alone applies there."""
    beats, started, beat = status.beat, status.started, status.heartbeat
    if beats is None or beats < 5 or started is None or beat is None or beat <= started:
        return stale_after
    return min(stale_after, max(STALE_MIN_S, STALE_INTERVALS * (beat - started) / beats))


def lease_state(
    lease: Lease | None,
    *,
    now: float,
    here: str,
    alive: Callable[[int, float | None], bool],
    after: float | None = None,
) -> tuple[str, str] | None:
    """("running", note) when `lease` names a live holder that started after `after` (the
    status writer's start; None: there is no status); None when the lease tells nothing.

    Another host's holder is alive while its lease is fresh (heartbeats, never pids); a holder
    on this host while its pid is (a lease outlives a killed holder, the flock does not).
    """
    if lease is None or (after is not None and lease.started <= after):
        return None
    if lease.host != here:
        if not lease.fresh(now):
            return None
    elif not alive(lease.pid, lease.started):
        return None
    return "running", f"running on {lease.describe(now)}; no status from it yet"


DISTANCE_BLOCK = 512  # centroid rows per block of the pairwise distances


def between_island_diversity(centroids: Sequence[Any]) -> float | None:
    """Mean pairwise distance of normalised centroids / sqrt(dim), in [0, 1]; None if < 2.

    Centroids whose length differs from the most common one are ignored (a run mixing genome
    shapes has no common space to measure in).
    """
    arrays = [np.asarray(c, dtype=np.float64).ravel() for c in centroids if c is not None]
    arrays = [a for a in arrays if a.size and np.all(np.isfinite(a))]
    if len(arrays) < 2:
        return None
    sizes = [a.size for a in arrays]
    dim = max(set(sizes), key=sizes.count)
    x = np.stack([a for a in arrays if a.size == dim])
    if len(x) < 2:
        return None
    # Gram form, a block of rows at a time against the rows after it (each pair once): memory
    # O(block x n), not O(n^2 * dim) as a broadcast difference would need, and no index arrays
    # of n^2 / 2 pairs (4,096 islands: 8 million).
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    total = 0.0
    for start in range(0, n, DISTANCE_BLOCK):
        stop = min(start + DISTANCE_BLOCK, n)
        d2 = x[start:stop] @ x[start:].T  # in place from here: one block-sized array, no temporaries
        d2 *= -2.0
        d2 += sq[None, start:]
        d2 += sq[start:stop, None]
        np.maximum(d2, 0.0, out=d2)
        d2[np.tril_indices(stop - start)] = 0.0  # itself, and the block's pairs below the diagonal (counted above)
        total += float(np.sqrt(d2, out=d2).sum())
    return total / (n * (n - 1) / 2) / math.sqrt(dim)


MATRIX_FLOWS = 8192  # flows the report lists, largest first: two per island of a 4,096-island ring


def migration_matrix(counters: Mapping[str, Migration], full: bool = False,
                     max_flows: int = MATRIX_FLOWS) -> dict[str, Any]:
    """Who received from whom, from each island's `received_from` counters.

    Receivers are the islands given, sources every island seen as receiver or source. Sparse:
    `flows`, the non-zero [receiver, source, migrants], largest first (then in island order),
    at most `max_flows` of them (`flows_total` counts them all, so a cut list says so). With
    `full`, also the dense `counts[r][s]` (N x N: megabytes for thousands of islands).
    """
    receivers = sorted(counters, key=island_order)
    sources = set(receivers)
    for m in counters.values():
        sources.update(m.received_from)
    cols = sorted(sources, key=island_order)
    rank = {s: i for i, s in enumerate(cols)}
    flows = [(-c, rank[r], rank[s], r, s, c) for r in receivers
             for s, c in counters[r].received_from.items() if c > 0]
    flows.sort()
    out: dict[str, Any] = {"receivers": receivers, "sources": cols,
                           "flows": [[r, s, c] for *_, r, s, c in flows[:max(0, max_flows)]],
                           "flows_total": len(flows)}
    if full:
        out["counts"] = [[counters[r].received_from.get(s, 0) for s in cols] for r in receivers]
    return out


def diversity_over_time(points: Mapping[str, tuple[np.ndarray, np.ndarray]], bins: int = DIVERSITY_BINS) -> list[dict[str, Any]]:
    """Within-island diversity binned by generation: mean, min and max over islands per bin.

    `points` maps an island to (generations, diversities). Each island contributes the mean
    of its own samples in a bin, so an island that reports often does not outweigh others;
    a bin is labelled with the mean generation of its samples.
    """
    series = [(np.asarray(g, dtype=np.int64), np.asarray(d, dtype=np.float64)) for g, d in points.values()]
    series = [(g[ok], d[ok]) for g, d in series if (ok := np.isfinite(d) & (g >= 0)).any()]
    if not series:
        return []
    last = max(int(g.max()) for g, _ in series)
    width = max(1, math.ceil((last + 1) / max(1, bins)))
    n = last // width + 1
    div, gen = np.full((len(series), n), np.nan), np.full((len(series), n), np.nan)
    for i, (g, d) in enumerate(series):
        cnt = np.bincount(g // width, minlength=n)
        has = cnt > 0
        div[i, has] = np.bincount(g // width, weights=d, minlength=n)[has] / cnt[has]
        gen[i, has] = np.bincount(g // width, weights=g.astype(np.float64), minlength=n)[has] / cnt[has]
    out = []
    for j in range(n):
        col = np.isfinite(div[:, j])
        if col.any():
            d = div[col, j]
            out.append({"generation": int(round(float(gen[col, j].mean()))), "mean": float(d.mean()),
                        "min": float(d.min()), "max": float(d.max()), "islands": int(col.sum())})
    return out


def count_states(islands: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in STATES}
    for isl in islands:
        counts[isl["state"]] += 1
    return {s: n for s, n in counts.items() if n}


def island_order(island: str) -> tuple[int, str]:
    """Sort key: island-2 before island-10; odd names last."""
    tail = island.rsplit("-", 1)[-1]
    return (int(tail), island) if tail.isdigit() else (1 << 62, island)


def _age(age: float | None) -> str:
    return "an unknown time" if age is None else f"{age:.0f} s"
