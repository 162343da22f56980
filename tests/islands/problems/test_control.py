"""Control tasks: fitness definitions, physics against scalar references, batching."""
from __future__ import annotations

import math

import pytest
import torch

from islands.errors import ConfigError
from islands.problems import make_problem
from islands.problems.control import CartPole, Xor
from islands.problems.double_pole import DoublePole, generalisation_starts
from islands.problems.tasks import NetworkProblem

CPU = torch.device("cpu")


class Fixed:
    """A fake policy: network i always answers outputs[i] (one value per call, or per pattern)."""

    def __init__(self, outputs: list) -> None:
        self.out = torch.as_tensor(outputs, dtype=torch.float32)
        self.size = self.out.shape[0]
        self.calls = 0

    def reset(self, batch: int) -> None:
        self.batch = batch

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        assert obs.shape[:2] == (self.size, self.batch)
        out = self.out if self.out.ndim == 2 else self.out[:, None].expand(self.size, obs.shape[1])
        return out[..., None]


class Linear:
    """Policy sigmoid(obs . w + b) per network: a readable controller for the pole tasks."""

    def __init__(self, w: list[list[float]], b: list[float]) -> None:
        self.w = torch.tensor(w, dtype=torch.float64)
        self.b = torch.tensor(b, dtype=torch.float64)
        self.size = self.w.shape[0]

    def reset(self, batch: int) -> None:
        pass

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        z = (obs.double() * self.w[:, None, :]).sum(-1) + self.b[:, None]
        return torch.sigmoid(z)[..., None].float()


# ----------------------------------------------------------------------------- xor

def test_xor_fitness_is_4_minus_sse_when_solved_and_below_3_otherwise():
    perfect, close, one_wrong, half = [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], [0.1, 0.9, 0.9, 0.6], [0.5] * 4
    fit = Xor().evaluate(Fixed([perfect, close, one_wrong, half]), CPU)
    assert fit[0] == pytest.approx(4.0)
    assert fit[1] == pytest.approx(4 - (0.01 + 0.01 + 0.04 + 0.09), abs=1e-6)
    # SSE 0.39 < 1 but the last output is on the wrong side: not solved, so below the target.
    assert fit[2] == pytest.approx(0.75 * (4 - 0.39), abs=1e-6) and fit[2] < 3.0
    assert fit[3] == pytest.approx(0.75 * 3.0) and fit[3] < 3.0
    p = make_problem("xor")
    assert p.solved_at == 3.0 and p.optimum == 4.0


def test_xor_solved_threshold_matches_classification_exactly():
    gen = torch.Generator().manual_seed(0)
    outs = torch.rand((500, 4), generator=gen)
    fit = Xor().evaluate(Fixed(outs.tolist()), CPU)
    right = ((outs > 0.5) == torch.tensor([False, True, True, False])).all(dim=1)
    assert right.any() and (~right).any()
    assert torch.equal(fit >= 3.0, right)


# ----------------------------------------------------------------------------- cart-pole

def cartpole_reference(policy_w: list[float], b: float, start: list[float], max_steps: int) -> int:
    """Plain-Python Euler simulation of the classic cart-pole, one episode."""
    x, xd, th, thd = start
    for t in range(max_steps):
        obs = (x / 2.4, xd / 2.0, th / (12 * math.pi / 180), thd / 2.0)
        z = sum(o * w for o, w in zip(obs, policy_w)) + b
        force = 10.0 if 1 / (1 + math.exp(-z)) > 0.5 else -10.0
        sin, cos = math.sin(th), math.cos(th)
        temp = (force + 0.05 * thd * thd * sin) / 1.1
        thdd = (9.8 * sin - cos * temp) / (0.5 * (4 / 3 - 0.1 * cos * cos / 1.1))
        xdd = temp - 0.05 * thdd * cos / 1.1
        x, xd, th, thd = x + 0.02 * xd, xd + 0.02 * xdd, th + 0.02 * thd, thd + 0.02 * thdd
        if abs(x) > 2.4 or abs(th) > 12 * math.pi / 180:
            return t
    return max_steps


def test_cartpole_matches_a_scalar_reference_for_every_network_and_episode():
    task = CartPole(max_steps=300, episodes=3, seed=5, noise=0.0)
    ws = [[0.0, 0.0, 0.0, 0.0], [0.1, 0.5, 3.0, 1.0], [-1.0, -2.0, 5.0, 2.0], [0.3, 0.2, 1.0, 0.4]]
    bs = [1.0, 0.0, 0.1, -0.2]
    got = task.evaluate(Linear(ws, bs), CPU)
    starts = task.starts(CPU).tolist()
    for i, (w, b) in enumerate(zip(ws, bs)):
        want = sum(cartpole_reference(w, b, s, 300) for s in starts) / 3
        assert got[i].item() == pytest.approx(want), i
    assert got[0] < 50 and got.max() > got[0]  # always pushing right fails fast


