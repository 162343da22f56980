"""A segment: one stretch of an island's life under one set of settings (`islands.tuning`).

An island that a tuner moves writes its segments to `RUN/islands/<id>/segments.isld` (one owner:
the island; `Segment` is the record's one declaration). Other islands read them to decide (a
rung's ranking, a donor for population-based training), `islands status` shows the best ones
and `islands.results` gives them to pandas and Optuna. Records come from other processes, so
decoding is tolerant and bounded: a record that does not decode is skipped, never trusted.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Mapping

from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

SEGMENTS_VERSION = 1
MAX_SEGMENTS = 2000  # per island file; the oldest finished ones are dropped beyond it
MAX_RUNGS = 64
ENDS = ("running", "halved", "exploited", "ended")  # ended: the island itself ended in it


@dataclass(frozen=True)
class Segment:
    """One island's settings over a stretch of generations, and what they achieved there.

    `best` is the best fitness the island held during the segment (immigrants included, as the
    island's own best is); `rungs` the best at each rung reached (successive halving's evidence);
    `parent` the `island#index` segment whose population this one copied (population-based
    training), empty for a fresh start.
    """

    island: str
    index: int
    settings: Mapping[str, Any]
    start: int  # the island's generation when the segment began
    generations: int = 0  # how many generations it has run so far
    evaluations: int = 0  # evaluations spent in it so far
    best: float = -math.inf
    rungs: tuple[float, ...] = ()
    parent: str = ""
    end: str = "running"
    why: str = ""  # the decision that ended it, in words
    trial: int = -1  # its Optuna trial number, -1 if none

    @property
    def key(self) -> str:
        return f"{self.island}#{self.index}"

    def to_body(self) -> dict[str, Any]:
        body = asdict(self)
        body["settings"] = dict(self.settings)
        body["rungs"] = [r if math.isfinite(r) else None for r in self.rungs]
        body["best"] = self.best if math.isfinite(self.best) else None
        return body

    @classmethod
    def from_body(cls, island: str, body: Any) -> Segment | None:
        """A segment another process wrote, or None if any field is missing or of the wrong kind."""
        if not isinstance(body, Mapping) or body.get("island") != island:
            return None
        ints = {k: body.get(k) for k in ("index", "start", "generations", "evaluations", "trial")}
        if any(isinstance(v, bool) or not isinstance(v, int) for v in ints.values()) or min(
                ints["index"], ints["start"], ints["generations"], ints["evaluations"]) < 0:
            return None
        settings, rungs = body.get("settings"), body.get("rungs")
        texts = {k: body.get(k) for k in ("parent", "end", "why")}
        if not isinstance(settings, Mapping) or not isinstance(rungs, (list, tuple)) or len(rungs) > MAX_RUNGS \
                or any(not isinstance(v, str) or len(v) > 400 for v in texts.values()) or texts["end"] not in ENDS:
            return None
        return cls(island=island, settings=dict(settings), rungs=tuple(_fitness(r) for r in rungs),
                   best=_fitness(body.get("best")), **ints, **texts)

    def grown(self, generations: int, evaluations: int, best: float) -> Segment:
        return replace(self, generations=generations, evaluations=evaluations, best=max(self.best, best))


def _fitness(x: Any) -> float:
    """A recorded fitness: a finite number, else -inf (not known, never better than anything)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return -math.inf
    return float(x)


def write(rundir: RunDir, island: str, segments: Iterable[Segment]) -> None:
    kept = list(segments)[-MAX_SEGMENTS:]
    rundir.island(island).write_segments({"segments_version": SEGMENTS_VERSION,
                                          "segments": [s.to_body() for s in kept]})


def read(rundir: RunDir, island: str) -> list[Segment]:
    """One island's segments; [] when it has none or they cannot be read (a reader never fails
    because another process wrote a bad file)."""
    try:
        body = rundir.island(island).read_segments()
    except (FormatError, OSError):
        return []
    if not body or body.get("segments_version") != SEGMENTS_VERSION or not isinstance(body.get("segments"), list):
        return []
    out = [Segment.from_body(island, b) for b in body["segments"][:MAX_SEGMENTS]]
    return [s for s in out if s is not None]


def read_run(rundir: RunDir, islands: Iterable[str] | None = None) -> dict[str, list[Segment]]:
    """Every island's segments (those with none are left out)."""
    ids = list(islands) if islands is not None else rundir.island_ids()
    found = {i: read(rundir, i) for i in ids}
    return {i: s for i, s in found.items() if s}


def ranked(by_island: Mapping[str, list[Segment]]) -> list[Segment]:
    """All segments, best first (ties: more generations first, then the older one)."""
    every = [s for segs in by_island.values() for s in segs]
    return sorted(every, key=lambda s: (-s.best, -s.generations, s.island, s.index))


@dataclass
class SegmentLog:
    """An island's own segments while it runs: the finished ones and the current one."""

    island: str
    segments: list[Segment] = field(default_factory=list)

    @property
    def current(self) -> Segment:
        return self.segments[-1]

    def replace_current(self, segment: Segment) -> None:
        self.segments[-1] = segment

    def save(self, rundir: RunDir) -> None:
        write(rundir, self.island, self.segments)
