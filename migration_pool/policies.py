"""Emigrant selection and immigrant replacement policies (pagmo's s_policy and r_policy).

Pure functions on fitness vectors (numpy, maximised, NaN is worst) that return indices; the
engine applies them to its own population representation. Deduplication of genomes is the
engine's job (only it knows what "the same genome" means); these functions see fitness only.
"""
from __future__ import annotations

import numpy as np
import numpy.random  # noqa: F401  (numpy loads it lazily: pay at import, not mid-run)

from migration_pool.errors import PoolError

EMIGRANT_POLICIES = ("best", "tournament")
REPLACEMENT_POLICIES = ("worst", "random", "better")


def _rankable(fitness: np.ndarray) -> np.ndarray:
    f = np.asarray(fitness, dtype=np.float64)
    if f.ndim != 1:
        raise PoolError(f"fitness must be a vector, got shape {f.shape}")
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
        PoolError: unknown policy, k < 0, tournament_size < 1, or no `rng` for "tournament".
    """
    if policy not in EMIGRANT_POLICIES:
        raise PoolError(f"unknown emigrant policy {policy!r}; known: {', '.join(EMIGRANT_POLICIES)}")
    if k < 0:
        raise PoolError(f"the number of emigrants must be >= 0, got {k}")
    if tournament_size < 1:
        raise PoolError(f"tournament size must be >= 1, got {tournament_size}")
    f = _rankable(fitness)
    k = min(k, f.shape[0])
    if policy == "best":
        return np.argsort(-f, kind="stable")[:k]
    if rng is None:
        raise PoolError("the tournament policy needs a random generator")
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
        PoolError: unknown policy, protect < 0, or no `rng` for "random".
    """
    if policy not in REPLACEMENT_POLICIES:
        raise PoolError(f"unknown replacement policy {policy!r}; "
                        f"known: {', '.join(REPLACEMENT_POLICIES)}")
    if protect < 0:
        raise PoolError(f"protect must be >= 0, got {protect}")
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
            raise PoolError("the random replacement policy needs a random generator")
        slots = rng.choice(candidates, size=n, replace=False) if n else candidates[:0]
        return np.asarray(slots, dtype=np.int64), chosen
    # "better": the best immigrant against the worst resident, the next against the next
    # worst, ...; kept pairs form a prefix, and the population becomes the best of residents
    # and immigrants together (pagmo's fair_replace), elites aside.
    slots = candidates[:n].astype(np.int64)
    keep = imm[chosen] > pop[slots]
    return slots[keep], chosen[keep]
