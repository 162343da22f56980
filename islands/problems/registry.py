"""Finding a problem by name: built-ins, import paths and installed plug-ins.

Lookup order for `make_problem(name)`:
1. a built-in name ("rastrigin");
2. a gymnasium environment "gym:ENV-ID" (`islands.problems.gym`, the `gym` extra);
   otherwise an import path "package.module:factory" (any name containing a colon);
3. an entry point named `name` in the group "islands.problems" of an installed
   distribution (e.g. `[options.entry_points] islands.problems = xor = mypkg.xor:make`).

A built-in name shadows a plug-in with the same name; among plug-ins with the same name
the first one found on sys.path wins. Every factory is called as
`factory(dim=dim, **params)` and must return a `Problem`. A factory whose genome length
is fixed (e.g. the weights of a given network) may ignore `dim`: the returned
`Problem.dim` is authoritative.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import os
import sys
from importlib import metadata
from typing import Any, Callable

from islands.config import is_inline, not_rebuildable
from islands.errors import ConfigError, IslandsError, ProblemNotFound
from islands.problems.base import Problem, check_dim
from islands.problems.benchmarks import BUILTINS as _BENCHMARKS
from islands.problems.control import CONTROL
from islands.problems.double_pole import DOUBLE_POLE
from islands.problems.gym import gym_problem
from islands.problems.landscapes import LANDSCAPES
from islands.problems.rotated import ROTATED
from islands.problems.usercode import USER_FAILURES, failed, module_of, one_line as _one_line

# Every built-in: the classic benchmarks, their rotated (non-separable) versions, the
# deceptive landscapes and the neuroevolution control tasks.
BUILTINS = {**_BENCHMARKS, **ROTATED, **LANDSCAPES, **CONTROL, **DOUBLE_POLE}

__all__ = ["ENTRY_POINT_GROUP", "builtin_names", "describe_all", "make_problem"]

ENTRY_POINT_GROUP = "islands.problems"
GYM_PREFIX = "gym:"

Factory = Callable[..., Any]


def builtin_names() -> list[str]:
    """Names of the built-in problems, sorted."""
    return sorted(BUILTINS)


def _plugins() -> dict[str, metadata.EntryPoint]:
    """Installed plug-in entry points by name, the first on sys.path winning.

    Not cached: a process builds its problem once, and tests add plug-ins at run time.
    """
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "an unknown distribution"


def _summary(factory: object, fallback: str) -> str:
    doc = inspect.getdoc(factory) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return _one_line(first) if first else fallback


def describe_all() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in and plug-in problem, sorted by name.

    A plug-in that fails to load is listed with the reason instead of raising, so that
    one broken package does not hide the others from `islands problems`.
    """
    rows = {name: entry.summary for name, entry in BUILTINS.items()}
    for name, ep in _plugins().items():
        if name in rows:
            continue  # shadowed by a built-in (see the module docstring)
        origin = f"plug-in {ep.value} from {_dist_name(ep)}"
        try:
            factory = ep.load()
        except USER_FAILURES as exc:  # user code at import time: report, never crash a listing
            rows[name] = str(failed(f"{origin}; cannot load", exc, ep.module, hint=False))
            continue
        rows[name] = _summary(factory, origin)
    return sorted(rows.items())


def _search_current_folder() -> None:
    """Let "module:factory" name a module in the current folder from every entry point.

    `python -m islands` (and so every island `launch` spawns, in the launcher's folder) has the
    current folder on sys.path; the `islands` console script and a script elsewhere do not.
    Appended, not prepended: an installed module of the same name still wins, as it does for
    plug-ins, and nothing imported later is shadowed by a stray file in the folder.
    """
    cwd = os.getcwd()
    if not any(entry in ("", ".", cwd) for entry in sys.path):
        sys.path.append(cwd)


def _load_import_path(spec: str) -> Factory:
    """Resolve "package.module:attr[.attr]" to an object, or raise ProblemNotFound."""
    module_name, _, attr_path = spec.partition(":")
    module_name, attr_path = module_name.strip(), attr_path.strip()
    if not module_name or not attr_path:
        raise ProblemNotFound(f"bad problem import path {spec!r}: expected package.module:factory")
    _search_current_folder()
    try:
        target: Any = importlib.import_module(module_name)
    except USER_FAILURES as exc:  # the user's module may fail in any way while importing, sys.exit too
        raise failed(f"cannot import module {module_name!r} for problem {spec!r}", exc, module_name,
                     ProblemNotFound) from exc
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ProblemNotFound(
                f"problem {spec!r}: {type(target).__name__} {getattr(target, '__name__', module_name)!r} "
                f"has no attribute {part!r}"
            ) from None
    return target


