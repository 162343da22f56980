"""Generalisation as a figure: a run's champion on starts it never trained on.

`generalisation(run, episodes=100, seed=0)` replays the champion policy on `episodes` unseen
seeded starts (seeds from 2^31 up, disjoint from every training seed: `islands.problems.gym`)
and returns its mean return and the share of episodes solved (return >= the environment's
reward threshold, the task's own "solved" level, or `solved=`). `record` saves it as the run's
`evaluation.isld` and in `summary.json` (through `migration_pool.rundir.RunDir`); the status
report shows it. `replay` runs the same episodes one environment at a time, optionally
rendering them (gymnasium's rgb frames, counted, or a window where there is a display).

It applies to `gym:*` problems and to the built-in control tasks whose starts are seeded
(`cartpole`, through its noise-free `returns`): XOR has no starts, and the double pole starts from one fixed state. A task with
`returns(policy, device, seeds) -> [P, len(seeds)]` (the gym task) runs every episode in one
call; a seeded dataclass task (`seed` and `episodes` fields) runs one episode per seed (the
built-in cartpole: 100 episodes of 500 steps cost about 8 s of CPU).

This module imports torch only inside its functions: the launcher (which never loads torch)
asks `evaluates(problem)` whether to run `islands evaluate` in a child after a launch.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from islands.errors import ConfigError, IslandsError
from islands.results import RunResults, load_policy, open_run
from islands.status.reader import read_evaluation

__all__ = ["Generalisation", "evaluates", "generalisation", "record", "replay", "episode_returns",
           "evaluation_seeds"]

SEEDED_BUILTINS = ("cartpole",)  # built-in tasks whose episode starts come from a seed
GYM_PREFIX = "gym:"
RENDER_MODES = {"rgb": "rgb_array", "human": "human"}


def evaluates(problem: str) -> bool:
    """Does a run of `problem` get an unseen-start evaluation? (no torch: the launcher asks)"""
    return problem.startswith(GYM_PREFIX) or problem in SEEDED_BUILTINS


def evaluation_seeds(seed: int, count: int) -> list[int]:
    """The episode seeds of `islands evaluate --seed seed --episodes count` (never training seeds)."""
    from islands.problems.gym import evaluation_seeds as seeds  # lazy: loads torch; the launcher imports this module

    return seeds(seed, count)


@dataclass(frozen=True)
class Generalisation:
    """The champion on unseen starts: what `islands evaluate` records and `status` shows."""

    problem: str
    island: str
    fitness: float | None  # the champion's training fitness, for comparison
    episodes: int
    seed: int
    mean: float
    std: float
    worst: float
    threshold: float | None  # return at which an episode counts as solved (None: unknown)
    solved: int | None  # episodes with return >= threshold
    returns: tuple[float, ...]
    time: float = 0.0

    @property
    def solved_share(self) -> float | None:
        return None if self.solved is None else self.solved / self.episodes

    def to_body(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "returns"}
        return {**body, "solved_share": self.solved_share, "returns": np.asarray(self.returns, dtype=np.float64)}

    def summary(self) -> dict[str, Any]:
        """The JSON-ready figure for summary.json and the status report (returns left out)."""
        out = self.to_body()
        out.pop("returns")
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "Generalisation | None":
        """Tolerant: None for a body that is not an evaluation record."""
        try:
            returns = tuple(float(x) for x in list(body.get("returns", ())))
            return cls(problem=str(body["problem"]), island=str(body["island"]),
                       fitness=_num(body.get("fitness")), episodes=int(body["episodes"]),
                       seed=int(body.get("seed", 0)), mean=float(body["mean"]), std=float(body.get("std", 0.0)),
                       worst=float(body.get("worst", math.nan)), threshold=_num(body.get("threshold")),
                       solved=None if body.get("solved") is None else int(body["solved"]),
                       returns=returns, time=float(body.get("time", 0.0)))
        except (KeyError, TypeError, ValueError):
            return None

    def line(self) -> str:
        """One line for people."""
        text = (f"generalisation: mean return {self.mean:.6g} (worst {self.worst:.6g}) over {self.episodes} "
                f"unseen starts (--seed {self.seed})")
        if self.solved is not None:
            text += f"; solved {self.solved}/{self.episodes} ({100 * self.solved / self.episodes:.0f}%, return >= {self.threshold:g})"
        if self.fitness is not None:
            text += f"; training fitness {self.fitness:.6g}"
        return text


def _num(v: Any) -> float | None:
    return None if v is None or isinstance(v, bool) else float(v)


def _task(problem: Any) -> Any:
    task = getattr(problem, "task", None)
    if task is None or not (problem.name.startswith(GYM_PREFIX) or _seeded(task)):
        raise ConfigError(f"problem {problem.name!r} has no seeded episode starts to evaluate on "
                          f"(evaluate works for gym:* problems and {', '.join(SEEDED_BUILTINS)})")
    return task


def _seeded(task: Any) -> bool:
    names = {f.name for f in dataclasses.fields(task)} if dataclasses.is_dataclass(task) else set()
    return {"seed", "episodes"} <= names


def episode_returns(problem: Any, policy: Any, seeds: Sequence[int], device: str = "cpu") -> "np.ndarray":
    """Return of `policy` (one network) on one episode per seed, float64 `[len(seeds)]`."""
    import torch  # lazy: the launcher imports this module and never loads torch

    task = _task(problem)
    task = getattr(policy, "task", None) or task  # it carries the champion's observation transform
    dev = torch.device(device)
    if hasattr(task, "returns"):  # one call for every episode: `returns(policy, device, seeds) -> [P, n]`
        from islands.problems.gym import GymTask  # lazy: loads torch; the launcher imports this module

        # gym: single environments, so episode k is `env.reset(seed=seeds[k])` of a plain gymnasium env
        extra = {"mode": "loop"} if isinstance(task, GymTask) else {}
        return np.asarray(task.returns(policy, dev, list(seeds), **extra), dtype=np.float64).reshape(-1)
    # A seeded built-in: its starts come from (seed, episodes); one episode per seed.
    out = [float(dataclasses.replace(task, episodes=1, seed=int(s)).evaluate(policy, dev)[0]) for s in seeds]
    return np.asarray(out, dtype=np.float64)


def generalisation(run: "RunResults | str | os.PathLike[str]", episodes: int = 100, seed: int = 0,
                   solved: float | None = None, device: str = "cpu") -> Generalisation:
    """The run's champion on `episodes` unseen seeded starts (see the module docstring)."""
    res = run if isinstance(run, RunResults) else open_run(run)
    champ = res.champion()
    problem = res.problem(champ.island)
    task = _task(problem)
    seeds = evaluation_seeds(seed, episodes)
    returns = episode_returns(problem, load_policy(res, device=device), seeds, device)
    threshold = solved if solved is not None else getattr(task, "solved_at", None)
    hits = None if threshold is None else int(np.sum(returns >= float(threshold)))
    return Generalisation(
        problem=problem.name, island=champ.island, fitness=float(champ.fitness), episodes=len(seeds),
        seed=int(seed), mean=float(returns.mean()), std=float(returns.std()), worst=float(returns.min()),
        threshold=None if threshold is None else float(threshold), solved=hits,
        returns=tuple(float(r) for r in returns), time=round(time.time(), 3))


