"""Errors of the evolution engine.

Messages are user-facing: the CLI prints them as one line and exits non-zero, so they say
what was wrong and what to do, without a traceback.
"""
from __future__ import annotations


class IslandsError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(IslandsError, ValueError):
    """A bad option or setting."""


class ProblemNotFound(ConfigError):
    """An unknown problem name or an import path that does not import."""


class CheckpointError(IslandsError):
    """A checkpoint exists but cannot be used (corrupt, or from other settings)."""
