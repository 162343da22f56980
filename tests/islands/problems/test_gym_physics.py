"""gym:* on real physics (MuJoCo, Box2D), observation normalisation through an island, and
environments that misbehave (NaN, raising inside step).

MuJoCo and Box2D are optional (the gym extra's physics: `pip install 'islands[mujoco,box2d]'`,
installed by scripts/setup where their wheels install); their tests skip with that reason.
Short episodes and tiny populations: the contract is tested, not learning.
"""
from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gymnasium") is None,
                                reason="needs gymnasium (the gym extra: pip install 'islands[gym]')")

from click.testing import CliRunner  # noqa: E402

from islands.cli import main  # noqa: E402
from islands.config import MigrationConfig, RunConfig, episode_seed, island_seed  # noqa: E402
from islands.errors import ConfigError  # noqa: E402
from islands.evaluate import generalisation  # noqa: E402
from islands.nets import MLP  # noqa: E402
from islands.problems import make_problem  # noqa: E402
from islands.results import load_policy, open_run  # noqa: E402
from islands.runs import evolve  # noqa: E402
from migration_pool.rundir import RunDir  # noqa: E402
from support.factories import QUIET, StopAfter  # noqa: E402

CPU = torch.device("cpu")
needs_mujoco = pytest.mark.skipif(importlib.util.find_spec("mujoco") is None,
                                  reason="needs mujoco (pip install 'islands[mujoco]'; its wheel did not install here)")
needs_box2d = pytest.mark.skipif(importlib.util.find_spec("Box2D") is None,
                                 reason="needs box2d (pip install 'islands[box2d]'; its wheel did not install here)")


def pendulum(**changes) -> RunConfig:
    """MuJoCo's InvertedPendulum-v5: unbounded observations, so obs_norm=auto is "run"."""
    params = {"hidden": 4, "episodes": 2, "max_steps": 40, "solved_at": None, **changes.pop("params", {})}
    base = dict(problem="gym:InvertedPendulum-v5", algorithm="es", population=6, generations=5, seed=3,
                problem_params=params, checkpoint_every=1, checkpoint_seconds=0)
    return RunConfig(**{**base, **changes})


def trajectory(root) -> list[tuple]:
    return [(h["generation"], h["best"], h["mean"]) for h in RunDir(root).island("island-00").read_history()]


@needs_mujoco
def test_mujoco_islands_normalise_observations_and_resume_bit_exact(tmp_path):
    cfg = pendulum()
    assert make_problem(cfg.problem, **dict(cfg.problem_params)).task.obs_norm.mode == "run"
    evolve("island-00", tmp_path / "a", cfg, **QUIET)
    evolve("island-00", tmp_path / "c", cfg, stop=StopAfter(3), **QUIET)
    resumed = evolve("island-00", tmp_path / "c", cfg, **QUIET)
    assert resumed.resumed_from is not None and 1 <= resumed.resumed_from < 5
    assert trajectory(tmp_path / "a") == trajectory(tmp_path / "c")
    record, _ = RunDir(tmp_path / "a").island("island-00").load_checkpoint()
    own = record["obs_norm"]["own"]
    assert own["count"] > 0 and np.asarray(own["m2"]).min() > 0  # the island's observations, saved
    # The champion carries the transform it was scored with: replayed on its own generation's
    # training starts with that transform, it scores its recorded fitness again.
    status = RunDir(tmp_path / "a").island("island-00").read_status()
    norm = status["best_obs_norm"]
    assert len(norm["mean"]) == 4 and norm["clip"] == 5.0
    problem = make_problem(cfg.problem, **dict(cfg.problem_params))
    assert problem.task.use_obs_norm(norm) is not None
    problem.reseed(episode_seed(island_seed(cfg.seed, "island-00"), status["best_ever_generation"]))
    genome = torch.as_tensor(np.asarray(status["best_genome"]), dtype=torch.float32)[None]
    assert problem.evaluate(genome).item() == status["best_ever"]
    # load_policy, evaluate and export apply it too.
    policy = load_policy(tmp_path / "a")
    assert policy.task.obs_norm.mean.tolist() == norm["mean"]
    assert generalisation(tmp_path / "a", episodes=3).episodes == 3
    network = open_run(tmp_path / "a").network()
    assert network["observation_mean"].tolist() == norm["mean"] and network["observation_clip"] == 5.0


