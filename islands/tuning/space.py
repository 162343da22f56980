"""The space a tuner searches: `--vary` settings, parsed, checked and sampled.

Shared by the launcher (which spreads the first settings over the islands) and the islands
themselves (a tuner that restarts or explores draws new settings from the same space), so the
one parser lives here, in the engine, and raises `ConfigError` with one line quoting the option.
A value drawn or adopted from another island's record goes through `clamp`: a forged record can
never move an island outside the space the command line gave.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from islands.config import ALGO_PREFIX, PARAM_PREFIX, VARIABLE_SETTINGS, GAConfig, RunConfig, parse_cli_value
from islands.errors import ConfigError as SpaceError


@dataclass(frozen=True)
class VarySpec:
    """Spread one setting over the islands: `NAME=LOW:HIGH[:log]` or `NAME=A,B,C`.

    NAME is `algorithm`, `population`, a GA field, `algo.KEY` (an algorithm setting, as
    `--algorithm-param KEY=`) or `param.KEY` (a problem parameter, as `--param KEY=`). A range
    of an `algo.`/`param.` setting is integer when both ends are written as integers.
    A list is dealt round-robin over the islands in order.
    """

    name: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    values: tuple[Any, ...] | None = None  # a categorical list
    whole: bool = False  # an algo./param. range written with integer ends

    @property
    def integer(self) -> bool:
        if self.name.startswith((ALGO_PREFIX, PARAM_PREFIX)):
            return self.whole
        return isinstance(_default(self.name), int) and not isinstance(_default(self.name), bool)

    def __str__(self) -> str:
        if self.values is not None:
            return f"{self.name}=" + ",".join(_text(v) for v in self.values)
        return f"{self.name}={_num(self.low)}:{_num(self.high)}" + (":log" if self.log else "")


def _default(name: str) -> Any:
    return getattr(RunConfig(), name) if name in ("population", "algorithm") else getattr(GAConfig(), name)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _text(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def parse_vary(text: str) -> VarySpec:
    """Parse and check one `--vary` value; SpaceError quoting it when it makes no sense."""
    name, eq, rng = text.partition("=")
    name = name.strip()
    prefixed = name.startswith((ALGO_PREFIX, PARAM_PREFIX))
    if not prefixed:
        name = name.replace("-", "_")
    if not eq:
        raise SpaceError(f"--vary {text!r}: expected NAME=LOW:HIGH[:log] or NAME=A,B,C")
    if prefixed and not name.split(".", 1)[1]:
        raise SpaceError(f"--vary {text!r}: {name!r} needs a setting name after the dot")
    if not prefixed and name not in VARIABLE_SETTINGS:
        raise SpaceError(f"--vary {text!r}: cannot vary {name!r}; choose one of {', '.join(VARIABLE_SETTINGS)}, "
                        f"{ALGO_PREFIX}KEY (an algorithm setting) or {PARAM_PREFIX}KEY (a problem parameter)")
    if ":" not in rng:
        items = [v.strip() for v in rng.split(",")]
        if len(items) < 2 or any(not v for v in items):
            raise SpaceError(f"--vary {text!r}: expected NAME=LOW:HIGH[:log] or a list of two or more values "
                            "NAME=A,B[,...] (one value for every island: set it as a run option)")
        values = tuple(parse_cli_value(v) for v in items)
        if not prefixed:
            values = tuple(_coerce(name, v, text) for v in values)
        return VarySpec(name, values=values)
    parts = rng.split(":")
    log = len(parts) == 3 and parts[2].strip().lower() == "log"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
        raise SpaceError(f"--vary {text!r}: expected NAME=LOW:HIGH or NAME=LOW:HIGH:log")
    if not prefixed and not isinstance(_default(name), (int, float, type(None))) or name == "algorithm":
        raise SpaceError(f"--vary {text!r}: {name} is not a number; give a list like {name}=A,B")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise SpaceError(f"--vary {text!r}: LOW and HIGH must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SpaceError(f"--vary {text!r}: LOW and HIGH must be finite")
    if not low < high:
        raise SpaceError(f"--vary {text!r}: LOW ({_num(low)}) must be below HIGH ({_num(high)})")
    if log and low <= 0:
        raise SpaceError(f"--vary {text!r}: a log range needs LOW > 0")
    whole = prefixed and all(_is_int_text(p) for p in parts[:2])
    spec = VarySpec(name, low, high, log, whole=whole)
    if spec.integer and math.ceil(low) > math.floor(high):
        raise SpaceError(f"--vary {text!r}: {name} is an integer and no integer lies in [{_num(low)}, {_num(high)}]")
    return spec


def _is_int_text(raw: str) -> bool:
    try:
        int(raw.strip())
        return True
    except ValueError:
        return False


def _coerce(name: str, value: Any, text: str) -> Any:
    """A list item of a plain setting in that setting's type (5 for a float field is 5.0)."""
    default = _default(name)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
        if not value.is_integer():
            raise SpaceError(f"--vary {text!r}: {name} takes integers, got {value!r}")
        return int(value)
    if name == "algorithm" or isinstance(default, str):
        if not isinstance(value, str):
            raise SpaceError(f"--vary {text!r}: {name} takes names, got {value!r}")
    elif isinstance(value, str) or isinstance(value, bool):
        raise SpaceError(f"--vary {text!r}: {name} takes numbers, got {value!r}")
    return value


