"""Errors of the launcher.

`PlanError` is a user's bad input (`-n 0`, a core that does not exist, an unknown `--vary`
name): it subclasses the engine's `ConfigError`, so the CLI exits 2 for it as for any other
bad option, and nothing has been started when it is raised.
"""
from __future__ import annotations

from islands.errors import ConfigError, IslandsError


class LauncherError(IslandsError):
    """Base class of every error the launcher raises on purpose."""


class PlanError(LauncherError, ConfigError):
    """A launch option that cannot be planned; raised before anything is started."""
