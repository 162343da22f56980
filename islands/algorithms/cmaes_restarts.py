"""How and where a CMA-ES island restarts: IPOP or BIPOP regimes, and starts away from known basins.

Kept apart from the update (`islands.algorithms.cmaes`) because it is a policy over whole runs,
not over generations: it reads what the run that just stopped spent and where it ended, and
picks the next run's population, step size, evaluation limit and starting mean. Everything it
decides from lives in the island's `CMAState` (plain ints and two small tensors), so a resumed
island makes the same decisions bit for bit; its only randomness is the island's generator.

Regimes (Hansen 2009, "Benchmarking a BI-population CMA-ES on the BBOB-2009 function testbed"):

- `ipop`: every restart multiplies lambda by `ipop_factor` (Auger & Hansen 2005) with the
  default step: larger populations smooth a rugged global structure (Rastrigin-like).
- `bipop`: after the first run, each restart goes to the regime that has spent fewer
  evaluations so far (the first run is booked to the small one, so the first restart is
  large, as in pycma). A large run is an IPOP run: lambda_large grows by `ipop_factor`. A
  small run is a local search: lambda = lambda0 (lambda_large / lambda0)^(U1^2), between the
  default and the current large one, with step sigma0 * 0.01^U2 (U1, U2 uniform in [0, 1]),
  and at most half the large regime's evaluations so far. Small runs find what large ones
  step over: weakly structured landscapes (Schwefel, Gallagher, Lunacek) with many basins.

The ladder across islands (`ladder`, `first_run`): island n's first run starts n mod ladder
rungs up the IPOP ladder, so the islands of an archipelago begin at several population sizes
instead of each climbing from the foot on its share of the budget.

Basins: when a run stops, its final mean, the distance it travelled from its start (capped at
`basin_radius` * sqrt(D), in box widths: a run started that far away still came here) and its
best fitness are kept as one basin, merged into a known basin it falls inside of. At most
`basin_memory` are kept (the worst dropped first). A restart's mean is drawn uniform in the box
as before, but `basin_redraws` more candidates are drawn with it and the first one outside every
known basin is taken; when none is, the one farthest from them (in basin radii) is. A run never
lands in a basin it already knows unless the known basins cover the box. The basins other
islands found (`islands.basins`, given by the island through `CMAES.with_basins`) are kept
apart (`foreign`, the best 4 x `basin_memory` of them) and avoided the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

FIRST, LARGE, SMALL = 0, 1, 2  # the regime of the current run (a state's `regime`)
RESTARTS = ("bipop", "ipop")


@dataclass(frozen=True)
class Plan:
    """The next run's settings and the regimes' books after the run that just stopped."""

    regime: int
    lam: int
    sigma: float  # initial step, a share of the box width
    lam_large: int  # the large regime's current population
    evals_large: int  # evaluations spent by large runs so far
    evals_small: int  # by small runs (and the first run)
    limit: int  # evaluations the next run may spend; 0: no limit


def grow(lam: int, factor: float, max_population: int) -> int:
    """The next IPOP population: lam * factor, capped at max_population (never below lam)."""
    return min(max(lam, int(lam * factor)), max(max_population, lam))


def first_run(lam0: int, island: int, ladder: int, factor: float, max_population: int) -> tuple[int, dict[str, int]]:
    """The first run's population and restart books: island n starts `n mod ladder` rungs up
    the IPOP ladder (lam0 * factor per rung), so an archipelago's islands search at several
    population sizes at once. Like island 0's, the first run counts as BIPOP's small budget,
    so the next run climbs on from it (lambda times ipop_factor) before small runs take their share:
    counted as a large run instead, it was followed by small runs that spent as much again, and
    four such islands solved rotated Rastrigin D=10 in 5 of 10 seeds against 10 of 10.

    Measured on COCO bbob (docs/BENCHMARKS.md, "The IPOP ladder across islands"): four CMA-ES
    islands with ladder 4 solve Weierstrass and the Schaffers functions with 2-3x fewer
    evaluations and more often at D=20, and pay more on unimodal functions."""
    rung = island % ladder
    if not rung:
        return lam0, {}
    lam = grow(lam0, factor ** rung, max_population)
    return lam, {"lam0": lam0, "lam_large": lam}


def ladder_note(cfg: Any, lam0: int, islands: Sequence[int]) -> str | None:
    """What the launch plan says of the ladder (a `CMAESConfig`'s) for these islands (numbers):
    the populations their first runs start at, when they differ from lam0."""
    sizes = sorted({first_run(lam0, n, cfg.ladder, cfg.ipop_factor, cfg.max_population)[0] for n in islands})
    if sizes in ([], [lam0]):
        return None
    return f"first runs at {', '.join(map(str, sizes))}: the IPOP ladder"


def next_run(restarts: str, regime: int, lam: int, lam0: int, lam_large: int, evals_large: int,
             evals_small: int, run_evals: int, sigma0: float, factor: float, max_population: int,
             gen: torch.Generator) -> Plan:
    """The run after one of `regime` and population `lam` stopped after `run_evals` evaluations."""
    if regime == LARGE:
        evals_large += run_evals
    else:
        evals_small += run_evals
    if restarts == "ipop":
        return Plan(LARGE, grow(lam, factor, max_population), sigma0, grow(lam, factor, max_population),
                    evals_large, evals_small, 0)
    if evals_small < max(1, evals_large):
        u1, u2 = torch.rand(2, generator=gen, device=gen.device, dtype=torch.float64).tolist()
        small = int(math.floor(lam0 * (lam_large / lam0) ** (u1 * u1)))
        small = min(max(2, lam0, small), lam_large)
        limit = max(small, int(0.5 * evals_large))
        return Plan(SMALL, small, sigma0 * 0.01 ** u2, lam_large, evals_large, evals_small, limit)
    big = grow(lam_large, factor, max_population)
    return Plan(LARGE, big, sigma0, big, evals_large, evals_small, 0)


def remember(basins: Tensor, centre: Tensor, start: Tensor, best: float, radius_cap: float,
             capacity: int) -> Tensor:
    """`basins` [k, D + 2] (centre, radius, best) with the basin a run found added or merged.

    A centre inside a known basin is the same basin: its radius becomes the larger one and its
    centre and best the better run's. Otherwise it is a new row; beyond `capacity` rows the one
    with the worst best goes. Non-finite centres (a run that blew up) teach nothing.
    """
    n = centre.shape[0]
    if capacity <= 0 or not bool(torch.isfinite(centre).all()):
        return basins
    cap = radius_cap * math.sqrt(n)
    travelled = torch.linalg.vector_norm(centre - start)
    radius = torch.clamp(travelled, max=cap) if bool(torch.isfinite(travelled)) else travelled.new_tensor(cap)
    row = torch.cat([centre, radius.reshape(1), centre.new_tensor([best])])
    if basins.shape[0]:
        dist = torch.linalg.vector_norm(basins[:, :n] - centre, dim=1)
        inside = dist <= basins[:, n]
        if bool(inside.any()):
            i = int(torch.argmin(torch.where(inside, dist, torch.full_like(dist, math.inf))))
            old = basins[i]
            better = row if best > float(old[n + 1]) else old
            merged = torch.cat([better[:n], torch.maximum(old[n], radius).reshape(1), better[n + 1:]])
            return torch.cat([basins[:i], merged.reshape(1, -1), basins[i + 1:]])
    basins = torch.cat([basins, row.reshape(1, -1)])
    if basins.shape[0] > capacity:
        worst = int(torch.argmin(torch.nan_to_num(basins[:, n + 1], nan=-math.inf)))
        basins = torch.cat([basins[:worst], basins[worst + 1:]])
    return basins


def start_point(basins: Tensor, n: int, redraws: int, gen: torch.Generator, device: torch.device,
                dtype: torch.dtype) -> Tensor:
    """A starting mean uniform in [0, 1]^n, redrawn (up to `redraws` times) out of known basins."""
    candidates = torch.rand((1 + (redraws if basins.shape[0] else 0), n), generator=gen, device=device, dtype=dtype)
    if candidates.shape[0] == 1:
        return candidates[0]
    dist = torch.cdist(candidates, basins[:, :n])  # [candidates, basins]
    depth = (dist / basins[:, n].clamp_min(torch.finfo(dtype).tiny)).min(dim=1).values  # in radii
    outside = depth > 1.0
    pick = int(torch.argmax(outside.to(torch.int8))) if bool(outside.any()) else int(torch.argmax(depth))
    return candidates[pick]


def in_genome_units(basins: Tensor, lower: Tensor, width: Tensor) -> np.ndarray:
    """Basins [k, D + 2] moved from the unit box to genome coordinates: centres by the bounds,
    radii by the root mean square of the box widths (exact for a cube)."""
    n = basins.shape[1] - 2
    out = basins.detach().clone()
    out[:, :n] = lower + width * basins[:, :n]
    out[:, n] = basins[:, n] * torch.sqrt((width * width).mean())
    return out.cpu().numpy().astype(np.float64)


def foreign(rows: np.ndarray, lower: Tensor, width: Tensor, radius_cap: float, capacity: int) -> Tensor:
    """Other islands' basins (genome coordinates, validated) back in the unit box, radius capped
    like this island's own, centres clipped to the box, the `capacity` best kept."""
    n = lower.shape[0]
    t = torch.as_tensor(rows, device=lower.device, dtype=lower.dtype).reshape(-1, n + 2)
    t = t[torch.argsort(-t[:, n + 1], stable=True)][:capacity]
    centre = ((t[:, :n] - lower) / width).clamp(0.0, 1.0)
    radius = (t[:, n:n + 1] / torch.sqrt((width * width).mean())).clamp(max=radius_cap * math.sqrt(n))
    return torch.cat([centre, radius, t[:, n + 1:]], dim=1)
