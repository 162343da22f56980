"""The built-in cart-pole: gymnasium's physics, new noisy starts every generation, generalisation."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from islands.config import RunConfig, episode_seed
from islands.errors import ConfigError
from islands.island import StopFlag
from islands.nets import MLP
from islands.problems import make_problem
from islands.problems.control import CartPole, cartpole_generalisation, cartpole_step
from islands.runs import evolve
from migration_pool.rundir import RunDir
from support.factories import QUIET, timeless_history

CPU = torch.device("cpu")
HAS_GYM = importlib.util.find_spec("gymnasium") is not None


class Replay:
    """A 'policy' that plays a fixed action sequence `[E, T]` (1 = push right) in every episode."""

    size = 1

    def __init__(self, actions: np.ndarray) -> None:
        self.actions, self.t = torch.as_tensor(actions), 0

    def reset(self, batch: int) -> None:
        self.t = 0

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.actions[:, self.t].double()[None, :, None].expand(obs.shape[0], -1, 1)
        self.t += 1
        return out


def gym_episode(start: np.ndarray, actions: np.ndarray) -> tuple[list[np.ndarray], int]:
    """States after every step and the step (1-based) at which gymnasium's CartPole-v1 ends."""
    import gymnasium

    env = gymnasium.make("CartPole-v1")
    env.reset(seed=0)
    env.unwrapped.state = start.copy()
    states = []
    for t, a in enumerate(actions, start=1):
        _, _, terminated, truncated, _ = env.step(int(a))
        states.append(np.array(env.unwrapped.state))
        if terminated or truncated:
            return states, t
    return states, len(actions)


@pytest.mark.skipif(not HAS_GYM, reason="gymnasium is not installed (pip install gymnasium, or the gym extra)")
def test_the_batched_simulator_follows_gymnasiums_cartpole_trajectory_and_ends_at_the_same_step():
    rng = np.random.default_rng(7)
    episodes = 12
    starts = rng.uniform(-0.05, 0.05, size=(episodes, 4))
    # Mostly random pushes (the pole falls within tens of steps), two episodes with a
    # balancing rule played back as a fixed sequence so that they run to the time limit.
    actions = rng.integers(0, 2, size=(episodes, 500))
    for e in (0, 1):
        s = torch.as_tensor(starts[e])
        for t in range(500):
            actions[e, t] = int(float(s[2] + 0.5 * s[3] + 0.05 * s[1]) > 0)
            s = cartpole_step(s, torch.tensor(10.0 if actions[e, t] else -10.0, dtype=torch.float64))
    task = CartPole(episodes=episodes, noise=0.0, fresh=False)
    steps, trace = task.play(Replay(actions), torch.as_tensor(starts), CPU, trace=True)
    ends = []
    for e in range(episodes):
        want, end = gym_episode(starts[e], actions[e])
        ends.append(end)
        want = np.stack(want)
        # One step from gymnasium's own state gives gymnasium's next state to rounding.
        before = np.concatenate([starts[e][None], want[:-1]])
        force = torch.as_tensor(np.where(actions[e, :end] == 1, 10.0, -10.0))
        np.testing.assert_allclose(cartpole_step(torch.as_tensor(before), force).numpy(), want,
                                   rtol=1e-13, atol=1e-15)
        # The whole trajectory follows it: torch's and numpy's sin differ in the last bit now
        # and then, and the upright pole amplifies that over hundreds of steps (to ~1e-3 at
        # step 500 of an open-loop replay); a falling pole's episode agrees to ~1e-12.
        got = torch.stack([trace[t][0, e] for t in range(end)]).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-2 if end == 500 else 1e-9)
        np.testing.assert_allclose(got[:100], want[:100], rtol=0, atol=1e-9)
        # gymnasium counts the step that drops the pole; balanced steps are one fewer.
        assert steps[0, e].item() == (end if end == 500 else end - 1), e
    assert ends[0] == ends[1] == 500 and min(ends) < 100  # both kinds of episode were checked


def test_the_step_is_the_textbook_euler_step():
    """Without gymnasium: one step from a known state against the equations written out."""
    s = torch.tensor([0.1, -0.2, 0.05, 0.3], dtype=torch.float64)
    x, xd, th, thd = s.tolist()
    temp = (10.0 + 0.05 * thd ** 2 * np.sin(th)) / 1.1
    thdd = (9.8 * np.sin(th) - np.cos(th) * temp) / (0.5 * (4 / 3 - 0.1 * np.cos(th) ** 2 / 1.1))
    xdd = temp - 0.05 * thdd * np.cos(th) / 1.1
    want = [x + 0.02 * xd, xd + 0.02 * xdd, th + 0.02 * thd, thd + 0.02 * thdd]
    np.testing.assert_allclose(cartpole_step(s, torch.tensor(10.0, dtype=torch.float64)).numpy(), want, rtol=1e-14)


def random_networks(problem, count: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand((count, problem.dim), generator=gen) * 2 - 1) * problem.upper


