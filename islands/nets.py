"""Fixed-topology networks for "pure" neuroevolution: a whole population in one tensor program.

A genome is the flattened weights of a multilayer perceptron. `MLP` views a population of such
genomes `[P, D]` as per-layer weight tensors `[P, in, out]` and biases `[P, 1, out]` (views, no
copy), so one forward pass over every network and every episode is one batched matrix product
per layer (`torch.baddbmm`), never one network at a time.

Networks here follow the `Policy` protocol the control tasks drive (`islands.problems.tasks`):
`reset(batch)` before an episode, then `net(obs [P, B, inputs]) -> actions [P, B, outputs]`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from islands.errors import ConfigError

__all__ = ["ACTIVATIONS", "MLP", "MLPSpec", "Policy", "parse_layers"]

ACTIVATIONS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
}
MAX_LAYER = 4096


class Policy(Protocol):
    """A population of networks, each run on a batch of episodes at once."""

    size: int  # P, the number of networks

    def reset(self, batch: int) -> None:
        """Clear any recurrent state before `batch` parallel episodes per network."""

    def __call__(self, obs: Tensor) -> Tensor:
        """Outputs in (0, 1), `[P, B, outputs]`, for observations `[P, B, inputs]`."""


def parse_layers(hidden: Any) -> tuple[int, ...]:
    """Hidden layer sizes from a parameter: 8, "8", "16,16", "" or 0 (no hidden layer).

    Strings are accepted because problem parameters often come from `--param hidden=16,16`.
    """
    if isinstance(hidden, bool):
        raise ConfigError(f"hidden layer sizes must be integers like 8 or '16,16', got {hidden!r}")
    if isinstance(hidden, int):
        parts: list[Any] = [hidden] if hidden else []
    elif isinstance(hidden, str):
        parts = [p.strip() for p in hidden.replace(";", ",").split(",") if p.strip()]
    elif isinstance(hidden, (list, tuple)):
        parts = list(hidden)
    else:
        raise ConfigError(f"hidden layer sizes must be integers like 8 or '16,16', got {hidden!r}")
    sizes = []
    for p in parts:
        try:
            n = int(p)
        except (TypeError, ValueError):
            raise ConfigError(f"hidden layer size {p!r} is not an integer (in {hidden!r})") from None
        if isinstance(p, float) and p != n or not 1 <= n <= MAX_LAYER:
            raise ConfigError(f"hidden layer sizes must be integers in [1, {MAX_LAYER}], got {p!r}")
        sizes.append(n)
    return tuple(sizes)


@dataclass(frozen=True)
class MLPSpec:
    """Layer sizes `(inputs, *hidden, outputs)` and the hidden activation.

    Outputs always go through a sigmoid, so every policy answers in (0, 1) like NEAT's nodes.
    Genome layout: for each layer, its `[in, out]` weights (row-major), then its `out` biases.
    """

    sizes: tuple[int, ...]
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(not isinstance(n, int) or n < 1 for n in self.sizes):
            raise ConfigError(f"an MLP needs >= 2 positive layer sizes, got {self.sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")

    @property
    def dim(self) -> int:
        """Genome length: every weight and bias."""
        return sum((a + 1) * b for a, b in zip(self.sizes, self.sizes[1:]))


class MLP:
    """A population of MLPs sharing one spec; `genomes` `[P, D]` are viewed, not copied."""

    def __init__(self, spec: MLPSpec, genomes: Tensor) -> None:
        if genomes.ndim != 2 or genomes.shape[1] != spec.dim:
            raise ConfigError(f"MLP genomes must have shape [P, {spec.dim}], got {list(genomes.shape)}")
        self.spec, self.size = spec, int(genomes.shape[0])
        self.act = ACTIVATIONS[spec.activation]
        self.layers: list[tuple[Tensor, Tensor]] = []
        at = 0
        for a, b in zip(spec.sizes, spec.sizes[1:]):
            w = genomes[:, at : at + a * b].reshape(self.size, a, b)
            at += a * b
            self.layers.append((w, genomes[:, at : at + b].reshape(self.size, 1, b)))
            at += b

    def reset(self, batch: int) -> None:  # feed-forward: nothing to clear
        pass

    def __call__(self, obs: Tensor) -> Tensor:
        x = obs.to(self.layers[0][0].dtype)
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            x = torch.baddbmm(b, x, w)  # [P, B, out]: one matrix product for the population
            x = torch.sigmoid(x) if i == last else self.act(x)
        return x
