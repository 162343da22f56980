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
    gens_l, times_l, rows_l, isl_l = [], [], [], []
    offset = 0
    for n, (gens, times, rows) in enumerate(series):  # all islands' samples as one set of arrays
        if not len(rows):
            continue
        gens_l.append(gens)
        times_l.append(times)
        rows_l.append(rows + np.array([offset, 0, 0], dtype=np.int64))
        isl_l.append(np.full(len(gens), n, dtype=np.int64))
        offset += len(gens)
    if not rows_l:
        return []
    gens, times, rows, isl = (np.concatenate(a) for a in (gens_l, times_l, rows_l, isl_l))
    has = np.zeros(len(gens), dtype=bool)
    has[rows[:, 0]] = True
    has &= gens >= 0
    if not has.any():
        return []
    last = int(gens[has].max())
    width = max(1, math.ceil((last + 1) / max(1, bins)))
    order = np.flatnonzero(has)
    order = order[np.lexsort((gens[order], isl[order]))]  # by island, then generation (stable)
    b, who = gens[order] // width, isl[order]
    # each island's latest sample in each bin: the next sample is another island's or bin's
    latest = order[np.r_[(b[1:] != b[:-1]) | (who[1:] != who[:-1]), True]]
    lb, lw = gens[latest] // width, isl[latest]
    nbins = last // width + 1
    fresh = np.bincount(lb, minlength=nbins)
    gen_sum = np.bincount(lb, weights=gens[latest], minlength=nbins)
    time_max = np.full(nbins, -np.inf)
    ok = ~np.isnan(times[latest])
    np.maximum.at(time_max, lb[ok], times[latest][ok])
    first = np.r_[True, lw[1:] != lw[:-1]]  # an island's first sample: it is known from its bin on
    known = np.cumsum(np.bincount(lb[first], minlength=nbins))
    # The pooled counts of a bin as a running sum: a sample's counts enter at its bin and leave
    # at the bin of its island's next sample.
    pos = np.full(len(gens), -1, dtype=np.int64)
    pos[latest] = np.arange(len(latest))
    mine = rows[pos[rows[:, 0]] >= 0]
    k = pos[mine[:, 0]]
    origin_ids, col = np.unique(mine[:, 1], return_inverse=True)
    delta = np.zeros((nbins, len(origin_ids)), dtype=np.int64)
    np.add.at(delta, (lb[k], col), mine[:, 2])
    later = (k + 1 < len(latest))
    later[later] = lw[k[later] + 1] == lw[k[later]]
    np.add.at(delta, (lb[k[later] + 1], col[later]), -mine[later, 2])
    pooled = np.cumsum(delta, axis=0)
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
