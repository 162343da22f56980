"""NEAT on LunarLander-v3, islands against neat-python, for scripts/bench_control.py --lander.

Both evolve with population 150 and the same NEAT settings (scripts/neat_python_config.py:
neat-python's XOR example configuration, with LunarLander's 8 inputs and 4 outputs), both score
a network by its mean return over `episodes` training episodes whose starts change every
generation, both act by the argmax of the outputs. Whenever a generation's best training
score reaches the solved level (200), that network is tested on 100 unseen episodes (seeds
from 2^31 up, the ones `islands evaluate` uses; these steps are not counted): the run is
solved at the environment steps spent so far if the test's mean is >= 200. A run that spends
its budget unsolved reports its best test mean.
"""
from __future__ import annotations

import time

import numpy as np

from neat_python_config import neat_python_config_object

SOLVED = 200.0
POPULATION = 150
ENV = "LunarLander-v3"


def islands_neat(seed: int, budget: int, episodes: int) -> dict:
    """Our NEAT (one island) until solved or `budget` environment steps."""
    import torch

    from islands import figures
    from islands.algorithms.neat import NeatAlgorithm, NeatConfig
    from islands.algorithms.neat import genome as gn
    from islands.config import episode_seed
    from islands.problems import make_problem
    from islands.problems.gym import evaluation_seeds

    problem = make_problem(f"gym:{ENV}", 10, episodes=episodes, solved_at=None)
    task = problem.task
    algo = NeatAlgorithm(problem, NeatConfig())
    gen = torch.Generator().manual_seed(seed)
    unseen = evaluation_seeds(0, 100)
    started, best_test, tests, g = time.perf_counter(), -float("inf"), 0, 0
    problem.reseed(episode_seed(seed, 0))
    state = algo.evaluate(algo.init(POPULATION, 0, gen))
    while True:
        pop = algo.population(state)
        stats = figures.stats(pop)
        if stats.best >= SOLVED:
            tests += 1
            net = algo.compile(gn.from_records([dict(figures.genome(pop, stats.best_index))]))
            steps = task.steps
            mean = float(task.returns(net, torch.device("cpu"), unseen, mode="loop").mean())
            task.steps = steps  # a test's steps are not the search's
            best_test = max(best_test, mean)
            if mean >= SOLVED:
                return _row("islands:neat", seed, True, task.steps, g + 1, mean, tests, started)
        if task.steps >= budget:
            return _row("islands:neat", seed, False, task.steps, g + 1, best_test, tests, started)
        g += 1
        problem.reseed(episode_seed(seed, g))
        state = algo.evaluate(algo.step(state, g - 1, gen))


def neat_python(seed: int, budget: int, episodes: int) -> dict:
    """neat-python until solved or `budget` environment steps."""
    import random

    import gymnasium
    import neat  # type: ignore[import-not-found]

    from islands.config import episode_seed
    from islands.problems.gym import evaluation_seeds, training_seeds

    random.seed(seed)  # neat-python draws from `random`
    config = neat_python_config_object(POPULATION, inputs=8, threshold=1e9, outputs=4)
    env = gymnasium.make(ENV)
    counter = {"steps": 0, "generation": 0}

    def episode(net, s: int, count: bool) -> float:
        obs, _ = env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(int(np.argmax(net.activate(obs))))
            total, done = total + float(r), term or trunc
            counter["steps"] += count
        return total

    state = {"best_test": -float("inf"), "tests": 0, "solved": False}

    def eval_genomes(genomes, cfg):
        seeds = training_seeds(episode_seed(seed, counter["generation"]), episodes)
        best, best_net = -float("inf"), None
        for _gid, g in genomes:
            net = neat.nn.FeedForwardNetwork.create(g, cfg)
            g.fitness = float(np.mean([episode(net, s, True) for s in seeds]))
            if g.fitness > best:
                best, best_net = g.fitness, net
        counter["generation"] += 1
        if best >= SOLVED and not state["solved"]:
            state["tests"] += 1
            mean = float(np.mean([episode(best_net, s, False) for s in evaluation_seeds(0, 100)]))
            state["best_test"] = max(state["best_test"], mean)
            state["solved"] = mean >= SOLVED
        if state["solved"] or counter["steps"] >= budget:
            raise _Done

    started = time.perf_counter()
    pop = neat.Population(config, seed=seed)
    try:
        pop.run(eval_genomes, 10**6)
    except _Done:
        pass
    return _row("neat-python", seed, state["solved"], counter["steps"], counter["generation"], state["best_test"],
                state["tests"], started)


class _Done(Exception):
    pass


def _row(method: str, seed: int, solved: bool, steps: int, generations: int, test: float, tests: int,
         started: float) -> dict:
    return {"method": method, "task": ENV, "seed": seed, "solved": solved, "steps": int(steps),
            "generations": generations, "best_test_mean": test if np.isfinite(test) else None, "tests": tests,
            "wall_s": time.perf_counter() - started, "cpu_s": time.process_time()}