def _load_plugin(name: str, ep: metadata.EntryPoint) -> Factory:
    try:
        return ep.load()
    except USER_FAILURES as exc:  # a plug-in's import may fail in any way, sys.exit too
        raise failed(f"plug-in problem {name!r} ({ep.value} from {_dist_name(ep)}) failed to load",
                     exc, ep.module, ProblemNotFound) from exc


def _unknown(name: str, plugins: dict[str, metadata.EntryPoint]) -> ProblemNotFound:
    known = sorted(set(BUILTINS) | set(plugins))
    hint = ""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        hint = f" Did you mean {close[0]!r}?"
    elif "." in name:
        hint = " Import paths use a colon: package.module:factory."
    return ProblemNotFound(
        f"unknown problem {name!r}; known problems: {', '.join(known)}, "
        f"or an import path package.module:factory.{hint}"
    )


def _call_factory(label: str, factory: Factory, dim: int, params: dict[str, Any], user: bool = True) -> Problem:
    """`factory(dim=dim, **params)`, checked; `user`: the factory is the user's code (not built in),
    so a failure names the user's file and line (`islands.problems.usercode`)."""
    if not callable(factory):
        raise ConfigError(f"problem {label!r}: {factory!r} is not callable; expected a factory(dim, **params)")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins/C callables have no signature
        signature = None
    if signature is not None:
        try:
            signature.bind(dim=dim, **params)
        except TypeError as exc:
            accepted = ", ".join(
                p.name for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )
            raise ConfigError(
                f"problem {label!r} does not accept these parameters ({_one_line(exc)}); "
                f"it takes: {accepted or 'nothing'}"
            ) from None
    module = module_of(factory) if user else None
    try:
        problem = factory(dim=dim, **params)
    except IslandsError:
        raise
    except (TypeError, ValueError) as exc:  # idiomatic "bad argument" errors from a factory
        raise failed(f"problem {label!r} rejected its parameters", exc, module) from exc
    except USER_FAILURES as exc:  # a bug in the factory, or sys.exit: one line, the traceback as its cause
        raise failed(f"problem {label!r}: its factory failed", exc, module) from exc
    if not isinstance(problem, Problem):
        raise ConfigError(
            f"problem factory {label!r} returned {type(problem).__module__}.{type(problem).__qualname__}, "
            "expected an islands.problems.Problem"
        )
    return problem


def make_problem(name: str, dim: int = 10, **params: Any) -> Problem:
    """Build a problem by built-in name, import path or plug-in name.

    Args:
        name: "rastrigin", "package.module:factory", or an entry-point name in the
            "islands.problems" group.
        dim: Genome length D (>= 1; some problems need more, e.g. rosenbrock >= 2).
        **params: Problem parameters passed to the factory, e.g. `a=10` for
            rastrigin or `solved_at=None` to disable the default target.

    Returns:
        The Problem the factory built.

    Raises:
        ProblemNotFound: unknown name, or an import path or plug-in that fails to load
            (raises or calls sys.exit while importing).
        ConfigError: bad dim or parameters, or a factory that fails (raises or calls
            sys.exit) or does not return a Problem. A failure of the user's code says which
            line of the user's module it went through; the exception is its `__cause__`.
    """
    if not isinstance(name, str) or not name.strip():
        raise ProblemNotFound(f"problem name must be a non-empty string, got {name!r}")
    name = name.strip()
    if is_inline(name):
        raise ProblemNotFound(not_rebuildable(name))
    dim = check_dim(dim)
    if name in BUILTINS:
        return _call_factory(name, BUILTINS[name].factory, dim, params, user=False)
    if name.startswith(GYM_PREFIX):  # gymnasium environments: gym:ENV-ID (islands.problems.gym)
        return _call_factory(name, functools.partial(gym_problem, name[len(GYM_PREFIX):]), dim, params, user=False)
    if ":" in name:
        return _call_factory(name, _load_import_path(name), dim, params)
    plugins = _plugins()
    if name in plugins:
        return _call_factory(name, _load_plugin(name, plugins[name]), dim, params)
    raise _unknown(name, plugins)
