"""Errors of the evolution engine.

Messages are user-facing: the CLI prints them as one line and exits non-zero, so they say
what was wrong and what to do, without a traceback. With `islands --debug` (or
ISLANDS_DEBUG=1, which the commands' child processes inherit) the traceback behind such a line
is shown as well (`show_traceback`).
"""
from __future__ import annotations

import os
import sys
import traceback

DEBUG_ENV = "ISLANDS_DEBUG"


def debug_wanted() -> bool:
    """Whether the user asked for tracebacks (`islands --debug`, or ISLANDS_DEBUG set and not 0)."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def show_traceback(exc: BaseException) -> None:
    """Print `exc`'s traceback (its causes first) to stderr when the user asked for it."""
    if debug_wanted():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()


class IslandsError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(IslandsError, ValueError):
    """A bad option or setting."""


class ProblemNotFound(ConfigError):
    """An unknown problem name or an import path that does not import."""


class CheckpointError(IslandsError):
    """A checkpoint exists but cannot be used (corrupt, or from other settings)."""
