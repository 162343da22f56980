"""A finished launch's Optuna study, whatever its tuner: `RUN/optuna.journal` from its records.

`--tuner tpe` writes the journal as it runs (`islands.tuning.tpe`). Any other `--vary` run gets
one at the end of each launch when Optuna is installed (`--optuna-journal false` turns it off):
a tuned run's segments, or an untuned spread's islands (its settings, its best-ever), one trial
each, so `optuna-dashboard RUN/optuna.journal` shows every archipelago the same way.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from islands.errors import ConfigError
from islands.tuning import segments, space, tpe
from migration_pool.rundir import RunDir


def export(root: Path, config: Any, vary: Sequence[str], overrides: Mapping[str, Mapping[str, Any]],
           bests: Mapping[str, float | None]) -> Path | None:
    """Write the study (None when there is nothing to write, Optuna is missing or it is turned off)."""
    tuner = config.tuner
    if not tuner.optuna_journal or tuner.kind == "tpe" or not vary:
        return None
    specs = space.parse_space(vary)
    names = {s.name for s in specs}
    by_island = segments.read_run(RunDir(root))
    if by_island:
        trials = [(dict(s.settings), s.best, {"island": s.island, "segment": s.index, "end": s.end})
                  for segs in by_island.values() for s in segs]
    else:
        trials = [({k: v for k, v in over.items() if k in names},
                   bests.get(island) if bests.get(island) is not None else -math.inf, {"island": island})
                  for island, over in overrides.items()]
    return tpe.export_study(Path(root), specs, trials)


def after_launch(root: Path, config: Any, plan: Any, statuses: Mapping[str, Any]) -> list[str]:
    """Export at the end of a launch; the lines to show (a failure is a warning, never an error)."""
    try:
        path = export(root, config, [str(v) for v in plan.vary], {p.island: p.overrides for p in plan.islands},
                      {i: s.best_ever if s is not None else None for i, s in statuses.items()})
    except (ConfigError, OSError, ValueError) as e:
        return [f"warning: no Optuna journal written ({e})"]
    return [] if path is None else [f"optuna study: {path} (optuna-dashboard {path})"]
