"""Compatibility distance and speciation, on whole populations at once.

Distance (NEAT paper, with structural gene identity): delta = c_disjoint * D / N + c_weight *
W, where D counts connection genes present in only one genome (keys are (src, dst) pairs, so
there is no separate "excess" count), W is the mean absolute weight difference of matching
genes and N the size of the larger genome (1 for genomes below `normalize_min_genes` genes).

Distances between two sets of genomes are computed densely: every distinct connection key
of both sets gets a column, each genome a row of weights and a presence mask, and matching
counts and weight differences become a matrix product and a broadcast sum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from islands.algorithms.neat.config import NeatConfig
from islands.algorithms.neat.genome import Genomes, concat, minimal, owners

_CHUNK = 1 << 22  # elements of the [A, B, K] weight-difference block per slice


def _dense(g: Genomes, col: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    present = np.zeros((len(g), k), dtype=bool)
    weight = np.zeros((len(g), k))
    own = owners(g.conn_off)
    present[own, col] = True
    weight[own, col] = g.weight
    return present, weight


def distances(a: Genomes, b: Genomes, cfg: NeatConfig) -> np.ndarray:
    """Compatibility distance `[len(a), len(b)]` between every genome of `a` and of `b`."""
    ids = np.unique(np.concatenate([a.conn_in, a.conn_out, b.conn_in, b.conn_out]))
    u = ids.size + 1
    key = lambda g: np.searchsorted(ids, g.conn_in) * u + np.searchsorted(ids, g.conn_out)  # noqa: E731
    ka, kb = key(a), key(b)
    cols, inv = np.unique(np.concatenate([ka, kb]), return_inverse=True)
    pa, wa = _dense(a, inv[: ka.size], cols.size)
    pb, wb = _dense(b, inv[ka.size:], cols.size)
    match = pa.astype(np.float64) @ pb.T.astype(np.float64)
    na, nb = pa.sum(axis=1), pb.sum(axis=1)
    disjoint = na[:, None] + nb[None, :] - 2.0 * match
    diff = np.empty_like(match)
    step = max(1, _CHUNK // max(1, len(b) * cols.size))
    for s in range(0, len(a), step):  # slices keep the [A, B, K] block small
        both = pa[s : s + step, None, :] & pb[None, :, :]
        diff[s : s + step] = (np.abs(wa[s : s + step, None, :] - wb[None, :, :]) * both).sum(axis=2)
    size = np.maximum(na[:, None], nb[None, :]).astype(np.float64)
    size = np.where(size < cfg.normalize_min_genes, 1.0, size)
    return cfg.c_disjoint * disjoint / size + cfg.c_weight * diff / np.maximum(match, 1.0)


@dataclass(frozen=True, eq=False)
class Species:
    """The species of a population and their history, one row per species."""

    ids: np.ndarray  # int64 [S]
    reps: Genomes  # [S] representatives, compared against at the next speciation
    best: np.ndarray  # float64 [S] best fitness ever seen in the species
    improved: np.ndarray  # int64 [S] generation at which `best` last rose
    created: np.ndarray  # int64 [S]

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, idx: np.ndarray) -> "Species":
        return Species(self.ids[idx], self.reps.take(idx), self.best[idx], self.improved[idx], self.created[idx])


def speciate(g: Genomes, species: Species, threshold: float, next_id: int, generation: int,
             cfg: NeatConfig) -> tuple[np.ndarray, Species, int]:
    """Assign every genome to a species; returns (row in the new table per genome, table, next id).

    A genome joins the closest representative within `threshold`; genomes near no
    representative found new species, each founder taking every unassigned genome within
    `threshold` of it (one vectorised pass per new species, not per genome). The new table
    keeps the species that have members, in the old order, then the new ones; representatives
    stay the old ones here (`next_representatives` moves them).
    """
    n = len(g)
    row = np.full(n, -1, dtype=np.int64)
    if len(species) and n:
        d = distances(g, species.reps, cfg)
        best = d.argmin(axis=1)
        ok = d[np.arange(n), best] < threshold
        row[ok] = best[ok]
    founders: list[int] = []
    while (row < 0).any():
        free = np.flatnonzero(row < 0)
        first = int(free[0])
        d = distances(g.take(free), g.take([first]), cfg)[:, 0]
        row[free[d < threshold]] = len(species) + len(founders)
        row[first] = len(species) + len(founders)
        founders.append(first)
    count = len(species) + len(founders)
    new = len(founders)
    table = Species(
        ids=np.concatenate([species.ids, np.arange(next_id, next_id + new, dtype=np.int64)]),
        reps=concat([species.reps, g.take(founders)]) if len(species) else g.take(founders),
        best=np.concatenate([species.best, np.full(new, -np.inf)]),
        improved=np.concatenate([species.improved, np.full(new, generation, dtype=np.int64)]),
        created=np.concatenate([species.created, np.full(new, generation, dtype=np.int64)]),
    )
    used = np.bincount(row, minlength=count) > 0
    remap = np.cumsum(used) - 1
    return remap[row], table.take(np.flatnonzero(used)), next_id + new


def next_representatives(g: Genomes, row: np.ndarray, species: Species, cfg: NeatConfig) -> Genomes:
    """For each species, its member closest to the current representative (stable species)."""
    d = distances(g, species.reps, cfg)
    mine = row[:, None] == np.arange(len(species))[None, :]
    pick = np.where(mine, d, np.inf).argmin(axis=0)
    return g.take(pick)


def empty_species() -> Species:
    return Species(np.zeros(0, np.int64), minimal(0, 0, 0, np.random.default_rng(0), 1.0),
                   np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
