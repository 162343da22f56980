"""`summary.isld`: an island's history in a few hundred points, for readers of many islands.

The status report of 4,096 islands cannot decode a sample of every history (docs/DESIGN.md,
"History summary"): each island keeps this small record instead, written by its history
recorder (`islands.recorders.HistoryRecorder`) right after the history lines it summarises, so
it never holds a point whose line is not written. It keeps the lines that carry diversity
(every `DIVERSITY_EVERY`th) whose generation is a multiple of `step`; past `2 x POINTS` points
`step` doubles and the points off it go, so the points stay evenly spread over the whole run
and which are kept depends on the generations alone: a resumed island cuts the summary back to
its checkpoint (`truncated`) and its replay keeps the very points it would have kept. The
latest sampled line is always kept as the last point.

Body (kind "summary", `SUMMARY_VERSION` 1)::

    version     int      SUMMARY_VERSION
    run_id      str      the run it belongs to
    island      str      the island
    step        int      the generation stride of the kept points (a power of two)
    points      float64[n, 4]  per point: generation (a whole number, increasing), Unix time of
                         its line, best-ever fitness, within-island diversity (NaN: not recorded)
    origins     int64[m, 3]    rows (point index, origin island number, individuals > 0)

Arrays travel as one value each (`migration_pool.values`), so decoding costs a few arrays,
not a few thousand small objects. Decoding is tolerant like every record: a body that is not
this version, whose series disagree in length or whose origins point outside them is no
summary (None), and the reader falls back to sampling the history.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from islands.status.record import HistoryLine, as_str

SUMMARY_VERSION = 1
DIVERSITY_KEY = b'"diversity"'  # the history lines a summary keeps are those that carry it
POINTS = 50  # kept points lie between POINTS and 2 x POINTS (the report's 100 samples) once the run is long
MAX_POINTS = 1 << 16  # what a reader accepts: a summary is small, or not one


@dataclass
class Point:
    generation: int
    time: float | None
    best_ever: float | None
    diversity: float | None
    origins: Mapping[int, int] = field(default_factory=dict)


@dataclass
class HistorySummary:
    """The kept points of one island's history (see the module docstring)."""

    run_id: str
    island: str
    step: int = 1
    points: list[Point] = field(default_factory=list)
    last: Point | None = None  # the latest sampled line, kept whatever its generation

    # -- the writer's side ----------------------------------------------------------------
    def add(self, line: HistoryLine) -> bool:
        """Take `line` if it carries diversity (a sampled line); whether the summary changed."""
        if line.diversity is None or line.generation is None or line.generation < 0:
            return False
        point = Point(line.generation, line.time, line.best_ever, line.diversity, dict(line.origins))
        if self.points and point.generation <= self.points[-1].generation:  # a replay: cut back first
            self.points = [p for p in self.points if p.generation < point.generation]
        self.last = point
        if point.generation % self.step == 0:
            self.points.append(point)
            while len(self.points) > 2 * POINTS:
                self.step *= 2
                self.points = [p for p in self.points if p.generation % self.step == 0]
        return True

    def truncated(self, generation: int) -> HistorySummary:
        """The summary as it stood once `generation` was recorded (a resume's history cut)."""
        kept = [p for p in self.points if p.generation <= generation]
        last = self.last if self.last is not None and self.last.generation <= generation else (kept[-1] if kept else None)
        return HistorySummary(self.run_id, self.island, self.step, kept, last)

    def series(self) -> list[Point]:
        """The kept points and the latest line, in generation order."""
        if self.last is not None and (not self.points or self.points[-1].generation < self.last.generation):
            return [*self.points, self.last]
        return list(self.points)

    def to_body(self) -> dict[str, Any]:
        pts = self.series()
        origins = [(i, int(k), int(v)) for i, p in enumerate(pts) for k, v in sorted(p.origins.items()) if v > 0]
        return {
            "version": SUMMARY_VERSION, "run_id": self.run_id, "island": self.island, "step": self.step,
            "points": np.array([(p.generation, _nan(p.time), _nan(p.best_ever), _nan(p.diversity)) for p in pts],
                               dtype=np.float64).reshape(-1, 4),
            "origins": np.array(origins, dtype=np.int64).reshape(-1, 3),
        }

    @classmethod
    def from_lines(cls, run_id: str, island: str, lines: Iterable[HistoryLine]) -> HistorySummary:
        """The summary of a history's lines (a resumed island without a readable summary)."""
        out = cls(run_id, island)
        for line in lines:
            out.add(line)
        return out


