"""Emigrant selection and immigrant replacement policies (pagmo's s_policy and r_policy).

Pure functions on fitness vectors (numpy, maximised, NaN is worst) that return indices; the
engine applies them to its own population representation.
"""
from __future__ import annotations

import numpy as np

from migration_pool.errors import PoolError


def _rankable(fitness: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(fitness), -np.inf, fitness.astype(np.float64))


def select_emigrants(
    fitness: np.ndarray, k: int, policy: str, rng: np.random.Generator, tournament_size: int = 3
) -> np.ndarray:
    """Indices of `k` distinct individuals to publish.

    "best": the top k. "tournament": k distinct winners of `tournament_size` tournaments,
    which sends good but not only the very best genomes and so spreads less uniformity.
    """
    f = _rankable(fitness)
    k = min(k, f.shape[0])
    if policy == "best":
        return np.argsort(-f, kind="stable")[:k]
    if policy == "tournament":
        chosen: list[int] = []
        remaining = np.arange(f.shape[0])
        for _ in range(k):  # k is a handful of migrants, not the population
            draw = rng.choice(remaining, size=min(tournament_size, remaining.size), replace=False)
            win = int(draw[np.argmax(f[draw])])
            chosen.append(win)
            remaining = remaining[remaining != win]
        return np.asarray(chosen, dtype=np.int64)
    raise PoolError(f"unknown emigrant policy {policy!r}")


def replacement_plan(
    pop_fitness: np.ndarray,
    imm_fitness: np.ndarray,
    policy: str,
    rng: np.random.Generator,
    protect: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Which population slots receive which immigrants.

    Returns `(slots, chosen)`: immigrant `chosen[i]` replaces individual `slots[i]`.
    "worst": the best immigrants replace the worst residents. "random": immigrants replace
    random residents. "better": like "worst" but an immigrant is adopted only if it beats the
    resident it would replace. The `protect` best residents are never replaced (elites).
    """
    pop = _rankable(pop_fitness)
    imm = _rankable(imm_fitness)
    order_imm = np.argsort(-imm, kind="stable")
    candidates = np.argsort(pop, kind="stable")  # worst first
    if protect:
        candidates = candidates[: max(0, pop.shape[0] - protect)]
    n = min(order_imm.size, candidates.size)
    if policy == "worst":
        return candidates[:n], order_imm[:n]
    if policy == "random":
        slots = rng.choice(candidates, size=n, replace=False) if n else candidates[:0]
        return slots, order_imm[:n]
    if policy == "better":
        # Pair the best immigrant with the worst resident, the next with the next-worst, ...
        slots, chosen = candidates[:n], order_imm[:n]
        keep = imm[chosen] > pop[slots]
        return slots[keep], chosen[keep]
    raise PoolError(f"unknown replacement policy {policy!r}")
