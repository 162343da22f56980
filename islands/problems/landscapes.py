"""Deceptive landscapes: problems whose large-scale structure points away from the optimum.

Lunacek's bi-Rastrigin (Lunacek, Whitley and Sutton 2008; BBOB f24 without its rotations
and conditioning) puts a Rastrigin surface on the lower of two spherical funnels:

    f(x) = min(sum (x_i - mu0)^2, d D + s sum (x_i - mu1)^2) + 10 sum (1 - cos(2 pi (x_i - mu0)))

with mu0 = 2.5, d = 1, s = 1 - 1 / (2 sqrt(D + 20) - 8.2) and mu1 = -sqrt((mu0^2 - d) / s).
The second funnel, around mu1 < 0, is wider (s < 1) and holds most of the box, so a
population that follows the average slope ends there, at f >= d D; the global optimum 0 is
at x = (mu0, ..., mu0) in the narrow funnel. s > 0 needs D >= 2 (s < 0 for D = 1), and for
D = 2 mu1 ~ -5.86 lies outside [-5, 5] (the second funnel is then only its slope).

Exact zero: every term above is >= 0 in floating point (squares, d D + s * squares with
s > 0, and 1 - cos with cos <= 1), so rounding cannot push f below 0; at x = mu0 (2.5 is
exact in both dtypes) x - mu0 is exactly 0 and f is exactly 0.0.
"""
from __future__ import annotations

import math

import torch

from islands.problems.base import Problem, check_dim, optional_real
from islands.problems.benchmarks import Builtin

__all__ = ["LANDSCAPES", "lunacek", "lunacek_constants"]

LUNACEK_MU0 = 2.5
LUNACEK_D = 1.0


def lunacek_constants(dim: int) -> tuple[float, float]:
    """(s, mu1) of the bi-Rastrigin in `dim` genes (dim >= 2)."""
    s = 1.0 - 1.0 / (2.0 * math.sqrt(dim + 20.0) - 8.2)
    return s, -math.sqrt((LUNACEK_MU0**2 - LUNACEK_D) / s)


def lunacek(dim: int = 10, *, solved_at: float | None = -1e-4) -> Problem:
    """Lunacek bi-Rastrigin on [-5, 5]^D, D >= 2: deceptive double funnel; optimum 0 at (2.5, ..., 2.5)."""
    d = check_dim(dim, minimum=2, what="lunacek: dim")
    s, mu1 = lunacek_constants(d)

    def fn(x: torch.Tensor) -> torch.Tensor:
        near, far = x - LUNACEK_MU0, x - mu1
        funnel = torch.minimum((near * near).sum(dim=1), LUNACEK_D * d + s * (far * far).sum(dim=1))
        ripples = 10.0 * (1.0 - torch.cos((2.0 * math.pi) * near)).sum(dim=1)
        return 0.0 - (funnel + ripples)

    return Problem(
        name="lunacek", dim=d, lower=-5.0, upper=5.0, fn=fn, optimum=0.0,
        optimum_x=lambda n: torch.full((n,), LUNACEK_MU0, dtype=torch.float64),
        solved_at=optional_real("solved_at", solved_at), description=LANDSCAPES["lunacek"].summary,
    )


LANDSCAPES: dict[str, Builtin] = {
    "lunacek": Builtin(lunacek, "Lunacek bi-Rastrigin on [-5, 5]^D, D >= 2, deceptive double funnel; "
                       "optimum 0 at (2.5, ..., 2.5)"),
}