def sample_overrides(specs: Sequence[VarySpec], islands: Sequence[str], seed: int) -> dict[str, dict[str, Any]]:
    """Per-island values of every varied setting: stratified, shuffled, seeded by the run seed.

    Each island draws from its own 1/N slice of the range (a Latin hypercube over the varied
    settings), so even a handful of islands covers the range evenly; the slices are shuffled
    independently per setting so settings are not correlated across islands.
    """
    n = len(islands)
    out: dict[str, dict[str, Any]] = {isl: {} for isl in islands}
    for spec in specs:
        # The seed depends on the run seed and the setting's name only, not on the order of
        # the --vary options, so the same command line always gives the same values.
        if spec.values is not None:  # a list: round-robin over the islands in order
            for i, isl in enumerate(islands):
                out[isl][spec.name] = spec.values[i % len(spec.values)]
            continue
        tag = int.from_bytes(hashlib.blake2b(spec.name.encode(), digest_size=8).digest(), "little")
        rng = np.random.default_rng([seed, tag])
        u = (rng.permutation(n) + rng.random(n)) / n
        for isl, ui in zip(islands, u):
            out[isl][spec.name] = _value(spec, float(ui))
    return out


def _value(spec: VarySpec, u: float) -> int | float:
    """The value at quantile `u` in [0, 1] of the range (log-uniform with `log`)."""
    low, high = spec.low, spec.high
    if spec.integer:  # widen by half a step so that rounding makes every integer equally likely
        low, high = math.ceil(low) - 0.499, math.floor(high) + 0.499
    if spec.log:
        x = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        x = low + u * (high - low)
    if spec.integer:
        return int(min(max(round(x), math.ceil(spec.low)), math.floor(spec.high)))
    return float(f"{min(max(x, spec.low), spec.high):.6g}")




def draw(specs: Sequence[VarySpec], rng: np.random.Generator) -> dict[str, Any]:
    """One point of the space, uniformly (log-uniformly for :log ranges): a restart's settings."""
    return {s.name: (s.values[int(rng.integers(len(s.values)))] if s.values is not None
                     else _value(s, float(rng.random()))) for s in specs}


def contains(specs: Sequence[VarySpec], settings: Any) -> bool:
    """Whether `settings` (read from another island's record) names exactly the space's settings,
    each with a value the space allows: a list member, or a number of the right kind in range."""
    if not isinstance(settings, dict) or set(settings) != {s.name for s in specs}:
        return False
    for s in specs:
        v = settings[s.name]
        if s.values is not None:
            if not any(type(v) is type(c) and v == c for c in s.values):
                return False
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not s.low - 1e-9 * abs(s.low) <= v <= s.high + 1e-9 * abs(s.high) \
                or (s.integer and not float(v).is_integer()):
            return False
    return True


def explore(specs: Sequence[VarySpec], settings: dict[str, Any], rng: np.random.Generator, *,
            factor: float = 1.2, resample: float = 0.25, keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Population-based training's explore step: each number is multiplied or divided by `factor`
    (kept in range, integers moved by at least one), each category is redrawn with probability
    `resample`; settings named in `keep` are copied as they are."""
    out = dict(settings)
    for s in specs:
        if s.name in keep:
            continue
        if s.values is not None:
            if rng.random() < resample:
                out[s.name] = s.values[int(rng.integers(len(s.values)))]
            continue
        up = rng.random() < 0.5
        x = float(settings[s.name])
        y = x * factor if up else x / factor
        if s.integer:
            y = round(y)
            if y == x:
                y = x + (1 if up else -1)
            out[s.name] = int(min(max(y, math.ceil(s.low)), math.floor(s.high)))
        else:
            out[s.name] = float(f"{min(max(y, s.low), s.high):.6g}")
    return out


def parse_space(texts: Sequence[str]) -> tuple[VarySpec, ...]:
    """The space recorded in a run's settings (the `--vary` texts), parsed again."""
    return tuple(parse_vary(t) for t in texts)


def settings_text(settings: Any) -> str:
    """A point of the space for people: `name=value` sorted by name, numbers to 4 digits."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(settings.items()))
