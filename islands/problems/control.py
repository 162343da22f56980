"""Neuroevolution tasks, each simulating a whole population of networks at once in torch.

A task drives a `Policy` (islands.nets): it feeds observations `[P, B, inputs]` and reads
outputs in (0, 1), for every network and every episode in one tensor operation per time step.
The same task serves both modes: "pure" evolves the weights of a fixed MLP (`NetworkProblem.fn`
builds the MLP from the genome rows), "neat" compiles its graphs into a policy
(`islands.algorithms.neat.compile`) and calls `task.evaluate` directly.

- xor: fitness 4 - SSE over the four patterns for a network whose every output is on the right
  side of 0.5 (then SSE < 1, so fitness > 3), and 0.75 * (4 - SSE) <= 2.8125 for one with a
  wrong output. The rescaling keeps the order among unsolved networks (NEAT's shares are
  invariant to it) and makes `solved_at = 3` mean exactly "every output right", so the
  island stops there.
- cartpole: the classic Barto-Sutton-Anderson constants (Euler, tau 0.02 s, +-10 N bang-bang,
  fail at |x| > 2.4 m or |theta| > 12 degrees), step for step gymnasium's CartPole-v1; fitness
  = mean steps balanced over `episodes` (10) starts drawn anew every generation, with Gaussian
  noise (0.3) on the scaled observations; solved when every episode lasts `max_steps`. One
  fixed noise-free start set was solved by random networks at generation 0 and rewarded luck;
  `cartpole_generalisation` is the honest figure: the mean over 100 unseen noise-free starts.
- double_pole / double_pole_nv: Wieland's two poles on one cart as in the NEAT paper (poles
  1 m / 0.1 kg and 0.1 m / 0.01 kg, continuous force (out - 0.5) * 20 N, RK4 with two 0.01 s
  steps per action, fail at |x| > 2.4 m or |theta| > 36 degrees, long pole starts at 1 degree).
  With velocities: fitness = steps balanced, solved at 100,000 steps. Without velocities the
  network sees x, theta1, theta2 only (it needs recurrent connections) and the fitness is
  Gruau's 0.1 t/1000 + 0.9 * 0.75 / (sum of |x|+|x'|+|theta1|+|theta1'| over the last 100
  steps) over 1,000 steps, with no automatic target (`fitness="steps"` gives steps and one).
"""
from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor

from islands.errors import ConfigError
from islands.nets import MLP, MLPSpec, Policy, parse_layers
from islands.problems.base import Problem, check_dim, optional_real, real_param
from islands.problems.benchmarks import Builtin

__all__ = ["CONTROL", "CartPole", "DoublePole", "EpisodeDraw", "NetworkProblem", "Task", "Xor",
           "cartpole_generalisation", "cartpole_step", "generalisation_starts", "network_problem"]

XOR_UNSOLVED_SCALE = 0.75  # unsolved networks score 0.75 * (4 - SSE) < 3


class Task(ABC):
    """An environment that scores a population of policies, larger is better."""

    name: str
    inputs: int  # observation size, without a bias (networks bring their own)
    outputs: int
    solved_at: float | None  # fitness at which the island stops, if any
    optimum: float | None  # best possible fitness, if known
    memory: bool = False  # needs recurrent networks (NEAT then allows cycles by itself)

    @abstractmethod
    def evaluate(self, policy: Policy, device: torch.device) -> Tensor:
        """Fitness `[P]` (float64) of every network of `policy`."""


@dataclass(frozen=True)
class Xor(Task):
    name: str = "xor"
    inputs: int = 2
    outputs: int = 1
    solved_at: float | None = 3.0
    optimum: float | None = 4.0

    def evaluate(self, policy: Policy, device: torch.device) -> Tensor:
        x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], device=device)
        target = torch.tensor([0.0, 1.0, 1.0, 0.0], device=device, dtype=torch.float64)
        policy.reset(4)
        out = policy(x.expand(policy.size, 4, 2))[..., 0].double()
        fit = 4.0 - ((out - target) ** 2).sum(dim=1)
        right = ((out > 0.5) == (target > 0.5)).all(dim=1)
        return torch.where(right, fit.clamp(min=3.0), XOR_UNSOLVED_SCALE * fit)


