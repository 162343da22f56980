"""The island's observable record: what an island writes for other processes to read.

`islands.island` is the only writer. It builds an `IslandStatus` (the heartbeat file
`status.isld`, rewritten a few times a second at most) and `HistoryLine`s (one per
generation, appended to `history.jsonl`); the launcher, its summary and the status report
decode the same types. Everything an island records is declared here, field by field.

Each record has one encoder (`to_body`) and one tolerant decoder (`from_body`). The files
come from other processes, maybe of another version of this code, so a decoder never raises:
unknown keys are ignored, and a missing key or a value of the wrong type takes the field's
default (None: "not known"). `STATUS_VERSION` is written into every status; it changes when
a field is removed, renamed or changes meaning (adding one does not). Numbers that are not
finite are written as None (JSON has no NaN; see docs/DESIGN.md, "Fitness").

Nothing here imports torch (the launcher reads these records; see docs/DESIGN.md, "Layers").
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping

import numpy as np

STATUS_VERSION = 1
PHASES = ("running", "finished", "stopped")  # what an island says of itself in `state`
_FROM = "from:"  # on disk, migrants received per source are flat keys "from:island-NN"


# -- tolerant field access: records come from other processes -----------------------------
def as_float(x: Any) -> float | None:
    """A finite float, or None for anything else (bools, strings, NaN, inf, missing)."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.number)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def as_int(x: Any) -> int | None:
    """An int, or None for anything else (bools and floats included, and ints beyond 64 bits,
    which no island writes: a hand-edited line must not break numpy arrays of the whole run)."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        return None
    return int(x) if -2**63 <= int(x) < 2**63 else None


def as_str(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def as_mapping(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _count(x: Any) -> int:
    """A counter: a non-negative int, 0 when missing or bad."""
    return max(0, as_int(x) or 0)


def _gain(x: Any) -> float | None:
    """A summed improvement: a finite number >= 0, or None (not recorded, or bad)."""
    g = as_float(x)
    return None if g is None or g < 0 else g


def _maybe_count(x: Any) -> int | None:
    """A counter that older writers did not record: a non-negative int, or None."""
    n = as_int(x)
    return None if n is None or n < 0 else n


def _figures(x: Any) -> dict[str, float | int]:
    """Algorithm-specific figures (`Algorithm.info`): names to finite numbers, others dropped."""
    out: dict[str, float | int] = {}
    for k, v in as_mapping(x).items():
        num = as_int(v) if as_int(v) is not None else as_float(v)
        if isinstance(k, str) and num is not None:
            out[k] = num
    return out


def origins_body(origins: Mapping[int, int]) -> dict[str, int]:
    """Origin counts as written: island numbers as string keys (JSON and msgpack maps agree)."""
    return {str(int(k)): int(v) for k, v in sorted(origins.items()) if v > 0}


def origin_counts(x: Any) -> dict[int, int]:
    """Decoded origin counts: island number -> individuals; bad keys and counts are dropped."""
    out: dict[int, int] = {}
    for k, v in as_mapping(x).items():
        n = as_int(v)
        if isinstance(k, str) and k.isdigit() and len(k) < 10 and n is not None and n > 0:
            out[int(k)] = n
    return out


def _counter(help: str) -> Any:
    """A migration counter field; `MIGRATION_COUNTERS` lists the fields made with it."""
    return field(default=0, metadata={"counter": help})


def _counters(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.metadata.get("counter"))


def counter_help(cls: type) -> dict[str, str]:
    """What each migration counter of `cls` counts (the report's schema describes them so)."""
    return {f.name: f.metadata["counter"] for f in fields(cls) if f.metadata.get("counter")}


# -- migration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class MigrationEvent:
    """One migration event, as the history line of its generation records it."""

    sent: int = _counter("migrants published")
    received: int = _counter("migrants read from neighbours")
    adopted: int = _counter("received migrants that entered the population")
    rejected: int = _counter("received migrants not adopted (duplicates, not better)")
    bad_files: int = _counter("corrupt or foreign pool files skipped")
    sources: tuple[str, ...] = ()  # the islands whose batches were read
    seconds: float = 0.0  # time the event took

    def to_body(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in EVENT_COUNTERS}, "sources": list(self.sources),
                "seconds": self.seconds}

    @classmethod
    def from_body(cls, body: Any) -> MigrationEvent:
        b = as_mapping(body)
        sources = b.get("sources")
        return cls(**{k: _count(b.get(k)) for k in EVENT_COUNTERS},
                   sources=tuple(s for s in sources if isinstance(s, str)) if isinstance(sources, (list, tuple)) else (),
                   seconds=as_float(b.get("seconds")) or 0.0)


