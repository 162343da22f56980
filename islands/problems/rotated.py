"""Rotated (non-separable) benchmarks: the classic landscapes seen in a random coordinate system.

Every benchmark in benchmarks.py is separable: its optimum can be found one gene at a time,
which per-gene mutation, uniform crossover and a diagonal covariance (sep-CMA-ES) exploit.
Rotating the coordinates keeps everything else (distances, local optima, conditioning) and
removes that shortcut, so a comparison on these says something about general problems.

Rotation: R is the Q factor of the QR decomposition of a D x D standard Gaussian matrix drawn
from a `torch.Generator` seeded with `rotation_seed` (default 0), each column's sign fixed by
the sign of R's diagonal so that Q is uniformly (Haar) distributed and depends on the seed
alone, not on LAPACK's sign convention. It is built once per problem, on the CPU in float64;
each (device, dtype) gets its copy on first use, cached in the problem's closure.

Shift: `rotated_ellipsoid`, `rotated_rastrigin` and `bent_cigar` (when rotated) rotate around
a centre o drawn uniformly from [-4, 4]^D by the same generator right after the matrix:
f(x) = g(R (x - o)), optimum at x = o. Every algorithm here starts from a population centred
in the box, which an optimum at 0 would flatter. `rotated_schwefel` rotates around its own
off-centre optimum x* = (420.9687..., ...): f(x) = schwefel(x* + R (x - x*)).

Exact zeros: at x = o in the run's dtype, x - o is exactly 0, so R (x - o) is exactly 0 and f
is exactly 0.0 in float32 and float64; every summand is >= 0, so rounding cannot push fitness
above 0 anywhere. `optimum_x` is o in float64; in a float32 run the optimum is o rounded to
float32, which is what `optimum_point(dtype=float32)` returns.

Precision: float32 resolves x - o only to ~2.4e-7 per gene, so the unimodal targets (-1e-8)
of the ill-conditioned ellipsoid and bent cigar (weights up to 1e6) need float64, the default.
Batched and row-by-row evaluations agree to rounding, not bit for bit: the matrix product may
sum in another order for another batch size.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import torch

from islands.errors import ConfigError
from islands.problems.base import Problem, check_dim, optional_real
from islands.problems.benchmarks import SCHWEFEL_C, SCHWEFEL_X, Builtin, ellipsoid_f

__all__ = ["ROTATED", "Frame", "rotation_frame", "rotation_seed_param"]

_SEED_LIMIT = 2**63
_UNIMODAL = -1e-8
_MULTIMODAL = -1e-4
_SHIFT = 4.0  # centres o are drawn from [-_SHIFT, _SHIFT]^D, inside every box here


def rotation_seed_param(value: Any, what: str = "rotation_seed") -> int:
    """An integer seed in [0, 2**63), from an int or a string of one; else ConfigError quoting it."""
    if isinstance(value, str):
        try:
            seed = int(value.strip())
        except ValueError:
            raise ConfigError(f"{what} must be an integer in [0, 2**63), got {value!r}") from None
    elif isinstance(value, bool):
        raise ConfigError(f"{what} must be an integer in [0, 2**63), got {value!r}")
    else:
        try:
            seed = operator.index(value)
        except TypeError:
            raise ConfigError(f"{what} must be an integer in [0, 2**63), got {value!r}") from None
    if not 0 <= seed < _SEED_LIMIT:
        raise ConfigError(f"{what} must be an integer in [0, 2**63), got {value!r}")
    return seed


def _flag_param(value: Any, what: str) -> bool:
    """0/1, a bool, or "0"/"1"/"true"/"false"/"yes"/"no" (command-line text); else ConfigError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes"):
            return True
        if text in ("0", "false", "no"):
            return False
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{what} must be 0 or 1, got {value!r}")


