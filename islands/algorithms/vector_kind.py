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
import math

import numpy as np
import torch
from torch import Tensor

from islands.population import GenomeKind, Migrants, Population, Screened
from islands.problems import Problem

_NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
_EPS, _TINY = float(np.finfo(np.float64).eps), float(np.finfo(np.float64).tiny)
_DENSE_REPEATS = 1 << 16  # K * K * D below which a batch's repeats are one comparison
_EARLIER: dict[int, np.ndarray] = {}


class VectorKind(GenomeKind):
    """Genomes that are rows of a [P, D] tensor inside a box."""

    name = "vector"

    def __init__(self, problem: Problem, device: torch.device, dtype: torch.dtype,
                 lower: Tensor, upper: Tensor) -> None:
        self.problem, self.device, self.dtype = problem, device, dtype
        self.lower, self.upper, self.width = lower, upper, upper - lower
        self.host_bounds = (lower.cpu().numpy(), upper.cpu().numpy())
        # The near-duplicate screen's box widths, fixed for the kind's life (not per event).
        width = np.where(self.host_bounds[1] > self.host_bounds[0],
                         self.host_bounds[1] - self.host_bounds[0], 1.0).astype(np.float64)
        # A box of one width for every gene (the usual case) scales the distances once at the
        # end instead of dividing the [P, D] residents at each event.
        uniform = width.size > 0 and bool((width == width.flat[0]).all())
        self._scale: np.ndarray | None = None if uniform else width
        self._width_sq = float(width.flat[0] * width.flat[0]) if uniform else 1.0
        # What most screens return (nothing fresh): empty arrays, so one instance serves all.
        self._nothing = Screened(np.zeros((0, problem.dim)), np.zeros(0), np.zeros(0, dtype=np.int64))

    def take(self, pop: Population, idx: np.ndarray) -> Migrants:
        fit = host(pop.fitness)[idx].astype(np.float64)  # a copy: the state stays untouched
        return Migrants(genomes=take(pop.genomes, idx), fitness=fit, origin=take(pop.origin, idx),
                        birth=take(pop.birth, idx), lineage=take(pop.lineage, idx))

    def screen(self, pop: Population, incoming: Migrants, min_distance: float) -> Screened:
        """See `GenomeKind.screen`; near-duplicate means an RMS distance over genes, as a share
        of the box width, to the nearest resident below `min_distance`: such an immigrant adds
        no diversity, only more copies of a lineage the island already has.

        Vectorised over the batch: the bounds and the batch's own repeats are judged on the
        [K, D] immigrants; copies of a resident come out of the [K, P] distances the
        near-duplicate test computes anyway (a pair at distance ~0 is compared exactly), so
        the residents are read once.
        """
        n, dim = len(incoming), self.problem.dim
        if n == 0:
            return self._nothing
        imm = np.asarray(incoming.genomes).reshape(n, dim).astype(_NUMPY[self.dtype], copy=False)
        lower, upper = self.host_bounds
        residents = host(pop.genomes)
        ok = ((imm >= lower) & (imm <= upper)).all(axis=1) & ~_repeats(imm)
        if min_distance > 0:
            if ok.any():
                nearest, present = self._nearest_resident(residents, imm)
                ok &= ~present & (nearest >= min_distance)
        else:
            ok &= ~_rows_present(imm, residents)
        fresh = np.flatnonzero(ok)
        if fresh.size == 0:
            return self._nothing
        genomes = torch.as_tensor(imm[fresh], device=self.device)
        fitness = self.problem.evaluate(genomes).to(self.dtype)  # never trust a claimed fitness
        return Screened(imm[fresh], host(fitness), fresh)

    def _nearest_resident(self, residents: np.ndarray, imm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each immigrant, the normalised (by box width) RMS distance to its nearest
        resident, and whether a resident is an exact copy of it."""
        a = imm.astype(np.float64, copy=False)
        b = residents.astype(np.float64, copy=False)
        if self._scale is not None:
            a, b = a / self._scale, b / self._scale
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: a [K, P] matrix, never [K, P, D]
        na, nb = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
        sq = na[:, None] + nb[None, :] - 2.0 * (a @ b.T)
        nearest = np.maximum(sq.min(axis=1), 0.0)
        if self._scale is None:
            nearest = nearest / self._width_sq
        # An exact copy x has |x|^2 + |x|^2 - 2 x.x computed in float64: three sums of D
        # products in whatever order einsum and BLAS take, each within D ulp-ish of |x|^2, so
        # |sq| <= (4 D + 8) u |x|^2 (plus D underflows of 2^-1075 each for tiny genes). Every
        # pair under a bound far above that is compared exactly; sums that overflow (a box
        # beyond 1e150) leave the distances unusable for this, and rows are compared instead.
        terms = 4 * a.shape[1] + 16
        tol = terms * (_EPS * (float(na.max()) + float(nb.max())) + _TINY)
        if not math.isfinite(tol):
            return np.sqrt(nearest / imm.shape[1]), _rows_present(imm, residents)
        i, j = np.nonzero(sq <= tol)
        present = np.zeros(imm.shape[0], dtype=bool)
        if i.size:
            present[i[(imm[i] == residents[j]).all(axis=1)]] = True
        return np.sqrt(nearest / imm.shape[1]), present

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


def _rows_present(rows: np.ndarray, resident_rows: np.ndarray) -> np.ndarray:
    """For each row of `rows` [K, D], whether `resident_rows` [P, D] holds an equal row (exactly).

    Compares first genes, then whole rows only for the pairs that agree there:
    O(K*P + hits*D) instead of O(K*P*D). (With a near-duplicate distance, `screen` finds
    copies among the [K, P] distances instead.)
    """
    i, j = np.nonzero(rows[:, None, 0] == resident_rows[None, :, 0])
    present = np.zeros(rows.shape[0], dtype=bool)
    if i.size:
        same = (rows[i] == resident_rows[j]).all(axis=1)
        present[i[same]] = True
    return present


def _repeats(rows: np.ndarray) -> np.ndarray:
    """For each row of `rows` [K, D], whether an earlier row equals it (as numbers: -0.0 is
    0.0, NaN is never equal, and NaN rows are out of bounds anyway).

    One [K, K, D] comparison for a batch of a few migrants; a large batch (many sources,
    many migrants) compares first genes first, then whole rows where they agree.
    """
    k = rows.shape[0]
    if k * k * rows.shape[1] <= _DENSE_REPEATS:
        same = (rows[:, None, :] == rows[None, :, :]).all(axis=2)
    else:
        i, j = np.nonzero(rows[:, None, 0] == rows[None, :, 0])
        earlier = j < i
        i, j = i[earlier], j[earlier]
        same = np.zeros((k, k), dtype=bool)
        same[i, j] = (rows[i] == rows[j]).all(axis=1)
    return (same & _earlier(k)).any(axis=1)


def _earlier(k: int) -> np.ndarray:
    """[K, K] mask of the pairs (i, j) with j < i, kept per K."""
    mask = _EARLIER.get(k)
    if mask is None:
        mask = _EARLIER[k] = np.tri(k, k, -1, dtype=bool)
    return mask


def host(t: Tensor) -> np.ndarray:
    """`t` as a numpy array: a view (no copy) of a CPU tensor, a host copy otherwise."""
    return t.detach().numpy() if t.device.type == "cpu" else t.detach().cpu().numpy()


def take(t: Tensor, idx: np.ndarray) -> np.ndarray:
    """Rows `idx` of `t` as a new host array (never a view of the population)."""
    if t.device.type == "cpu":
        return t.detach().numpy()[idx]  # fancy indexing copies
    return t[torch.as_tensor(idx, device=t.device)].cpu().numpy()