def test_cartpole_start_states_are_fixed_and_small():
    a, b = CartPole(seed=1).starts(CPU), CartPole(seed=1).starts(CPU)
    assert torch.equal(a, b) and a.shape == (10, 4) and a.abs().max() <= 0.05
    assert not torch.equal(a, CartPole(seed=2).starts(CPU))


# ----------------------------------------------------------------------------- double pole

def double_pole_reference(policy, max_steps: int, velocities: bool = True, jiggle: list | None = None,
                          start: list | None = None) -> int:
    """Scalar RK4 transcription of Wieland's equations as in the NEAT experiments.

    Returns the steps balanced; appends |x|+|x'|+|t1|+|t1'| of each balanced step to `jiggle`.
    """
    def deriv(s, force):
        x, xd, t1, t1d, t2, t2d = s
        out = [xd, 0.0, t1d, 0.0, t2d, 0.0]
        fsum = msum = 0.0
        parts = []
        for th, thd, m, l in ((t1, t1d, 0.1, 0.5), (t2, t2d, 0.01, 0.05)):
            ml = m * l
            temp = 0.000002 * thd / ml
            gs = -9.8 * math.sin(th)
            fsum += ml * thd * thd * math.sin(th) + 0.75 * m * math.cos(th) * (temp + gs)
            msum += m * (1 - 0.75 * math.cos(th) ** 2)
            parts.append((math.cos(th), gs, temp, l))
        xdd = (force + fsum) / (msum + 1.0)
        out[1] = xdd
        for j, (cos, gs, temp, l) in zip((3, 5), parts):
            out[j] = -0.75 * (xdd * cos + gs + temp) / l
        return out

    s = list(start) if start is not None else [0.0, 0.0, math.pi / 180, 0.0, 0.0, 0.0]
    for t in range(max_steps):
        obs = [s[0] / 4.8, s[1] / 2, s[2] / 0.52, s[3] / 2, s[4] / 0.52, s[5] / 2]
        force = (policy(obs if velocities else [obs[0], obs[2], obs[4]]) - 0.5) * 20
        for _ in range(2):
            k1 = deriv(s, force)
            k2 = deriv([a + 0.005 * d for a, d in zip(s, k1)], force)
            k3 = deriv([a + 0.005 * d for a, d in zip(s, k2)], force)
            k4 = deriv([a + 0.01 * d for a, d in zip(s, k3)], force)
            s = [a + 0.01 / 6 * (p + 2 * q + 2 * r + w) for a, p, q, r, w in zip(s, k1, k2, k3, k4)]
        if abs(s[0]) > 2.4 or abs(s[2]) > 36 * math.pi / 180 or abs(s[4]) > 36 * math.pi / 180:
            return t
        if jiggle is not None:
            jiggle.append(abs(s[0]) + abs(s[1]) + abs(s[2]) + abs(s[3]))
    return max_steps


@pytest.mark.parametrize("velocities", [True, False])
def test_double_pole_matches_a_scalar_rk4_reference(velocities):
    n = 6 if velocities else 3
    ws = [[0.0] * n, [1.0] * n, [0.5, 2.0, -1.0, 3.0, 0.2, 1.5][:n], [-0.3, 0.4, 5.0, 1.0, -2.0, 0.7][:n]]
    bs = [0.0, -0.3, 0.2, 0.1]
    task = DoublePole(velocities=velocities, max_steps=400)
    got = task.evaluate(Linear(ws, bs), CPU)
    for i, (w, b) in enumerate(zip(ws, bs)):
        want = double_pole_reference(
            lambda o: 1 / (1 + math.exp(-(sum(a * c for a, c in zip(o, w)) + b))), 400, velocities)
        assert got[i].item() == want, (i, got[i].item(), want)
    assert len(set(got.tolist())) > 1  # the controllers differ, so must their scores


def test_double_pole_problems_expose_the_benchmark_settings():
    dpv, dpnv = make_problem("double_pole"), make_problem("double_pole_nv")
    assert (dpv.task.inputs, dpv.solved_at, dpv.task.max_steps) == (6, 100_000.0, 100_000)
    assert (dpnv.task.inputs, dpnv.solved_at, dpnv.task.fitness) == (3, None, "gruau")
    assert make_problem("double_pole_nv", fitness="steps").solved_at == 1000.0
    with pytest.raises(ConfigError, match="gruau"):
        make_problem("double_pole", fitness="fast")