# Classic cart-pole constants (Barto, Sutton & Anderson 1983).
_G, _MC, _MP, _HALF, _FORCE, _TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
_TWELVE_DEG = 12 * 2 * math.pi / 360  # written as gymnasium does, to the last bit


class EpisodeDraw:
    """The seed of the episodes a stochastic task plays now (mutable, one per task object).

    The island sets it once per generation (`Problem.reseed`) from the island's seed and the
    generation number, so every network of a generation plays the same starts and noise
    (a fair comparison), each generation plays new ones (no luck is rewarded twice), and a
    resumed island replays exactly the episodes it would have played.
    """

    __slots__ = ("seed",)

    def __init__(self) -> None:
        self.seed: int | None = None


@dataclass(frozen=True)
class CartPole(Task):
    """Cart-pole; physics identical to gymnasium's CartPole-v1 (tests/test_control_gym.py).

    `fresh`: every generation plays `episodes` new starts (from `EpisodeDraw`); otherwise
    (or before any reseed) the fixed starts of `seed`. `noise`: standard deviation of
    Gaussian noise added to every (scaled, about unit-range) observation, drawn per
    episode and step and shared by all networks; 0 plays the exact gymnasium task.
    """

    max_steps: int = 500
    episodes: int = 10
    seed: int = 0
    noise: float = 0.3
    fresh: bool = True
    name: str = "cartpole"
    inputs: int = 4
    outputs: int = 1
    draw: EpisodeDraw = field(default_factory=EpisodeDraw, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_dim(self.max_steps, what="cartpole: max_steps")
        check_dim(self.episodes, what="cartpole: episodes")
        noise = real_param("cartpole: noise", self.noise)
        if noise < 0:
            raise ConfigError(f"cartpole: noise must be >= 0, got {self.noise!r}")
        object.__setattr__(self, "noise", noise)

    @property
    def solved_at(self) -> float:  # type: ignore[override]
        return float(self.max_steps)

    optimum = solved_at

    def reseed(self, seed: int) -> None:
        """Play the episodes of `seed` from now on (ignored unless `fresh`)."""
        if self.fresh:
            self.draw.seed = int(seed)

    def starts(self, device: torch.device, seed: int | None = None) -> Tensor:
        """Start states `[E, 4]` of `seed` (default: the fixed `self.seed`), uniform in +-0.05 as gymnasium."""
        gen = torch.Generator().manual_seed(self.seed if seed is None else seed)
        return ((torch.rand((self.episodes, 4), generator=gen, dtype=torch.float64) - 0.5) * 0.1).to(device)

    def evaluate(self, policy: Policy, device: torch.device) -> Tensor:
        seed = self.draw.seed if self.fresh and self.draw.seed is not None else self.seed
        noise = None
        if self.noise > 0:
            gen = torch.Generator().manual_seed(seed ^ 0x5EED)
            noise = (torch.randn((self.max_steps, self.episodes, 4), generator=gen, dtype=torch.float64)
                     * self.noise).to(device)
        return self.play(policy, self.starts(device, seed), device, noise=noise)[0].mean(dim=1)

    def returns(self, policy: Policy, device: torch.device, seeds: list[int]) -> Tensor:
        """Return `[P, len(seeds)]` of one noise-free episode per seed (`islands evaluate` and
        `replay`): gymnasium's exact task from unseen starts, whatever noise training used."""
        one = dataclasses.replace(self, episodes=1)
        starts = torch.cat([one.starts(device, int(s)) for s in seeds]) if seeds else torch.zeros((0, 4))
        return self.play(policy, starts, device)[0]

    def play(self, policy: Policy, starts: Tensor, device: torch.device, *, noise: Tensor | None = None,
             trace: bool = False) -> tuple[Tensor, list[Tensor]]:
        """Steps balanced `[P, E]` from `starts` `[E, 4]` (and the states `[P, E, 4]` after
        every step if `trace`; a failed episode's state stays frozen at its last one).

        `noise` `[T, E, 4]` is added to the scaled observations at step t.
        """
        p, e = policy.size, starts.shape[0]
        state = starts.to(device, torch.float64).expand(p, e, 4).clone()
        scale = torch.tensor([1 / 2.4, 1 / 2.0, 1 / _TWELVE_DEG, 1 / 2.0], device=device, dtype=torch.float64)
        alive = torch.ones((p, e), dtype=torch.bool, device=device)
        steps = torch.zeros((p, e), dtype=torch.float64, device=device)
        states: list[Tensor] = []
        policy.reset(e)
        for t in range(self.max_steps):
            obs = state * scale if noise is None else state * scale + noise[t]
            push = policy(obs.float())[..., 0] > 0.5
            new = cartpole_step(state, torch.where(push, _FORCE, -_FORCE).double())
            alive = alive & (new[..., 0].abs() <= 2.4) & (new[..., 2].abs() <= _TWELVE_DEG)
            steps += alive
            state = torch.where(alive[..., None], new, state)  # failed episodes stay frozen
            if trace:
                states.append(new)
            if t % 16 == 15 and not bool(alive.any()) and not trace:
                break
        return steps, states


UNSEEN_SEED = 1_000_003  # start states no island trains on (their seeds are 63-bit hashes)


def cartpole_generalisation(policy: Policy, device: torch.device, *, episodes: int = 100,
                            seed: int = UNSEEN_SEED, max_steps: int = 500) -> tuple[Tensor, Tensor]:
    """Mean return `[P]` and share of episodes balanced to `max_steps` `[P]` on `episodes`
    unseen starts without noise: gymnasium's CartPole-v1 task, solved at a mean of 500.

    Training rewards luck on a few starts; this is the figure that says whether a champion
    balances the pole from starts it never saw.
    """
    task = CartPole(max_steps=max_steps, episodes=episodes, seed=seed, noise=0.0, fresh=False)
    steps, _ = task.play(policy, task.starts(device), device)
    return steps.mean(dim=1), (steps >= max_steps).double().mean(dim=1)


def cartpole_step(state: Tensor, force: Tensor) -> Tensor:
    """One Euler step (tau 0.02 s) of the classic cart-pole, `[..., 4]` -> `[..., 4]`.

    The same equations, constants and order of updates as gymnasium's CartPole-v1
    ("euler" integrator), so the same start and actions give the same trajectory.
    """
    total, ml = _MC + _MP, _MP * _HALF
    x, xd, th, thd = state.unbind(-1)
    sin, cos = torch.sin(th), torch.cos(th)
    temp = (force + ml * thd * thd * sin) / total
    thdd = (_G * sin - cos * temp) / (_HALF * (4.0 / 3.0 - _MP * cos * cos / total))
    xdd = temp - ml * thdd * cos / total
    return torch.stack([x + _TAU * xd, xd + _TAU * xdd, th + _TAU * thd, thd + _TAU * thdd], dim=-1)


# Double pole (Wieland 1991) as in the NEAT paper's experiments.
_THIRTY_SIX_DEG = 36 * math.pi / 180
_POLE_MASS = (0.1, 0.01)
_POLE_HALF = (0.5, 0.05)
_MUP = 0.000002  # pivot friction


@dataclass(frozen=True)
class DoublePole(Task):
    velocities: bool = True
    max_steps: int = 100_000
    fitness: str = "steps"  # or "gruau"
    start_degrees: float = 1.0
    outputs: int = 1

    def __post_init__(self) -> None:
        check_dim(self.max_steps, what=f"{self.name}: max_steps")
        if self.fitness not in ("steps", "gruau"):
            raise ConfigError(f"{self.name}: fitness must be steps or gruau, got {self.fitness!r}")
        real_param(f"{self.name}: start_degrees", self.start_degrees)

    @property
    def name(self) -> str:  # type: ignore[override]
        return "double_pole" if self.velocities else "double_pole_nv"

    @property
    def inputs(self) -> int:  # type: ignore[override]
        return 6 if self.velocities else 3

    @property
    def memory(self) -> bool:  # type: ignore[override]
        return not self.velocities  # velocities must be inferred from past positions

    @property
    def solved_at(self) -> float | None:  # type: ignore[override]
        return float(self.max_steps) if self.fitness == "steps" else None

    optimum = solved_at

    def evaluate(self, policy: Policy, device: torch.device) -> Tensor:
        q0 = torch.zeros((3, 1), device=device, dtype=torch.float64)
        q0[1] = self.start_degrees * math.pi / 180  # positions x, theta1, theta2
        steps, jiggle = self.play(policy, q0, torch.zeros_like(q0), device, self.max_steps,
                                  gruau=self.fitness == "gruau")
        steps = steps[:, 0]
        if jiggle is None:
            return steps
        f2 = torch.where(steps >= 100, 0.75 / jiggle[:, 0].clamp(min=1e-12), 0.0)
        return 0.1 * steps / 1000.0 + 0.9 * f2

    def generalisation(self, policy: Policy, device: torch.device, steps: int = 1000) -> Tensor:
        """How many of the 625 starts of Gruau et al. (1996) each network balances for
        `steps` steps `[P]`: the NEAT paper's generalisation test for the double pole
        without velocities (a solution must score at least 200)."""
        q0, v0 = generalisation_starts(device)
        balanced, _ = self.play(policy, q0, v0, device, steps)
        return (balanced >= steps).sum(dim=1)

    def play(self, policy: Policy, q0: Tensor, v0: Tensor, device: torch.device, max_steps: int,
             gruau: bool = False) -> tuple[Tensor, Tensor | None]:
        """Steps balanced `[P, B]` from positions `q0` and velocities `v0` `[3, B]` (cart,
        long pole, short pole), and with `gruau` the sum of the Gruau jiggle over the last
        100 balanced steps `[P, B]`."""
        # The time loop is the cost (100,000 steps x ~100 tensor ops for RK4), so every op
        # counts: operands are [3, P * B] (cart and both poles at once), folded with alpha=.
        f64 = dict(device=device, dtype=torch.float64)
        p, b = policy.size, q0.shape[1]
        n = p * b
        q = q0.to(**f64).repeat(1, p)  # column i * b + j: network i, start j
        v = v0.to(**f64).repeat(1, p)
        mass = torch.tensor(_POLE_MASS, **f64)[:, None]
        half = torch.tensor(_POLE_HALF, **f64)[:, None]
        consts = (mass * half, 0.75 * mass, _MUP / (mass * half), -0.75 / half, 1.0 + float(mass.sum()))
        limits = torch.tensor([[2.4], [_THIRTY_SIX_DEG], [_THIRTY_SIX_DEG]], **f64)
        if self.velocities:
            scale = torch.tensor([1 / 4.8, 1 / 2.0, 1 / 0.52, 1 / 2.0, 1 / 0.52, 1 / 2.0], **f64)
            pick = torch.tensor([0, 3, 1, 4, 2, 5], device=device)  # x, x', t1, t1', t2, t2'
        else:
            scale = torch.tensor([1 / 4.8, 1 / 0.52, 1 / 0.52], **f64)
            pick = torch.tensor([0, 1, 2], device=device)
        alive = torch.ones(n, dtype=torch.bool, device=device)
        steps = torch.zeros(n, **f64)
        jiggle = torch.zeros((100, n), **f64) if gruau else None
        policy.reset(b)
        for t in range(max_steps):
            obs = torch.cat([q, v]).index_select(0, pick).T * scale
            force = (policy(obs.reshape(p, b, -1))[..., 0].reshape(n).double() - 0.5) * 20.0
            for _ in range(2):
                q, v = _rk4(q, v, force, 0.01, consts)
            # A failed episode goes on integrating (possibly into NaN) but is never alive again.
            alive &= (q.abs() <= limits).all(dim=0)
            steps += alive
            if jiggle is not None:  # ring buffer of the last 100 balanced steps
                row = q[0].abs() + v[0].abs() + q[1].abs() + v[1].abs()
                jiggle[t % 100] = torch.where(alive, row, jiggle[t % 100])
            if t % 16 == 15 and not bool(alive.any()):
                break
        return steps.reshape(p, b), None if jiggle is None else jiggle.sum(dim=0).reshape(p, b)


# Gruau, Whitley & Pyeatt (1996): x, x', theta1, theta1' each at 0.05, 0.25, 0.5, 0.75 and 0.95
# of their ranges +-2.16 m, +-1.35 m/s, +-3.6 degrees, +-8.6 degrees/s; the short pole at rest.
_GENERAL_RANGES = (2.16, 1.35, 3.6 * math.pi / 180, 8.6 * math.pi / 180)
_GENERAL_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def generalisation_starts(device: torch.device) -> tuple[Tensor, Tensor]:
    """The 625 start states (the 5^4 grid) of the double-pole generalisation test: positions
    and velocities `[3, 625]` (cart, long pole, short pole)."""
    levels = torch.tensor(_GENERAL_LEVELS, dtype=torch.float64)
    axes = [(2 * levels - 1) * r for r in _GENERAL_RANGES]
    x, xd, th, thd = (g.reshape(-1) for g in torch.meshgrid(*axes, indexing="ij"))
    zero = torch.zeros_like(x)
    return torch.stack([x, th, zero]).to(device), torch.stack([xd, thd, zero]).to(device)


def _accel(q: Tensor, v: Tensor, force: Tensor, consts: tuple) -> Tensor:
    """Accelerations `[3, P]` of cart and poles (Wieland's equations, no cart friction)."""
    ml, m75, mup_ml, k, total = consts
    th, thd = q[1:], v[1:]
    sin, cos = torch.sin(th), torch.cos(th)
    u = torch.add(mup_ml * thd, sin, alpha=-9.8)  # pivot friction + g sin(theta), g = -9.8 as in NEAT
    m75cos = m75 * cos
    fi = torch.addcmul(ml * thd * thd * sin, m75cos, u)
    xdd = (force + fi.sum(dim=0)) / (total - (m75cos * cos).sum(dim=0))
    return torch.cat([xdd[None], k * (xdd * cos + u)])


def _rk4(q: Tensor, v: Tensor, force: Tensor, h: float, consts: tuple) -> tuple[Tensor, Tensor]:
    """One classic Runge-Kutta step of (q' = v, v' = accel) with a constant force."""
    a1 = _accel(q, v, force, consts)
    v2 = torch.add(v, a1, alpha=0.5 * h)
    a2 = _accel(torch.add(q, v, alpha=0.5 * h), v2, force, consts)
    v3 = torch.add(v, a2, alpha=0.5 * h)
    a3 = _accel(torch.add(q, v2, alpha=0.5 * h), v3, force, consts)
    v4 = torch.add(v, a3, alpha=h)
    a4 = _accel(torch.add(q, v3, alpha=h), v4, force, consts)
    return (torch.add(q, torch.add(v + v4, v2 + v3, alpha=2.0), alpha=h / 6),
            torch.add(v, torch.add(a1 + a4, a2 + a3, alpha=2.0), alpha=h / 6))


# ----------------------------------------------------------------------------- problems

@dataclass(frozen=True)
class NetworkProblem(Problem):
    """A control task as a problem: for "pure", the genome is the weights of `spec`'s MLP.

    "neat" uses `task` directly with its own networks; `spec` then only sets `dim` for
    algorithms that want vectors.
    """

    task: Task | None = None
    spec: MLPSpec | None = None


def network_problem(
    task: Task, *, hidden: object = 4, activation: str = "tanh",
    weight_bound: float = 5.0, solved_at: object = "task", description: str = "",
) -> NetworkProblem:
    """The problem of evolving an MLP `(task.inputs, *hidden, task.outputs)` on `task`."""
    bound = real_param(f"{task.name}: weight_bound", weight_bound)
    if bound <= 0:
        raise ConfigError(f"{task.name}: weight_bound must be > 0, got {weight_bound!r}")
    spec = MLPSpec((task.inputs, *parse_layers(hidden), task.outputs), activation)
    target = task.solved_at if solved_at == "task" else optional_real(f"{task.name}: solved_at", solved_at)

    def fn(genomes: Tensor) -> Tensor:
        return task.evaluate(MLP(spec, genomes), genomes.device)

    return NetworkProblem(
        name=task.name, dim=spec.dim, lower=-bound, upper=bound, fn=fn,
        optimum=task.optimum, solved_at=target, description=description, task=task, spec=spec,
        dtype="float32", reseed=getattr(task, "reseed", None),
    )


def xor(dim: int = 0, *, hidden: object = 2, activation: str = "tanh", weight_bound: float = 5.0,
        solved_at: object = "task") -> NetworkProblem:
    """XOR: fitness 4 - SSE; solved (>= 3) when every output is on the right side of 0.5."""
    return network_problem(Xor(), hidden=hidden, activation=activation, weight_bound=weight_bound,
                           solved_at=solved_at, description=_SUMMARY["xor"])


def cartpole(dim: int = 0, *, hidden: object = 4, activation: str = "tanh", weight_bound: float = 5.0,
             max_steps: int = 500, episodes: int = 10, noise: float = 0.3, fresh: object = True,
             seed: int = 0, solved_at: object = "task") -> NetworkProblem:
    """Cart-pole (gymnasium's CartPole-v1 physics): mean steps balanced over `episodes` random
    starts, new ones every generation (`fresh`), with observation noise `noise`."""
    task = CartPole(max_steps=max_steps, episodes=episodes, seed=seed, noise=noise, fresh=_flag("fresh", fresh))
    return network_problem(task, hidden=hidden, activation=activation, weight_bound=weight_bound,
                           solved_at=solved_at, description=_SUMMARY["cartpole"])


def _flag(name: str, value: object) -> bool:
    """A boolean parameter from Python or the command line (1/0, true/false, yes/no)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"cartpole: {name} must be 1/0 or true/false, got {value!r}")


def double_pole(dim: int = 0, *, hidden: object = 5, activation: str = "tanh", weight_bound: float = 5.0,
                max_steps: int = 100_000, fitness: str = "steps", start_degrees: float = 1.0,
                solved_at: object = "task") -> NetworkProblem:
    """Double pole balancing with velocities (NEAT paper): steps balanced, solved at 100,000."""
    task = DoublePole(velocities=True, max_steps=max_steps, fitness=fitness, start_degrees=start_degrees)
    return network_problem(task, hidden=hidden, activation=activation, weight_bound=weight_bound,
                           solved_at=solved_at, description=_SUMMARY["double_pole"])


def double_pole_nv(dim: int = 0, *, hidden: object = 5, activation: str = "tanh", weight_bound: float = 5.0,
                   max_steps: int = 1000, fitness: str = "gruau", start_degrees: float = 1.0,
                   solved_at: object = "task") -> NetworkProblem:
    """Double pole balancing without velocities: needs memory (recurrent NEAT); Gruau fitness."""
    task = DoublePole(velocities=False, max_steps=max_steps, fitness=fitness, start_degrees=start_degrees)
    return network_problem(task, hidden=hidden, activation=activation, weight_bound=weight_bound,
                           solved_at=solved_at, description=_SUMMARY["double_pole_nv"])


_SUMMARY = {
    "xor": "XOR network task (pure: MLP weights, neat: graphs); 4 - SSE, solved at 3; param hidden",
    "cartpole": ("Cart-pole (gymnasium CartPole-v1 physics), mean steps over new noisy starts each generation; "
                 "params hidden, episodes=10, noise=0.3, fresh=1, max_steps=500"),
    "double_pole": "Double pole balancing with velocities (NEAT paper); solved at 100,000 steps",
    "double_pole_nv": "Double pole balancing without velocities (needs recurrent NEAT); Gruau fitness",
}


_FACTORIES = {"xor": xor, "cartpole": cartpole, "double_pole": double_pole, "double_pole_nv": double_pole_nv}
CONTROL: dict[str, Builtin] = {name: Builtin(f, _SUMMARY[name]) for name, f in _FACTORIES.items()}
