"""The tuners' decisions as pure functions of what the island read (no files, no clock).

Asynchronous successive halving (Li et al., ASHA): a segment reaching a rung carries on if it is
in the top 1/eta of the segments that reached that rung so far (the first to arrive always
does), else its island restarts with new settings. Population-based training (Jaderberg et al.):
an island ranked in the bottom fraction copies an island of the top fraction, then explores.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np


def survives_rung(own: float, others: Sequence[float], reduction: int) -> bool:
    """Whether a segment with best `own` at a rung stays: fewer than max(1, n // eta) of the n
    segments at that rung (itself included) are strictly better."""
    n = len(others) + 1
    better = sum(1 for x in others if x > own)
    return better < max(1, n // reduction)


def pbt_donor(own: str, scores: Mapping[str, float], fraction: float, rng: np.random.Generator) -> str | None:
    """The island `own` should copy, or None to carry on: `own` in the bottom k of the ranking
    (k = round(n * fraction), at least 1, at most n // 2) copies one of the top k at random.
    Unknown scores (-inf) rank last; ties are broken by island id so every island sees one order."""
    if own not in scores or len(scores) < 2:
        return None
    order = sorted(scores, key=lambda i: (-scores[i], i))
    n = len(order)
    k = max(1, min(n // 2, round(n * fraction)))
    if order.index(own) < n - k:
        return None
    top = [i for i in order[:k] if math.isfinite(scores[i]) and scores[i] > scores[own]]
    return top[int(rng.integers(len(top)))] if top else None
