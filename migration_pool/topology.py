"""Topologies: who reads whom, as pure functions of the island list.

Islands are ordered by their number; `neighbours(i)` are the islands whose migrants island
`i` reads. "random" redraws k sources per migration event from the run seed, so every island
can compute its own sources without talking to anyone.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from migration_pool.errors import PoolError

TOPOLOGIES = ("ring", "ring2", "full", "random", "star", "none")


def _ordered(islands: Sequence[str]) -> list[str]:
    return sorted(set(islands), key=lambda s: (int(s.rsplit("-", 1)[1]), s))


def neighbours(
    island: str, islands: Sequence[str], topology: str, *, seed: int = 0, event: int = 0, k: int = 2
) -> list[str]:
    """The islands `island` receives migrants from under `topology`.

    ring: the previous island (one-way); ring2: previous and next; full: every other; star:
    the first island is the hub that reads everyone, the others read the hub; random: `k`
    others drawn afresh for each migration `event`; none: nobody (isolated islands).
    """
    order = _ordered([*islands, island])
    i, n = order.index(island), len(order)
    others = [x for x in order if x != island]
    if topology == "none" or n == 1:
        return []
    if topology == "ring":
        return [order[(i - 1) % n]]
    if topology == "ring2":
        return sorted({order[(i - 1) % n], order[(i + 1) % n]} - {island}, key=order.index)
    if topology == "full":
        return others
    if topology == "star":
        return others if i == 0 else [order[0]]
    if topology == "random":
        digest = hashlib.blake2b(f"{seed}:{event}:{island}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        pick = rng.choice(len(others), size=min(k, len(others)), replace=False)
        return [others[j] for j in sorted(pick)]
    raise PoolError(f"unknown topology {topology!r}; known: {', '.join(TOPOLOGIES)}")
