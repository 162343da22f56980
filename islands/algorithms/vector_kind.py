"""Real-vector genomes as the island's policies and figures see them.

A `VectorKind` belongs to one vector algorithm (its problem, box, dtype and device). It copies
emigrants to the host, screens immigrants (out of bounds or NaN, already present, repeated in
the batch, near-duplicates of a resident; fitness recomputed here), writes adopted immigrants
into a population out of place, and measures spread and centre in box-normalised units.

Immigrants are checked in numpy on the host, where a handful of small array operations costs
microseconds; torch's per-operation overhead dominated there.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from islands.population import GenomeKind, Migrants, Population, Screened
from islands.problems import Problem

_NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


class VectorKind(GenomeKind):
    """Genomes that are rows of a [P, D] tensor inside a box."""

    name = "vector"

    def __init__(self, problem: Problem, device: torch.device, dtype: torch.dtype,
                 lower: Tensor, upper: Tensor) -> None:
        self.problem, self.device, self.dtype = problem, device, dtype
        self.lower, self.upper, self.width = lower, upper, upper - lower
        self.host_bounds = (lower.cpu().numpy(), upper.cpu().numpy())

    def take(self, pop: Population, idx: np.ndarray) -> Migrants:
        fit = host(pop.fitness)[idx].astype(np.float64)  # a copy: the state stays untouched
        return Migrants(genomes=take(pop.genomes, idx), fitness=fit, origin=take(pop.origin, idx),
                        birth=take(pop.birth, idx), lineage=take(pop.lineage, idx))

    def screen(self, pop: Population, incoming: Migrants, min_distance: float) -> Screened:
        """See `GenomeKind.screen`; near-duplicate means an RMS distance over genes, as a share
        of the box width, to the nearest resident below `min_distance`: such an immigrant adds
        no diversity, only more copies of a lineage the island already has."""
        n, dim = len(incoming), self.problem.dim
        empty = Screened(np.zeros((0, dim)), np.zeros(0), np.zeros(0, dtype=np.int64))
        if n == 0:
            return empty
        imm = np.asarray(incoming.genomes).reshape(n, dim).astype(_NUMPY[self.dtype], copy=False)
        lower, upper = self.host_bounds
        ok = ((imm >= lower) & (imm <= upper)).all(axis=1)
        ok &= ~_rows_present(imm, pop.genomes)
        ok &= ~_repeats(imm)
        if min_distance > 0 and ok.any():
            ok &= self._nearest_resident(pop, imm) >= min_distance
        fresh = np.flatnonzero(ok)
        if fresh.size == 0:
            return empty
        genomes = torch.as_tensor(imm[fresh], device=self.device)
        fitness = self.problem.evaluate(genomes).to(self.dtype)  # never trust a claimed fitness
        return Screened(imm[fresh], host(fitness), fresh)

    def _nearest_resident(self, pop: Population, imm: np.ndarray) -> np.ndarray:
        """For each immigrant, the normalised (by box width) RMS distance to its nearest resident."""
        width = np.where(self.host_bounds[1] > self.host_bounds[0],
                         self.host_bounds[1] - self.host_bounds[0], 1.0).astype(np.float64)
        a = imm.astype(np.float64, copy=False)
        b = host(pop.genomes).astype(np.float64, copy=False)
        # A box of one width for every gene (the usual case) scales the distances once at the
        # end instead of dividing the [P, D] residents at each event (the largest single cost
        # of a migration event at D=100, P=500).
        uniform = width.size > 0 and (width == width.flat[0]).all()
        if not uniform:
            a, b = a / width, b / width
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: a [K, P] matrix, never [K, P, D]
        sq = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
        nearest = np.maximum(sq.min(axis=1), 0.0)
        if uniform:
            nearest = nearest / (width.flat[0] * width.flat[0])
        return np.sqrt(nearest / imm.shape[1])

    def put(self, pop: Population, slots: np.ndarray, found: Screened, chosen: np.ndarray,
            incoming: Migrants) -> Population:
        keep = found.rows[chosen]
        rows = (found.genomes[chosen], found.fitness[chosen], np.asarray(incoming.origin)[keep],
                np.asarray(incoming.birth)[keep], np.asarray(incoming.lineage)[keep])
        columns = (pop.genomes, pop.fitness, pop.origin, pop.birth, pop.lineage)
        if self.device.type == "cpu":  # numpy writes into torch clones: no per-op overhead
            new = [t.clone() for t in columns]
            for t, r in zip(new, rows):
                t.numpy()[slots] = r  # same dtypes: genomes and fitness are in self.dtype
        else:
            s = torch.as_tensor(slots, device=self.device)
            new = [t.index_copy(0, s, torch.as_tensor(r, device=self.device).to(t.dtype))
                   for t, r in zip(columns, rows)]
        return dataclasses.replace(pop, genomes=new[0], fitness=new[1], origin=new[2], birth=new[3],
                                   lineage=new[4])

    def enqueue(self, pop: Population, found: Screened, idx: np.ndarray, incoming: Migrants) -> Population:
        """`pop` with immigrants `found[idx]` appended to its queue (CMA-ES's next generation)."""
        rows = found.rows[idx]
        add = (self.tensor(found.genomes[idx]), self.tensor(found.fitness[idx]),
               *(self.tensor(np.asarray(getattr(incoming, k))[rows], torch.int64)
                 for k in ("origin", "birth", "lineage")))
        q = pop.queued
        assert q is not None, "only a population with a queue takes queued immigrants"
        old = (q.genomes, q.fitness, q.origin, q.birth, q.lineage)
        g, f, o, b, li = (torch.cat([a, n]) for a, n in zip(old, add))
        return dataclasses.replace(pop, queued=dataclasses.replace(
            q, genomes=g, fitness=f, origin=o, birth=b, lineage=li, evaluations=0))

    def tensor(self, value: object, dtype: torch.dtype | None = None) -> Tensor:
        """A host array on this kind's device, in its dtype by default."""
        return torch.as_tensor(np.asarray(value), device=self.device).to(dtype or self.dtype)

    def diversity(self, pop: Population) -> float:
        genomes = pop.genomes
        if genomes.numel() >= 4096 and genomes.device.type == "cpu" and genomes.dtype in (torch.float32, torch.float64):
            # torch's column-wise std runs single-threaded at ~5x numpy's (1.7 ms at P=500, D=100)
            lo, hi = self.host_bounds
            return float((genomes.detach().numpy().std(axis=0) / (hi - lo)).mean())
        spread = genomes.std(dim=0, unbiased=False) / self.width
        return float(spread.mean())

    def centroid(self, pop: Population) -> np.ndarray:
        if pop.centre is not None:
            return pop.centre().double().cpu().numpy()
        norm = (pop.genomes.mean(dim=0) - self.lower) / self.width
        return norm.double().cpu().numpy()

    def genome(self, pop: Population, index: int) -> np.ndarray:
        return pop.genomes[index].detach().cpu().numpy().copy()


def _rows_present(rows: np.ndarray, residents: Tensor) -> np.ndarray:
    """For each row of `rows` [K, D], whether `residents` [P, D] holds an equal row (exactly).

    Compares first genes, then whole rows only for the pairs that agree there:
    O(K*P + hits*D) instead of O(K*P*D).
    """
    resident_rows = host(residents)
    i, j = np.nonzero(rows[:, None, 0] == resident_rows[None, :, 0])
    present = np.zeros(rows.shape[0], dtype=bool)
    if i.size:
        same = (rows[i] == resident_rows[j]).all(axis=1)
        present[i[same]] = True
    return present


def _repeats(rows: np.ndarray) -> np.ndarray:
    """For each row of `rows` [K, D], whether an earlier row equals it (as numbers).

    Rows are compared by their bytes after `+ 0.0`, which turns -0.0 into 0.0: for
    floats that are not NaN, equal values then have equal bytes. A NaN row may be
    matched by its bytes where `==` would not match it, but NaN rows are out of bounds and
    refused anyway. K is a handful, so a set of byte strings beats a [K, K, D] comparison.
    """
    seen: set[bytes] = set()
    repeated = np.zeros(rows.shape[0], dtype=bool)
    for i, row in enumerate(rows + 0.0):
        key = row.tobytes()
        if key in seen:
            repeated[i] = True
        else:
            seen.add(key)
    return repeated


def host(t: Tensor) -> np.ndarray:
    """`t` as a numpy array: a view (no copy) of a CPU tensor, a host copy otherwise."""
    return t.detach().numpy() if t.device.type == "cpu" else t.detach().cpu().numpy()


def take(t: Tensor, idx: np.ndarray) -> np.ndarray:
    """Rows `idx` of `t` as a new host array (never a view of the population)."""
    if t.device.type == "cpu":
        return t.detach().numpy()[idx]  # fancy indexing copies
    return t[torch.as_tensor(idx, device=t.device)].cpu().numpy()
