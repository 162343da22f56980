"""CMA-ES with BIPOP or IPOP restarts (`cmaes`) and its diagonal variant (`sep-cmaes`).

The search runs in normalised coordinates z in [0, 1]^D (genome = lower + width * z), so
per-gene bounds need nothing special and `sigma0` is a share of the box. Updates follow Hansen's
tutorial ("The CMA Evolution Strategy: A Tutorial", positive weights log(mu + 1/2) - log(i),
mu = lambda // 2, CSA with the h_sigma stall, rank-one + rank-mu, and by default the active
update's negative weights for the worst samples: `cmaes_params`); the step-size change per
generation is capped at a factor e as pycma does. `sep-cmaes` (Ros & Hansen 2008) adapts only
the diagonal of C, with c1 and c_mu scaled by (D + 2) / 3: O(D) per sample, for network weights.
`cmaes` itself switches to the diagonal form when D > `diagonal_above`, where a D x D matrix and
its eigendecomposition would dominate the run. The eigendecomposition is redone lazily, every
1 / ((c1 + c_mu) D 10) generations (pycma's gap), and B and D live in the state.

Bounds: a sample outside the box is clipped onto it and the clipped point is evaluated; the
update uses the clipped point's step y = (z_clipped - m) / sigma, shortened to Mahalanobis
length sqrt(D) + 2D/(D+2) if longer, the rule Hansen (2011, "Injecting external solutions
into CMA-ES") gives for solutions not drawn from the distribution. The mean, a convex
combination of points in the box, never leaves it.

Migration: the island's policies pick emigrants from the generation just evaluated. Immigrants
are taken by Hansen's injection (the view's `adopts = "queue"`, see `islands.policies`):
screened immigrants (in bounds, not already present, fitness recomputed, not NaN; at most
lambda // 2 pending, best first; the replacement policy has no meaning here) wait in the
state's `inject` and replace the first samples of the NEXT generation, with their step
clipped like a repaired sample. They are evaluated with that generation, so they move the
mean and C only if they rank among the mu best.

Provenance: every sample of a generation is born on this island at that generation and
carries the origin and lineage of the mean's ancestry: the rank-1 individual of the last
update (an injected immigrant keeps its own provenance). An immigrant that wins a ranking
thus shows as foreign lineage from then on; a restart begins a new local lineage.

Restarts within the island, after pycma's criteria: tolfun
(best fitness over the last 10 + 30D/lambda generations and the current generation both
span < tolfun * max(1, |best|)), tolx (sigma * max(|pc|, sqrt(diag C)) < tolx everywhere,
in box widths), stagnation (median of the best and of the median fitness of the latest 20
of the last 120 + 30D/lambda generations no better than of the first 20), condition of
C > max_condition, NoEffectAxis/NoEffectCoord, non-finite numbers, or a small BIPOP run that
spent its evaluations. What the next run is (`restarts=bipop`: alternating large-population
IPOP runs and small-step local runs, by evaluations spent; `restarts=ipop`: lambda doubles each
time) and where its mean starts (uniform in the box, away from basins earlier runs ended in) is
`islands.algorithms.cmaes_restarts`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from islands import operators as ops
from islands.algorithms import cmaes_restarts as rs
from islands.algorithms.cmaes_params import Params, strategy
from islands.algorithms.params import config_from_params
from islands.algorithms.vector import VectorAlgorithm, VectorPopulation
from islands.errors import ConfigError
from islands.population import Population
from islands.problems import Problem

STOPS = ("tolfun", "tolx", "stagnation", "condition", "noeffectaxis", "noeffectcoord", "nonfinite")


@dataclass(frozen=True)
class CMAESConfig:
    """Settings of `cmaes` / `sep-cmaes` (`--algorithm-param KEY=VALUE`).

    Attributes:
        sigma0: initial step size, a share of the box width (per gene).
        restarts: "bipop" (large and small-step runs, by evaluations spent) or "ipop".
        ipop_factor: population growth factor at each large restart (1 keeps lambda).
        max_population: lambda never grows beyond this.
        max_restarts: restarts allowed per island (0 disables them).
        ladder: island n's first run is `n mod ladder` rungs up the IPOP ladder (1: none).
        basin_memory: basins (final mean, radius, best) an island remembers; 0 forgets them.
        basin_redraws: extra draws a restart's mean gets to start outside the known basins.
        basin_radius: a basin's radius is at most this share of the box diagonal.
        tolfun, tolx, max_condition: restart thresholds (see the module docstring).
        diagonal_above: full `cmaes` adapts only the diagonal of C when D exceeds this.
        active: the covariance also learns from the worst samples (negative weights,
            `cmaes_params`), as pycma does by default; false: the positive update alone.
    """

    sigma0: float = 0.3
    restarts: str = "bipop"
    ipop_factor: float = 2.0
    max_population: int = 2048
    max_restarts: int = 1000
    ladder: int = 4
    basin_memory: int = 16
    basin_redraws: int = 5
    basin_radius: float = 0.2
    tolfun: float = 1e-12
    tolx: float = 1e-12
    max_condition: float = 1e14
    diagonal_above: int = 1000
    active: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "str":
                continue
            if f.type == "bool":
                _need(isinstance(value, bool), f"{f.name} must be true or false", value)
                continue
            kind = int if f.type == "int" else float
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    kind is int and not isinstance(value, int)) or not math.isfinite(value):
                raise ConfigError(f"cmaes: {f.name} must be a finite {kind.__name__}, got {value!r}")
        _need(0.0 < self.sigma0 <= 1.0, "sigma0 must be in (0, 1]", self.sigma0)
        _need(self.ipop_factor >= 1.0, "ipop_factor must be >= 1", self.ipop_factor)
        _need(self.max_population >= 2, "max_population must be >= 2", self.max_population)
        _need(self.max_restarts >= 0, "max_restarts must be >= 0", self.max_restarts)
        _need(self.ladder >= 1, "ladder must be >= 1", self.ladder)
        _need(self.restarts in rs.RESTARTS, f"restarts must be one of {', '.join(rs.RESTARTS)}", self.restarts)
        _need(self.basin_memory >= 0, "basin_memory must be >= 0", self.basin_memory)
        _need(self.basin_redraws >= 0, "basin_redraws must be >= 0", self.basin_redraws)
        _need(0.0 < self.basin_radius <= 1.0, "basin_radius must be in (0, 1]", self.basin_radius)
        for name in ("tolfun", "tolx", "max_condition"):
            _need(getattr(self, name) > 0, f"{name} must be > 0", getattr(self, name))
        _need(self.diagonal_above >= 1, "diagonal_above must be >= 1", self.diagonal_above)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "CMAESConfig":
        """Build from `RunConfig.algorithm_params`; text values are parsed, unknown keys refused."""
        return config_from_params(cls, params, "cmaes")

def _need(cond: bool, what: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"cmaes: {what}, got {value!r}")


@dataclass(frozen=True)
class CMAState:
    """One CMA-ES generation: the samples and the distribution they were drawn from.

    Vectors are in normalised coordinates (box = [0, 1]^D); `pop` holds the genomes in the
    problem's coordinates. `C` is [D, D], or [D] in the diagonal form (then `B` is [0, 0]).
    """

    pop: VectorPopulation  # the last sampled generation
    y: Tensor  # [lambda, D] each sample's step (z - mean) / sigma, as the update uses it
    mean: Tensor  # [D]
    sigma: Tensor  # [] step size
    C: Tensor
    pc: Tensor  # [D]
    ps: Tensor  # [D]
    B: Tensor  # [D, D] eigenvectors of C as of generation `eigen_at`
    Ddiag: Tensor  # [D] square roots of C's eigenvalues (diagonal form: sqrt(C))
    count: int  # updates since the last (re)start
    eigen_at: int  # `count` at the last eigendecomposition
    restarts: int
    best_hist: Tensor  # [H] best fitness per generation since the (re)start, newest last
    median_hist: Tensor  # [H] median fitness, likewise
    hist_len: int  # valid (newest) entries of the histories
    inject: VectorPopulation  # immigrants waiting for the next generation (fitness screened)
    ancestry: Tensor  # [2] int64: origin and lineage of the mean (the last rank-1 individual)
    island: int
    start: Tensor  # [D] the mean this run started from
    basins: Tensor  # [k, D + 2] known basins: centre, radius, best fitness (cmaes_restarts)
    foreign: Tensor  # [k, D + 2] basins other islands found (`with_basins`): restarts start away
    regime: int  # cmaes_restarts.FIRST, LARGE or SMALL: the current run's
    lam0: int  # the first run's lambda
    lam_large: int  # the large regime's current lambda
    evals_large: int  # evaluations spent by finished large runs
    evals_small: int  # by finished small runs and the first run
    run_limit: int  # evaluations this run may spend (a small BIPOP run); 0: no limit
    last_stop: str = ""  # criteria that caused the last restart, comma-separated

    @property
    def lam(self) -> int:
        return int(self.y.shape[0])


class CMAES(VectorAlgorithm[CMAState]):
    """CMA-ES (full or diagonal covariance) with BIPOP or IPOP restarts, on a box-bounded problem."""

    def __init__(self, problem: Problem, cfg: CMAESConfig, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float64, separable: bool = False) -> None:
        super().__init__(problem, device, dtype)
        self.cfg = cfg
        self.dim = problem.dim
        self.separable = separable or problem.dim > cfg.diagonal_above
        self._cache: dict[int, Params] = {}
        self._none = self._empty(0)  # no pending immigrants (never written to: shared by states)

    def default_population(self) -> int:
        return 4 + int(math.floor(3.0 * math.log(self.dim)))

    def population_note(self, population: int, islands: Sequence[int]) -> str | None:
        return rs.ladder_note(self.cfg, population, islands)

    def params(self, lam: int) -> Params:
        """The strategy parameters for population `lam` (cached)."""
        if lam not in self._cache:
            self._cache[lam] = strategy(lam, self.dim, self.separable, self.cfg.active, self.device, self.dtype)
        return self._cache[lam]

    # -- population hooks ------------------------------------------------------------------
    adopts = "queue"  # immigrants wait in `inject` for the next generation (module docstring)

    def population(self, state: CMAState) -> Population:
        # the mean is already in normalised units
        return self.view(state.pop, queued=self.view(state.inject), centre=lambda: state.mean)

    def with_population(self, state: CMAState, pop: Population, new_rows: np.ndarray) -> CMAState:
        assert pop.queued is not None
        return dataclasses.replace(state, pop=VectorPopulation.of(pop), inject=VectorPopulation.of(pop.queued))

    # -- the distribution --------------------------------------------------------------------
    def _fresh(self, lam: int, island: int, restarts: int, hist: int, gen: torch.Generator,
               inject: VectorPopulation | None = None, mean: Tensor | None = None,
               sigma: float | None = None, **books: Any) -> CMAState:
        """A new distribution (C = I), before its first sample.

        The first run's mean is uniform in the box and its step sigma0; a restart passes its
        own (`_restart`) and the restart books (`basins`, `regime`, ... of `CMAState`).
        """
        n, kw = self.dim, dict(device=self.device, dtype=self.dtype)
        if mean is None:
            mean = torch.rand((n,), generator=gen, **kw)
        none = torch.zeros((0, n + 2), **kw)
        books = {"basins": none, "foreign": none, "regime": rs.FIRST, "lam0": lam, "lam_large": lam,
                 "evals_large": 0, "evals_small": 0, "run_limit": 0, **books}
        return CMAState(
            pop=self._none, y=torch.zeros((lam, n), **kw), mean=mean, start=mean,
            sigma=torch.tensor(self.cfg.sigma0 if sigma is None else sigma, **kw),
            C=torch.ones(n, **kw) if self.separable else torch.eye(n, **kw),
            pc=torch.zeros(n, **kw), ps=torch.zeros(n, **kw),
            B=torch.zeros((0, 0), **kw) if self.separable else torch.eye(n, **kw),
            Ddiag=torch.ones(n, **kw), count=0, eigen_at=0, restarts=restarts,
            best_hist=torch.zeros(hist, **kw), median_hist=torch.zeros(hist, **kw), hist_len=0,
            inject=self._none if inject is None else inject,
            ancestry=torch.tensor([island, (island << 32) + restarts], device=self.device, dtype=torch.int64),
            island=island, **books,
        )

    def _empty(self, rows: int) -> VectorPopulation:
        i64 = torch.zeros(rows, device=self.device, dtype=torch.int64)
        return VectorPopulation(torch.zeros((rows, self.dim), device=self.device, dtype=self.dtype),
                                torch.zeros(rows, device=self.device, dtype=self.dtype), i64, i64, i64)

    def _whiten(self, s: CMAState, v: Tensor) -> Tensor:
        """C^(-1/2) v for the rows of v (B and D of the last eigendecomposition)."""
        if self.separable:
            return v / s.Ddiag
        return ((v @ s.B) / s.Ddiag) @ s.B.T

    def _clip_steps(self, s: CMAState, y: Tensor) -> Tensor:
        """Rows of y shortened to Mahalanobis length sqrt(D) + 2D/(D+2) (Hansen 2011)."""
        n = self.dim
        cap = math.sqrt(n) + 2.0 * n / (n + 2.0)
        w = y / s.Ddiag if self.separable else (y @ s.B) / s.Ddiag
        length = torch.linalg.vector_norm(w, dim=1, keepdim=True)
        return y * torch.clamp(cap / length, max=1.0).nan_to_num(1.0)

    def _sample(self, s: CMAState, generation: int, gen: torch.Generator) -> CMAState:
        """Draw `s.lam` samples (pending immigrants replace the first ones), clipped to the box."""
        lam, kw = s.lam, dict(device=self.device, dtype=self.dtype)
        y = torch.randn((lam, self.dim), generator=gen, **kw) * s.Ddiag
        if not self.separable:
            y = y @ s.B.T
        z = s.mean + s.sigma * y
        inside = torch.clamp(z, 0.0, 1.0)
        repaired = (inside != z).any(dim=1, keepdim=True)
        if bool(repaired.any()):  # one host sync; most generations of an interior optimum repair none
            y = torch.where(repaired, self._clip_steps(s, (inside - s.mean) / s.sigma), y)
        genomes = torch.clamp(self.lower + self.width * inside, self.lower, self.upper)
        full = torch.full((lam,), 1, device=self.device, dtype=torch.int64)
        origin, lineage, birth = full * s.ancestry[0], full * s.ancestry[1], full * generation
        k = min(int(s.inject.genomes.shape[0]), lam)
        if k:
            inj = s.inject
            y_inj = self._clip_steps(s, ((inj.genomes[:k] - self.lower) / self.width - s.mean) / s.sigma)
            y, genomes = torch.cat([y_inj, y[k:]]), torch.cat([inj.genomes[:k], genomes[k:]])
            origin, birth = torch.cat([inj.origin[:k], origin[k:]]), torch.cat([inj.birth[:k], birth[k:]])
            lineage = torch.cat([inj.lineage[:k], lineage[k:]])
        pop = VectorPopulation(genomes, None, origin, birth, lineage)
        return dataclasses.replace(s, pop=pop, y=y, inject=self._none)

    def init(self, size: int, island: int, gen: torch.Generator) -> CMAState:
        if size < 2:
            raise ConfigError(f"cmaes needs a population of at least 2, got {size}")
        lam, books = rs.first_run(size, island, self.cfg.ladder, self.cfg.ipop_factor, self.cfg.max_population)
        hist = min(20000, self.params(size).stag_window)  # lam0's windows, the longest its runs use
        return self._sample(self._fresh(lam, island, 0, hist, gen, **books), 0, gen)

    def step(self, state: CMAState, generation: int, gen: torch.Generator) -> CMAState:
        s, p, n = state, self.params(state.lam), self.dim
        assert s.pop.fitness is not None, "step needs an evaluated population"
        fit = ops.rankable(s.pop.fitness)
        order = torch.argsort(fit, descending=True, stable=True)
        best_hist = torch.cat([s.best_hist[1:], fit[order[0]].reshape(1)])
        median_hist = torch.cat([s.median_hist[1:], fit.median().reshape(1)])
        sel = s.y[order[: p.mu]]
        yw = p.weights @ sel
        mean = s.mean + s.sigma * yw  # c_m = 1
        ps = (1.0 - p.cs) * s.ps + math.sqrt(p.cs * (2.0 - p.cs) * p.mueff) * self._whiten(s, yw)
        ps_norm = torch.linalg.vector_norm(ps)
        hsig = (ps_norm / math.sqrt(1.0 - (1.0 - p.cs) ** (2 * (s.count + 1)))
                < (1.4 + 2.0 / (n + 1.0)) * p.chi_n).to(self.dtype)
        pc = (1.0 - p.cc) * s.pc + hsig * math.sqrt(p.cc * (2.0 - p.cc) * p.mueff) * yw
        decay = 1.0 - p.c1 - p.cmu + (1.0 - hsig) * p.c1 * p.cc * (2.0 - p.cc)
        weights = p.weights
        if self.cfg.active and p.negative.numel():
            # The worst samples' weights, each scaled by D / |C^(-1/2) y|^2 so a long step cannot
            # remove more than its share of variance (the tutorial's w-circle: C stays positive).
            # Repaired samples (clipped onto the box: a genome on a wall) were not drawn from the
            # distribution and count 0; and none count when one of the mu best was repaired: its
            # step is shortened, so where the good samples cross a wall the negative update would
            # outweigh the positive one along the way to the optimum (on COCO's linear slope, its
            # optimum in a corner, active needed twice the evaluations).
            on_wall = ((s.pop.genomes <= self.lower) | (s.pop.genomes >= self.upper)).any(dim=1)[order]
            drawn = ~on_wall[p.mu:] & ~on_wall[:p.mu].any()
            worst = s.y[order[p.mu:]]
            length2 = torch.linalg.vector_norm(self._whiten(s, worst), dim=1).square().clamp_min(torch.finfo(self.dtype).tiny)
            negative = p.negative * drawn
            weights = torch.cat([p.weights, negative * (n / length2)])
            decay = decay - p.cmu * negative.sum()  # the tutorial's sum of all weights, less 1
            sel = torch.cat([sel, worst])
        if self.separable:
            C = decay * s.C + p.c1 * pc * pc + p.cmu * (weights @ (sel * sel))
        else:
            C = decay * s.C + p.c1 * torch.outer(pc, pc) + p.cmu * (sel.T * weights) @ sel
            C = 0.5 * (C + C.T)
        sigma = s.sigma * torch.exp(torch.clamp((p.cs / p.ds) * (ps_norm / p.chi_n - 1.0), max=1.0))
        ancestry = torch.stack([s.pop.origin[order[0]], s.pop.lineage[order[0]]])
        s = dataclasses.replace(s, mean=mean, sigma=sigma, C=C, pc=pc, ps=ps, count=s.count + 1,
                                best_hist=best_hist, median_hist=median_hist,
                                hist_len=min(s.hist_len + 1, int(best_hist.shape[0])), ancestry=ancestry)
        stops = self._stops(s, p, fit)
        if s.run_limit and s.count * s.lam >= s.run_limit:
            stops.append("budget")
        if stops and s.restarts < self.cfg.max_restarts:
            return self._restart(s, stops, generation, gen)
        if s.count - s.eigen_at >= p.gap:
            s = self._decompose(s)
        return self._sample(s, generation + 1, gen)

    def _restart(self, s: CMAState, stops: list[str], generation: int, gen: torch.Generator) -> CMAState:
        """The first generation of the next run (`cmaes_restarts`: its regime, lambda, step, mean)."""
        cfg = self.cfg
        # As good as its last generation found it (the run's best-ever may be an injected immigrant's)
        best = float(ops.rankable(s.pop.fitness).max()) if s.pop.fitness is not None else -math.inf
        basins = rs.remember(s.basins, s.mean, s.start, best, cfg.basin_radius, cfg.basin_memory)
        plan = rs.next_run(cfg.restarts, s.regime, s.lam, s.lam0, s.lam_large, s.evals_large, s.evals_small,
                           s.count * s.lam, cfg.sigma0, cfg.ipop_factor, cfg.max_population, gen)
        known = torch.cat([basins, s.foreign])  # its own and the other islands' basins
        mean = rs.start_point(known, self.dim, cfg.basin_redraws, gen, self.device, self.dtype)
        fresh = self._fresh(plan.lam, s.island, s.restarts + 1, int(s.best_hist.shape[0]), gen, s.inject,
                            mean=mean, sigma=plan.sigma, basins=basins, foreign=s.foreign, regime=plan.regime,
                            lam0=s.lam0, lam_large=plan.lam_large, evals_large=plan.evals_large,
                            evals_small=plan.evals_small, run_limit=plan.limit)
        return self._sample(dataclasses.replace(fresh, last_stop=",".join(stops)), generation + 1, gen)

    def _decompose(self, s: CMAState) -> CMAState:
        if self.separable:
            return dataclasses.replace(s, Ddiag=torch.sqrt(s.C.clamp_min(0.0)), eigen_at=s.count)
        evals, B = torch.linalg.eigh(s.C)  # B comes column-major: made row-major, as a resumed one is,
        tiny = torch.finfo(self.dtype).tiny  # since the layout steers matmul's rounding (bit-exact resumes)
        return dataclasses.replace(s, B=B.contiguous(), Ddiag=torch.sqrt(evals.clamp_min(tiny)), eigen_at=s.count)

    def _stops(self, s: CMAState, p: Params, fit: Tensor) -> list[str]:
        """Names of the restart criteria that hold (one host sync for all); those whose window
        is not full are not computed (at D=10 these small ops were a quarter of a generation)."""
        cfg, i = self.cfg, s.count % self.dim
        diag = s.C if self.separable else torch.diagonal(s.C)
        scale = diag.clamp_min(0.0).sqrt()
        w = min(p.stag_window, int(s.best_hist.shape[0]))
        checks: list[tuple[str, Tensor]] = []  # in the order of STOPS
        if s.hist_len >= p.tol_window:
            recent = s.best_hist[-p.tol_window:]
            tol = cfg.tolfun * torch.clamp(recent[-1].abs(), min=1.0)
            checks.append(("tolfun", ((recent.max() - recent.min()) < tol) & ((fit.max() - fit.min()) < tol)))
        checks.append(("tolx", (s.sigma * torch.maximum(s.pc.abs(), scale) < cfg.tolx).all()))
        if s.hist_len >= w and w >= 40:
            b, m = s.best_hist[-w:], s.median_hist[-w:]
            checks.append(("stagnation", (b[-20:].median() <= b[:20].median()) & (m[-20:].median() <= m[:20].median())))
        checks.append(("condition", (s.Ddiag.max() / s.Ddiag.min()) ** 2 > cfg.max_condition))
        if self.separable:  # the principal axes are the coordinates
            checks.append(("noeffectaxis", s.mean[i] + 0.1 * s.sigma * s.Ddiag[i] == s.mean[i]))
        else:
            checks.append(("noeffectaxis", (s.mean + 0.1 * s.sigma * s.Ddiag[i] * s.B[:, i] == s.mean).all()))
        checks.append(("noeffectcoord", (s.mean + 0.2 * s.sigma * scale == s.mean).any()))
        checks.append(("nonfinite", ~(torch.isfinite(s.sigma) & torch.isfinite(s.C).all() & torch.isfinite(s.mean).all())))
        hits = torch.stack([flag for _, flag in checks]).cpu().tolist()
        return [name for (name, _), hit in zip(checks, hits) if hit]

    def basins(self, state: CMAState) -> np.ndarray | None:
        return rs.in_genome_units(state.basins, self.lower, self.width) if self.cfg.basin_memory else None

    def with_basins(self, state: CMAState, rows: np.ndarray) -> CMAState:
        cap = 4 * self.cfg.basin_memory  # room for several islands' best
        return dataclasses.replace(state, foreign=rs.foreign(rows, self.lower, self.width, self.cfg.basin_radius, cap))

    # -- reporting ------------------------------------------------------------------------------
    def info(self, state: CMAState) -> dict[str, float | int]:
        return {"sigma": float(state.sigma), "restarts": state.restarts, "lambda": state.lam,
                "regime": state.regime, "basins": int(state.basins.shape[0])}

    # -- checkpoints ------------------------------------------------------------------------------
    _TENSORS = ("y", "mean", "sigma", "C", "pc", "ps", "B", "Ddiag", "best_hist", "median_hist", "ancestry",
                "start", "basins", "foreign")
    _INTS = ("count", "eigen_at", "restarts", "hist_len", "island", "regime", "lam0", "lam_large",
             "evals_large", "evals_small", "run_limit")

    def to_record(self, state: CMAState) -> dict[str, Any]:
        record: dict[str, Any] = {"pop": self.population_record(state.pop),
                                  "inject": self.population_record(state.inject),
                                  "separable": self.separable, "last_stop": state.last_stop}
        record.update({k: getattr(state, k).detach().cpu().numpy() for k in self._TENSORS})
        record.update({k: int(getattr(state, k)) for k in self._INTS})
        return record

    def from_record(self, record: dict[str, Any]) -> CMAState:
        if bool(record["separable"]) != self.separable:
            raise ValueError("the checkpoint's covariance form (full or diagonal) differs from this run's")
        pop = self.population_from_record(record["pop"])
        n, lam = self.dim, int(pop.genomes.shape[0])
        record = {**self._older(record, lam), **record}
        arrays = {k: np.asarray(record[k]) for k in self._TENSORS}
        hist = arrays["best_hist"].shape
        shapes = {"y": (lam, n), "mean": (n,), "sigma": (), "C": (n,) if self.separable else (n, n),
                  "pc": (n,), "ps": (n,), "B": (0, 0) if self.separable else (n, n), "Ddiag": (n,),
                  "best_hist": hist, "median_hist": hist, "ancestry": (2,), "start": (n,),
                  "basins": (arrays["basins"].shape[0], n + 2),
                  "foreign": (arrays["foreign"].shape[0], n + 2)}
        for k, shape in shapes.items():
            if arrays[k].shape != shape or len(hist) != 1:
                raise ValueError(f"{k} has shape {arrays[k].shape}, expected {shape}")
        ints = {k: int(record[k]) for k in self._INTS}
        if ints["regime"] not in (rs.FIRST, rs.LARGE, rs.SMALL) or min(ints["lam0"], ints["lam_large"]) < 1:
            raise ValueError(f"restart books out of range: regime {ints['regime']}, lambda0 {ints['lam0']}")
        tensors = {k: self.tensor(v, torch.int64 if k == "ancestry" else None) for k, v in arrays.items()}
        return CMAState(pop=pop, inject=self.population_from_record(record["inject"]),
                        last_stop=str(record.get("last_stop", "")), **tensors, **ints)

    def _older(self, record: dict[str, Any], lam: int) -> dict[str, Any]:
        """What a checkpoint from before the restart books lacks: no basins known, the current run
        taken as the first (or a large one after restarts), its start unknown (its mean)."""
        mean = np.asarray(record["mean"])
        return {"start": mean, "basins": np.zeros((0, self.dim + 2), dtype=mean.dtype),
                "foreign": np.zeros((0, self.dim + 2), dtype=mean.dtype),
                "regime": rs.LARGE if int(record["restarts"]) else rs.FIRST, "lam0": lam, "lam_large": lam,
                "evals_large": 0, "evals_small": 0, "run_limit": 0}
