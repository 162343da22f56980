"""Problems given as Python objects (a fitness function or a `Problem`) for runs in one process.

A run's manifest records its problem as a name or an import path, so that every island, in any
process, rebuilds the same problem. A function defined in a notebook or a script has no such
name: `islands.runs.evolve(..., problem=fn)` runs it in the calling process and records it as
`"<python:module.qualname>"` with its bounds, never the function itself. Resuming that run
needs the same function passed again (the same label and bounds); the command line and the
launcher, which build problems from the manifest in new processes, refuse it with a message
that says so.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from islands.algorithms import make_algorithm, resolve_dtype
from islands.config import INLINE_PREFIX as PREFIX
from islands.config import is_inline, not_rebuildable  # noqa: F401  (re-exported)
from islands.errors import ConfigError
from islands.problems.base import Problem
from islands.problems.usercode import USER_FAILURES, failed, module_of


def label(fn: Callable[..., Any]) -> str:
    """`"<python:module.qualname>"` for a fitness function (functools.partial: its function)."""
    target = getattr(fn, "func", fn)
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{PREFIX}{module}.{qualname}>"


def build(problem: Any, dim: int, bounds: tuple[Any, Any] | None) -> Any:
    """A `Problem` from a `Problem` (as it is) or a fitness function over [P, dim] genomes.

    Raises ConfigError for a function without `bounds` or with bad bounds or dim.
    """
    if isinstance(problem, Problem):
        if bounds is not None:
            raise ConfigError("bounds= is for a fitness function; a Problem carries its own lower and upper")
        return problem
    if not callable(problem):
        raise ConfigError(f"problem= must be a Problem or a fitness function (genomes [P, D] -> fitness [P]), "
                          f"got {type(problem).__name__}")
    if bounds is None:
        raise ConfigError("a fitness function needs bounds=(lower, upper): one number each, or one per gene")
    try:
        lower, upper = bounds
    except (TypeError, ValueError):
        raise ConfigError(f"bounds must be a pair (lower, upper), got {bounds!r}") from None
    name = label(problem)[len(PREFIX):-1]
    return Problem(name=name, dim=dim, lower=lower, upper=upper, fn=problem,
                   description="a Python function given to islands.runs.evolve")


def fn_of(problem: Any) -> Callable[..., Any]:
    """The function that names an inline problem: a Problem's `fn`, else the callable itself."""
    return problem.fn if isinstance(problem, Problem) else problem


def recorded_params(problem: Any) -> dict[str, Any]:
    """The manifest's problem_params of an inline problem: its bounds (so a change conflicts)."""
    def plain(b: Any) -> Any:
        return list(b) if isinstance(b, tuple) else b

    return {"lower": plain(problem.lower), "upper": plain(problem.upper)}


def check_runs(cfg: Any, problem: Any) -> Any:
    """Build the algorithm for `problem` (returned) and score two genomes, before anything is written.

    A function that raises (or calls sys.exit) or returns the wrong shape is reported here, as
    a ConfigError naming the user's line, instead of after the run directory holds a manifest
    the corrected call would contradict. The global torch generator is left as it was.
    """
    algo = make_algorithm(cfg, problem, "cpu")
    if problem.genome_kind != "vector":
        return algo
    dtype = resolve_dtype(cfg, problem)
    lo, hi = problem.bounds(dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    x = lo + (hi - lo) * torch.rand((2, problem.dim), generator=gen, dtype=dtype)
    with torch.random.fork_rng(devices=[]):  # a function drawing from it must not shift the run's draws
        try:
            problem.evaluate(x)
        except ConfigError:
            raise
        except USER_FAILURES as e:  # the user's function may raise anything: report it
            raise failed(f"problem {problem.name}: the fitness function failed on 2 test genomes "
                         f"of shape [2, {problem.dim}]", e, module_of(problem.fn)) from e
    return algo
