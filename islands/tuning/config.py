"""`TunerConfig`: which tuner an archipelago runs and its schedule, recorded in the manifest.

Kept free of other islands imports so `islands.config` can hold it as a field of `RunConfig`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from islands.errors import ConfigError

TUNERS = ("static", "asha", "pbt", "tpe")
RUNG_TUNERS = ("asha", "tpe")  # judged at rungs by successive halving (tpe proposes the restarts)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class TunerConfig:
    """How islands change their settings while the run goes on (`islands.tuning`).

    `static`: never (each island keeps the settings it started with). `asha`: a segment is judged
    after `rung`, `rung*reduction`, `rung*reduction**2`, ... generations; one not in the top
    1/`reduction` of the segments that reached that rung restarts with settings drawn from
    `space`. `tpe`: the same rungs, with the restart's settings proposed by Optuna's TPE from every
    segment so far. `pbt`: every `ready` generations an island in the bottom `fraction` copies a
    top-`fraction` island's population and settings, then explores around them.
    """

    kind: str = "static"
    space: tuple[str, ...] = ()  # the --vary texts the tuner draws from
    rung: int = 10
    reduction: int = 3
    ready: int = 10
    fraction: float = 0.25
    optuna_journal: bool = True  # write RUN/optuna.journal when Optuna is installed (not a trajectory setting)

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", tuple(self.space))
        _check(self.kind in TUNERS, f"tuner must be one of {', '.join(TUNERS)}, got {self.kind!r}")
        _check(self.kind == "static" or bool(self.space),
               f"--tuner {self.kind} needs --vary: it searches the settings --vary names")
        _check(_whole(self.rung) and self.rung >= 1, f"--rung must be a whole number of generations >= 1, got {self.rung!r}")
        _check(_whole(self.reduction) and self.reduction >= 2, f"--reduction must be an integer >= 2, got {self.reduction!r}")
        _check(_whole(self.ready) and self.ready >= 1, f"--ready must be a whole number of generations >= 1, got {self.ready!r}")
        _check(isinstance(self.fraction, (int, float)) and not isinstance(self.fraction, bool)
               and math.isfinite(self.fraction) and 0.0 < self.fraction <= 0.5,
               f"--pbt-fraction must be in (0, 0.5], got {self.fraction!r}")

    @property
    def active(self) -> bool:
        return self.kind != "static"

    @property
    def first_decision(self) -> int:
        """Generations into a segment before its first judgement."""
        return self.rung if self.kind in RUNG_TUNERS else self.ready

    def rung_index(self, age: int) -> int | None:
        """Which rung a segment `age` generations old has just reached (0, 1, ...), None between rungs."""
        if self.kind not in RUNG_TUNERS or age < self.rung:
            return None
        k, at = 0, self.rung
        while at < age:
            k, at = k + 1, at * self.reduction
        return k if at == age else None


def tuner_line(tuner: TunerConfig, generations: int | None = None) -> str | None:
    """What the tuner will do, every effective setting spelled out (the plan prints it); None
    for static."""
    if tuner.kind == "static":
        return None
    if tuner.kind == "pbt":
        return (f"tuner: pbt, every {tuner.ready} generations the bottom {tuner.fraction:g} copy a top-"
                f"{tuner.fraction:g} island's population and settings, then explore (numbers x1.2 or /1.2, "
                "categories redrawn with chance 0.25; algorithm, population and param.* are copied as they are)")
    rungs, at = [], tuner.rung
    while (generations is None and len(rungs) < 4) or (generations is not None and at < generations):
        rungs.append(str(at))
        at *= tuner.reduction
    source = "proposed by Optuna's TPE (RUN/optuna.journal)" if tuner.kind == "tpe" else "drawn from the --vary space"
    return (f"tuner: {tuner.kind}, rungs at {', '.join(rungs)}{' ...' if generations is None else ''} generations "
            f"of a segment; outside the top 1/{tuner.reduction} there, an island restarts with settings {source}")
