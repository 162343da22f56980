"""A run's evaluation budget: one total for the run, a share for each planned island.

`--max-evaluations N` is what the whole run may spend (`RunConfig.evaluation_budget`); an island
stops on its share, `RunConfig.max_evaluations`, which `--max-evaluations-per-island` sets
directly. A run records both: the total as given and the share each island got when the run
was planned (`for_islands`), so a resumed island never depends on how many islands the
command that resumes it names. Manifests written before run budgets existed record only the
per-island figure and resume with it (`explicit_for` compares a typed total against it).

Either budget lifts the default generation limit (`RunConfig` resolves `generations`), so a
budget is the limit unless `--generations` is given too; the earlier of the two then stops.

Pure functions on configs, no torch: the launcher plans with them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from islands.config import RunConfig
from islands.errors import ConfigError


def share(total: int, islands: int) -> int:
    """Each island's share of `total` evaluations over `islands` islands (rounded down: a
    budget is never exceeded by the split, only by an island's last generation)."""
    if islands < 1:
        raise ConfigError(f"a budget needs at least one island, got {islands}")
    per = total // islands
    if per < 1:
        raise ConfigError(f"--max-evaluations {total} is less than one evaluation for each of {islands} islands")
    return per


def budget_refusal(per_island: int | None, population: int | None, total: int | None = None) -> str | None:
    """Why an evaluation budget cannot work with this population, or None.

    An island evaluates its whole first population before it looks at any budget, so a
    budget below one generation's population would end every island after its first
    population, spending more than it was given: refused before the run starts rather than
    silently overrun. (Checked for new runs only: an old manifest stays readable.)
    """
    per = per_island if per_island is not None else total
    if per is None or population is None or per >= population:
        return None
    split = total is not None and per_island is not None and per_island != total
    if total is None:
        given = f"--max-evaluations-per-island {per_island} is"
    elif not split:
        given = f"--max-evaluations {total} is"
    else:
        given = f"--max-evaluations {total} gives each island {per_island} evaluations,"
    return (f"{given} less than one generation (population {population}): raise the budget"
            + (", lower --population or use fewer islands" if split else " or lower --population"))


def for_islands(config: RunConfig, islands: int) -> RunConfig:
    """The config a new run of `islands` planned islands records: its total budget split into
    each island's share. Raises ConfigError when the two budget options contradict each other
    or a share is smaller than one generation (with a population known before the algorithm
    is built; `islands.plancheck` checks the algorithms' own defaults)."""
    total = config.evaluation_budget
    if total is None:
        out = config
    else:
        per = share(total, islands)
        if config.max_evaluations is not None and config.max_evaluations != per:
            raise ConfigError(_contradiction(total, islands, per, config.max_evaluations))
        out = dataclasses.replace(config, max_evaluations=per)
    refusal = budget_refusal(out.max_evaluations, out.population, out.evaluation_budget)
    if refusal is not None:
        raise ConfigError(refusal)
    return out


def explicit_for(recorded: RunConfig, islands: int, explicit: Mapping[str, Any]) -> dict[str, Any]:
    """What typed budget options assert about an existing run of `islands` planned islands.

    A typed total stands for its share per island, compared with the share the run records; a
    run that records no total (planned with a per-island budget, or before run budgets
    existed) is compared on the share alone, and a mismatch says which option means what.
    """
    out = dict(explicit)
    total = out.get("evaluation_budget")
    if total is None:
        return out
    per = share(total, islands)
    typed = out.get("max_evaluations")
    if typed is not None and typed != per:
        raise ConfigError(_contradiction(total, islands, per, typed))
    out["max_evaluations"] = per
    if recorded.evaluation_budget is None:
        del out["evaluation_budget"]
        if recorded.max_evaluations != per:
            have = ("no evaluation budget" if recorded.max_evaluations is None
                    else f"{recorded.max_evaluations} evaluations per island")
            raise ConfigError(
                f"--max-evaluations {total} is the run's total ({per} for each of its {islands} island(s)), "
                f"but this run records {have}; leave the option out to resume it"
                + (f", or say --max-evaluations-per-island {recorded.max_evaluations}"
                   if recorded.max_evaluations is not None else ""))
    return out


def describe(config: RunConfig, islands: int) -> str:
    """The run's stopping budget for the plan line: "budget 4,000 evaluations (2,000 per
    island), no generation limit", "200 generations", ..."""
    parts = []
    if config.evaluation_budget is not None:
        each = f" ({config.max_evaluations:,} per island)" if config.max_evaluations is not None and islands > 1 else ""
        if config.budget_share == "progress" and islands > 1:
            each = " shared by progress (islands that improve faster spend more)"
        parts.append(f"budget {config.evaluation_budget:,} evaluations{each}")
    elif config.max_evaluations is not None:
        parts.append(f"budget {config.max_evaluations:,} evaluations per island"
                     + (f" ({config.max_evaluations * islands:,} in all)" if islands > 1 else ""))
    if config.generations is None:
        parts.append("no generation limit")
    else:
        parts.append(f"{'at most ' if parts else ''}{config.generations} generations")
    return ", ".join(parts)


def run_total(config: RunConfig, islands: int) -> int | None:
    """What the whole run may spend: its recorded total, else the per-island budget times the
    islands, else None (no budget)."""
    if config.evaluation_budget is not None:
        return config.evaluation_budget
    return None if config.max_evaluations is None else config.max_evaluations * islands


def _contradiction(total: int, islands: int, per: int, typed: int) -> str:
    return (f"--max-evaluations {total} gives each of the {islands} island(s) {per} evaluations, but "
            f"--max-evaluations-per-island says {typed}: give one of them")
