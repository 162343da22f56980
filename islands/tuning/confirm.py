"""Do a run's winning settings reproduce? Re-run its top settings alone, on new seeds.

A run ranks settings by what its islands achieved: a tuned run by its segments' best, an untuned
`--vary` spread by the islands the status report ranks (best-ever; own gain under migration,
where a good genome travels and an island's best says little of its settings). `confirm` takes
the top of that ranking, runs each setting as one isolated island (no migration, no tuner) on
`seeds` new seeds at one budget, and reports the median and spread beside the run's own score,
with the Spearman correlation between the two rankings: the figure that says whether the run's
"which setting won" can be trusted.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from islands.config import MigrationConfig, RunConfig
from islands.errors import ConfigError
from islands.results import RunResults
from islands.runs import evolve
from islands.tuning.config import TunerConfig

SEED_BASE = 1 << 40  # re-run seeds lie far from any run seed a user types


@dataclass(frozen=True)
class Candidate:
    """One of the run's top settings: where it came from and the run's score for it."""

    rank: int  # in the run's ranking, 1 = best
    source: str  # island id, or island#segment
    settings: Mapping[str, Any]
    score: float  # what the run ranked it by (higher is better)
    by: str  # the name of that score


@dataclass(frozen=True)
class Row:
    candidate: Candidate
    results: tuple[float, ...]  # the re-runs' best fitness, one per seed

    @property
    def median(self) -> float:
        return statistics.median(self.results) if self.results else -math.inf


def _key(settings: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in settings.items()))


def candidates(res: RunResults, top: int) -> list[Candidate]:
    """The run's `top` settings, best first (distinct settings: a setting's best showing)."""
    rows: list[tuple[str, Mapping[str, Any], float, str]] = []
    segs = res.segments()
    if segs:
        for s in segs:  # best first already
            settings = {k[len("setting."):]: v for k, v in s.items() if k.startswith("setting.")}
            rows.append((f"{s['island']}#{s['segment']}", settings, s["best"] if s["best"] is not None else -math.inf,
                         "segment best"))
    else:
        migrating = bool(res.config.migration.every) and len(res.islands()) > 1
        for island in res.islands():
            st = res.status(island)
            if st is None:
                continue
            by = "own_log_gain" if migrating and st.own_log_gain is not None else \
                "own_gain" if migrating else "best_ever"
            value = getattr(st, by)
            rows.append((island, dict(res.run.overrides(island)), value if value is not None else -math.inf, by))
        rows.sort(key=lambda r: -r[2])
    out: list[Candidate] = []
    seen: set[Any] = set()
    for source, settings, score, by in rows:
        if _key(settings) in seen:
            continue
        seen.add(_key(settings))
        out.append(Candidate(len(out) + 1, source, dict(settings), score, by))
        if len(out) == top:
            break
    if not out or not any(c.settings for c in out):
        raise ConfigError(f"{res.root}: no island or segment with settings of its own to confirm "
                          "(a run launched with --vary has them)")
    return out


def default_evaluations(res: RunResults) -> int:
    """An island's budget in the run: its per-island evaluation limit, else the most any island spent."""
    if res.config.max_evaluations is not None:
        return int(res.config.max_evaluations)
    spent = [st.evaluations for st in map(res.status, res.islands()) if st is not None and st.evaluations]
    if not spent:
        raise ConfigError(f"{res.root}: no island has recorded its evaluations yet; give --evaluations")
    return int(max(spent))


def isolated_config(config: RunConfig, settings: Mapping[str, Any], seed: int, evaluations: int) -> RunConfig:
    """One island with `settings`, alone: no migration, no tuner, `evaluations` its only limit."""
    base = dataclasses.replace(config, migration=MigrationConfig(every=0), tuner=TunerConfig(), seed=seed,
                               generations=None, max_evaluations=evaluations, evaluation_budget=None,
                               target=None, stagnation_limit=0, stop_when="all")
    return base.with_overrides(dict(settings))


def _rerun(config: RunConfig) -> float:
    """One isolated island in a throw-away run directory: its best fitness."""
    with tempfile.TemporaryDirectory(prefix="islands-confirm-") as tmp:
        return evolve("island-00", Path(tmp) / "run", config, log=lambda m: None).best


def confirm(res: RunResults, *, top: int = 3, seeds: int = 5, evaluations: int | None = None, workers: int = 1,
            on_result: Callable[[int, int], None] | None = None) -> list[Row]:
    """Re-run the run's top settings alone on `seeds` new seeds each; rows in the run's order."""
    if top < 1 or seeds < 1 or workers < 1:
        raise ConfigError(f"--top, --seeds and --workers must be at least 1, got {top}, {seeds}, {workers}")
    chosen = candidates(res, top)
    budget = evaluations if evaluations is not None else default_evaluations(res)
    jobs = [(i, isolated_config(res.config, c.settings, SEED_BASE + res.config.seed * 1000 + s, budget))
            for i, c in enumerate(chosen) for s in range(seeds)]
    found: dict[int, list[float]] = {i: [] for i in range(len(chosen))}
    if workers == 1:
        for n, (i, cfg) in enumerate(jobs, 1):
            found[i].append(_rerun(cfg))
            if on_result is not None:
                on_result(n, len(jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            futures = {pool.submit(_rerun, cfg): i for i, cfg in jobs}
            for n, fut in enumerate(as_completed(futures), 1):
                found[futures[fut]].append(fut.result())
                if on_result is not None:
                    on_result(n, len(jobs))
    return [Row(c, tuple(found[i])) for i, c in enumerate(chosen)]


def ranks(values: Sequence[float]) -> list[float]:
    """1 = highest; ties share their mean rank."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two equally long score lists (None below 3 items or without spread)."""
    if len(a) != len(b) or len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / var if var else None
