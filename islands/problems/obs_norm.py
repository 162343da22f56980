"""Observation normalisation for gym:* tasks: running statistics, frozen per generation.

Continuous-control observations mix scales (a joint angle in radians beside a velocity in
tens of metres per second) and their bounds are infinite, so a fixed scaling cannot help.
The field (OpenAI-ES, ARS, EvoTorch) feeds networks `(obs - mean) / std` with the running
mean and std of every observation seen so far; so do we (`--param obs_norm=...`, see
`islands.problems.gym`):

- Before its first population, an island steps WARMUP_EPISODES episodes of random actions
  (`GymTask`, seeded from the generation: a run repeats exactly) and starts from their
  statistics: otherwise generation 0 would be scored on raw inputs and later ones on normalised
  inputs, and a lucky generation-0 score, measured under another transform, could stay the
  island's best-ever (measured: on HalfCheetah every 4-island ES run's champion was one).
- A generation's population (and the immigrants screened on its episodes) is evaluated with
  FROZEN statistics, so every network of the generation meets the same input transform and
  their fitnesses compare. The observations they saw are collected as `pending` and folded
  in when the island moves on to the next generation's episodes (`ObsNorm.reseed`), a point
  that depends on the generation only: a resumed island (the whole `ObsNorm` is saved in its
  checkpoint, `to_body`/`restore`) continues bit for bit.
- Across islands ("run" mode), a migrant's policy must mean the same thing on the island that
  adopts it. Each island publishes its OWN statistics (never what it merged, so nothing is
  counted twice) and keeps the latest statistics of every other island it read
  (`islands.obs_exchange`); it evaluates with its own merged with those. All islands then
  converge on the statistics of every observation of the run. "island" mode keeps each
  island's own (the comparison `scripts/bench_control.py` measures).
- Another island's statistics are untrusted input (`ObsStats.from_body`): bounded in size,
  finite, non-negative, of this task's width, and each weighs at most as much as the
  island's own observations, so a forged record can shift the normalisation but never take
  it over; normalised inputs are clipped to +-CLIP either way.

Statistics are float64 count, mean and M2 (sum of squared deviations), merged with Chan et
al.'s parallel update: exact for any split of the observations and stable where sums of
squares cancel. Within a generation, observations are only summed (a subtraction and two
sums per time step: this runs at every step of every episode), shifted by the frozen mean so
the sums of squares do not cancel; the sums themselves are what a checkpoint saves, so a
resumed island adds its next observations to exactly the same numbers. The std used is floored at STD_FLOOR, so a constant observation does not
divide by zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["CLIP", "MODES", "STD_FLOOR", "ObsNorm", "ObsStats", "frozen_from_body", "resolve_mode"]

MODES = ("auto", "off", "island", "run")
CLIP = 5.0  # normalised inputs are clipped to [-CLIP, CLIP] (OpenAI-ES clips at 5 too)
STD_FLOOR = 1e-2
MAX_WIDTH = 1 << 16  # observation sizes a record may claim (bounded input)
MAX_OTHERS = 4096  # other islands' statistics kept
MAX_MAGNITUDE = 1e12  # a record's means and variances beyond this are not observations (float32 holds them squared)


@dataclass(frozen=True)
class ObsStats:
    """Count, mean and M2 of a set of observation vectors (float64 arrays of the task's width)."""

    count: float
    mean: np.ndarray
    m2: np.ndarray

    @staticmethod
    def empty(width: int) -> ObsStats:
        return ObsStats(0.0, np.zeros(width), np.zeros(width))

    @staticmethod
    def of(rows: np.ndarray) -> ObsStats:
        """The statistics of the rows `[n, width]` (non-finite rows are left out)."""
        x = np.asarray(rows, dtype=np.float64)
        x = x[np.isfinite(x).all(axis=1)]
        if not len(x):
            return ObsStats.empty(rows.shape[1])
        mean = x.mean(axis=0)
        return ObsStats(float(len(x)), mean, ((x - mean) ** 2).sum(axis=0))

    def merged(self, other: ObsStats) -> ObsStats:
        """The statistics of both sets together (Chan et al.)."""
        if other.count <= 0:
            return self
        if self.count <= 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta ** 2 * (self.count * other.count / n)
        return ObsStats(n, mean, m2)

    def capped(self, count: float) -> ObsStats:
        """The same mean and variance weighing at most `count` observations."""
        if self.count <= count:
            return self
        return ObsStats(float(count), self.mean, self.m2 * (count / self.count) if self.count else self.m2)

    def std(self) -> np.ndarray:
        if self.count < 2:
            return np.ones_like(self.mean)
        return np.maximum(np.sqrt(self.m2 / self.count), STD_FLOOR)

    def to_body(self) -> dict[str, Any]:
        return {"count": float(self.count), "mean": [float(v) for v in self.mean], "m2": [float(v) for v in self.m2]}

    @staticmethod
    def from_body(body: Any, width: int) -> ObsStats | None:
        """Validated statistics of `width`, or None for anything else (untrusted input)."""
        if not isinstance(body, Mapping):
            return None
        try:
            count = float(body["count"])
            mean = np.asarray(body["mean"], dtype=np.float64)
            m2 = np.asarray(body["m2"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if not 0 < width <= MAX_WIDTH or mean.shape != (width,) or m2.shape != (width,):
            return None
        if not (np.isfinite(count) and count >= 0 and np.isfinite(mean).all() and np.isfinite(m2).all()
                and (m2 >= 0).all()):
            return None
        # Magnitudes too: a finite but absurd record (a variance of 1e300 over 1e-300 observations,
        # a mean of 1e300) would make every input 0 or NaN and the checkpoint unreadable.
        if count and (count < 1 or (np.abs(mean) > MAX_MAGNITUDE).any() or (m2 / count > MAX_MAGNITUDE).any()):
            return None
        return ObsStats(count, mean, m2)


def frozen_from_body(body: Any, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) from a champion's `obs_norm` record, or None (no normalisation, or unusable)."""
    if not isinstance(body, Mapping):
        return None
    try:
        mean = np.asarray(body["mean"], dtype=np.float64)
        std = np.asarray(body["std"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    if mean.shape != (width,) or std.shape != (width,) or not (np.isfinite(mean).all() and np.isfinite(std).all()):
        return None
    if (std <= 0).any():
        return None
    return mean, std


class ObsNorm:
    """One task's normalisation state: its own statistics, the others', and the frozen transform.

    The island drives it: `reseed(seed)` at each generation's episodes (the statistics of the
    previous generation are folded in when the seed changes), `observe(rows)` during a
    training evaluation, `set_other(island, stats)` when another island's record was read.
    """

    def __init__(self, width: int, mode: str) -> None:
        self.width, self.mode = width, mode
        self.own = ObsStats.empty(width)
        self._reset_sums(np.zeros(width))
        self.others: dict[str, ObsStats] = {}
        self.seed: int | None = None
        self.collecting = False  # True only while the island evaluates its population
        self.fixed = False  # a recorded transform in use (`use`): nothing is folded in any more
        self.mean, self.std = np.zeros(width), np.ones(width)
        self._cast()

    # -- the island's side ----------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """A generation's episodes: fold the last generation's observations in on a new seed."""
        if self.seed is not None and seed != self.seed and not self.fixed:
            self.own = self.own.merged(self.pending)
            self._freeze()
            self._reset_sums(self.mean)
        self.seed = seed

    @property
    def needs_warmup(self) -> bool:
        """Nothing observed yet: the first population would be evaluated on raw inputs."""
        return not self.fixed and self.own.count == 0 and self._n == 0

    def warm(self, rows: np.ndarray) -> None:
        """Start from the statistics of `rows` (a warm-up's observations) and use them at once."""
        self.own = ObsStats.of(np.asarray(rows, dtype=np.float64))
        self._freeze()
        self._reset_sums(self.mean)

    def observe(self, rows: np.ndarray) -> None:
        if self.collecting and not self.fixed and len(rows):
            x = np.asarray(rows, dtype=np.float64)
            x = x[np.isfinite(x).all(axis=1)]
            if not len(x):
                return
            if self._n == 0 and self.own.count == 0:  # no mean yet: shift by the first observation
                self._shift = x[0].copy()
            x = x - self._shift
            self._n += len(x)
            self._s1 += x.sum(axis=0)
            self._s2 += np.einsum("ij,ij->j", x, x)

    @property
    def pending(self) -> ObsStats:
        """This generation's observations so far, not yet in use."""
        if self._n <= 0:
            return ObsStats.empty(self.width)
        mean = self._s1 / self._n
        return ObsStats(float(self._n), self._shift + mean, np.maximum(self._s2 - self._s1 * mean, 0.0))

    def _reset_sums(self, shift: np.ndarray) -> None:
        self._n, self._shift = 0.0, np.array(shift, dtype=np.float64)
        self._s1, self._s2 = np.zeros(self.width), np.zeros(self.width)

    def set_other(self, island: str, stats: ObsStats) -> None:
        """Another island's own statistics (the latest read replaces the last; "run" mode only)."""
        if self.mode == "run" and (island in self.others or len(self.others) < MAX_OTHERS):
            self.others[island] = stats

    def merged(self) -> ObsStats:
        """Own statistics merged with the others' (each weighing at most as much as the own)."""
        total = self.own
        for island in sorted(self.others):
            total = total.merged(self.others[island].capped(max(self.own.count, 1.0)))
        return total

    def _freeze(self) -> None:
        stats = self.merged()
        if not _usable(stats):  # never an unusable transform: the island's own statistics instead
            stats = self.own
        self.mean, self.std = (stats.mean.copy(), stats.std()) if stats.count >= 2 else \
            (np.zeros(self.width), np.ones(self.width))
        self._cast()

    def _cast(self) -> None:
        """The transform in float32, as the network reads it (one subtraction and one product per step)."""
        self._mean32, self._scale32 = self.mean.astype(np.float32), (1.0 / self.std).astype(np.float32)

    # -- the transform ------------------------------------------------------------------
    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalised float32 inputs: (x - mean) / std, clipped to +-CLIP."""
        out = np.asarray(x, dtype=np.float32) - self._mean32
        out *= self._scale32
        return np.clip(out, -CLIP, CLIP, out=out)  # NaN stays NaN: only ended episodes see one

    def use(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Evaluate with a recorded transform (a champion's) and collect nothing."""
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        self.collecting, self.fixed = False, True
        self._cast()

    def frozen_body(self) -> dict[str, Any]:
        """The transform in use now, as the champion records it."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std], "clip": CLIP,
                "count": float(self.merged().count)}

    # -- checkpoint ---------------------------------------------------------------------
    def to_body(self) -> dict[str, Any]:
        sums = {"count": self._n, "shift": _floats(self._shift), "s1": _floats(self._s1), "s2": _floats(self._s2)}
        return {"own": self.own.to_body(), "sums": sums, "seed": self.seed,
                "others": {k: v.to_body() for k, v in sorted(self.others.items())},
                "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    def restore(self, body: Mapping[str, Any]) -> None:
        """Take up a checkpoint's state (`to_body`); ValueError when it does not fit this task."""
        own, frozen = ObsStats.from_body(body.get("own"), self.width), frozen_from_body(body, self.width)
        sums = body.get("sums") if isinstance(body.get("sums"), Mapping) else {}
        try:
            n = float(sums["count"])
            shift, s1, s2 = (np.asarray(sums[k], dtype=np.float64) for k in ("shift", "s1", "s2"))
        except (KeyError, TypeError, ValueError):
            n, shift = float("nan"), np.zeros(0)
            s1 = s2 = shift
        if own is None or frozen is None or not (np.isfinite(n) and n >= 0) or \
                any(a.shape != (self.width,) or not np.isfinite(a).all() for a in (shift, s1, s2)):
            raise ValueError(f"its observation statistics do not fit this task (width {self.width})")
        self._n, self._shift, self._s1, self._s2 = n, shift, s1, s2
        others = {str(k): ObsStats.from_body(v, self.width) for k, v in dict(body.get("others") or {}).items()}
        self.own = own
        self.others = {k: v for k, v in others.items() if v is not None}
        self.seed = None if body.get("seed") is None else int(body["seed"])
        self.mean, self.std = frozen
        self._cast()


def _usable(stats: ObsStats) -> bool:
    """Mean and std finite, and finite in float32 too (the network reads them so)."""
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.concatenate([stats.mean, stats.std()])
        return bool(np.isfinite(values).all() and np.isfinite(values.astype(np.float32)).all())


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in a]


def resolve_mode(mode: Any, bounded: np.ndarray) -> str:
    """"auto": "run" where no observation dimension has usable finite bounds (MuJoCo), else "off"."""
    if mode not in MODES:
        raise ValueError(f"obs_norm must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "auto":
        return str(mode)
    return "off" if bool(np.any(bounded)) else "run"
