"""Exit codes of `islands` commands, shared by the CLI (which exits with them) and the
launcher (which decides from them whether a crashed island is worth restarting).

Kept apart from `islands.cli` so that the launcher's restart policy can read them without
importing click; see docs/DESIGN.md, "Restart policy".
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # a run-directory error, or an island that failed
EXIT_USAGE = 2  # a bad option or a contradiction of the run's manifest
EXIT_CHECKPOINT = 3  # a checkpoint exists but cannot be used
EXIT_BUSY = 4  # the island (or the run's launcher) already runs elsewhere

# Restarting cannot fix these: the launcher gives an island up at once when it exits so.
NO_RESTART = frozenset({EXIT_OK, EXIT_USAGE, EXIT_CHECKPOINT, EXIT_BUSY})

MEANING = {EXIT_USAGE: "bad option or manifest conflict", EXIT_CHECKPOINT: "unusable checkpoint",
           EXIT_BUSY: "island already running elsewhere"}
