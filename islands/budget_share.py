"""Sharing one evaluation budget among islands by the progress each makes per evaluation.

A run's budget (`--max-evaluations`) split evenly gives an island whose algorithm is stuck
(a CMA-ES between restarts on a separable problem, a GA on an ill-conditioned one) as many
evaluations as the one that is improving, and an island with a large population spends its
share fastest. Sharing by progress gives every island a part of the total in proportion to
its weight: its recent improvement of best-ever fitness per evaluation, measured in orders of
magnitude (decades) so a bad start's large absolute gains do not buy budget, relative to the
best island's, and never below FLOOR (a stalled island keeps a part: its restart may be the
one that finds the basin). Weights are measured as the islands run, so the parts move.

Parts of the whole total bind too late: on a unimodal problem a CMA-ES island reaches the
optimum long before a GA island has spent its weighted part of the total, so the slow islands
spent as much as the fast one while it worked (COCO's ellipsoid at D=10, islands cmaes, de,
ga, cmaes: a median of 34.1k evaluations to 1e-8 over 5 instances; pycma 4.3k). So an island also keeps a pace (`pace`):
it may have spent at most its weight's share of what any island of larger weight spent for
its weight, GROWTH ahead; the island no other outweighs is never held back, and islands of
exactly equal weight (a homogeneous archipelago where nobody improves faster) never wait for
each other. Paced so, the same runs need 15.5k. The total, less what ended islands
spent, is shared among the live islands by their weights now (`allowances`); an island past
its allowance or its pace waits (in one process: is not stepped; as a process: pauses) until
its weight rises, the better islands spend, or an island ends and leaves it budget; the run
ends when the total is spent. A FLOOR island runs at that share of the best one's pace, which
is why FLOOR is not smaller: a CMA-ES island in a large-population restart has not yet beaten
its best-ever, and on Weierstrass-like functions those restarts are how the optimum is found.

Pure functions and a small meter, no torch and no files: the island loop (`islands.budget_wait`)
and the in-process benchmark archipelago (`scripts/quality_runners.py`) apply the same rule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

FLOOR = 0.3  # the least weight of an island that is not improving, relative to the best one
GROWTH = 0.1  # an island's pace may run this share ahead of its weight's share of a better one's
MIN_RELEASE = 0.002  # and at least this share of the run's total ahead (the first generations)
LOG_FLOOR = 1e-12  # f(x) counted as reaching this when an improvement reaches the optimum 0 exactly


def log_gain(before: float, after: float) -> float:
    """Orders of magnitude of f(x) = -fitness gained from `before` to `after` (fitness <= 0);
    0.0 once fitness is positive (no minimisation scale to measure on). The island's own and
    adopted log gains (docs/DESIGN.md, "Own gain") are counted with it."""
    if not before < 0 or after > 0:
        return 0.0
    # Both ends floored: past the floor an improvement gains nothing rather than a negative amount.
    return math.log10(max(-before, LOG_FLOOR) / max(-after, LOG_FLOOR))


def decades(before: float, after: float) -> float:
    """Orders of magnitude gained from fitness `before` to `after`, whatever the sign.

    Minimisation benchmarks report fitness -f(x) <= 0: `log_gain`. Positive fitness (a return,
    an accuracy) gains log10(after / before). Across zero, from a non-finite start or for no
    improvement, nothing is counted: there is no scale to measure on.
    """
    if not (math.isfinite(before) and math.isfinite(after)) or after <= before:
        return 0.0
    if after <= 0.0:
        return log_gain(before, after)
    return math.log10(after / before) if before > 0.0 else 0.0


@dataclass
class RateMeter:
    """Decades of best-ever improvement per evaluation over an island's recent evaluations.

    `window` is the share of the island's own evaluations the rate looks back over (at least
    `min_window` evaluations): recent enough that a stall shows, long enough that one lucky
    generation does not. Marks are thinned to at most `capacity`, so the meter stays small.
    """

    window: float = 0.2
    min_window: int = 200
    capacity: int = 64
    marks: list[tuple[int, float]] = field(default_factory=list)  # (evaluations, best-ever)

    def add(self, evaluations: int, best: float) -> None:
        if self.marks and evaluations <= self.marks[-1][0]:
            self.marks[-1] = (self.marks[-1][0], max(self.marks[-1][1], best))
            return
        self.marks.append((evaluations, best))
        if len(self.marks) > self.capacity:  # keep the newest and every other older mark
            self.marks = self.marks[:-self.capacity // 2:2] + self.marks[-self.capacity // 2:]

    def rate(self) -> float:
        """Decades per evaluation since the mark `window` evaluations back (0 before two marks)."""
        if len(self.marks) < 2:
            return 0.0
        now_evals, now_best = self.marks[-1]
        back = max(self.min_window, int(self.window * now_evals))
        start = self.marks[0]
        for mark in self.marks:
            if mark[0] > now_evals - back:
                break
            start = mark
        spent = now_evals - start[0]
        return decades(start[1], now_best) / spent if spent > 0 else 0.0


def weights(rates: Sequence[float], floor: float = FLOOR) -> list[float]:
    """Each island's weight: its rate over the best rate, at least `floor` (all 1.0 when no
    island is improving, which is the even split)."""
    top = max((r for r in rates if math.isfinite(r)), default=0.0)
    if top <= 0.0:
        return [1.0] * len(rates)
    return [max(floor, r / top) if math.isfinite(r) else floor for r in rates]


def pace(i: int, spent: Sequence[int], weight: Sequence[float], live: Sequence[bool], total: int) -> float:
    """Evaluations island `i` may have spent by now for its pace: at most its weight's share of
    what an island of larger weight spent for its own (spent / weight), GROWTH ahead and at
    least MIN_RELEASE of the total; inf when no live island outweighs it, so the best-improving
    island always goes on and islands of exactly equal weight never wait for each other (the
    weights are measured: two islands of 0.99 and 1.0 do pace one another)."""
    ahead = [spent[j] / weight[j] for j in range(len(weight)) if live[j] and j != i and weight[j] > weight[i]]
    return weight[i] * max(ahead) * (1.0 + GROWTH) + total * MIN_RELEASE if ahead else math.inf


def paced(spent: Sequence[int], weight: Sequence[float], live: Sequence[bool], total: int) -> list[float]:
    """`pace` of every island (the in-process archipelago; an island process needs only its own)."""
    return [pace(i, spent, weight, live, total) for i in range(len(weight))]


def allowances(spent: Sequence[int], weight: Sequence[float], live: Sequence[bool], total: int) -> list[float]:
    """Evaluations each island may have spent: what the ended islands left of `total`, shared
    among the live ones by weight (an ended island's allowance is what it spent).

    With equal weights and no island ended this is the even split; an island that ends early
    leaves its unspent part to the others. The allowances of live islands sum to what is left
    after the ended ones, so while the run's total is not spent some live island is below its
    own and may go on: the rule cannot leave every island waiting (nor can `paced`, which never
    limits the island of the largest weight).
    """
    left = total - sum(s for s, ok in zip(spent, live) if not ok)
    wsum = sum(w for w, ok in zip(weight, live) if ok)
    return [left * w / wsum if ok and wsum > 0 else float(s) for s, w, ok in zip(spent, weight, live)]
