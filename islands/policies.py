"""The island's migration policies (pagmo's s_policy and r_policy), on a `Population` view.

An algorithm never picks emigrants nor merges immigrants: one migration event is
`select` (emigrants, copied out) -> publish -> read -> `screen` (refuse what does not fit,
re-evaluate the rest) -> `replace` (write them into the view) -> `Algorithm.with_population`.
The ranking rules are pure functions on fitness vectors (numpy, maximised, NaN is worst) that
return indices (`select_emigrants`, `replacement_plan`); what "the same genome" means, and
how a genome is copied or written, is the genome kind's (`islands.population.GenomeKind`).

Random draws come from a numpy generator seeded from the island's torch generator
(`numpy_rng`), only when the policy draws (every time for NEAT, `GenomeKind.seed_always`), so
a checkpointed torch state replays them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.random  # noqa: F401  (numpy loads it lazily: pay at import, not mid-run)
import torch

from islands.algorithms.base import numpy_rng
from islands.errors import ConfigError
from islands.population import Migrants, Population, Screened

EMIGRANT_POLICIES = ("best", "tournament")
REPLACEMENT_POLICIES = ("worst", "random", "better")
# From this population on, topk beats numpy's stable sort of the whole fitness vector; below
# it the sort is a few microseconds and torch's per-operation overhead is not (measured on the
# project machine: P=500 sort 7-20 us, topk 12-24 us; P=2000 33 us and 16 us; P=10^4 660 us
# and 29 us).
TOPK_FROM = 1024


def _rankable(fitness: np.ndarray) -> np.ndarray:
    f = np.asarray(fitness, dtype=np.float64)
    if f.ndim != 1:
        raise ConfigError(f"fitness must be a vector, got shape {f.shape}")
    return np.where(np.isnan(f), -np.inf, f)


def select_emigrants(
    fitness: np.ndarray, k: int, policy: str, rng: np.random.Generator | None = None,
    tournament_size: int = 3,
) -> np.ndarray:
    """Indices of `min(k, len(fitness))` distinct individuals to publish.

    "best": the top k, best first (ties keep population order). "tournament": k distinct
    winners of `tournament_size` tournaments among those not yet chosen, which sends good
    but not only the very best genomes, so islands homogenise more slowly.

    Raises:
        ConfigError: unknown policy, k < 0, tournament_size < 1, or no `rng` for "tournament".
    """
    if policy not in EMIGRANT_POLICIES:
        raise ConfigError(f"unknown emigrant policy {policy!r}; known: {', '.join(EMIGRANT_POLICIES)}")
    if k < 0:
        raise ConfigError(f"the number of emigrants must be >= 0, got {k}")
    if tournament_size < 1:
        raise ConfigError(f"tournament size must be >= 1, got {tournament_size}")
    f = _rankable(fitness)
    k = min(k, f.shape[0])
    if policy == "best":
        return np.argsort(-f, kind="stable")[:k]
    if rng is None:
        raise ConfigError("the tournament policy needs a random generator")
    chosen: list[int] = []
    remaining = np.arange(f.shape[0])
    for _ in range(k):  # k is a handful of migrants, not the population
        draw = rng.choice(remaining, size=min(tournament_size, remaining.size), replace=False)
        win = int(draw[np.argmax(f[draw])])
        chosen.append(win)
        remaining = remaining[remaining != win]
    return np.asarray(chosen, dtype=np.int64)


def replacement_plan(
    pop_fitness: np.ndarray,
    imm_fitness: np.ndarray,
    policy: str,
    rng: np.random.Generator | None = None,
    protect: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Which population slots receive which immigrants.

    Returns `(slots, chosen)`, int64 arrays of equal length: immigrant `chosen[i]` replaces
    resident `slots[i]`; slots are distinct, and so are immigrants. "worst": the best
    immigrants replace the worst residents. "random": the best immigrants replace random
    residents. "better": like "worst", but an immigrant is adopted only if it beats the
    resident it would replace. In every policy the `protect` best residents (elites) are
    never replaced and an immigrant with NaN fitness is never adopted.

    Raises:
        ConfigError: unknown policy, protect < 0, or no `rng` for "random".
    """
    if policy not in REPLACEMENT_POLICIES:
        raise ConfigError(f"unknown replacement policy {policy!r}; "
                        f"known: {', '.join(REPLACEMENT_POLICIES)}")
    if protect < 0:
        raise ConfigError(f"protect must be >= 0, got {protect}")
    pop = _rankable(pop_fitness)
    imm = _rankable(imm_fitness)
    order_imm = np.argsort(-imm, kind="stable")
    order_imm = order_imm[~np.isnan(np.asarray(imm_fitness, dtype=np.float64))[order_imm]]
    candidates = np.argsort(pop, kind="stable")[: max(0, pop.shape[0] - protect)]  # worst first
    n = min(order_imm.size, candidates.size)
    chosen = order_imm[:n].astype(np.int64)
    if policy == "worst":
        return candidates[:n].astype(np.int64), chosen
    if policy == "random":
        if rng is None:
            raise ConfigError("the random replacement policy needs a random generator")
        slots = rng.choice(candidates, size=n, replace=False) if n else candidates[:0]
        return np.asarray(slots, dtype=np.int64), chosen
    # "better": the best immigrant against the worst resident, the next against the next
    # worst, ...; kept pairs form a prefix, and the population becomes the best of residents
    # and immigrants together (pagmo's fair_replace), elites aside.
    slots = candidates[:n].astype(np.int64)
    keep = imm[chosen] > pop[slots]
    return slots[keep], chosen[keep]


