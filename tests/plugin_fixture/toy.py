"""Problem factories as a user's own package would write them."""
from __future__ import annotations

import torch

from islands.problems import Problem

NOT_CALLABLE = 3


def make(dim: int, scale: float = 1.0) -> Problem:
    """Toy plug-in: a scaled sphere centred at (1, ..., 1)."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        return -scale * ((x - 1.0) ** 2).sum(dim=1)

    return Problem(name="toy", dim=dim, lower=-2.0, upper=2.0, fn=fn, optimum=0.0,
                   optimum_x=lambda d: torch.ones(d, dtype=torch.float64))


def not_a_problem(dim: int) -> dict:
    return {"dim": dim}


class Factories:
    """Holds a factory one attribute deeper, as `module:Class.attr` paths allow."""

    @staticmethod
    def nested(dim: int) -> Problem:
        return make(dim, scale=2.0)


def wrong_shape(dim: int) -> Problem:
    """Returns a fitness of shape [P, 1] instead of [P]: evaluate must refuse it."""
    return Problem(name="wrong_shape", dim=dim, lower=0.0, upper=1.0,
                   fn=lambda x: x.sum(dim=1, keepdim=True))