@dataclass(frozen=True)
class SummaryView:
    """A decoded summary as the report reads it: arrays, no per-point objects."""

    run_id: str | None
    island: str | None
    step: int
    generation: np.ndarray
    time: np.ndarray
    best_ever: np.ndarray
    diversity: np.ndarray
    origins: np.ndarray  # (m, 3): point index, origin, individuals

    def pick(self, points: int) -> np.ndarray:
        """At most `points` evenly spaced point indexes, always the last (as `sample_records`)."""
        n = len(self.generation)
        if points <= 0 or n == 0:
            return np.zeros(0, dtype=np.int64)
        if n <= points:
            return np.arange(n)
        return np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))

    def origin_maps(self, idx: np.ndarray) -> list[dict[int, int]]:
        """The origin counts of the points `idx`, one map each (empty where none)."""
        where = {i: n for n, i in enumerate(idx.tolist())}
        out: list[dict[int, int]] = [{} for _ in where]
        rows = self.origins if len(idx) == len(self.generation) else self.origins[np.isin(self.origins[:, 0], idx)]
        for i, k, v in rows.tolist():
            out[where[i]][k] = v
        return out

    def to_summary(self) -> HistorySummary:
        """Back to the writer's form (a resumed island takes its summary up again)."""
        maps = self.origin_maps(np.arange(len(self.generation)))
        pts = [Point(int(g), _none(t), _none(b), _none(d), m) for g, t, b, d, m in
               zip(self.generation.tolist(), self.time.tolist(), self.best_ever.tolist(), self.diversity.tolist(), maps)]
        kept = [p for p in pts if p.generation % self.step == 0]  # the last may be off the stride
        return HistorySummary(self.run_id or "", self.island or "", self.step, kept, pts[-1] if pts else None)


def from_body(body: Any) -> SummaryView | None:
    """The summary in a decoded body; None if it is not a summary this version can read."""
    if type(body) is not dict or body.get("version") != SUMMARY_VERSION:
        return None
    points, origins, step = body.get("points"), body.get("origins"), body.get("step")
    if not (type(points) is np.ndarray and points.dtype == np.float64 and points.ndim == 2
            and points.shape[1] == 4 and len(points) <= MAX_POINTS):
        return None
    if not (type(origins) is np.ndarray and origins.dtype == np.int64 and origins.ndim == 2 and origins.shape[1] == 3):
        return None
    if type(step) is not int or step < 1 or step & (step - 1):
        return None
    gen = points[:, 0]
    if len(gen) and not (gen.min() >= 0 and gen.max() < 2**53):  # NaN fails both comparisons
        return None
    if len(origins):
        low = origins.min(axis=0)  # point index, origin, individuals
        if low[0] < 0 or low[1] < 0 or low[2] <= 0 or origins[:, 0].max() >= len(gen):
            return None
    return SummaryView(as_str(body.get("run_id")), as_str(body.get("island")), step, gen.astype(np.int64),
                       points[:, 1], points[:, 2], points[:, 3], origins)


def resumed(view: SummaryView | None, run_id: str, island: str, generation: int) -> HistorySummary | None:
    """A resumed island's summary from its file, cut back to `generation`; None if it is not
    this island's (the island then rebuilds it from its history)."""
    if view is None or view.run_id != run_id or view.island != island:
        return None
    return view.to_summary().truncated(generation)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _none(x: float) -> float | None:
    return None if math.isnan(x) else x

