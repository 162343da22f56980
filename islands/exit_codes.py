"""Exit codes of `islands` commands, shared by the CLI (which exits with them) and the
launcher (which decides from them whether a crashed island is worth restarting).

Kept apart from `islands.cli` so that the launcher's restart policy can read them without
importing click; see docs/DESIGN.md, "Restart policy".
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # a run-directory error, or an island that failed
EXIT_USAGE = 2  # a bad option, a contradiction of the run's manifest, or a problem whose own code fails
EXIT_CHECKPOINT = 3  # a checkpoint exists but cannot be used
EXIT_BUSY = 4  # the island (or the run's launcher) already runs elsewhere
EXIT_NO_FITNESS = 5  # the island ran to its end without one finite fitness (the problem returned NaN or inf)
REASON_NO_FITNESS = "no-finite-fitness"  # that island's end reason in its status and the summary
# What a relaunch says of such an island: it stays failed (rerunning it changes nothing).
NO_FITNESS_BEFORE = ("it ended without one finite fitness (no-finite-fitness) and is not rerun: fix the "
                     "problem's fitness function, then start the run over with --fresh")
# Stopped, not finished: a signal (SIGINT, SIGTERM, or SIGUSR1 as a scheduler's time-limit
# warning) stopped it before its generations or target were reached, after a checkpoint; the
# same command resumes it. 75 is EX_TEMPFAIL of sysexits.h: "try again later".
EXIT_STOPPED = 75

# Restarting cannot fix these: the launcher gives an island up at once when it exits so
# (EXIT_STOPPED: someone stopped it on purpose; the launcher records it as stopped, not failed).
NO_RESTART = frozenset({EXIT_OK, EXIT_USAGE, EXIT_CHECKPOINT, EXIT_BUSY, EXIT_NO_FITNESS, EXIT_STOPPED})

MEANING = {EXIT_USAGE: "bad option, manifest conflict or failing problem code", EXIT_CHECKPOINT: "unusable checkpoint",
           EXIT_BUSY: "island already running elsewhere",
           EXIT_NO_FITNESS: "no finite fitness in the whole run: the problem returned only NaN or inf",
           EXIT_STOPPED: "stopped by a signal before finishing"}