def record(run: "RunResults", result: Generalisation) -> None:
    """Save `result` as the run's evaluation and in its summary.json (if the launcher wrote one)."""
    res = run
    res.rundir.write_evaluation({"run_id": res.run_id, **result.to_body()})
    res.rundir.merge_summary("generalisation", result.summary())


def recorded(rundir: Any, run_id: str | None = None) -> Generalisation | None:
    """The run's recorded evaluation, None if there is none, it belongs to another run or it
    cannot be read (the run reader's policy: `islands.status.reader`)."""
    body = read_evaluation(rundir, run_id)
    return None if body is None else Generalisation.from_body(body)


def replay(run: "RunResults | str | os.PathLike[str]", episodes: int = 1, seed: int = 0,
           render: str | None = None, device: str = "cpu",
           on_episode: Callable[[int, int, float, int], None] | None = None) -> list[float]:
    """Run the champion on the episodes `islands evaluate --seed seed` uses; their returns.

    `render`: None, "rgb" (frames are produced and counted, nothing is saved) or "human" (a
    window: needs a display). `on_episode(index, seed, return, frames)` is told each episode.
    """
    if render is not None and render not in RENDER_MODES:
        raise ConfigError(f"--render must be one of {', '.join(RENDER_MODES)}, got {render!r}")
    res = run if isinstance(run, RunResults) else open_run(run)
    problem = res.problem(res.champion().island)
    task = _task(problem)
    policy = load_policy(res, device=device)
    task = getattr(policy, "task", None) or task  # it carries the champion's observation transform
    seeds = evaluation_seeds(seed, episodes)
    if render is None:
        returns = [float(r) for r in episode_returns(problem, policy, seeds, device)]
        for i, (s, r) in enumerate(zip(seeds, returns)):
            if on_episode is not None:
                on_episode(i, s, r, 0)
        return returns
    if not problem.name.startswith(GYM_PREFIX):
        raise ConfigError(f"rendering needs a gym:* problem; {problem.name!r} is a built-in simulator "
                          "(replay it without --render)")
    if render == "human" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("--render human needs a display (DISPLAY is not set); use --render rgb to count frames")
    if render == "rgb":  # off-screen: SDL (pygame) would otherwise look for a display and sound card
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    returns = []
    for i, s in enumerate(seeds):
        total, frames = _rendered_episode(task, policy, s, RENDER_MODES[render], device)
        returns.append(total)
        if on_episode is not None:
            on_episode(i, s, total, frames)
    return returns


def _rendered_episode(task: Any, policy: Any, seed: int, mode: str, device: str) -> tuple[float, int]:
    """One episode in a single rendering environment: (return, frames rendered)."""
    import torch  # lazy: the launcher imports this module and never loads torch

    import gymnasium  # lazy: the optional `gym` extra (rendering is for gym:* problems only)

    try:
        env = gymnasium.make(task.env_id, render_mode=mode, max_episode_steps=task.max_steps)
    except Exception as e:  # noqa: BLE001 - a missing renderer (pygame) or an env without this mode
        raise IslandsError(f"cannot render {task.name} as {mode}: {' '.join(str(e).split())[:300]}") from None
    frames, total = 0, 0.0
    dev = torch.device(device)
    try:
        obs, _ = env.reset(seed=int(seed))
        policy.reset(1)
        for _ in range(task.max_steps):
            frame = _render(env, task.name, mode)
            frames += frame is not None or mode == "human"
            action = task._actions(policy, np.asarray(obs)[None], 1, 1, dev)[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
    finally:
        env.close()
    return total, frames


def _render(env: Any, name: str, mode: str) -> Any:
    try:
        return env.render()
    except Exception as e:  # noqa: BLE001 - gymnasium raises DependencyNotInstalled for pygame
        raise IslandsError(f"cannot render {name} as {mode}: {' '.join(str(e).split())[:300]}") from None