@dataclass(frozen=True)
class Migration:
    """An island's cumulative migration counters (kept in its checkpoint, shown in its status)."""

    events: int = _counter("migration events so far")
    sent: int = _counter("migrants published")
    received: int = _counter("migrants read from neighbours")
    adopted: int = _counter("received migrants that entered the population")
    rejected: int = _counter("received migrants not adopted (duplicates, not better)")
    bad_files: int = _counter("corrupt or foreign pool files skipped")
    publish_errors: int = _counter("migration events whose emigrants could not be written")
    micros: int = 0  # time spent migrating
    last_generation: int | None = None  # of the last event: a resumed island must not repeat it
    received_from: Mapping[str, int] = field(default_factory=dict)  # migrants read per source island

    def to_body(self) -> dict[str, int]:
        """The flat map the checkpoint and the status file hold."""
        body = {k: getattr(self, k) for k in MIGRATION_COUNTERS}
        body["micros"] = self.micros
        if self.last_generation is not None:
            body["last_generation"] = self.last_generation
        body.update({f"{_FROM}{s}": n for s, n in self.received_from.items()})
        return body

    @classmethod
    def from_body(cls, body: Any) -> Migration:
        b = as_mapping(body)
        return cls(**{k: _count(b.get(k)) for k in MIGRATION_COUNTERS}, micros=_count(b.get("micros")),
                   last_generation=as_int(b.get("last_generation")),
                   received_from={k[len(_FROM):]: _count(v) for k, v in b.items()
                                  if isinstance(k, str) and k.startswith(_FROM)})


EVENT_COUNTERS = _counters(MigrationEvent)
MIGRATION_COUNTERS = _counters(Migration)  # the one list of counter names


# -- the heartbeat ------------------------------------------------------------------------
@dataclass(frozen=True)
class IslandStatus:
    """`status.isld`: the island's latest state, rewritten in place (the heartbeat)."""

    island: str | None = None
    run_id: str | None = None
    state: str | None = None  # one of PHASES
    reason: str | None = None  # why it ended: generations, target, stagnation or stopped
    generation: int | None = None  # generations done
    generations: int | None = None  # generations planned
    best: float | None = None  # best fitness of the current population (maximised)
    mean: float | None = None  # mean fitness of the current population
    best_ever: float | None = None
    best_ever_generation: int | None = None
    best_genome: Any = None  # the best-ever genome: an array, or a map of arrays (NEAT)
    evaluations: int | None = None
    evals_per_sec: float | None = None  # since this process started
    diversity: float | None = None  # within-island: mean per-gene std / bound width
    foreign_share: float | None = None  # of the population whose lineage began elsewhere
    centroid: Any = None  # the population's mean genome, normalised to [0, 1] by the bounds
    origins: Mapping[int, int] = field(default_factory=dict)  # island number -> individuals whose lineage began there
    migration: Migration = field(default_factory=Migration)
    # best_ever's improvements by cause (None: written by a version that did not record them):
    own_gain: float | None = None  # summed improvements after the island's own breeding steps
    adopted_gain: float | None = None  # summed improvements right after adopting migrants
    own_log_gain: float | None = None  # own_gain in orders of magnitude of f(x) = -fitness (fitness <= 0)
    adopted_log_gain: float | None = None
    own_improvements: int | None = None
    adopted_improvements: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)  # this island's --vary values
    device: str | None = None
    torch_threads: int | None = None
    pid: int | None = None
    host: str | None = None
    started: float | None = None  # Unix time the writing process started
    heartbeat: float | None = None  # Unix time of this write
    beat: int | None = None  # write counter of this process: advances while it lives
    target: float | None = None
    algo: Mapping[str, float | int] = field(default_factory=dict)  # the algorithm's own figures
    version: int = STATUS_VERSION

    def to_body(self) -> dict[str, Any]:
        """The map written into status.isld (`algo` only when there is something in it)."""
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("algo", "migration")}
        body["migration"] = self.migration.to_body()
        body["origins"] = origins_body(self.origins)
        body["overrides"] = dict(self.overrides)
        if self.algo:
            body["algo"] = dict(self.algo)
        return body

    @classmethod
    def from_body(cls, body: Any) -> IslandStatus:
        b = as_mapping(body)
        genome, centroid = b.get("best_genome"), b.get("centroid")
        return cls(
            island=as_str(b.get("island")), run_id=as_str(b.get("run_id")), state=as_str(b.get("state")),
            reason=as_str(b.get("reason")), generation=as_int(b.get("generation")),
            generations=as_int(b.get("generations")), best=as_float(b.get("best")), mean=as_float(b.get("mean")),
            best_ever=as_float(b.get("best_ever")), best_ever_generation=as_int(b.get("best_ever_generation")),
            best_genome=genome if isinstance(genome, (np.ndarray, Mapping)) else None,
            evaluations=as_int(b.get("evaluations")), evals_per_sec=as_float(b.get("evals_per_sec")),
            diversity=as_float(b.get("diversity")), foreign_share=as_float(b.get("foreign_share")),
            centroid=centroid if isinstance(centroid, (np.ndarray, list, tuple)) else None,
            origins=origin_counts(b.get("origins")), migration=Migration.from_body(b.get("migration")),
            own_gain=_gain(b.get("own_gain")), adopted_gain=_gain(b.get("adopted_gain")),
            own_log_gain=_gain(b.get("own_log_gain")), adopted_log_gain=_gain(b.get("adopted_log_gain")),
            own_improvements=_maybe_count(b.get("own_improvements")),
            adopted_improvements=_maybe_count(b.get("adopted_improvements")),
            overrides={str(k): v for k, v in as_mapping(b.get("overrides")).items()},
            device=as_str(b.get("device")), torch_threads=as_int(b.get("torch_threads")), pid=as_int(b.get("pid")),
            host=as_str(b.get("host")), started=as_float(b.get("started")), heartbeat=as_float(b.get("heartbeat")),
            beat=as_int(b.get("beat")), target=as_float(b.get("target")), algo=_figures(b.get("algo")),
            version=as_int(b.get("version")) or STATUS_VERSION,
        )


