"""The archipelago's lineage curve from arrays: `lineage.over_time` for thousands of islands.

`lineage.over_time` (pure Python, for the launcher's summary) pools one origin map per island
per bin: with 4,096 islands that is 200,000 small maps merged. This computes the same curve
(same bins, labels, islands and carried counts; the figures equal up to float rounding) from
each island's samples as arrays, with the pooled counts of a bin kept as a running sum: a
sample adds its island's new counts and takes back its island's previous ones, so the cost is
the number of origin rows, not bins x islands.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

# One island's samples: generations (int64, increasing), Unix times (float64, NaN: not
# recorded) and origin rows (int64 (m, 3): sample index, origin, individuals > 0).
Series = tuple[np.ndarray, np.ndarray, np.ndarray]


def over_time(series: Sequence[Series], bins: int = 50) -> list[dict[str, Any]]:
    """`lineage.over_time` of the islands' samples (only samples with origins count)."""
    kept = []
    for gens, times, rows in series:
        has = np.zeros(len(gens), dtype=bool)
        has[rows[:, 0]] = True
        has &= gens >= 0
        if has.any():
            kept.append((gens, times, rows, has))
    if not kept:
        return []
    last = max(int(g[h].max()) for g, _, _, h in kept)
    width = max(1, math.ceil((last + 1) / max(1, bins)))
    nbins = last // width + 1
    origin_ids = np.unique(np.concatenate([r[:, 1] for _, _, r, _ in kept]))
    delta = np.zeros((nbins, len(origin_ids)), dtype=np.int64)
    fresh = np.zeros(nbins, dtype=np.int64)
    gen_sum = np.zeros(nbins, dtype=np.int64)
    time_max = np.full(nbins, -np.inf)
    first_bin = np.zeros(nbins, dtype=np.int64)
    for gens, times, rows, has in kept:
        order = np.flatnonzero(has)
        order = order[np.argsort(gens[order], kind="stable")]
        b = gens[order] // width
        latest = order[np.r_[b[1:] != b[:-1], True]]  # each bin's latest sample of this island
        lb = gens[latest] // width
        fresh[lb] += 1
        gen_sum[lb] += gens[latest]
        t = times[latest]
        ok = ~np.isnan(t)
        np.maximum.at(time_max, lb[ok], t[ok])
        first_bin[lb[0]] += 1
        pos = np.full(len(gens), -1, dtype=np.int64)
        pos[latest] = np.arange(len(latest))
        mine = rows[pos[rows[:, 0]] >= 0]
        k = pos[mine[:, 0]]
        col = np.searchsorted(origin_ids, mine[:, 1])
        np.add.at(delta, (lb[k], col), mine[:, 2])  # a sample's counts enter at its bin
        later = k + 1 < len(latest)  # ... and leave at the island's next sample's bin
        np.add.at(delta, (lb[k[later] + 1], col[later]), -mine[later, 2])
    pooled = np.cumsum(delta, axis=0)
    known = np.cumsum(first_bin)
    out = []
    for b in np.flatnonzero(fresh).tolist():
        counts = pooled[b][pooled[b] > 0].astype(np.float64)
        total = counts.sum()
        p = counts / total if total > 0 else counts
        out.append({"generation": round(int(gen_sum[b]) / int(fresh[b])),
                    "time": float(time_max[b]) if np.isfinite(time_max[b]) else None,
                    "effective_origins": float(math.exp(-(p * np.log(p)).sum())) if total > 0 else 0.0,
                    "dominant_share": float(counts.max() / total) if total > 0 else None,
                    "islands": int(known[b]), "carried": int(known[b] - fresh[b])})
    return out