@needs_mujoco
@pytest.mark.parametrize("mode", ["run", "island"])
def test_islands_share_observation_statistics_through_the_run_directory(tmp_path, mode):
    mig = MigrationConfig(every=2, migrants=1)  # no periodic checkpoint: shared at migration events
    cfg = pendulum(migration=mig, generations=3, params={"obs_norm": mode}, checkpoint_every=100)
    evolve("island-01", tmp_path, cfg, **QUIET)  # ends first: its statistics are on disk
    published = RunDir(tmp_path).island("island-01").read_obs_stats()
    assert published["count"] > 0
    evolve("island-00", tmp_path, cfg, **QUIET)
    record, _ = RunDir(tmp_path).island("island-00").load_checkpoint()
    others = record["obs_norm"]["others"]
    if mode == "run":  # kept as island-01 published them (its own, never what it merged)
        assert others["island-01"]["count"] == published["count"]
    else:
        assert others == {}


@needs_mujoco
def test_a_forged_statistics_file_is_skipped(tmp_path):
    root = tmp_path
    cfg = pendulum(migration=MigrationConfig(every=2, migrants=1), generations=3)
    evolve("island-01", root, cfg, **QUIET)
    files = RunDir(root).island("island-01")
    body = files.read_obs_stats()
    files.write_obs_stats({**body, "mean": [float("nan")] * 4})
    evolve("island-00", root, cfg, **QUIET)
    record, _ = RunDir(root).island("island-00").load_checkpoint()
    assert record["obs_norm"]["others"] == {}


@needs_box2d
def test_box2d_lunar_lander_evolves_with_its_bounded_observations_scaled():
    problem = make_problem("gym:LunarLander-v3", hidden=4, episodes=1, max_steps=60)
    assert problem.task.obs_norm is None and problem.task.discrete and problem.task.outputs == 4
    problem.reseed(1)
    fitness = problem.evaluate(torch.zeros(3, problem.dim))
    assert fitness.shape == (3,) and torch.isfinite(fitness).all()


class Misbehaving:
    """A tiny gymnasium environment that turns its observation to NaN (`nan_at`, odd seeds only)
    or raises (`raise_at`) at a given step; registered as IslandsNaN-v0 and IslandsRaise-v0."""

    def __new__(cls, nan_at: int | None = None, raise_at: int | None = None):
        import gymnasium
        from gymnasium import spaces

        class Env(gymnasium.Env):
            observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
            action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.t = 0
                self.odd = (seed or 0) % 2 == 1
                return np.array([0.5, -0.5]), {}

            def step(self, action):
                self.t += 1
                if raise_at is not None and self.t == raise_at:
                    raise RuntimeError("the simulator blew up")
                obs = np.array([np.nan if (nan_at is not None and self.t == nan_at and self.odd) else 0.5, 1.0])
                return obs, 1.0, False, False, {}

        return Env()


def _register():
    import gymnasium

    if "IslandsNaN-v0" not in gymnasium.registry:
        gymnasium.register("IslandsNaN-v0", entry_point=Misbehaving, max_episode_steps=10, kwargs={"nan_at": 3})
        gymnasium.register("IslandsRaise-v0", entry_point=Misbehaving, max_episode_steps=10, kwargs={"raise_at": 2})


def test_nan_observations_end_their_episode_as_the_worst_fitness_with_one_warning(capsys):
    _register()
    problem = make_problem("gym:IslandsNaN-v0", hidden=0, episodes=1)
    task = problem.task
    net = MLP(problem.spec, torch.zeros(2, problem.dim))
    returns = task.returns(net, CPU, [1, 2])  # seed 1 is odd: NaN at step 3
    assert np.isnan(returns[:, 0]).all() and returns[:, 1].tolist() == [10.0, 10.0]
    task.returns(net, CPU, [3])
    err = capsys.readouterr().err
    assert err.count("NaN or infinite observation or reward") == 1 and "2 episode(s)" in err
    assert task.obs_norm.pending.count == 0  # not a training evaluation: nothing collected


