"""Topologies: who reads whom, as pure functions of the island list.

Islands are ordered by their number; `neighbours(i)` are the islands whose migrants island
`i` reads. Every island computes its own sources from the same inputs, without talking to
anyone; "random" redraws k sources per migration event from the run seed, so the draw is
reproducible and needs no coordination either.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from migration_pool.errors import PoolError
from migration_pool.format import ISLAND_ID_RE

TOPOLOGIES = ("ring", "ring2", "full", "random", "star", "none")


def ordered(islands: Sequence[str]) -> list[str]:
    """Distinct island ids sorted by number (then by spelling).

    Raises:
        PoolError: an id is not like "island-03".
    """
    for island in islands:
        if not isinstance(island, str) or not ISLAND_ID_RE.match(island):
            raise PoolError(f"{island!r} is not an island id like 'island-03'")
    return sorted(set(islands), key=lambda s: (int(s.rsplit("-", 1)[1]), s))


def neighbours(
    island: str, islands: Sequence[str], topology: str, *, seed: int = 0, event: int = 0, k: int = 2
) -> list[str]:
    """The islands `island` receives migrants from under `topology`, in island order.

    ring: the previous island (one-way, so migrants travel around the ring); ring2: previous
    and next; full: every other; star: the first island is the hub that reads everyone, the
    others read the hub; random: `k` others drawn afresh for each migration `event` from
    `seed`; none: nobody (isolated islands). `island` need not be in `islands`.

    Raises:
        PoolError: unknown topology, k < 1 for "random", or a malformed island id.
    """
    if topology not in TOPOLOGIES:
        raise PoolError(f"unknown topology {topology!r}; known: {', '.join(TOPOLOGIES)}")
    order = ordered([*islands, island])
    i, n = order.index(island), len(order)
    others = order[:i] + order[i + 1 :]
    if topology == "none" or n == 1:
        return []
    if topology == "ring":
        return [order[(i - 1) % n]]
    if topology == "ring2":
        return sorted({order[(i - 1) % n], order[(i + 1) % n]}, key=order.index)
    if topology == "full":
        return others
    if topology == "star":
        return others if i == 0 else [order[0]]
    if k < 1:
        raise PoolError(f"random topology needs k >= 1, got {k}")
    # A hash, not Python's hash(): the same on every host and interpreter run.
    digest = hashlib.blake2b(f"{seed}:{event}:{island}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    pick = rng.choice(len(others), size=min(k, len(others)), replace=False)
    return [others[j] for j in sorted(pick)]
