"""How far an island or a run has come and when it should end: the one rule behind the
progress bars and plain lines of `islands launch` and `islands evolve`.

Pure functions and one small estimator, no torch and no rich (the launcher imports this
module; docs/DESIGN.md, "Layers"). Figures for people are rounded here, so no view prints a
raw float such as -12.577276229858398.
"""
from __future__ import annotations

import math

ETA_MIN_S = 1.0  # no estimate from less than this much time since the baseline


def fraction(generation: int | None, generations: int | None, evaluations: int | None = None,
             max_evaluations: int | None = None, finished: bool = False) -> float | None:
    """An island's share of its work done, in [0, 1]: the nearer of its two budgets
    (generations, evaluations), 1 once it finished (a target or stagnation ends it early),
    None while nothing is known (an island that has not reported yet)."""
    if finished:
        return 1.0
    parts = []
    if generation is not None and generations:
        parts.append(generation / generations)
    if evaluations is not None and max_evaluations:
        parts.append(evaluations / max_evaluations)
    return min(1.0, max(0.0, max(parts))) if parts else None


def generation_text(generation: int | None, generations: int | None) -> str:
    """"57/200", or "57" for an island without a generation limit (an evaluation budget
    stops it), "-" before it reported."""
    if generation is None:
        return "-"
    return str(generation) if generations is None else f"{generation}/{generations}"


class Eta:
    """Remaining seconds, extrapolated linearly from the progress made since a baseline.

    The baseline follows the progress while islands are still starting (importing torch,
    reading checkpoints: a resumed run's first report jumps to where it stopped, which is no
    speed at all) and is fixed once every island has reported (`settled`). Linear in the share
    done, so an island that ends early at its target only makes the estimate pessimistic.
    """

    def __init__(self) -> None:
        self.t0: float | None = None
        self.f0 = 0.0
        self.fixed = False

    def update(self, done: float | None, now: float, settled: bool) -> float | None:
        """Seconds left at time `now` (any clock) for `done` in [0, 1]; None while unknown."""
        if done is None:
            return None
        if done >= 1.0:
            return 0.0
        if self.t0 is None or not self.fixed:
            self.t0, self.f0, self.fixed = now, done, settled
            return None
        gained, spent = done - self.f0, now - self.t0
        if gained <= 0 or spent < ETA_MIN_S:
            return None
        return spent * (1.0 - done) / gained


def clock(seconds: float | None) -> str:
    """h:mm:ss, or "?" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(max(0.0, seconds))), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


def number(x: float | None, digits: int = 6) -> str:
    """A fitness or other figure for people: `digits` significant digits, "-" when unknown."""
    return "-" if x is None else format(x, f".{digits}g")
