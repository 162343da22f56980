"""The island loop's tuner: keeps the island's segments and decides, at each decision point,
whether the island carries on or starts a new segment (`Switch`).

What it reads of other islands (their segment records, a donor's checkpoint) is untrusted: a
record that does not decode is skipped, and settings outside the `--vary` space are never
adopted (`space.contains`). Every draw comes from a generator seeded by the island's seed, the
segment and the generation, so the decisions do not touch the island's breeding stream.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

from islands.tuning import rules, segments as seg, space, tpe
from islands.tuning.config import TunerConfig
from islands.tuning.segments import Segment, SegmentLog
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

# Settings population-based training copies from its donor and never explores: they shape the
# genomes (param.*: a network's hidden sizes) or the state itself (the algorithm, its population).
PBT_KEEPS = ("algorithm", "population")


@dataclass(frozen=True)
class Switch:
    """Start a new segment: with `settings`, from `donor_state` (an algorithm state record copied
    from `parent`'s island) or, when None, from a fresh first population."""

    settings: dict[str, Any]
    why: str
    donor_state: dict[str, Any] | None = None
    parent: str = ""
    trial: int = -1
    # The donor's own settings: used instead when the copied state does not fit the explored
    # ones (an explored algo.* setting that sizes the state, e.g. a memory length).
    unexplored: dict[str, Any] | None = None


class Tuner:
    """One island's side of a tuner (`TunerConfig.kind` other than static)."""

    def __init__(self, config: TunerConfig, island: str, island_seed: int, rundir: RunDir, run_id: str,
                 log: Callable[[str], None] = print) -> None:
        self.config, self.island, self.seed, self.rundir, self.run_id = config, island, island_seed, rundir, run_id
        self.log = log
        self.specs = space.parse_space(config.space)
        self.names = frozenset(s.name for s in self.specs)
        self.segments = SegmentLog(island)
        self.proposer: Any = None  # islands.tuning.tpe.Journal for --tuner tpe (`make_tuner`)
        self.decided = False  # whether the last generation was a decision point (the loop checkpoints then)
        self._start_evals: int | None = None  # the loop's evaluation count when the current segment was taken up

    # -- start and resume ---------------------------------------------------------------------
    def settings_of(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The part of an island's overrides the tuner searches."""
        return {k: v for k, v in overrides.items() if k in self.names}

    def begin(self, overrides: Mapping[str, Any], generation: int, evaluations: int = 0) -> Segment:
        """The first segment, from `evaluations` on: the settings the island was given, and for
        searched settings it was not given (an island started by hand) a draw from the space."""
        given = self.settings_of(overrides)
        drawn = space.draw([s for s in self.specs if s.name not in given], self._rng(generation, index=0))
        first = Segment(self.island, 0, {**given, **drawn}, generation)
        self._start_evals = evaluations
        self.segments = SegmentLog(self.island, [first])
        self.segments.save(self.rundir)
        return first

    def resume(self, body: Any, evaluations: int) -> Segment | None:
        """Take up the segment a checkpoint recorded (the loop's count then: `evaluations`); None
        if it recorded none (an untuned checkpoint)."""
        current = Segment.from_body(self.island, body)
        if current is None:
            return None
        self._start_evals = evaluations - current.evaluations
        earlier = [s for s in seg.read(self.rundir, self.island) if s.index < current.index]
        self.segments = SegmentLog(self.island, [*earlier, current])
        self.segments.save(self.rundir)
        return current

    # -- each generation --------------------------------------------------------------------
    def after_generation(self, generation: int, evaluations: int, best: float) -> Switch | None:
        """Count the generation into the current segment, then decide if it is a decision point."""
        cur = self.segments.current
        cur = cur.grown(generation - cur.start, evaluations - (self._start_evals or 0), best)
        self.segments.replace_current(cur)
        self.decided = False
        if self.config.kind == "pbt":
            if cur.generations % self.config.ready:
                return None
            self.decided = True
            self.segments.save(self.rundir)  # its score, for the others' rankings
            return self._exploit(cur, generation)
        k = self.config.rung_index(cur.generations)
        if k is None or len(cur.rungs) > k:
            return None
        self.decided = True
        cur = replace(cur, rungs=(*cur.rungs, cur.best))
        self.segments.replace_current(cur)
        self.segments.save(self.rundir)
        return self._judge(cur, k, generation)

    def _rng(self, generation: int, index: int | None = None) -> np.random.Generator:
        """The draws of a decision: seeded by the island, the segment and the generation only."""
        index = self.segments.current.index if index is None else index
        return np.random.default_rng([self.seed, index, generation])

    def _judge(self, cur: Segment, k: int, generation: int) -> Switch | None:
        """Successive halving at rung k: carry on, or restart with new settings."""
        others = [s.rungs[k] for segs in seg.read_run(self.rundir).values() for s in segs
                  if len(s.rungs) > k and s.key != cur.key]
        if rules.survives_rung(cur.rungs[k], others, self.config.reduction):
            return None
        better = sum(1 for x in others if x > cur.rungs[k])
        why = (f"rung {k} ({cur.generations} generations): {better} of {len(others) + 1} segments there did better; "
               f"outside the top 1/{self.config.reduction}")
        trial, settings = (self.proposer.ask() if self.proposer is not None
                           else (-1, space.draw(self.specs, self._rng(generation))))
        return Switch(settings, why, trial=trial)

    def _exploit(self, cur: Segment, generation: int) -> Switch | None:
        """Population-based training: copy a better island's population and settings, explore."""
        latest = {i: segs[-1] for i, segs in seg.read_run(self.rundir).items() if i != self.island}
        scores = {i: s.best for i, s in latest.items() if s.end == "running"}
        scores[self.island] = cur.best
        rng = self._rng(generation)
        donor = rules.pbt_donor(self.island, scores, self.config.fraction, rng)
        if donor is None:
            return None
        copied = self._donor_checkpoint(donor)
        if copied is None:
            return None
        settings, state, parent = copied
        keep = frozenset(n for n in self.names if n in PBT_KEEPS or n.startswith("param."))
        explored = space.explore(self.specs, settings, rng, keep=keep)
        why = (f"ranked in the bottom {self.config.fraction:g} at generation {generation} "
               f"(best {cur.best:.6g} against {donor}'s {scores[donor]:.6g}): copied {parent}, explored")
        return Switch(explored, why, donor_state=state, parent=parent, unexplored=settings)

    def _donor_checkpoint(self, donor: str) -> tuple[dict[str, Any], dict[str, Any], str] | None:
        """The donor's settings, state record and segment key from its newest readable checkpoint;
        None (with a warning) when it has none, or it is not this run's, or its settings lie
        outside the space."""
        try:
            record, _errors = self.rundir.island(donor).load_checkpoint()
        except (FormatError, OSError) as e:
            self.log(f"warning: {self.island}: cannot read {donor}'s checkpoint to copy it ({e})")
            return None
        if record is None:
            return None
        body = record.get("segment")
        donor_seg = Segment.from_body(donor, body)
        state = record.get("state")
        if record.get("run_id") != self.run_id or record.get("island") != donor or donor_seg is None \
                or not isinstance(state, dict):
            self.log(f"warning: {self.island}: {donor}'s checkpoint is not a tuned checkpoint of this run; not copied")
            return None
        if not space.contains(self.specs, dict(donor_seg.settings)):
            self.log(f"warning: {self.island}: {donor}'s settings lie outside the --vary space; not copied")
            return None
        return dict(donor_seg.settings), state, donor_seg.key

    # -- segment changes ----------------------------------------------------------------------
    def start(self, switch: Switch, generation: int, before: int, after: int, best: float) -> Segment:
        """End the current segment (halved, or exploited when `switch` copied a donor) and begin
        the one `switch` names: the loop's evaluation count was `before` ahead of its first
        population and is `after` it; it holds `best`."""
        end = "exploited" if switch.donor_state is not None else "halved"
        old = replace(self.segments.current, end=end, why=switch.why)
        self.segments.replace_current(old)
        self._tell(old)
        new = Segment(self.island, old.index + 1, dict(switch.settings), generation, evaluations=after - before,
                      best=best, parent=switch.parent, trial=switch.trial)
        self.segments.segments.append(new)
        self._start_evals = before
        self.segments.save(self.rundir)
        return new

    def drop(self, switch: Switch) -> None:
        """A decided switch that will not start (the island's budget is spent, or its settings
        cannot run): its proposed trial, if any, is told as failed rather than left running."""
        if self.proposer is not None and switch.trial >= 0:
            self.proposer.fail(switch.trial)

    def finish(self, why: str) -> None:
        """The island ended: its last segment ends with it."""
        if not self.segments.segments:
            return
        last = replace(self.segments.current, end="ended", why=why)
        self.segments.replace_current(last)
        self._tell(last)
        self.segments.save(self.rundir)

    def _tell(self, ended: Segment) -> None:
        if self.proposer is not None:
            self.proposer.tell(ended, self.config)

    @property
    def current_body(self) -> dict[str, Any]:
        """The current segment as the checkpoint keeps it (a resume takes it up bit-exactly)."""
        return self.segments.current.to_body() if self.segments.segments else {}



def make_tuner(config: TunerConfig, island: str, island_seed: int, rundir: RunDir, run_id: str,
               log: Callable[[str], None] = print) -> Tuner:
    """The tuner an island runs; `tpe` opens the run's Optuna journal (ConfigError naming the
    extra when Optuna is not installed)."""
    tuner = Tuner(config, island, island_seed, rundir, run_id, log)
    if config.kind == "tpe":
        tuner.proposer = tpe.Journal(rundir.root / tpe.JOURNAL, tuner.specs, island_seed)
    return tuner


def check_tuner(config: TunerConfig) -> None:
    """Refuse, before anything is written, a tuner that could not run: a space that does not
    parse or names a setting twice, or `tpe` without Optuna (ConfigError: one line, exit 2)."""
    if not config.active:
        return
    names = [s.name for s in space.parse_space(config.space)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise space.SpaceError(f"--vary names a setting twice: {', '.join(twice)}")
    if config.kind == "tpe":
        tpe.optuna_module()