def test_random_networks_no_longer_solve_the_default_task():
    """With one fixed start set and no noise (the old task) some of 250 random networks
    balance every episode; on the default task (10 new starts, noise 0.3) none does."""
    old = make_problem("cartpole", episodes=4, noise=0, fresh=0)
    new = make_problem("cartpole")
    genomes = random_networks(new, 250, 0)
    assert old.evaluate(genomes).max().item() == 500.0
    for seed in (0, 1):
        new.reseed(episode_seed(seed, 0))
        fit = new.evaluate(genomes)
        assert fit.max().item() < 500.0 and fit.median().item() < 20.0


def test_generation_zero_of_an_island_is_not_solved(tmp_path):
    cfg = RunConfig(problem="cartpole", algorithm="pure", population=200, generations=0, seed=4)
    evolve("island-00", tmp_path, cfg, **QUIET)
    assert RunDir(tmp_path).island("island-00").read_history()[0]["best"] < 500.0


def test_episodes_are_the_same_for_the_same_seed_and_new_for_another():
    p = make_problem("cartpole", max_steps=100)
    genomes = random_networks(p, 64, 3)
    p.reseed(11)
    a = p.evaluate(genomes)
    p.reseed(12)
    b = p.evaluate(genomes)
    p.reseed(11)
    assert torch.equal(a, p.evaluate(genomes)) and not torch.equal(a, b)
    fixed = make_problem("cartpole", max_steps=100, fresh=0)
    c = fixed.evaluate(genomes)
    fixed.reseed(12)
    assert torch.equal(c, fixed.evaluate(genomes))  # fresh=0 keeps the starts of `seed`
    quiet = make_problem("cartpole", max_steps=100, noise=0)
    quiet.reseed(11)
    assert not torch.equal(a, quiet.evaluate(genomes))  # the noise is part of the episode


def test_an_interrupted_cartpole_island_resumes_to_the_same_trajectory(tmp_path):
    cfg = RunConfig(problem="cartpole", algorithm="pure", population=24, generations=12, seed=5,
                    problem_params={"max_steps": 60, "episodes": 3}, checkpoint_seconds=0, target=1e9)
    stop = StopFlag()
    evolve("island-00", tmp_path / "x", cfg, stop=stop,
           on_status=lambda s: setattr(stop, "requested", s.generation >= 5), **QUIET)
    second = evolve("island-00", tmp_path / "x", cfg, **QUIET)
    assert second.resumed_from is not None and second.generation == 12
    evolve("island-00", tmp_path / "y", cfg, **QUIET)
    assert timeless_history(tmp_path / "x") == timeless_history(tmp_path / "y")
    best = [r["best"] for r in timeless_history(tmp_path / "y")]
    assert len(set(best)) > 3  # fitness moves with the episodes: the rows compared are not trivial


def test_generalisation_is_measured_on_unseen_noise_free_starts():
    p = make_problem("cartpole", hidden=0)
    # push = sigmoid(w . obs + b) > 0.5: a linear rule on the pole angle and its velocity
    # (balances), the same rule backwards (falls at once), and one on the cart alone.
    w = torch.tensor([[0.0, 0.0, 10.0, 10.0, 0.0], [0.0, 0.0, -10.0, -10.0, 0.0], [5.0, 0.0, 0.0, 0.0, 0.0]])
    mean, solved = cartpole_generalisation(MLP(p.spec, w), CPU, episodes=50)
    assert mean[0].item() == 500.0 and solved[0].item() == 1.0
    assert mean[1].item() < 20.0 and solved[1].item() == 0.0 and solved[2].item() < 1.0
    again, _ = cartpole_generalisation(MLP(p.spec, w), CPU, episodes=50)
    assert torch.equal(mean, again)


def test_evaluate_plays_one_noise_free_episode_per_seed_whatever_the_training_noise():
    """`islands evaluate` / `replay` on the built-in cart-pole go through `returns`: episode k
    starts from seeds[k] and has no noise, so a noisy-trained task and the exact task agree."""
    noisy, exact = make_problem("cartpole", max_steps=200), make_problem("cartpole", max_steps=200, noise=0)
    genomes = random_networks(noisy, 32, 9)
    seeds = [5, 6, 7]
    a = noisy.task.returns(MLP(noisy.spec, genomes), CPU, seeds)
    b = exact.task.returns(MLP(exact.spec, genomes), CPU, seeds)
    assert a.shape == (32, 3) and torch.equal(a, b)
    one = exact.task.returns(MLP(exact.spec, genomes), CPU, [6])
    assert torch.equal(one[:, 0], a[:, 1])  # an episode depends on its own seed only
    noisy.reseed(episode_seed(5, 0))
    assert not torch.equal(noisy.evaluate(genomes), a.mean(dim=1))  # training episodes are noisy


@pytest.mark.parametrize("params, match", [
    ({"noise": -0.1}, "noise must be >= 0"), ({"noise": "loud"}, "noise must be a finite number"),
    ({"fresh": "maybe"}, "fresh must be 1/0"), ({"episodes": 0}, "episodes must be an integer"),
])
def test_bad_cartpole_parameters_are_refused_with_their_value(params, match):
    with pytest.raises(ConfigError, match=match):
        make_problem("cartpole", **params)
