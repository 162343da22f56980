"""The classic black-box benchmarks, as maximisation problems (fitness = -f(x)).

Every f here is >= 0 with its global minimum 0 at a known point, so every `optimum`
is 0.0. The formulas are rearranged so that each summand is computed as a small
non-negative quantity (e.g. A*(1 - cos) rather than A*D - sum(A*cos), and expm1 for
Ackley): rounding then cannot push fitness above the optimum, and fitness at the
optimum point is exactly 0.0 in float32 and float64 (Schwefel: see below).

Default targets (`solved_at`): sphere and ellipsoid (unimodal) -1e-8; all others -1e-4. For any practical D,
-1e-4 lies above every local optimum (best local minima of f: Rastrigin ~0.995,
Ackley ~0.4 at D=100 and more for fewer genes, Griewank ~7e-3, Schwefel ~118.4,
Rosenbrock with D >= 4 ~3.7), so an island at or above it has found the global
basin; both targets are reachable in float32.
Pass `solved_at=None` to make_problem to disable early stopping, or another value.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from islands.errors import ConfigError
from islands.problems.base import Problem, check_dim, optional_real, real_param

__all__ = ["BUILTINS", "Builtin", "SCHWEFEL_C", "SCHWEFEL_X", "ellipsoid_f"]

# Schwefel 2.26: max of x*sin(sqrt|x|) on [-500, 500], and where (computed to 30
# digits with mpmath). The classic rounded constant 418.9829 leaves f(x*) ~1.3e-5*D
# instead of 0 (so "optimum 0 to ~1e-4" in the literature); with these digits the
# per-gene gap at x* is 0 to rounding (< 1e-12 in float64, < 1e-4 in float32, where
# x* rounds to 420.96875), and the in-domain clamp below makes f(x*) exactly 0.
SCHWEFEL_C = 418.98288727243370627
SCHWEFEL_X = 420.96874635998202731

_DEFAULT_SOLVED = -1e-4


def _fitness(f: torch.Tensor) -> torch.Tensor:
    """-f, written 0 - f so that the optimum reads 0.0 rather than -0.0 in reports."""
    return 0.0 - f


def _zeros(dim: int) -> torch.Tensor:
    return torch.zeros(dim, dtype=torch.float64)


def _ones(dim: int) -> torch.Tensor:
    return torch.ones(dim, dtype=torch.float64)


def _schwefel_x(dim: int) -> torch.Tensor:
    return torch.full((dim,), SCHWEFEL_X, dtype=torch.float64)


def _target(solved_at: float | None) -> float | None:
    return optional_real("solved_at", solved_at)


def sphere(dim: int = 10, *, solved_at: float | None = -1e-8) -> Problem:
    """Sphere: f = sum x^2 on [-5.12, 5.12]^D; unimodal, the sanity check."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        return _fitness((x * x).sum(dim=1))

    return Problem(
        name="sphere", dim=check_dim(dim), lower=-5.12, upper=5.12, fn=fn,
        optimum=0.0, optimum_x=_zeros, solved_at=_target(solved_at),
        description=BUILTINS["sphere"].summary,
    )


