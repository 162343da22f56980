"""The built-in network tasks xor and cartpole, each simulating a whole population at once.

Both are `Task`s (islands.problems.tasks): "pure" evolves an MLP's weights on them, "neat" its
graphs. The double pole is `islands.problems.double_pole`.

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
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from islands.errors import ConfigError
from islands.nets import Policy
from islands.problems.base import check_dim, real_param
from islands.problems.benchmarks import Builtin
from islands.problems.tasks import NetworkProblem, Task, network_problem

__all__ = ["CONTROL", "CartPole", "EpisodeDraw", "Xor", "cartpole", "cartpole_generalisation", "cartpole_step", "xor"]

XOR_UNSOLVED_SCALE = 0.75  # unsolved networks score 0.75 * (4 - SSE) < 3


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
    """Cart-pole; physics identical to gymnasium's CartPole-v1 (tests/islands/problems/test_cartpole.py).

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


_SUMMARY = {
    "xor": "XOR network task (pure: MLP weights, neat: graphs); 4 - SSE, solved at 3; param hidden",
    "cartpole": ("Cart-pole (gymnasium CartPole-v1 physics), mean steps over new noisy starts each generation; "
                 "params hidden, episodes=10, noise=0.3, fresh=1, max_steps=500"),
}


_FACTORIES = {"xor": xor, "cartpole": cartpole}
CONTROL: dict[str, Builtin] = {name: Builtin(f, _SUMMARY[name]) for name, f in _FACTORIES.items()}
