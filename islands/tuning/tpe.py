"""Optuna's TPE as the source of a restart's settings (`--tuner tpe`), over a journal in the run.

Every segment is an Optuna trial: its settings are the params, its best at each rung the
intermediate values, its best the value. The journal (`RUN/optuna.journal`, Optuna's JournalFileBackend) is
shared by the islands through file locks, so `optuna-dashboard RUN/optuna.journal` and
`optuna.load_study(study_name="islands", storage=...)` read an islands run as a study.

Optuna is an optional extra (`pip install islands[optuna]`); it is imported only here, and only
by a run that uses it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from islands.errors import ConfigError
from islands.tuning.space import VarySpec

JOURNAL = "optuna.journal"
STUDY = "islands"
EXTRA = "optuna is not installed; pip install 'islands[optuna]' (or pip install optuna) for --tuner tpe"


def optuna_module() -> Any:
    """Optuna, or ConfigError naming the extra."""
    try:
        import optuna  # lazy: an optional extra, imported only by the runs that use it
    except ImportError:
        raise ConfigError(EXTRA) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(specs: Sequence[VarySpec]) -> dict[str, Any]:
    """Each `--vary` setting as an Optuna distribution."""
    d = optuna_module().distributions
    out: dict[str, Any] = {}
    for s in specs:
        if s.values is not None:
            out[s.name] = d.CategoricalDistribution(list(s.values))
        elif s.integer:
            out[s.name] = d.IntDistribution(math.ceil(s.low), math.floor(s.high), log=s.log)
        else:
            out[s.name] = d.FloatDistribution(s.low, s.high, log=s.log)
    return out


def open_study(path: Path, seed: int | None = None) -> Any:
    """The run's study (created on first use), maximising fitness."""
    optuna = optuna_module()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    sampler = optuna.samplers.TPESampler(seed=None if seed is None else seed % 2**32)
    return optuna.create_study(study_name=STUDY, storage=storage, direction="maximize", sampler=sampler,
                               load_if_exists=True)


class Journal:
    """One island's handle on the run's study: ask for settings, tell how a segment did."""

    def __init__(self, path: Path, specs: Sequence[VarySpec], seed: int) -> None:
        self.study = open_study(path, seed)
        self.dists = distributions(specs)

    def ask(self) -> tuple[int, dict[str, Any]]:
        trial = self.study.ask(self.dists)
        return trial.number, dict(trial.params)

    def fail(self, number: int) -> None:
        """A trial asked for but never run."""
        self.study.tell(number, state=optuna_module().trial.TrialState.FAIL)

    def tell(self, segment: Any, config: Any) -> None:
        """Record an ended segment: as the trial it was asked as, or as a new finished trial (a
        first segment, whose settings the launcher spread). A halved segment is told as complete
        with the best it reached: a real measurement, at fewer generations."""
        optuna = optuna_module()
        state = optuna.trial.TrialState.COMPLETE if math.isfinite(segment.best) else optuna.trial.TrialState.FAIL
        value = segment.best if state == optuna.trial.TrialState.COMPLETE else None
        if segment.trial >= 0:
            self.study.tell(segment.trial, value, state=state)
            return
        if set(segment.settings) != set(self.dists):
            return
        steps = [config.rung * config.reduction ** k for k in range(len(segment.rungs))]
        self.study.add_trial(optuna.trial.create_trial(
            params=dict(segment.settings), distributions=self.dists, state=state, value=value,
            intermediate_values={st: v for st, v in zip(steps, segment.rungs) if math.isfinite(v)},
            user_attrs={"island": segment.island, "segment": segment.index, "end": segment.end}))


def export_study(root: Path, specs: Sequence[VarySpec], trials: Sequence[tuple[dict[str, Any], float, dict[str, Any]]]) -> Path | None:
    """Write `trials` (settings, best, user attributes) as the study of `RUN/optuna.journal`, so an
    untuned or asha/pbt run opens in optuna-dashboard too; replaces an earlier export atomically.
    None (nothing written) when Optuna is not installed or no trial fits the space."""
    try:
        optuna = optuna_module()
    except ConfigError:
        return None
    dists = distributions(specs)
    fitting = [(p, v, a) for p, v, a in trials if set(p) == set(dists)]
    if not fitting:
        return None
    tmp = root / f".{JOURNAL}.tmp"
    tmp.unlink(missing_ok=True)
    study = open_study(tmp)
    state = optuna.trial.TrialState
    for params, value, attrs in fitting:
        ok = math.isfinite(value)
        try:
            study.add_trial(optuna.trial.create_trial(params=dict(params), distributions=dists, user_attrs=attrs,
                                                      state=state.COMPLETE if ok else state.FAIL,
                                                      value=value if ok else None))
        except ValueError:  # a value outside its distribution (a hand-edited manifest): left out
            continue
    final = root / JOURNAL
    tmp.replace(final)
    return final
