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
from typing import Any, Callable, Iterable, Mapping

import numpy as np

STATUS_VERSION = 1
PHASES = ("running", "finished", "stopped")  # what an island says of itself in `state`
_FROM = "from:"  # on disk, migrants received per source are flat keys "from:island-NN"


# -- tolerant field access: records come from other processes -----------------------------
def as_float(x: Any) -> float | None:
    """A finite float, or None for anything else (bools, strings, NaN, inf, missing)."""
    if type(x) is float:  # the common case first: thousands of records are decoded per report
        return x if math.isfinite(x) else None
    if isinstance(x, bool) or not isinstance(x, (int, float, np.number)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def as_int(x: Any) -> int | None:
    """An int, or None for anything else (bools and floats included, and ints beyond 64 bits,
    which no island writes: a hand-edited line must not break numpy arrays of the whole run)."""
    if type(x) is int:
        return x if -2**63 <= x < 2**63 else None
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        return None
    return int(x) if -2**63 <= int(x) < 2**63 else None


def as_str(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def as_mapping(x: Any) -> Mapping[str, Any]:
    return x if type(x) is dict or isinstance(x, Mapping) else {}


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
    skipped: int = _counter("sources sync migration skipped (ended, or no batch in time)")
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
    skipped: int = _counter("sources sync migration skipped (ended, or no batch in time)")
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
def _same(x: Any) -> Any:
    return x


def _genome_value(x: Any) -> Any:
    return x if isinstance(x, (np.ndarray, Mapping)) else None


def _obs_norm_value(x: Any) -> dict[str, Any]:
    """A recorded observation normalisation (islands.problems.obs_norm): kept as read; checked
    where it is used (`frozen_from_body`), {} when absent."""
    return {str(k): v for k, v in x.items()} if isinstance(x, Mapping) else {}


def _centroid_value(x: Any) -> Any:
    return x if isinstance(x, (np.ndarray, list, tuple)) else None


def _overrides(x: Any) -> dict[str, Any]:
    return {str(k): v for k, v in as_mapping(x).items()}


def plain(v: Any) -> Any:
    """A JSON-safe copy of a recorded value (numbers, strings, bools, lists; others as text)."""
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return as_float(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [plain(x) for x in v]
    return str(v)


def _counts_entry(m: Migration) -> dict[str, int]:
    return {k: getattr(m, k) for k in MIGRATION_COUNTERS}


def _plain_map(x: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in x.items()}


def _rec(decode: Callable[[Any], Any], help: str, *, shown: str | None = None,
         entry: Callable[[Any], Any] = _same, encode: Callable[[Any], Any] = _same,
         default: Any = None, factory: Callable[[], Any] | None = None) -> Any:
    """One field of the island's record, declared once.

    `decode` turns a value read from another process into the field (tolerant: never raises);
    `encode` turns the field into what `status.isld` holds; `help` says what it is. `shown`
    puts the field into the status report's island entry, with that JSON kind ("number",
    "integer", "string", "object", "counters"); `entry` makes the entry's value. The report
    (`islands.status.report`) and its schema (`islands.status.schema`) are generated from these.
    """
    meta = {"decode": decode, "help": help, "shown": shown, "entry": entry, "encode": encode}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class IslandStatus:
    """`status.isld`: the island's latest state, rewritten in place (the heartbeat).

    Each field declares its decoder, its help and whether the report shows it (`_rec`); the
    encoder, the tolerant decoder, the report's island entry and its schema all read them.
    The order of the fields is the order of the keys in the file.
    """

    island: str | None = _rec(as_str, "island id")
    run_id: str | None = _rec(as_str, "the run it belongs to")
    state: str | None = _rec(as_str, "what the island says of itself: one of PHASES")
    reason: str | None = _rec(as_str, "why it ended: generations, target, stagnation or stopped", shown="string")
    generation: int | None = _rec(as_int, "generations done", shown="integer")
    generations: int | None = _rec(as_int, "generations planned", shown="integer")
    joined_at: int | None = _rec(_maybe_count, "the generation the run's furthest other island had reached when "
                                               "this one started, if at least one migration interval (a late "
                                               "joiner); 0: it started with them; null: not recorded",
                                 shown="integer")
    best: float | None = _rec(as_float, "best fitness of the current population", shown="number")
    mean: float | None = _rec(as_float, "mean fitness of the current population", shown="number")
    best_ever: float | None = _rec(as_float, "best fitness the island has ever seen", shown="number")
    best_ever_generation: int | None = _rec(as_int, "generation of best_ever", shown="integer")
    best_genome: Any = _rec(_genome_value, "the best-ever genome: an array, or a map of arrays (NEAT)")
    best_obs_norm: Mapping[str, Any] = _rec(_obs_norm_value, "the observation normalisation best_genome was "
                                            "evaluated with (gym:* obs_norm: mean, std, clip, count); {}: none",
                                            encode=dict, factory=dict)
    evaluations: int | None = _rec(as_int, "fitness evaluations so far", shown="integer")
    evals_per_sec: float | None = _rec(as_float, "evaluations per second since the process started", shown="number")
    diversity: float | None = _rec(as_float, "within-island diversity: mean per-gene standard deviation / bound "
                                             "width", shown="number")
    foreign_share: float | None = _rec(as_float, "share of the population whose lineage began on another island",
                                       shown="number")
    centroid: Any = _rec(_centroid_value, "the population's mean genome, normalised to [0, 1] by the bounds")
    origins: Mapping[int, int] = _rec(origin_counts, "island number -> individuals whose lineage began there",
                                      encode=origins_body, factory=dict)
    # best_ever's improvements by cause (None: written by a version that did not record them):
    own_gain: float | None = _rec(_gain, "summed improvements of best_ever after the island's own breeding steps "
                                         "(its settings' work, from its first population on); null if not recorded",
                                  shown="number")
    adopted_gain: float | None = _rec(_gain, "summed improvements of best_ever right after adopting migrants; null "
                                             "if not recorded", shown="number")
    own_log_gain: float | None = _rec(_gain, "own_gain in orders of magnitude of f(x) = -fitness, counted while "
                                             "fitness <= 0 (minimisation benchmarks; an exact optimum counts as "
                                             "1e-12): scale-free", shown="number")
    adopted_log_gain: float | None = _rec(_gain, "adopted_gain in orders of magnitude of f(x) = -fitness",
                                          shown="number")
    own_improvements: int | None = _rec(_maybe_count, "how many times its own breeding improved best_ever",
                                        shown="integer")
    adopted_improvements: int | None = _rec(_maybe_count, "how many migration events improved best_ever",
                                            shown="integer")
    progress_rate: float | None = _rec(_gain, "recent orders of magnitude of best-ever improvement per evaluation "
                                              "(--budget-share progress); null if not recorded", shown="number")
    budget_weight: float | None = _rec(_gain, "its weight in the run's budget against the best-improving island's 1.0 "
                                              "(--budget-share progress; 1.0 when shared evenly)", shown="number")
    budget_allowed: int | None = _rec(_maybe_count, "evaluations of the run's total this island holds (--budget-share "
                                                    "progress; 0: not sharing); null if not recorded", shown="integer")
    overrides: Mapping[str, Any] = _rec(_overrides, "this island's hyperparameter overrides (launch --vary; a tuned island: the settings its best-ever was found with)",
                                        shown="object", entry=_plain_map, encode=dict, factory=dict)
    device: str | None = _rec(as_str, "torch device of the island", shown="string")
    torch_threads: int | None = _rec(as_int, "torch threads of the island's process")
    pid: int | None = _rec(as_int, "pid of that process", shown="integer")
    host: str | None = _rec(as_str, "host name of the process that wrote the status", shown="string")
    started: float | None = _rec(as_float, "Unix time its (latest) process started", shown="number")
    heartbeat: float | None = _rec(as_float, "Unix time of this write")
    beat: int | None = _rec(as_int, "write counter of this process: advances while it lives")
    target: float | None = _rec(as_float, "the fitness at which the island stops (None: none)")
    version: int = _rec(lambda x: as_int(x) or STATUS_VERSION, "STATUS_VERSION of the writer",
                        default=STATUS_VERSION)
    migration: Migration = _rec(Migration.from_body, "the island's cumulative migration counters", shown="counters",
                                entry=_counts_entry, encode=Migration.to_body, factory=Migration)
    # the algorithm's own figures (`Algorithm.info`), written only when there are any
    algo: Mapping[str, float | int] = _rec(_figures, "the algorithm's own figures", encode=dict, factory=dict)

    def to_body(self) -> dict[str, Any]:
        """The map written into status.isld (`algo` only when there is something in it)."""
        body = {f.name: f.metadata["encode"](getattr(self, f.name)) for f in _STATUS_FIELDS}
        if not self.algo:
            del body["algo"]
        return body

    @classmethod
    def from_body(cls, body: Any) -> IslandStatus:
        b = as_mapping(body)
        return cls(**{name: decode(b.get(name)) for name, decode in _DECODE.items()})

    @staticmethod
    def taken(source: Any, names: Iterable[str]) -> dict[str, Any]:
        """Fields `names` read off `source`'s attributes through their decoders (the island
        copies the counters its checkpoint shares with its status this way)."""
        return {n: _DECODE[n](getattr(source, n)) for n in names}


_STATUS_FIELDS = fields(IslandStatus)
_DECODE = {f.name: f.metadata["decode"] for f in _STATUS_FIELDS}
STATUS_FIELDS = tuple(_DECODE)  # every field name of the record
SHOWN = tuple(f for f in _STATUS_FIELDS if f.metadata["shown"])  # the fields of the report's island entry


def island_entry_fields(status: IslandStatus) -> dict[str, Any]:
    """The report's island entry as far as the record gives it, field by field (`SHOWN`)."""
    return {f.name: f.metadata["entry"](getattr(status, f.name)) for f in SHOWN}


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


def champion_record(status: IslandStatus, problem: str, dim: int, run_id: str,
                    config: Any = None) -> dict[str, Any]:
    """The body of a run's `champion.isld` (fields in `launcher.summary`'s docstring) from the
    champion's status; written by the launcher at its end and by `islands.runs.evolve`.

    `config` (the run's `RunConfig`) adds the champion island's effective problem and
    algorithm settings (its `--vary` overrides applied), so the champion can be rebuilt and
    re-run from the file alone, without the manifest.
    """
    settings: dict[str, Any] = {}
    if config is not None:
        eff = config.with_overrides(status.overrides)
        settings = {"problem_params": dict(eff.problem_params), "algorithm": eff.algorithm,
                    "algorithm_params": dict(eff.algorithm_params), "population": eff.population,
                    "dtype": eff.dtype}
    return {
        **settings,
        "island": status.island,
        "fitness": float(status.best_ever),  # type: ignore[arg-type]  # a champion has one
        "genome": _genome(status.best_genome),
        "problem": problem,
        "dim": int(dim),
        "run_id": run_id,
        "generation": status.best_ever_generation or 0,
        "overrides": dict(status.overrides),
        "created": time.time(),
        **({"obs_norm": dict(status.best_obs_norm)} if status.best_obs_norm else {}),
    }


def _genome(genome: Any) -> Any:
    """Vector genomes as one array; structured genomes (NEAT's map of arrays) as they are."""
    return genome if isinstance(genome, Mapping) else np.asarray(genome)