def rastrigin(dim: int = 10, *, a: float = 10.0, solved_at: float | None = _DEFAULT_SOLVED) -> Problem:
    """Rastrigin: f = A*D + sum(x^2 - A cos(2 pi x)), A=10, on [-5.12, 5.12]^D."""
    amp = real_param("rastrigin: a", a)
    if amp < 0:
        raise ConfigError(f"rastrigin: a must be >= 0 (else the optimum moves), got {a!r}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        # A*(1 - cos) per gene is >= 0 and exactly 0 at x = 0.
        return _fitness((x * x + amp * (1.0 - torch.cos((2.0 * math.pi) * x))).sum(dim=1))

    return Problem(
        name="rastrigin", dim=check_dim(dim), lower=-5.12, upper=5.12, fn=fn,
        optimum=0.0, optimum_x=_zeros, solved_at=_target(solved_at),
        description=BUILTINS["rastrigin"].summary,
    )


def ackley(
    dim: int = 10, *, a: float = 20.0, b: float = 0.2, c: float = 2.0 * math.pi,
    solved_at: float | None = _DEFAULT_SOLVED,
) -> Problem:
    """Ackley: f = -a exp(-b sqrt(mean x^2)) - exp(mean cos(c x)) + a + e."""
    aa = real_param("ackley: a", a)
    bb = real_param("ackley: b", b)
    cc = real_param("ackley: c", c)
    if aa < 0 or bb <= 0:
        raise ConfigError(f"ackley: need a >= 0 and b > 0, got a={a!r}, b={b!r}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        # Same f, rearranged: a*(1 - exp(-b r)) + e*(1 - exp(m - 1)). Both terms are
        # >= 0 and exactly 0 at x = 0, where the textbook order of operations leaves
        # a rounding residue of ~1e-7 in float32.
        r = torch.sqrt((x * x).mean(dim=1))
        m = torch.cos(cc * x).mean(dim=1)
        return aa * torch.expm1(-bb * r) + math.e * torch.expm1(m - 1.0)

    return Problem(
        name="ackley", dim=check_dim(dim), lower=-32.768, upper=32.768, fn=fn,
        optimum=0.0, optimum_x=_zeros, solved_at=_target(solved_at),
        description=BUILTINS["ackley"].summary,
    )


def rosenbrock(dim: int = 10, *, solved_at: float | None = _DEFAULT_SOLVED) -> Problem:
    """Rosenbrock: f = sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2 on [-5, 10]^D, D >= 2."""
    d = check_dim(dim, minimum=2, what="rosenbrock: dim")

    def fn(x: torch.Tensor) -> torch.Tensor:
        head, tail = x[:, :-1], x[:, 1:]
        valley = tail - head * head
        return _fitness((100.0 * valley * valley + (1.0 - head) ** 2).sum(dim=1))

    return Problem(
        name="rosenbrock", dim=d, lower=-5.0, upper=10.0, fn=fn,
        optimum=0.0, optimum_x=_ones, solved_at=_target(solved_at),
        description=BUILTINS["rosenbrock"].summary,
    )


def griewank(dim: int = 10, *, solved_at: float | None = _DEFAULT_SOLVED) -> Problem:
    """Griewank: f = 1 + sum x^2/4000 - prod cos(x[i]/sqrt(i)), i from 1, on [-600, 600]^D."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        scale = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype).rsqrt()
        # |cos| <= 1 survives rounding, so 1 - prod >= 0 and f >= 0 without a clamp.
        wave = 1.0 - torch.cos(x * scale).prod(dim=1)
        return _fitness((x * x).sum(dim=1) / 4000.0 + wave)

    return Problem(
        name="griewank", dim=check_dim(dim), lower=-600.0, upper=600.0, fn=fn,
        optimum=0.0, optimum_x=_zeros, solved_at=_target(solved_at),
        description=BUILTINS["griewank"].summary,
    )


def schwefel(dim: int = 10, *, solved_at: float | None = _DEFAULT_SOLVED) -> Problem:
    """Schwefel 2.26: f = 418.9829*D - sum x sin(sqrt|x|) on [-500, 500]^D."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        # Summing per-gene gaps C - x sin(sqrt|x|) keeps float32 precise near x*
        # (C*D - sum would cancel two numbers of ~419*D). Inside the domain each gap
        # is >= 0, so negatives there are rounding and are clamped; outside it the
        # gap really is negative and is kept, so unclipped genomes are not flattered.
        gap = SCHWEFEL_C - x * torch.sin(torch.sqrt(x.abs()))
        gap = torch.where(x.abs() <= 500.0, gap.clamp(min=0.0), gap)
        return _fitness(gap.sum(dim=1))

    return Problem(
        name="schwefel", dim=check_dim(dim), lower=-500.0, upper=500.0, fn=fn,
        optimum=0.0, optimum_x=_schwefel_x, solved_at=_target(solved_at),
        description=BUILTINS["schwefel"].summary,
    )


def ellipsoid_f(z: torch.Tensor) -> torch.Tensor:
    """sum 10^(6 (i-1)/(D-1)) z_i^2 over the rows of z [P, D] (weight 1 when D = 1).

    Shared with the rotated ellipsoid. The weights are made in float64 on z's device (D
    numbers, no host copy) and rounded once to z's dtype, so both dtypes weigh alike.
    """
    d = z.shape[1]
    exponent = torch.arange(d, device=z.device, dtype=torch.float64) * (6.0 / max(d - 1, 1))
    weights = torch.pow(10.0, exponent).to(z.dtype)
    return (weights * z * z).sum(dim=1)


def ellipsoid(dim: int = 10, *, solved_at: float | None = -1e-8) -> Problem:
    """Ellipsoid: f = sum 10^(6 (i-1)/(D-1)) x_i^2 on [-5, 5]^D; unimodal, separable, condition 1e6.

    The sphere's counterpart for step-size and covariance adaptation: a search that keeps
    one step size for every gene crawls along the 1e6-times-flatter axes.
    """

    def fn(x: torch.Tensor) -> torch.Tensor:
        return _fitness(ellipsoid_f(x))

    return Problem(
        name="ellipsoid", dim=check_dim(dim), lower=-5.0, upper=5.0, fn=fn,
        optimum=0.0, optimum_x=_zeros, solved_at=_target(solved_at),
        description=BUILTINS["ellipsoid"].summary,
    )


class Builtin(NamedTuple):
    """A built-in problem factory and its one-line summary."""

    factory: Callable[..., Problem]
    summary: str


BUILTINS: dict[str, Builtin] = {
    "ackley": Builtin(ackley, "Ackley on [-32.768, 32.768]^D; optimum 0 at 0; params a, b, c"),
    "ellipsoid": Builtin(ellipsoid, "Ellipsoid on [-5, 5]^D, separable, condition 1e6; optimum 0 at 0"),
    "griewank": Builtin(griewank, "Griewank on [-600, 600]^D; optimum 0 at 0"),
    "rastrigin": Builtin(rastrigin, "Rastrigin on [-5.12, 5.12]^D, highly multimodal; optimum 0 at 0; param a"),
    "rosenbrock": Builtin(rosenbrock, "Rosenbrock valley on [-5, 10]^D, D >= 2; optimum 0 at (1, ..., 1)"),
    "schwefel": Builtin(schwefel, "Schwefel 2.26 on [-500, 500]^D, deceptive; optimum 0 at 420.9687..."),
    "sphere": Builtin(sphere, "Sphere on [-5.12, 5.12]^D, unimodal sanity check; optimum 0 at 0"),
}
