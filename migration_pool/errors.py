"""Errors of the shared-directory protocol.

Every error subclasses a builtin and carries the offending path, so callers can catch
the narrow type they expect and the message still says which file was at fault.
"""
from __future__ import annotations


class PoolError(Exception):
    """Base class of every error raised by `migration_pool`."""


class FormatError(PoolError, ValueError):
    """A file or byte string is not a valid record: the decoder's only error type."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self):  # survive crossing a process boundary
        return (type(self), (self.args[0], None))


class RunDirError(PoolError, OSError):
    """The run directory is missing, not a run, or cannot be written."""


class ManifestConflict(PoolError, ValueError):
    """A setting contradicts the one recorded in the run manifest."""

    def __init__(self, name: str, recorded: object, given: object) -> None:
        self.name, self.recorded, self.given = name, recorded, given
        have = "the default" if recorded is None else f"{name}={recorded!r}"
        super().__init__(f"{name}={given!r} contradicts the run manifest, which records {have}")

    def __reduce__(self):
        return (type(self), (self.name, self.recorded, self.given))


class IslandBusy(PoolError, RuntimeError):
    """Another live process already runs this island id in this run."""


class LauncherBusy(IslandBusy):
    """Another live launcher already supervises this run."""
