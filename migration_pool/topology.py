"""Topologies: who reads whom, as pure functions of the island list.

Islands are ordered by their number; `neighbours(i)` are the islands whose migrants island
`i` reads, among the run's planned islands (the manifest's `planned_islands`) or, for a run
started by hand, the islands `assumed` from those found in the run directory. Every island computes its own sources from the same inputs, without talking to
anyone; "random" redraws k sources per migration event from the run seed, so the draw is
reproducible and needs no coordination either.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from migration_pool.errors import PoolError
from migration_pool.island_ids import island_id, island_number, valid_island_id

TOPOLOGIES = ("ring", "ring2", "full", "random", "star", "none")
MAX_ASSUMED = 4096  # beyond this island number, discovery takes only the islands it found


def assumed(islands: Sequence[str]) -> list[str]:
    """The islands of an unplanned run: island-00 up to the highest number in `islands`.

    Islands started by hand (no planned list in the manifest) are numbered from island-00
    without gaps by convention, so a gap is an island that has not started yet. Counting it
    now keeps every island's neighbours fixed from its first exchange whatever the order in
    which the islands start (island-01 reads island-00 under "ring" even while only island-03
    has started), instead of shifting as islands appear. A missing island just has nothing to
    read. Beyond MAX_ASSUMED the found ids are taken as they are (a stray high number must not
    make every island consider a million).

    Raises:
        PoolError: an id is not like "island-03".
    """
    order = ordered(islands)
    if not order:
        return []
    top = island_number(order[-1])
    if top >= MAX_ASSUMED:
        return order
    return ordered([*order, *(island_id(n) for n in range(top + 1))])


def ordered(islands: Sequence[str]) -> list[str]:
    """Distinct island ids sorted by number (then by spelling).

    Raises:
        PoolError: an id is not like "island-03".
    """
    for island in islands:
        if not valid_island_id(island):
            raise PoolError(f"{island!r} is not an island id like 'island-03'")
    return sorted(set(islands), key=lambda s: (island_number(s), s))


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