def test_an_environment_raising_inside_step_is_one_error_line(tmp_path):
    _register()
    problem = make_problem("gym:IslandsRaise-v0", hidden=0, episodes=1)
    with pytest.raises(ConfigError, match="the environment failed: RuntimeError: the simulator blew up"):
        problem.task.returns(MLP(problem.spec, torch.zeros(1, problem.dim)), CPU, [0])
    bad = CliRunner().invoke(main, ["evolve", "island-00", "--run-dir", str(tmp_path / "r"), "--algorithm", "pure",
                                    "--problem", "gym:CartPole-v1", "--param", "obs_norm=yes"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "obs_norm must be one of" in bad.output
    assert not (tmp_path / "r").exists()


def test_a_missing_physics_extra_is_one_line_naming_it(monkeypatch):
    import gymnasium
    from gymnasium.error import DependencyNotInstalled

    def missing(*_a, **_k):
        raise DependencyNotInstalled("MuJoCo is not installed, run `pip install \"gymnasium[mujoco]\"`")

    monkeypatch.setattr(gymnasium, "make", missing)
    with pytest.raises(ConfigError) as info:
        make_problem("gym:Hopper-v5", hidden=0)
    text = str(info.value)
    assert "\n" not in text and "cannot be made: MuJoCo is not installed" in text and "islands[mujoco]" in text


def test_obs_norm_leaves_bounded_tasks_as_they_were():
    for env in ("CartPole-v1", "Pendulum-v1"):
        assert make_problem(f"gym:{env}", hidden=0).task.obs_norm is None
    forced = make_problem("gym:CartPole-v1", hidden=0, obs_norm="island", vectorize="sync")
    assert forced.task.obs_norm.mode == "island"
    forced.reseed(0)
    first = forced.evaluate(torch.zeros(2, forced.dim))
    warmed = forced.task.obs_norm.own.count
    assert warmed > 0 and forced.task.steps > warmed  # a warm-up started the statistics
    forced.reseed(1)  # folds generation 0's observations in
    assert forced.task.obs_norm.own.count > 0 and dataclasses.is_dataclass(forced)
    assert first.shape == (2,)


def test_es_takes_the_fields_settings_for_continuous_control():
    """A network fed normalised observations: SNES's population rule and sigma 0.02 per weight;
    the same network with bounded inputs keeps the defaults chosen on xor and rastrigin."""
    import math

    from islands.algorithms.es import ESConfig, NaturalES

    control = make_problem("gym:CartPole-v1", hidden=8, obs_norm="island")
    es = NaturalES(control, ESConfig())
    assert es.control and es.default_population() == 2 * math.ceil((4 + 3 * math.log(control.dim)) / 2)
    assert es.sigma_init * 10.0 == pytest.approx(0.02)  # weights in +-5: a box 10 wide
    state = es.init(es.default_population(), 0, torch.Generator().manual_seed(0))
    assert torch.allclose(state.sigma, torch.full_like(state.sigma, 0.02))
    assert NaturalES(control, ESConfig(sigma_init=0.3)).sigma_init == 0.3  # given: taken as given
    plain = NaturalES(make_problem("gym:CartPole-v1", hidden=8), ESConfig())
    assert not plain.control and plain.default_population() == 100 and plain.sigma_init == 0.1


def test_a_neat_champion_exports_its_observation_transform(tmp_path):
    cfg = RunConfig(problem="gym:CartPole-v1", algorithm="neat", population=10, generations=2, seed=1,
                    problem_params={"episodes": 1, "max_steps": 30, "solved_at": None, "obs_norm": "island"})
    evolve("island-00", tmp_path, cfg, **QUIET)
    net = open_run(tmp_path).network()
    norm = RunDir(tmp_path).island("island-00").read_status()["best_obs_norm"]
    assert net["kind"] == "neat" and net["action"] == "argmax"
    assert net["observation_mean"].tolist() == norm["mean"] and net["observation_std"].tolist() == norm["std"]