def rotation_frame(dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, o): the seeded orthogonal matrix [D, D] and shift [D], CPU float64 (module docstring)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    gauss = torch.randn((dim, dim), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(gauss)
    signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(torch.float64)
    shift = (2.0 * _SHIFT) * torch.rand(dim, generator=gen, dtype=torch.float64) - _SHIFT
    return q * signs, shift


class Frame:
    """z = R (x - centre) for each row x, with R and centre cached per (device, dtype).

    Lives inside one problem's fitness closure; islands evaluate on one device, so the
    cache holds one or two entries. Two threads filling it at once store equal copies.
    """

    def __init__(self, matrix: torch.Tensor, centre: torch.Tensor) -> None:
        self.matrix = matrix
        self.centre = centre
        # Rows are genomes, so R (x - c) for all of them is (X - c) R^T.
        self._copies: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def _on(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (x.device, x.dtype)
        copy = self._copies.get(key)
        if copy is None:
            copy = (self.matrix.T.contiguous().to(device=x.device, dtype=x.dtype),
                    self.centre.to(device=x.device, dtype=x.dtype))
            self._copies[key] = copy
        return copy

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """R (x - centre) for every row of x [P, D]."""
        matrix_t, centre = self._on(x)
        return (x - centre) @ matrix_t

    def about(self, x: torch.Tensor) -> torch.Tensor:
        """centre + R (x - centre): x turned around the centre, for every row of x [P, D]."""
        matrix_t, centre = self._on(x)
        return centre + (x - centre) @ matrix_t

    def point(self) -> Callable[[int], torch.Tensor]:
        """`optimum_x` for a problem whose optimum is the centre."""
        centre = self.centre
        return lambda dim: centre.clone()


def _fitness(f: torch.Tensor) -> torch.Tensor:
    """-f, written 0 - f so that the optimum reads 0.0 rather than -0.0 in reports."""
    return 0.0 - f


def _shifted_frame(dim: int, rotation_seed: Any) -> Frame:
    matrix, shift = rotation_frame(dim, rotation_seed_param(rotation_seed))
    return Frame(matrix, shift)


def rotated_ellipsoid(dim: int = 10, *, rotation_seed: int = 0,
                      solved_at: float | None = _UNIMODAL) -> Problem:
    """Rotated ellipsoid: f = sum 10^(6 (i-1)/(D-1)) z_i^2, z = R (x - o), on [-5, 5]^D.

    Condition 1e6 along random directions: needs a full covariance (CMA-ES) rather than a
    per-gene step size.
    """
    d = check_dim(dim)
    frame = _shifted_frame(d, rotation_seed)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return _fitness(ellipsoid_f(frame.apply(x)))

    return Problem(
        name="rotated_ellipsoid", dim=d, lower=-5.0, upper=5.0, fn=fn,
        optimum=0.0, optimum_x=frame.point(), solved_at=optional_real("solved_at", solved_at),
        description=ROTATED["rotated_ellipsoid"].summary,
    )


def bent_cigar(dim: int = 10, *, rotate: Any = 1, rotation_seed: int = 0,
               solved_at: float | None = _UNIMODAL) -> Problem:
    """Bent cigar: f = z_1^2 + 1e6 sum_{i>1} z_i^2 on [-5, 5]^D, z = R (x - o), or z = x with rotate=0.

    One long axis in a ridge 1e3 times narrower. Unrotated, the long axis is gene 1 and
    the optimum 0 (a per-gene step size solves it); rotated (the default), both are random.
    """
    d = check_dim(dim)
    rotated = _flag_param(rotate, "bent_cigar: rotate")
    seed = rotation_seed_param(rotation_seed)  # validated even when unused
    frame = _shifted_frame(d, seed) if rotated else None

    def fn(x: torch.Tensor) -> torch.Tensor:
        z = frame.apply(x) if frame is not None else x
        head, tail = z[:, :1], z[:, 1:]
        return _fitness((head * head).sum(dim=1) + 1e6 * (tail * tail).sum(dim=1))

    return Problem(
        name="bent_cigar", dim=d, lower=-5.0, upper=5.0, fn=fn, optimum=0.0,
        optimum_x=frame.point() if frame is not None else (lambda n: torch.zeros(n, dtype=torch.float64)),
        solved_at=optional_real("solved_at", solved_at), description=ROTATED["bent_cigar"].summary,
    )


def rotated_rastrigin(dim: int = 10, *, rotation_seed: int = 0,
                      solved_at: float | None = _MULTIMODAL) -> Problem:
    """Rotated Rastrigin: f = sum z^2 + 10 (1 - cos(2 pi z)), z = R (x - o), on [-5.12, 5.12]^D.

    The local minima sit on a rotated lattice, so no single gene leads to a better one;
    their values are those of Rastrigin (the best non-global ~0.995, above the target).
    """
    d = check_dim(dim)
    frame = _shifted_frame(d, rotation_seed)

    def fn(x: torch.Tensor) -> torch.Tensor:
        z = frame.apply(x)
        return _fitness((z * z + 10.0 * (1.0 - torch.cos((2.0 * math.pi) * z))).sum(dim=1))

    return Problem(
        name="rotated_rastrigin", dim=d, lower=-5.12, upper=5.12, fn=fn,
        optimum=0.0, optimum_x=frame.point(), solved_at=optional_real("solved_at", solved_at),
        description=ROTATED["rotated_rastrigin"].summary,
    )


def schwefel_walled(y: torch.Tensor) -> torch.Tensor:
    """Per-gene Schwefel gaps of y [P, D] inside [-500, 500], a quadratic wall outside; all >= 0.

    Plain `schwefel` evaluates its formula as is outside the domain, which only unclipped
    genomes reach. Here in-box genomes do reach it: y = x* + R (x - x*) leaves [-500, 500]
    for many x in the box, and there x sin(sqrt|x|) exceeds the in-domain maximum (e.g.
    near 713), so the raw formula would put better-than-optimal points inside the box.
    So y is clamped to the domain (the gap at the edge is >= 238) and (|y| - 500)^2 is
    added: f >= 0 everywhere, rising outward, with its only zero at x*. (Folding y back
    into the domain instead would copy x* to 579.03 with only a small penalty: a decoy.)
    In many genes most of the box maps outside the domain, so the wall shapes much of the
    landscape, as BBOB's boundary penalty does for its Schwefel (f20).
    """
    inside = y.clamp(-500.0, 500.0)
    # In-domain gaps below 0 are rounding near x*, clamped as in `schwefel`.
    gap = (SCHWEFEL_C - inside * torch.sin(torch.sqrt(inside.abs()))).clamp(min=0.0)
    excess = y.abs() - 500.0
    return gap + torch.where(excess > 0, excess * excess, torch.zeros_like(excess))


def rotated_schwefel(dim: int = 10, *, rotation_seed: int = 0,
                     solved_at: float | None = _MULTIMODAL) -> Problem:
    """Rotated Schwefel: f = sum gap(x* + R (x - x*)) on [-500, 500]^D, rotated around x* = 420.9687...

    Rotating around the optimum keeps it inside the box at the same place as `schwefel`;
    points the rotation carries out of [-500, 500] meet a quadratic wall (`schwefel_walled`).
    """
    d = check_dim(dim)
    matrix, _ = rotation_frame(d, rotation_seed_param(rotation_seed))
    frame = Frame(matrix, torch.full((d,), SCHWEFEL_X, dtype=torch.float64))

    def fn(x: torch.Tensor) -> torch.Tensor:
        return _fitness(schwefel_walled(frame.about(x)).sum(dim=1))

    return Problem(
        name="rotated_schwefel", dim=d, lower=-500.0, upper=500.0, fn=fn,
        optimum=0.0, optimum_x=frame.point(), solved_at=optional_real("solved_at", solved_at),
        description=ROTATED["rotated_schwefel"].summary,
    )


ROTATED: dict[str, Builtin] = {
    "bent_cigar": Builtin(bent_cigar, "Bent cigar on [-5, 5]^D, condition 1e6, rotated and shifted unless "
                          "rotate=0; optimum 0 at a seeded point; params rotate, rotation_seed"),
    "rotated_ellipsoid": Builtin(rotated_ellipsoid, "Ellipsoid (condition 1e6) rotated and shifted, on [-5, 5]^D; "
                                 "optimum 0 at a seeded point; param rotation_seed"),
    "rotated_rastrigin": Builtin(rotated_rastrigin, "Rastrigin rotated and shifted, on [-5.12, 5.12]^D; "
                                 "optimum 0 at a seeded point; param rotation_seed"),
    "rotated_schwefel": Builtin(rotated_schwefel, "Schwefel 2.26 rotated around its optimum 420.9687... on "
                                "[-500, 500]^D, walled outside the domain; param rotation_seed"),
}