# -- the history ----------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryLine:
    """One line of history.jsonl: one generation (diversity, foreign, origins on every Nth only)."""

    generation: int | None = None
    best: float | None = None
    mean: float | None = None
    best_ever: float | None = None
    evaluations: int | None = None
    time: float | None = None  # Unix time, rounded to the millisecond
    migration: MigrationEvent | None = None  # the event this generation began with, if any
    diversity: float | None = None
    foreign: float | None = None  # share of the population of foreign lineage
    origins: Mapping[int, int] = field(default_factory=dict)  # island number -> individuals of that lineage
    algo: Mapping[str, float | int] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        """A JSON-ready map; optional parts are left out when absent (keeps lines short)."""
        body: dict[str, Any] = {"generation": self.generation, "best": self.best, "mean": self.mean,
                                "best_ever": self.best_ever, "evaluations": self.evaluations, "time": self.time}
        if self.migration is not None:
            body["migration"] = self.migration.to_body()
        if self.diversity is not None:
            body.update(diversity=self.diversity, foreign=self.foreign)
        if self.origins:
            body["origins"] = origins_body(self.origins)
        if self.algo:
            body["algo"] = dict(self.algo)
        return body

    @classmethod
    def from_body(cls, body: Any) -> HistoryLine:
        b = as_mapping(body)
        return cls(generation=as_int(b.get("generation")), best=as_float(b.get("best")), mean=as_float(b.get("mean")),
                   best_ever=as_float(b.get("best_ever")), evaluations=as_int(b.get("evaluations")),
                   time=as_float(b.get("time")),
                   migration=MigrationEvent.from_body(b["migration"]) if isinstance(b.get("migration"), Mapping) else None,
                   diversity=as_float(b.get("diversity")), foreign=as_float(b.get("foreign")),
                   origins=origin_counts(b.get("origins")), algo=_figures(b.get("algo")))


# -- the one champion rule ------------------------------------------------------------------
def champion(statuses: Iterable[IslandStatus | None], run_id: str | None = None) -> IslandStatus | None:
    """The status with the highest best-ever fitness that carries its genome (the first on ties).

    With `run_id`, statuses of other runs are passed over (a run directory may hold a
    leftover file). Fitness is maximised (docs/DESIGN.md, "Fitness").
    """
    best: IslandStatus | None = None
    for s in statuses:
        if s is None or s.best_ever is None or s.best_genome is None:
            continue
        if run_id is not None and s.run_id != run_id:
            continue
        if best is None or s.best_ever > best.best_ever:  # type: ignore[operator]
            best = s
    return best


def champion_record(status: IslandStatus, problem: str, dim: int, run_id: str) -> dict[str, Any]:
    """The body of a run's `champion.isld` (fields in `launcher.summary`'s docstring) from the
    champion's status; written by the launcher at its end and by `islands.runs.evolve`."""
    return {
        "island": status.island,
        "fitness": float(status.best_ever),  # type: ignore[arg-type]  # a champion has one
        "genome": _genome(status.best_genome),
        "problem": problem,
        "dim": int(dim),
        "run_id": run_id,
        "generation": status.best_ever_generation or 0,
        "overrides": dict(status.overrides),
        "created": time.time(),
    }


def _genome(genome: Any) -> Any:
    """Vector genomes as one array; structured genomes (NEAT's map of arrays) as they are."""
    return genome if isinstance(genome, Mapping) else np.asarray(genome)