def timely(batch_generation: int, generation: int, max_lead: int) -> bool:
    """Whether a neighbour's batch, published at `batch_generation`, may be adopted by an
    island at `generation`: not more than `max_lead` generations ahead of it (-1: always).

    On an oversubscribed machine islands start one after another and run at different speeds;
    a neighbour far ahead sends migrants better than anything this island has bred so far,
    they win every tournament and its lineages die out (docs/DESIGN.md, "Asynchronous"). A
    batch of the same event or earlier is what islands in step exchange, and what the
    simulator's defaults were measured on (docs/MIGRATION_DIVERSITY.md). `generation` is on
    the run's clock: an island that joined late (its neighbours already at generation J when it
    started, `Progress.joined_at`) is at J + its own generation, so islands started one after
    another (one per terminal) still exchange. A pure function of generations and the
    checkpointed `joined_at`, so a resumed island decides the same on the same batch.
    """
    return max_lead < 0 or batch_generation <= generation + max_lead


# -- on a population view ------------------------------------------------------------------
NOTHING = np.zeros(0, dtype=np.int64)


def select(pop: Population, k: int, policy: str, gen: torch.Generator) -> Migrants:
    """Copies of `k` residents chosen by `policy` ("best" or "tournament"): the emigrants."""
    draws = policy == "tournament" or pop.kind.seed_always  # "best" draws nothing
    rng = numpy_rng(gen) if draws else None
    big = policy == "best" and len(pop) >= TOPK_FROM
    idx = best_by_topk(pop.fitness, k) if big else None
    if idx is None:
        fitness = np.asarray(pop.fitness if isinstance(pop.fitness, np.ndarray) else pop.fitness.detach().cpu())
        idx = select_emigrants(fitness, k, policy, rng, pop.tournament)
    return pop.kind.take(pop, idx)


_MINUS_INF = float("-inf")


def best_by_topk(fitness: Any, k: int) -> np.ndarray | None:
    """`select_emigrants(fitness, k, "best")` without sorting the population: exactly the same
    indices in the same order, or None where this shortcut does not apply (not a CPU tensor,
    k < 1, NaN or -inf among the best: then the full stable sort decides).

    torch.topk(k + 1) orders by value alone. When its values are strictly decreasing the top k
    and their order are unique, so they are the stable sort's. Otherwise (ties: a GA's elites
    and their clones) the candidates are every resident at least as good as the k-th best, in
    population order, stably sorted by fitness: every one of the stable sort's first k is
    among them, ahead of everything left out, so its first k are the same.
    """
    if not isinstance(fitness, torch.Tensor) or fitness.device.type != "cpu" or fitness.ndim != 1 \
            or k < 1 or not fitness.is_floating_point():
        return None
    n = int(fitness.shape[0])
    values, indices = torch.topk(fitness.detach(), min(k + 1, n))
    if bool((values[:-1] > values[1:]).all()):  # strictly decreasing: NaN or a tie fails it
        return indices[:k].numpy()
    best = values[:k]
    if not bool((best > _MINUS_INF).all()):  # NaN (first in topk, last here) or -inf among them
        return None
    candidates = torch.nonzero(fitness.detach() >= best[-1]).squeeze(1)  # population order
    order = torch.sort(-fitness.detach()[candidates], stable=True).indices[:k]
    return candidates[order].numpy()


