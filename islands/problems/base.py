"""The `Problem` type: what an island optimises.

A problem is plain data plus one vectorised fitness function. Fitness is maximised
everywhere (docs/DESIGN.md, "Fitness"): a minimisation benchmark's `fn` returns -f(x).
Problems are never pickled or written to the run directory; every island rebuilds its
problem from the name and parameters recorded in the run manifest.
"""
from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch

from islands.errors import ConfigError

__all__ = ["Problem", "FitnessFn", "check_dim", "optional_real", "real_param"]

#: genomes [P, D] -> fitness [P], larger is better.
FitnessFn = Callable[[torch.Tensor], torch.Tensor]


def check_dim(dim: Any, *, minimum: int = 1, what: str = "dim") -> int:
    """Return `dim` as an int, or raise ConfigError quoting the bad value.

    Accepts any integral number (numpy ints included) but not bools or floats, so a
    typo such as `dim=2.5` is refused instead of silently truncated.
    """
    if isinstance(dim, bool):
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {dim!r}")
    try:
        value = operator.index(dim)
    except TypeError:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {dim!r}") from None
    if value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value}")
    return value


def real_param(name: str, value: Any) -> float:
    """Return `value` as a finite float, or raise ConfigError naming the parameter.

    Strings that parse as numbers are accepted because parameters often arrive from
    the command line or a manifest as text.
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    try:
        result = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(result):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return result


def optional_real(name: str, value: Any) -> float | None:
    """Like `real_param`, but None stays None (an unknown or disabled value)."""
    return None if value is None else real_param(name, value)


@dataclass(frozen=True)
class Problem:
    """A box-bounded problem with a vectorised, maximised fitness function.

    Attributes:
        name: Short name, e.g. "rastrigin".
        dim: Genome length D.
        lower, upper: Bounds of the genes, lower < upper: one number for every gene, or a
            sequence of D numbers (one per gene).
        fn: genomes [P, D] -> fitness [P], maximised; a handful of tensor ops over the
            whole population, never a Python loop over individuals. NaN is allowed
            (the engine ranks NaN as the worst fitness); +inf is no fitness (it would beat
            every real one) and counts as NaN; -inf is the worst real fitness. A generation
            without one finite value is warned about, and an island that never sees one ends
            with reason "no-finite-fitness" (`islands.exit_codes.EXIT_NO_FITNESS`).
        optimum: Best possible fitness (0.0 for -f of the classic benchmarks), or None.
        optimum_x: dim -> float64 tensor [dim], a point where `optimum` is reached.
        solved_at: Default target: an island stops once its best fitness is >= this.
        description: One line for `islands problems`.
        genome_kind: "vector" for real vectors; other kinds (e.g. NEAT graphs) skip
            the [P, D] shape check in `evaluate`.
        dtype: "float64" or "float32", the precision genomes and fitness are evolved in
            unless the run asks for another (`--dtype`). float64 lets a benchmark report
            precision below 1e-7; network weights need no more than float32.
        reseed: For problems whose fitness depends on random episode starts (gym:*): the
            island calls it with `islands.config.episode_seed(island seed, generation)` before it evaluates
            a generation, so every generation meets fresh starts and a resumed island
            replays the same ones (docs/DESIGN.md, "Episode seeds"). None: deterministic.
    """

    name: str
    dim: int
    lower: float | tuple[float, ...]
    upper: float | tuple[float, ...]
    fn: FitnessFn
    optimum: float | None = None
    optimum_x: Callable[[int], torch.Tensor] | None = None
    solved_at: float | None = None
    description: str = ""
    genome_kind: str = "vector"
    dtype: str = "float64"
    reseed: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"problem name must be a non-empty string, got {self.name!r}")
        # frozen: coerce through object.__setattr__ so the stored values are canonical.
        object.__setattr__(self, "dim", check_dim(self.dim, what=f"{self.name}: dim"))
        lower = self._bound("lower", self.lower)
        upper = self._bound("upper", self.upper)
        pairs = zip(*(b if isinstance(b, tuple) else (b,) * self.dim for b in (lower, upper)))
        for i, (lo, hi) in enumerate(pairs):
            if not lo < hi:
                where = "" if not isinstance(lower, tuple) and not isinstance(upper, tuple) else f" of gene {i}"
                raise ConfigError(f"{self.name}: lower bound {lo} must be below upper bound {hi}{where}")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if self.dtype not in ("float64", "float32"):
            raise ConfigError(f"{self.name}: dtype must be float64 or float32, got {self.dtype!r}")
        if not callable(self.fn):
            raise ConfigError(f"{self.name}: fn must be callable, got {self.fn!r}")
        if self.reseed is not None and not callable(self.reseed):
            raise ConfigError(f"{self.name}: reseed must be callable(seed) or None")
        if self.optimum_x is not None and not callable(self.optimum_x):
            raise ConfigError(f"{self.name}: optimum_x must be callable(dim) or None")
        optimum = optional_real(f"{self.name}: optimum", self.optimum)
        solved_at = optional_real(f"{self.name}: solved_at", self.solved_at)
        if optimum is not None and solved_at is not None and solved_at > optimum:
            # A target above the best possible fitness would never stop an island.
            raise ConfigError(
                f"{self.name}: solved_at {solved_at} is above the optimum {optimum}: "
                "it could never be reached"
            )
        object.__setattr__(self, "optimum", optimum)
        object.__setattr__(self, "solved_at", solved_at)
        if not isinstance(self.description, str):
            raise ConfigError(f"{self.name}: description must be a string")
        if not isinstance(self.genome_kind, str) or not self.genome_kind:
            raise ConfigError(f"{self.name}: genome_kind must be a non-empty string")

    def _bound(self, which: str, value: Any) -> float | tuple[float, ...]:
        """One finite number, or a tuple of D finite numbers (per-gene bounds)."""
        if isinstance(value, (numbers.Real, str)) or (hasattr(value, "ndim") and value.ndim == 0):
            return real_param(f"{self.name}: {which}", value.item() if hasattr(value, "item") else value)
        try:
            items = [real_param(f"{self.name}: {which}[{i}]", v) for i, v in enumerate(list(value))]
        except TypeError:
            raise ConfigError(f"{self.name}: {which} must be a number or {self.dim} numbers, got {value!r}") from None
        if len(items) != self.dim:
            raise ConfigError(f"{self.name}: {which} has {len(items)} bounds for {self.dim} genes")
        return tuple(items)

    def evaluate(self, genomes: torch.Tensor) -> torch.Tensor:
        """Fitness of a population, checked.

        Args:
            genomes: [P, D] floating-point tensor (any P >= 0) for vector problems.

        Returns:
            Fitness [P] (maximised) on the genomes' device, in their dtype; NaN allowed,
            +inf replaced by NaN (it can never become a best or a champion).

        Raises:
            ConfigError: genomes of the wrong type, shape or dtype, or a fitness
                function that does not return one real value per genome.
        """
        if not isinstance(genomes, torch.Tensor):
            raise ConfigError(f"{self.name}: genomes must be a torch.Tensor, got {type(genomes).__name__}")
        if self.genome_kind == "vector":
            if genomes.ndim != 2 or genomes.shape[1] != self.dim:
                raise ConfigError(
                    f"{self.name}: genomes must have shape [P, {self.dim}], got {list(genomes.shape)}"
                )
            if not genomes.is_floating_point():
                raise ConfigError(f"{self.name}: genomes must be floating point, got {genomes.dtype}")
        elif genomes.ndim < 1:
            raise ConfigError(f"{self.name}: genomes must have a leading population dimension")
        fitness = self.fn(genomes)
        count = genomes.shape[0]
        if not isinstance(fitness, torch.Tensor) or tuple(fitness.shape) != (count,):
            got = list(fitness.shape) if isinstance(fitness, torch.Tensor) else type(fitness).__name__
            raise ConfigError(f"{self.name}: fitness function must return shape [{count}], got {got}")
        if fitness.is_complex():
            raise ConfigError(f"{self.name}: fitness function returned complex values")
        if genomes.is_floating_point():
            dtype = genomes.dtype
        elif fitness.is_floating_point():
            dtype = fitness.dtype
        else:
            dtype = torch.get_default_dtype()
        # One elementwise pass, no device sync: +inf ranks with NaN, NaN and -inf stay.
        return fitness.to(device=genomes.device, dtype=dtype).nan_to_num(
            nan=math.nan, posinf=math.nan, neginf=-math.inf)

    def target_note(self, target: float | None) -> str | None:
        """Why `target` can never be reached (None when it can, or the optimum is unknown): it is
        above the problem's known optimum. Fitness is maximised, so a benchmark's -f(x) is at
        most 0. Not an error: a target beyond reach is how a run says "every generation", but
        the island says so when it starts, so a typo (a positive target for -f(x)) is seen."""
        if target is None or self.optimum is None or not target > self.optimum:
            return None
        return (f"--target {target:g} is above the best fitness {self.name} can reach ({self.optimum:g}; "
                "fitness is maximised, a benchmark's is -f(x) <= 0): it will never be reached, so only "
                "--generations, --max-evaluations or --stagnation-limit end the island")

    def bounds(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-gene lower and upper bounds, each [D], on `device` in `dtype`.

        `dtype` defaults to torch's default dtype, `device` to the CPU.
        """
        dtype = dtype or torch.get_default_dtype()

        def column(b: float | tuple[float, ...]) -> torch.Tensor:
            if isinstance(b, tuple):
                return torch.tensor(b, device=device, dtype=dtype)
            return torch.full((self.dim,), b, device=device, dtype=dtype)

        return column(self.lower), column(self.upper)

    def optimum_point(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor | None:
        """The known optimum location [D] on `device` in `dtype`, or None if unknown."""
        if self.optimum_x is None:
            return None
        point = torch.as_tensor(self.optimum_x(self.dim))
        return point.to(device=device, dtype=dtype or torch.get_default_dtype())
