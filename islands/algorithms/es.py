"""A natural-gradient evolution strategy with antithetic sampling, for networks and vectors.

Each generation draws `n` standard-normal directions `z` and evaluates the `2n` mirrored
samples `center + sigma * z` (rows `0..n-1`) and `center - sigma * z` (rows `n..2n-1`),
clipped to the box for evaluation (the gradient uses the unclipped `z`). Fitness is shaped by
centred ranks (`centered_ranks`: in [-0.5, 0.5], sum 0, blind to any monotone transform, NaN
the worst), then `step` moves the distribution and samples the next generation: a handful of
tensor operations for the whole population.

Two variants (`variant=`), both with population 100 by default:

- `snes` (default; Schaul et al. 2011, separable NES): center += sigma * sum u_i s_i, sigma *=
  exp(lr_sigma / 2 * sum u_i (z_i^2 - 1)), u the centred ranks scaled to sum |u| = 1,
  lr_sigma = (3 + ln D) / (5 sqrt D).
- `pgpe` (Sehnke et al. 2010, with EvoTorch's defaults): symmetric gradient on the center
  followed by ClipUp (normalised gradient, momentum 0.9, speed capped at twice the step),
  sigma by a plain gradient step limited to +-20% per generation.

Chosen by measurement (evaluations to solve, seeds 0-2 unless noted). sphere D=10 to 1e-8:
SNES 11,900-12,800; PGPE never (ClipUp's fixed step length leaves it near f = 5e-3).
rastrigin D=10 to 1e-4: SNES 17,500-22,200 (3/3); PGPE never (f 20-30). xor, seeds 0-9:
SNES 10/10, median 2,700; PGPE 10/10, median 2,300. cartpole: both <= 700 (networks near
zero weights often balance already). double_pole: SNES 3,800-5,300 (3/3); PGPE
8,300-9,900. SNES is as good on networks and the only one that converges
on vector problems. The population: SNES's usual 4 + 3 ln D (12 at D=10) is 6x cheaper on
sphere but collapsed onto local optima on xor (5/10 unsolved) and rastrigin (0/3; 2/3 at
50), so the default is 100.

Continuous control (a network on a gym:* task whose observations are normalised, e.g. MuJoCo)
takes the field's settings instead (OpenAI-ES, EvoTorch's SNES): population 4 + 3 ln D (even)
and sigma 0.02 per weight (`sigma_init` 0.02 / box width). Measured on HalfCheetah-v5 (horizon
200, 700k steps, seed 0, one island, final policy on 100 unseen episodes): population 100 with
sigma 1.0 per weight returned 113; population 100 with 0.02: 1 (34 generations); 20 with 0.02:
497; EvoTorch's SNES (popsize 4 + 3 ln D, radius 0.27) 596. Many small steps beat few wide
ones once the inputs are normalised; xor and rastrigin above need the opposite.

Networks start at zero weights (`center_init="auto"`: the middle of the box for network
tasks, uniform in the box otherwise): a random point of +-5 saturates every tanh, and xor
then failed for half the seeds whatever the population; OpenAI-ES and EvoTorch also start
networks near zero. Benchmarks start at a uniform point: their optimum is often the middle.

State: the center (mean, kept inside the box), per-parameter sigma, the ClipUp velocity
(zeros for SNES), the directions `z` of the current samples and the samples themselves (a
`VectorPopulation`). Provenance: the center carries an origin, birth and lineage (this island
at generation 0; an adopted immigrant's afterwards), and every sample is born at its
generation with the center's origin and lineage, so `foreign_share` says whether the search
distribution descends from another island.

Migration: the island's policies pick emigrants among the samples of the last generation (the
center itself is never evaluated, which would cost an evaluation per generation). Immigrants
join through the view's `adopts = "center"` (see `islands.policies`): only the best screened
immigrant matters; if it beats every current sample, it replaces the worst sample (so
statistics and emigrants see it) and `with_population` moves the center to
`center + immigrant_step * (immigrant - center)` (the immigrant itself by default), it takes
the immigrant's provenance, the ClipUp velocity is reset, and the next `step` only samples
around the new center: the current samples were drawn around the old one and say nothing
about the gradient there. Otherwise the state is returned unchanged.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from islands import operators as ops
from islands.algorithms.params import config_from_params
from islands.algorithms.vector import VectorAlgorithm, VectorPopulation
from islands.errors import ConfigError
from islands.population import Population
from islands.problems import Problem

VARIANTS = ("snes", "pgpe")
CONTROL_SIGMA = 0.02  # continuous control: initial sigma per weight (module docstring)
CENTER_INITS = ("auto", "uniform", "middle")


@dataclass(frozen=True)
class ESConfig:
    """Settings of the ES; None means the variant's default (see the module docstring).

    Attributes:
        variant: "snes" or "pgpe".
        sigma_init: initial sigma of every parameter as a share of its box width (None: 0.1;
            continuous control 0.02 per weight, see the module docstring).
        lr_center: SNES: multiplies the natural-gradient step (1); PGPE: ClipUp step length
            as a share of the mean box width (0.015, i.e. 0.15 for weights in +-5).
        lr_sigma: SNES: (3 + ln D) / (5 sqrt D); PGPE: 0.1.
        center_init: "auto", "uniform" (a uniform point of the box) or "middle".
        momentum, max_speed: PGPE's ClipUp momentum (0.9) and speed cap (2 * lr_center).
        sigma_max_change: PGPE: largest relative change of sigma per generation (0.2).
        immigrant_step: share of the way the center moves to a better immigrant (1: onto it).
    """

    variant: str = "snes"
    center_init: str = "auto"
    sigma_init: float | None = None
    lr_center: float | None = None
    lr_sigma: float | None = None
    momentum: float = 0.9
    max_speed: float | None = None
    sigma_max_change: float = 0.2
    immigrant_step: float = 1.0

    def __post_init__(self) -> None:
        def need(cond: bool, what: str, value: Any) -> None:
            if not cond:
                raise ConfigError(f"es: {what}, got {value!r}")

        need(self.variant in VARIANTS, f"variant must be one of {', '.join(VARIANTS)}", self.variant)
        need(self.center_init in CENTER_INITS, f"center_init must be one of {', '.join(CENTER_INITS)}", self.center_init)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type != "str" and value is not None:
                need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                     f"{f.name} must be a finite number", value)
        for name in ("sigma_init", "lr_center", "lr_sigma", "max_speed", "sigma_max_change"):
            value = getattr(self, name)
            need(value is None or value > 0, f"{name} must be > 0", value)
        need(self.sigma_init is None or self.sigma_init <= 1.0, "sigma_init must be at most 1 (a share of the box width)",
             self.sigma_init)
        need(0.0 <= self.momentum < 1.0, "momentum must be in [0, 1)", self.momentum)
        need(0.0 < self.immigrant_step <= 1.0, "immigrant_step must be in (0, 1]", self.immigrant_step)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "ESConfig":
        """Build from `--algorithm-param` values (strings or numbers); rejects unknown names."""
        return config_from_params(cls, params, "es")

@dataclass(frozen=True)
class ESState:
    """The search distribution, its optimiser memory and the samples drawn from it."""

    pop: VectorPopulation  # [2n, D] clipped samples; rows i and n + i are mirrored
    noise: Tensor  # [n, D] the standard-normal directions z of the samples
    center: Tensor  # [D] the mean the samples were drawn around
    sigma: Tensor  # [D]
    velocity: Tensor  # [D] ClipUp velocity (PGPE), zeros for SNES
    fresh: bool  # the center was just moved by an immigrant: no update from these samples
    provenance: tuple[int, int, int]  # the center's (origin, birth, lineage)


def centered_ranks(fitness: Tensor) -> Tensor:
    """Fitness shaped to ranks spread evenly over [-0.5, 0.5] (best 0.5); sums to 0.

    Depends only on the order of the fitness values, so any increasing transform of the
    fitness gives the same result; NaN ranks worst. Ties are broken by position.
    """
    n = fitness.shape[0]
    order = torch.argsort(ops.rankable(fitness), stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(n, device=fitness.device)
    if n == 1:
        return torch.zeros_like(fitness)
    return ranks.to(fitness.dtype) / (n - 1) - 0.5


def snes_update(center: Tensor, sigma: Tensor, z: Tensor, fitness: Tensor, lr_center: float,
                lr_sigma: float) -> tuple[Tensor, Tensor]:
    """One separable-NES step from mirrored samples (directions `z` [n, D], fitness [2n])."""
    n = z.shape[0]
    u = centered_ranks(fitness) * (2.0 / n)  # sum |u| is ~1, as with NES's own utilities
    plus, minus = u[:n], u[n:]
    grad_center = (plus - minus) @ z  # mirrored samples contribute -z
    grad_sigma = (plus + minus) @ (z * z - 1.0)
    return center + lr_center * sigma * grad_center, sigma * torch.exp(0.5 * lr_sigma * grad_sigma)


def pgpe_update(center: Tensor, sigma: Tensor, velocity: Tensor, z: Tensor, fitness: Tensor,
                step: float, max_speed: float, momentum: float, lr_sigma: float,
                max_change: float) -> tuple[Tensor, Tensor, Tensor]:
    """One PGPE step with symmetric sampling and ClipUp on the center; returns center, sigma, velocity."""
    n = z.shape[0]
    u = centered_ranks(fitness)
    plus, minus = u[:n], u[n:]
    eps = z * sigma
    grad_center = 0.5 * (plus - minus) @ eps / n
    grad_sigma = (0.5 * (plus + minus)) @ ((eps * eps - sigma * sigma) / sigma) / n
    norm = torch.linalg.vector_norm(grad_center)
    direction = torch.where(norm > 0, grad_center / norm.clamp_min(torch.finfo(norm.dtype).tiny), 0.0)
    velocity = momentum * velocity + step * direction
    speed = torch.linalg.vector_norm(velocity)
    velocity = velocity * torch.clamp(max_speed / speed.clamp_min(torch.finfo(speed.dtype).tiny), max=1.0)
    change = torch.clamp(lr_sigma * grad_sigma, -max_change * sigma, max_change * sigma)
    return center + velocity, sigma + change, velocity


class NaturalES(VectorAlgorithm[ESState]):
    """The ES on a vector problem (network weights included), in `dtype` on `device`."""

    def __init__(self, problem: Problem, cfg: ESConfig, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(problem, device, dtype)
        self.cfg = cfg
        dim = problem.dim
        network = getattr(problem, "spec", None) is not None
        self.middle = cfg.center_init == "middle" or (cfg.center_init == "auto" and network)
        # Continuous control (module docstring): a network fed normalised observations.
        self.control = network and getattr(getattr(problem, "task", None), "obs_norm", None) is not None
        width = float(self.width.mean())
        self.sigma_init = cfg.sigma_init if cfg.sigma_init is not None else \
            (min(CONTROL_SIGMA / width, 1.0) if self.control else 0.1)
        snes = cfg.variant == "snes"
        self.lr_center = cfg.lr_center if cfg.lr_center is not None else (1.0 if snes else 0.015)
        if snes:
            self.lr_sigma = cfg.lr_sigma if cfg.lr_sigma is not None else (3 + math.log(dim)) / (5 * math.sqrt(dim))
        else:
            self.lr_sigma = cfg.lr_sigma if cfg.lr_sigma is not None else 0.1
            scale = float(self.width.mean())  # ClipUp lengths are in box widths
            self.step_length = self.lr_center * scale
            self.max_speed = (cfg.max_speed * scale) if cfg.max_speed is not None else 2 * self.step_length
        # sigma never exceeds the box, nor underflows to 0 (a zero sigma could never grow back)
        self.sigma_bounds = (self.width * 1e-30 if dtype == torch.float64 else self.width * 1e-20, self.width)

    def default_population(self) -> int:
        if self.control:  # SNES's own rule, even (mirrored pairs)
            return 2 * math.ceil((4 + 3 * math.log(self.problem.dim)) / 2)
        return 100  # see the module docstring: 4 + 3 ln D collapses on xor and rastrigin

    adopts = "center"  # the best immigrant may recentre the search (module docstring)

    def population(self, state: ESState) -> Population:
        return self.view(state.pop, centre=lambda: (state.center - self.lower) / self.width)

    # -- sampling ------------------------------------------------------------------------
    def sample(self, center: Tensor, sigma: Tensor, pairs: int, provenance: tuple[int, int, int],
               generation: int, gen: torch.Generator) -> tuple[VectorPopulation, Tensor]:
        """`pairs` mirrored pairs around `center`, clipped to the box; and their directions."""
        z = torch.randn((pairs, self.problem.dim), generator=gen, device=self.device, dtype=self.dtype)
        step = sigma * z
        genomes = ops.clip(torch.cat([center + step, center - step]), self.lower, self.upper)
        origin, _, lineage = provenance
        full = lambda v: torch.full((2 * pairs,), v, device=self.device, dtype=torch.int64)  # noqa: E731
        return VectorPopulation(genomes, None, full(origin), full(generation), full(lineage)), z

    def init(self, size: int, island: int, gen: torch.Generator) -> ESState:
        u = torch.rand((self.problem.dim,), generator=gen, device=self.device, dtype=self.dtype)
        if self.middle:
            u = torch.full_like(u, 0.5)  # drawn anyway: the generator advances the same either way
        center = self.lower + u * self.width
        sigma = self.sigma_init * self.width
        provenance = (island, 0, island << 32)
        pop, z = self.sample(center, sigma, max(1, size // 2), provenance, 0, gen)
        return ESState(pop, z, center, sigma, torch.zeros_like(center), False, provenance)

    def step(self, state: ESState, generation: int, gen: torch.Generator) -> ESState:
        fitness = state.pop.fitness
        assert fitness is not None, "step needs an evaluated population"
        center, sigma, velocity = state.center, state.sigma, state.velocity
        if not state.fresh:
            if self.cfg.variant == "snes":
                center, sigma = snes_update(center, sigma, state.noise, fitness, self.lr_center, self.lr_sigma)
            else:
                center, sigma, velocity = pgpe_update(
                    center, sigma, velocity, state.noise, fitness, self.step_length, self.max_speed,
                    self.cfg.momentum, self.lr_sigma, self.cfg.sigma_max_change)
            center = ops.clip(center, self.lower, self.upper)
            sigma = torch.clamp(sigma, *self.sigma_bounds)
        pop, z = self.sample(center, sigma, state.noise.shape[0], state.provenance, generation + 1, gen)
        return ESState(pop, z, center, sigma, velocity, False, state.provenance)

    # -- migration -----------------------------------------------------------------------
    def with_population(self, state: ESState, pop: Population, new_rows: np.ndarray) -> ESState:
        """Recentre on the adopted immigrant (module docstring); `new_rows` holds its row."""
        if not new_rows.size:
            return dataclasses.replace(state, pop=VectorPopulation.of(pop))
        row = int(new_rows[0])
        center = torch.lerp(state.center, pop.genomes[row], self.cfg.immigrant_step)  # exactly x at step 1
        provenance = (int(pop.origin[row]), int(pop.birth[row]), int(pop.lineage[row]))
        return ESState(VectorPopulation.of(pop), state.noise, ops.clip(center, self.lower, self.upper),
                       state.sigma, torch.zeros_like(state.velocity), True, provenance)

    def info(self, state: ESState) -> dict[str, float | int]:
        return {"sigma": float(state.sigma.mean())}

    # -- checkpoints ---------------------------------------------------------------------
    def to_record(self, state: ESState) -> dict[str, Any]:
        cpu = lambda t: t.detach().cpu().numpy()  # noqa: E731
        record = self.population_record(state.pop)
        record.update(noise=cpu(state.noise), center=cpu(state.center), sigma=cpu(state.sigma),
                      velocity=cpu(state.velocity), fresh=bool(state.fresh),
                      provenance=[int(v) for v in state.provenance])
        return record

    def from_record(self, record: dict[str, Any]) -> ESState:
        pop = self.population_from_record(record)
        size, dim = pop.genomes.shape
        if size % 2 or size == 0:
            raise ValueError(f"an ES population holds mirrored pairs; got {size} samples")
        vectors = {}
        for name, shape in (("noise", (size // 2, dim)), ("center", (dim,)), ("sigma", (dim,)), ("velocity", (dim,))):
            if name not in record or np.asarray(record[name]).shape != shape:
                raise ValueError(f"{name} missing or not of shape {shape}")
            vectors[name] = self.tensor(record[name])
        provenance = record.get("provenance")
        if not isinstance(provenance, (list, tuple)) or len(provenance) != 3:
            raise ValueError(f"provenance must be 3 integers, got {provenance!r}")
        if not isinstance(record.get("fresh"), bool):
            raise ValueError(f"fresh must be true or false, got {record.get('fresh')!r}")
        return ESState(pop, vectors["noise"], vectors["center"], vectors["sigma"], vectors["velocity"],
                       record["fresh"], tuple(int(v) for v in provenance))  # type: ignore[arg-type]
