"""gym:ENV-ID problems (islands/problems/gym.py), `islands evaluate` and `islands replay`.

Small populations and few generations: what is tested is the adapter's contract (spaces,
vectorised episodes, seeds that repeat and resume exactly, unseen starts), not learning.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gymnasium") is None,
                                reason="needs gymnasium (the gym extra: pip install 'islands[gym]')")

from click.testing import CliRunner  # noqa: E402

from islands.cli import main  # noqa: E402
from islands.config import RunConfig, island_seed  # noqa: E402
from islands.evaluate import generalisation, recorded  # noqa: E402
from islands.nets import MLP  # noqa: E402
from islands.problems import make_problem  # noqa: E402
from islands.config import episode_seed  # noqa: E402
from islands.problems.gym import evaluation_seeds, training_seeds  # noqa: E402
from islands.results import open_run  # noqa: E402
from islands.runs import evolve  # noqa: E402
from migration_pool.rundir import RunDir  # noqa: E402
from support.factories import QUIET, StopAfter  # noqa: E402

CPU = torch.device("cpu")


def gym_config(env: str = "CartPole-v1", **changes):
    base = dict(problem=f"gym:{env}", algorithm="pure", population=8, generations=3, seed=5,
                problem_params={"hidden": 4, "episodes": 2, "solved_at": None}, checkpoint_every=2, checkpoint_seconds=0)
    return RunConfig(**{**base, **changes})


def linear_cartpole(w) -> torch.Tensor:
    """A hidden=0 CartPole policy pushing right when w . (scaled observation) > 0."""
    w = torch.tensor(w, dtype=torch.float32)
    return torch.cat([torch.stack([-w, w], dim=1).reshape(-1), torch.zeros(2)])[None]


def plain_gym_return(genome: torch.Tensor, seed: int) -> float:
    """One CartPole-v1 episode with plain gymnasium and the network applied by hand."""
    import gymnasium

    env = gymnasium.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    w = genome[0, :8].reshape(4, 2).double().numpy()
    scale = np.array([1 / 4.8, 1.0, 1 / 0.41887903, 1.0])
    total, done = 0.0, False
    while not done:
        z = (np.asarray(obs, dtype=np.float32) * scale.astype(np.float32)) @ w
        obs, r, term, trunc, _ = env.step(int(np.argmax(z)))
        total, done = total + r, term or trunc
    return total


@pytest.mark.parametrize("env, mode", [("CartPole-v1", "native"), ("Pendulum-v1", "loop")])
def test_adapter_evolves_a_small_population(tmp_path, env, mode):
    result = evolve("island-00", tmp_path, gym_config(env), **QUIET)
    assert result.generation == 3 and result.evaluations == 4 * 8
    problem = make_problem(f"gym:{env}", hidden=4, episodes=2)
    assert problem.task.mode == mode and problem.reseed is not None
    history = RunDir(tmp_path).island("island-00").read_history()
    best = [h["best"] for h in history]
    assert len(best) == 4 and all(np.isfinite(best))
    if env == "CartPole-v1":  # 1 per step balanced, at most 500 steps
        assert problem.task.outputs == 2 and all(1 <= b <= 500 for b in best)
    else:  # continuous torque in [-2, 2]; Pendulum's reward is never positive
        assert problem.task.outputs == 1 and problem.solved_at is None and all(b <= 0 for b in best)


def test_episodes_for_the_whole_population_match_plain_gymnasium():
    """sync, loop and a hand-written plain gymnasium episode agree to the step; the native
    vector env runs the same physics (different starts); K episodes of a generation are shared."""
    genomes = torch.cat([linear_cartpole([0, 0, 0.1, 1]), linear_cartpole([0, 0, 1, 1]), linear_cartpole([0, 0, 1, 0])])
    seeds = [11, 12, 13]
    sync = make_problem("gym:CartPole-v1", hidden=0, vectorize="sync")
    spec = sync.spec
    got = sync.task.returns(MLP(spec, genomes), CPU, seeds)
    loop = make_problem("gym:CartPole-v1", hidden=0, vectorize="loop").task.returns(MLP(spec, genomes), CPU, seeds)
    np.testing.assert_array_equal(got, loop)
    for p in range(3):
        for k, s in enumerate(seeds):
            assert got[p, k] == plain_gym_return(genomes[p:p + 1], s)
    assert got[1].tolist() == [500.0] * 3 and got[2].max() < 100
    # fitness is the chosen statistic over a generation's K episodes, and changes with the generation
    sync.reseed(7)
    per_episode = sync.task.returns(MLP(spec, genomes), CPU, training_seeds(7, 5))
    np.testing.assert_allclose(sync.evaluate(genomes).double().numpy(), per_episode.mean(axis=1), rtol=1e-6)
    median = make_problem("gym:CartPole-v1", hidden=0, vectorize="sync", statistic="min")
    median.reseed(7)
    np.testing.assert_allclose(median.evaluate(genomes).double().numpy(), per_episode.min(axis=1))
    sync.reseed(8)
    assert not torch.equal(sync.evaluate(genomes[:1]), torch.tensor([per_episode[0].mean()], dtype=torch.float32))
    native = make_problem("gym:CartPole-v1", hidden=0)
    native.reseed(7)
    assert native.task.mode == "native" and native.evaluate(genomes)[1] == 500.0


def test_an_environment_that_cannot_be_vectorised_falls_back_with_one_warning(monkeypatch, capsys):
    import gymnasium

    def refuse(*_a, **_k):
        raise RuntimeError("no vector env for you")

    genomes = torch.cat([linear_cartpole([0, 0, 0.1, 1]), linear_cartpole([0, 0, 1, 0])])
    problem = make_problem("gym:CartPole-v1", hidden=0, vectorize="sync")
    monkeypatch.setattr(gymnasium, "make_vec", refuse)
    for _ in range(2):
        got = problem.task.returns(MLP(problem.spec, genomes), CPU, [3, 4])
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "cannot be vectorised (no vector env for you)" in warning
    assert got.tolist() == [[plain_gym_return(genomes[p:p + 1], s) for s in (3, 4)] for p in range(2)]


def test_seeded_runs_repeat_and_resume_bit_exact(tmp_path):
    cfg = gym_config(generations=5, problem_params={"hidden": 4, "episodes": 2, "vectorize": "sync",
                                                          "max_steps": 100, "solved_at": None})
    evolve("island-00", tmp_path / "a", cfg, **QUIET)
    evolve("island-00", tmp_path / "b", cfg, **QUIET)
    evolve("island-00", tmp_path / "c", cfg, stop=StopAfter(4), **QUIET)  # stops at a generation in 1..4
    resumed = evolve("island-00", tmp_path / "c", cfg, **QUIET)
    assert resumed.resumed_from is not None and 1 <= resumed.resumed_from < 5

    def trajectory(run):
        return [(h["generation"], h["best"], h["mean"]) for h in RunDir(tmp_path / run).island("island-00").read_history()]

    assert trajectory("a") == trajectory("b") == trajectory("c")
    assert len({mean for _, _, mean in trajectory("a")}) > 1 and max(b for _, b, _ in trajectory("a")) <= 100
    other = evolve("island-00", tmp_path / "d", dataclasses.replace(cfg, seed=6), **QUIET)
    assert other.generation == 5 and trajectory("d") != trajectory("a")
    # The champion's recorded fitness is its return on its generation's training starts (sync
    # mode: every network meets the same starts), so replaying those starts gives it back.
    status = RunDir(tmp_path / "a").island("island-00").read_status()
    problem = make_problem(cfg.problem, **dict(cfg.problem_params))
    problem.reseed(episode_seed(island_seed(cfg.seed, "island-00"), status["best_ever_generation"]))
    genome = torch.as_tensor(np.asarray(status["best_genome"]), dtype=torch.float32)[None]
    assert problem.evaluate(genome).item() == status["best_ever"]


def test_unsupported_environments_are_one_line_usage_errors(tmp_path):
    runner = CliRunner()
    for env, why in [("Nope-v1", "doesn't exist"), ("Blackjack-v1", "not a Box"), ("CartPole-v1 --param episodes=0", "episodes")]:
        name, *extra = env.split()
        args = ["evolve", "island-00", "--run-dir", str(tmp_path / "r"), "--algorithm", "pure",
                "--problem", f"gym:{name}", *extra]
        out = runner.invoke(main, args)
        assert out.exit_code == 2, out.output
        assert out.output.count("\n") == 1 and out.output.startswith("error:") and why in out.output
        assert not (tmp_path / "r").exists()
    bad = runner.invoke(main, ["evolve", "island-00", "--run-dir", str(tmp_path / "r"), "--problem",
                               "gym:CartPole-v1", "--param", "statistic=max", "--algorithm", "pure"])
    assert bad.exit_code == 2 and "statistic must be one of mean, median, min" in bad.output


@pytest.fixture
def fixed_champion(tmp_path):
    """A CartPole-v1 run whose champion is a hand-set linear controller."""
    def make(w, **params):
        root = tmp_path / "run"
        cfg = gym_config(generations=1, problem_params={"hidden": 0, **params})
        evolve("island-00", root, cfg, **QUIET)
        genome = linear_cartpole(w)[0].numpy()
        run_id = open_run(root).run_id
        RunDir(root).write_champion({"island": "island-00", "fitness": 123.0, "genome": genome,
                                     "run_id": run_id, "generation": 0})
        RunDir(root).write_summary({"run_id": run_id, "state": "finished"})
        return root, linear_cartpole(w)
    return make


def test_generalisation_figure_on_a_fixed_champion(fixed_champion):
    root, genome = fixed_champion([0, 0, 0.1, 1])
    seeds = evaluation_seeds(0, 12)
    assert min(seeds) >= 2**31 and max(training_seeds(1, 1000)) < 2**31  # disjoint from training starts
    expected = [plain_gym_return(genome, s) for s in seeds]
    result = generalisation(root, episodes=12, seed=0, solved=250)
    assert list(result.returns) == expected
    assert result.mean == pytest.approx(np.mean(expected)) and result.worst == min(expected)
    assert result.solved == sum(r >= 250 for r in expected) and 0 < result.solved < 12
    out = CliRunner().invoke(main, ["evaluate", str(root), "--episodes", "12", "--solved", "250"])
    assert out.exit_code == 0, out.output
    assert f"solved {result.solved}/12" in out.output and "return >= 250" in out.output
    saved = recorded(RunDir(root), open_run(root).run_id)
    assert saved is not None and saved.returns == result.returns and saved.threshold == 250
    summary = json.loads((root / "summary.json").read_text())
    assert summary["state"] == "finished" and summary["generalisation"]["solved"] == result.solved
    report = CliRunner().invoke(main, ["status", "--run-dir", str(root), "--json"])
    gen = json.loads(report.output)["archipelago"]["generalisation"]
    assert gen["mean"] == pytest.approx(result.mean) and gen["current"] is True
    text = CliRunner().invoke(main, ["status", "--run-dir", str(root)]).output
    assert "unseen starts" in text and f"solved {result.solved}/12" in text
    # Default threshold: the environment's reward threshold (475 for CartPole-v1).
    good = generalisation(root, episodes=5, seed=3)
    assert good.threshold == 475.0 and good.solved == sum(r >= 475 for r in good.returns)


def test_builtin_cartpole_generalises_on_unseen_seeds(tmp_path):
    cfg = RunConfig(problem="cartpole", algorithm="pure", population=6, generations=1, seed=1,
                    problem_params={"hidden": 0})
    evolve("island-00", tmp_path, cfg, **QUIET)
    result = generalisation(tmp_path, episodes=4, seed=2)
    assert result.threshold == 500.0 and len(result.returns) == 4
    assert all(0 <= r <= 500 for r in result.returns) and result.solved == sum(r >= 500 for r in result.returns)
    xor = tmp_path / "xor"
    evolve("island-00", xor, RunConfig(problem="xor", algorithm="pure", population=6, generations=1), **QUIET)
    out = CliRunner().invoke(main, ["evaluate", str(xor)])
    assert out.exit_code == 2 and "no seeded episode starts" in out.output


def test_replay_gives_the_recorded_returns(fixed_champion, monkeypatch):
    root, genome = fixed_champion([0, 0, 0.1, 1])
    recorded_run = generalisation(root, episodes=3, seed=4)
    out = CliRunner().invoke(main, ["replay", str(root), "--episodes", "3", "--seed", "4"])
    assert out.exit_code == 0, out.output
    for i, (s, r) in enumerate(zip(evaluation_seeds(4, 3), recorded_run.returns)):
        assert f"episode {i}  seed {s}  return {r:.6g}" in out.output
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    human = CliRunner().invoke(main, ["replay", str(root), "--render", "human"])
    assert human.exit_code == 2 and "needs a display" in human.output and human.output.count("\n") == 1


def test_replay_renders_rgb_frames(fixed_champion):
    # The gym extra installs the renderer (scripts/test sets it up): missing, it is a failure.
    assert importlib.util.find_spec("pygame") is not None, "pygame missing: pip install -e '.[test,gym]'"
    root, genome = fixed_champion([0, 0, 0.1, 1])
    ret = plain_gym_return(genome, evaluation_seeds(0, 1)[0])
    out = CliRunner().invoke(main, ["replay", str(root), "--render", "rgb"])
    assert out.exit_code == 0, out.output
    assert f"return {ret:.6g}  {int(ret)} frames" in out.output


@pytest.mark.slow
def test_launch_reports_generalisation(tmp_path, spawn):
    proc = spawn("import sys; from islands.cli import main; sys.argv[0] = 'islands'; main()",
                 "launch", "-n", "1", "--run-dir", str(tmp_path), "--problem", "gym:CartPole-v1",
                 "--algorithm", "pure", "--population", "6", "--generations", "1", "--evaluate", "7",
                 "--plain", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out.decode()
    assert "generalisation: mean return" in out.decode() and "over 7 unseen starts" in out.decode()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["generalisation"]["episodes"] == 7 and summary["generalisation"]["threshold"] == 475.0


def test_exported_network_says_how_to_feed_and_read_it(fixed_champion):
    """`islands export` of a gym run carries the observation scale and action rule, so the
    exported arrays alone replay an episode exactly as `evaluate` scored it."""
    import gymnasium

    from islands.export_cli import export_fields

    root, genome = fixed_champion([0, 0, 0.1, 1])
    fields = export_fields(open_run(root))
    assert fields["network_action"] == "argmax" and fields["network_action_start"] == 0
    seed = evaluation_seeds(0, 1)[0]
    env = gymnasium.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        x = np.asarray(obs, dtype=np.float32) * fields["network_observation_scale"]
        out = x @ fields["network_weights_0"] + fields["network_biases_0"]  # one layer, sigmoid is monotone
        obs, r, term, trunc, _ = env.step(int(np.argmax(out)) + fields["network_action_start"])
        total, done = total + r, term or trunc
    assert total == generalisation(root, episodes=1).returns[0]


def test_loaded_policy_acts_in_a_plain_gymnasium_loop(fixed_champion):
    import gymnasium

    from islands.results import load_policy

    root, _genome = fixed_champion([0, 0, 0.1, 1])
    policy = load_policy(root)
    env = gymnasium.make("CartPole-v1")
    obs, _ = env.reset(seed=evaluation_seeds(2, 1)[0])
    policy.reset()
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, _ = env.step(policy.act(obs))
        total, done = total + r, term or trunc
    assert total == generalisation(root, episodes=1, seed=2).returns[0]
