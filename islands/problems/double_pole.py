"""Double pole balancing (Wieland 1991) as in the NEAT paper: `double_pole`, `double_pole_nv`.

Two poles on one cart (poles 1 m / 0.1 kg and 0.1 m / 0.01 kg, continuous force
(out - 0.5) * 20 N, RK4 with two 0.01 s steps per action, fail at |x| > 2.4 m or
|theta| > 36 degrees, long pole starts at 1 degree). With velocities: fitness = steps
balanced, solved at 100,000 steps. Without velocities the network sees x, theta1, theta2
only (it needs recurrent connections) and the fitness is Gruau's 0.1 t/1000 + 0.9 * 0.75 /
(sum of |x|+|x'|+|theta1|+|theta1'| over the last 100 steps) over 1,000 steps, with no
automatic target (`fitness="steps"` gives steps and one). `DoublePole.generalisation` is the
NEAT paper's test on the 625 starts of Gruau et al. (1996).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from islands.errors import ConfigError
from islands.nets import Policy
from islands.problems.base import check_dim, real_param
from islands.problems.benchmarks import Builtin
from islands.problems.tasks import NetworkProblem, Task, network_problem

__all__ = ["DOUBLE_POLE", "DoublePole", "double_pole", "double_pole_nv", "generalisation_starts"]

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
    "double_pole": "Double pole balancing with velocities (NEAT paper); solved at 100,000 steps",
    "double_pole_nv": "Double pole balancing without velocities (needs recurrent NEAT); Gruau fitness",
}
DOUBLE_POLE: dict[str, Builtin] = {"double_pole": Builtin(double_pole, _SUMMARY["double_pole"]),
                                   "double_pole_nv": Builtin(double_pole_nv, _SUMMARY["double_pole_nv"])}