def test_gruau_fitness_matches_its_definition():
    ws = [[0.0] * 3, [0.5, 4.0, -1.0], [1.2, -0.7, 1.9], [-2.4, -5.5, 5.2]]
    bs = [0.0, 0.1, 0.0, 0.2]
    task = DoublePole(velocities=False, max_steps=500, fitness="gruau")
    got = task.evaluate(Linear(ws, bs), CPU)
    lasted = []
    for i, (w, b) in enumerate(zip(ws, bs)):
        wiggle: list[float] = []
        t = double_pole_reference(lambda o: 1 / (1 + math.exp(-(sum(a * c for a, c in zip(o, w)) + b))),
                                  500, velocities=False, jiggle=wiggle)
        want = 0.1 * t / 1000 + (0.9 * 0.75 / sum(wiggle[-100:]) if t >= 100 else 0.0)
        assert got[i].item() == pytest.approx(want, rel=1e-5), i  # float32 policy outputs
        lasted.append(t)
    assert min(lasted) < 100 <= max(lasted)  # both branches of the definition are exercised


def test_the_generalisation_grid_is_gruaus_625_starts():
    q, v = generalisation_starts(CPU)
    assert q.shape == v.shape == (3, 625)
    assert not q[2].any() and not v[2].any()  # the short pole starts upright and at rest
    deg = math.pi / 180
    for row, half_range in ((q[0], 2.16), (v[0], 1.35), (q[1], 3.6 * deg), (v[1], 8.6 * deg)):
        levels = sorted(set(round(x / half_range, 9) for x in row.tolist()))
        assert levels == [-0.9, -0.5, 0.0, 0.5, 0.9]
    assert len({tuple(c) for c in torch.cat([q[:2], v[:2]]).T.tolist()}) == 625


def test_generalisation_counts_the_grid_starts_each_network_balances():
    ws = [[0.0, 0.0, 0.0], [0.5, 4.0, -1.0], [-2.4, -5.5, 5.2]]
    bs = [0.0, 0.1, 0.2]
    task = DoublePole(velocities=False, fitness="gruau")
    score = task.generalisation(Linear(ws, bs), CPU, steps=60)
    q, v = generalisation_starts(CPU)
    steps, _ = task.play(Linear(ws, bs), q, v, CPU, 60)
    assert torch.equal(score, (steps >= 60).sum(dim=1)) and score.shape == (3,)
    # Spot-check starts of the grid against the scalar reference (state order x, x', t1, t1', t2, t2').
    for j in (0, 312, 401, 624):
        start = [q[0, j], v[0, j], q[1, j], v[1, j], 0.0, 0.0]
        for i, (w, b) in enumerate(zip(ws, bs)):
            want = double_pole_reference(lambda o: 1 / (1 + math.exp(-(sum(a * c for a, c in zip(o, w)) + b))),
                                         60, velocities=False, start=[float(x) for x in start])
            assert steps[i, j].item() == want, (i, j)
    assert len(set(steps.flatten().tolist())) > 3  # the starts differ, so do the episodes


# ----------------------------------------------------------------------------- as problems

def test_network_problems_size_their_genome_from_the_layers():
    p = make_problem("cartpole", hidden="8,3")
    assert isinstance(p, NetworkProblem) and p.spec.sizes == (4, 8, 3, 1)
    assert p.dim == (4 + 1) * 8 + (8 + 1) * 3 + (3 + 1) * 1
    assert make_problem("xor", hidden=0).dim == 3  # a single sigmoid unit
    assert make_problem("xor", 99).dim == make_problem("xor").dim  # dim is ignored
    fit = p.evaluate(torch.zeros((5, p.dim)))
    assert fit.shape == (5,) and fit.dtype == torch.float32
    for bad in ("8,x", -1, 2.5, "0,4"):
        with pytest.raises(ConfigError, match="hidden"):
            make_problem("cartpole", hidden=bad)


def test_neat_networks_play_the_generalisation_starts_in_one_batch_as_one_by_one():
    from islands.algorithms.neat import NeatAlgorithm, NeatConfig

    problem = make_problem("double_pole_nv", max_steps=100)
    algo = NeatAlgorithm(problem, NeatConfig(recurrent=True))
    gen = torch.Generator().manual_seed(0)
    state = algo.evaluate(algo.init(12, 0, gen))
    for g in range(3):
        state = algo.evaluate(algo.step(state, g, gen))
    q, v = generalisation_starts(CPU)
    pick = [0, 100, 311, 624]
    together, _ = problem.task.play(algo.compile(state.genomes), q[:, pick], v[:, pick], CPU, 80)
    for k, j in enumerate(pick):
        alone, _ = problem.task.play(algo.compile(state.genomes), q[:, j:j + 1], v[:, j:j + 1], CPU, 80)
        assert torch.equal(alone[:, 0], together[:, k]), j
    assert len(set(together.flatten().tolist())) > 1