def screen(pop: Population, incoming: Migrants, min_distance: float = 0.0) -> Screened:
    """The immigrants that may join `pop`, re-evaluated here (`GenomeKind.screen`)."""
    return pop.kind.screen(pop, incoming, min_distance)


def replace(pop: Population, found: Screened, incoming: Migrants, policy: str,
            gen: torch.Generator) -> tuple[Population, np.ndarray]:
    """`pop` with the screened immigrants adopted; and the rows they took.

    How depends on the algorithm (`Population.adopts`): "replace" applies the run's
    replacement `policy` with `pop.elites` protected; "queue" appends the best immigrants to
    the population's queue (at most half the population waits; the rows returned are then
    the queue's); "center" adopts the best immigrant only if it beats every resident, in the
    worst resident's row. `incoming` is the whole batch `found` was screened from.
    """
    if pop.adopts == "queue":
        return _queue(pop, found, incoming)
    if pop.adopts == "center":
        return _center(pop, found, incoming)
    rng = numpy_rng(gen) if pop.kind.seed_always and len(incoming) else None
    if not len(found):
        return pop, NOTHING
    if rng is None and policy == "random":
        rng = numpy_rng(gen)
    fitness = np.asarray(pop.fitness if isinstance(pop.fitness, np.ndarray) else pop.fitness.detach().cpu())
    slots, chosen = replacement_plan(fitness, found.fitness, policy, rng, protect=pop.elites)
    if slots.size == 0:
        return pop, NOTHING
    return pop.kind.put(pop, slots, found, chosen, incoming), slots


def _queue(pop: Population, found: Screened, incoming: Migrants) -> tuple[Population, np.ndarray]:
    """The best immigrants (not NaN, not queued already) wait for the next generation."""
    queued = pop.queued
    assert queued is not None, "a queueing algorithm shows its queue"
    room = max(1, len(pop) // 2) - len(queued)
    if not len(found) or room <= 0:
        return pop, NOTHING
    ok = ~np.isnan(found.fitness)
    held = queued.genomes.detach().cpu().numpy()
    if held.shape[0]:
        ok &= ~(found.genomes[:, None, :] == held[None]).all(axis=2).any(axis=1)
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(-found.fitness[idx], kind="stable")][:room]
    if idx.size == 0:
        return pop, NOTHING
    return pop.kind.enqueue(pop, found, idx, incoming), len(queued) + np.arange(idx.size, dtype=np.int64)


def _center(pop: Population, found: Screened, incoming: Migrants) -> tuple[Population, np.ndarray]:
    """The best immigrant takes the worst row if it beats every resident (a distribution's
    centre moves toward it: one immigrant at most, the run's policy does not apply)."""
    if not len(found):
        return pop, NOTHING
    fitness = _rankable(np.asarray(pop.fitness.detach().cpu()))
    best = int(np.argmax(np.nan_to_num(found.fitness, nan=-np.inf)))
    if not found.fitness[best] > fitness.max():
        return pop, NOTHING
    slot = np.asarray([int(np.argmin(fitness))], dtype=np.int64)
    return pop.kind.put(pop, slot, found, np.asarray([best], dtype=np.int64), incoming), slot


def emigrate(algo: Any, state: Any, k: int, policy: str, gen: torch.Generator) -> Migrants:
    """`select` on an algorithm's state: what the island publishes (benchmarks and tests)."""
    return select(algo.population(state), k, policy, gen)


def immigrate(algo: Any, state: Any, incoming: Migrants, policy: str, gen: torch.Generator,
              min_distance: float = 0.0) -> tuple[Any, int]:
    """`screen` -> `replace` -> `with_population` on an algorithm's state, as the island's
    migration step does; returns the state and how many immigrants were adopted."""
    pop = algo.population(state)
    changed, rows = replace(pop, screen(pop, incoming, min_distance), incoming, policy, gen)
    return (algo.with_population(state, changed, rows), int(rows.size)) if rows.size else (state, 0)
