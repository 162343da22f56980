"""When a user's problem code fails: one line that names the user's file and line.

Importing a problem module, loading a plug-in, calling a factory and scoring the first genomes
run code the user wrote, which may raise anything or call `sys.exit`. Each such failure becomes
a `ConfigError` (exit 2 on the command line, never restarted by the launcher) whose message is
one line: what failed, the exception (or the `sys.exit` code) and the deepest line of the
user's own module it went through, e.g. `problem 'mymod:make': its factory failed:
RuntimeError: boom at /home/me/mymod.py:12`. The exception stays the error's `__cause__`, so a
Python caller sees the whole traceback and `islands --debug` prints it (`islands.errors`).
KeyboardInterrupt is not the user's code failing: it is let through.
"""
from __future__ import annotations

import traceback
from typing import Any

from islands.errors import ConfigError, debug_wanted

# What a user's code may raise that must not end the process: every exception and sys.exit.
USER_FAILURES = (Exception, SystemExit)


def one_line(text: object, limit: int = 300) -> str:
    """Collapse an error text to one short line: messages here end up in a terminal."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """`Type: message` on one line; `sys.exit(code)` for a SystemExit."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({'' if exc.code is None else repr(exc.code)})"
    text = one_line(exc, 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def location(exc: BaseException, module: str | None) -> str | None:
    """`path:line` of the deepest frame of `exc`'s traceback in `module`'s top-level package.

    `module` is the user's module (the import path's, the plug-in's, the factory's
    `__module__`); None (a built-in) or no such frame gives None. A syntax error in the
    user's file is not a frame: its own file and line are used.
    """
    if not module:
        return None
    top = module.partition(".")[0]
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        name = str(frame.f_globals.get("__name__") or "")
        if name.partition(".")[0] == top:
            found = f"{frame.f_code.co_filename}:{line}"
    if found is None and isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        found = f"{exc.filename}:{exc.lineno}"
    return found


def failed(what: str, exc: BaseException, module: str | None, kind: type[ConfigError] = ConfigError,
           hint: bool = True) -> ConfigError:
    """The one-line error for user code that raised `exc` (raise it `from exc`); `hint`: say
    how to see the traceback (not where the caller shows none, e.g. a listing)."""
    where = location(exc, module)
    at = f" at {where}" if where else ""
    more = " (islands --debug shows the traceback)" if where and hint and not debug_wanted() else ""
    return kind(f"{what}: {describe(exc)}{at}{more}")


# Our own packages: a problem whose code lives there is built in, not the user's.
OWN_PACKAGES = frozenset({"islands", "launcher", "migration_pool"})


def user_modules(problem: Any, spec: str = "") -> tuple[str, ...]:
    """The user's modules behind `problem`: its fitness function's and, for an import path
    `pkg.mod:factory`, the factory's. Empty for a built-in problem."""
    found = [module_of(getattr(problem, "fn", None))]
    if ":" in spec and not spec.startswith("<"):
        found.append(spec.partition(":")[0])
    return tuple(dict.fromkeys(m for m in found if m and m.partition(".")[0] not in OWN_PACKAGES))


def failed_mid_run(what: str, exc: BaseException, modules: tuple[str, ...]) -> ConfigError | None:
    """The one-line error for user code that raised `exc` while a run was going (its fitness on a
    later generation), or None when no frame of `modules` is in the traceback: then it is not
    the user's code that failed, and the exception goes on as it is."""
    for module in modules:
        if location(exc, module) is not None:
            return failed(what, exc, module)
    return None


def module_of(obj: Any) -> str | None:
    """The module a factory or fitness function was defined in (a partial's function's)."""
    target = getattr(obj, "func", obj)
    name = getattr(target, "__module__", None)
    return name if isinstance(name, str) else None
