"""A control task, and the problem of evolving a network on it.

A `Task` drives a `Policy` (islands.nets): it feeds observations `[P, B, inputs]` and reads
outputs in (0, 1), for every network and every episode in one tensor operation per time step.
The same task serves both modes: "pure" evolves the weights of a fixed MLP (`NetworkProblem.fn`
builds the MLP from the genome rows), "neat" compiles its graphs into a policy
(`islands.algorithms.neat.compile`) and calls `task.evaluate` directly. The tasks themselves:
`islands.problems.control` (xor, cartpole), `islands.problems.double_pole`, and gymnasium
environments (`islands.problems.gym`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from islands.errors import ConfigError
from islands.nets import MLP, MLPSpec, Policy, parse_layers
from islands.problems.base import Problem, optional_real, real_param

__all__ = ["NetworkProblem", "Task", "network_problem"]


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
