"""What an island checkpoint holds, and turning it back into a running island.

A checkpoint is a plain record (numpy arrays and scalars, msgpack on disk, never pickle):
the population, the generator state, counters and the best-ever individual. With the
generator state inside, a resumed island continues bit for bit as if never interrupted.
"""
from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from islands.errors import CheckpointError
from islands.status.record import MIGRATION_COUNTERS

CHECKPOINT_VERSION = 1


_SINCE_V1 = {"required": True}  # in every checkpoint ever written: missing means incomplete


@dataclass
class Progress:
    """The island loop's counters, all of which a resume must restore.

    The checkpoint holds them under their field names, in this order (`make_record`); a field
    added later must have a default, which a resumed island takes from an older checkpoint.
    Fields that the status record shares by name (`IslandStatus`) are copied to it by name.
    """

    generation: int = field(default=0, metadata=_SINCE_V1)
    evaluations: int = field(default=0, metadata=_SINCE_V1)
    best_ever: float = field(default=float("-inf"), metadata=_SINCE_V1)
    best_ever_genome: Any = field(default=None, metadata=_SINCE_V1)
    best_ever_generation: int = field(default=0, metadata=_SINCE_V1)
    stale: int = field(default=0, metadata=_SINCE_V1)  # generations without improving best_ever
    # Improvements of best_ever, attributed (`islands.island`): "own" after the island's own
    # breeding step, "adopted" right after a migration event; the first population counts for
    # neither. Under migration an island's best says little of its settings; its own gain does.
    own_gain: float = 0.0
    adopted_gain: float = 0.0
    own_improvements: int = 0
    adopted_improvements: int = 0
    # The same in orders of magnitude of f(x) = -fitness, while fitness stays <= 0 (minimisation
    # benchmarks): scale-free, so a worse first population does not earn its island more gain.
    own_log_gain: float = 0.0
    adopted_log_gain: float = 0.0
    # The generation the run's furthest other island had reached when this one started (0: it
    # started with them): a late joiner's early generations are not comparable with theirs.
    joined_at: int = 0
    # A tuned island's current segment (`islands.tuning.segments.Segment.to_body`), {} untuned:
    # its settings and counts, so a resume takes the tuner up where the algorithm is.
    segment: dict[str, Any] = field(default_factory=dict)
    # The searched settings best_ever was found with ({} untuned): what the island's status,
    # and so the champion, reports as its overrides (its first ones no longer say how it was found).
    best_ever_settings: dict[str, Any] = field(default_factory=dict)
    # Under `--budget-share progress` (`islands.budget_wait`): its recent decades of best-ever
    # improvement per evaluation and the weight that gave it among the islands (1.0: even).
    progress_rate: float = 0.0
    budget_weight: float = 1.0
    budget_allowed: int = 0  # the evaluations it holds of the run's total (0: not sharing)
    # gym:* observation normalisation (`islands.problems.obs_norm`): the task's whole state, and
    # the transform best_ever_genome was evaluated with ({}: none).
    obs_norm: dict[str, Any] = field(default_factory=dict)
    best_obs_norm: dict[str, Any] = field(default_factory=dict)
    # Flat, as `islands.status.record.Migration.to_body` writes it: the migrator adds to it in place.
    migration: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MIGRATION_COUNTERS, 0),
                                      metadata=_SINCE_V1)


_FIELDS = fields(Progress)


def _load(f: Field[Any], value: Any) -> Any:
    """A checkpoint value as the field's type (the type of its default): msgpack gives ints
    where floats were written whole, and a map for the migration counters."""
    if f.name == "migration":
        return {k: int(v) for k, v in dict(value).items()}
    if isinstance(f.default, bool) or f.default is None:
        return value
    if isinstance(f.default, int):
        return int(value)
    if isinstance(f.default, float):
        return float(value)
    return value


def make_record(
    run_id: str,
    island: str,
    settings_hash: str,
    state_record: dict[str, Any],
    gen: torch.Generator,
    progress: Progress,
) -> dict[str, Any]:
    """The checkpoint body for the pool's `save_checkpoint`."""
    body: dict[str, Any] = {
        "checkpoint_version": CHECKPOINT_VERSION,
        "run_id": run_id,
        "island": island,
        "settings_hash": settings_hash,
    }
    for f in _FIELDS:
        value = getattr(progress, f.name)
        body[f.name] = dict(value) if isinstance(value, dict) else value
    body["generator"] = gen.get_state().cpu().numpy()
    body["state"] = state_record
    return body


def restore(
    record: dict[str, Any], run_id: str, island: str, settings_hash: str, gen: torch.Generator, where: str
) -> tuple[dict[str, Any], Progress]:
    """Check a checkpoint belongs to this island and settings; load the generator state.

    Returns the algorithm's state record and the progress counters.
    """
    def fail(why: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint {where} {why}; run with --fresh, or move it aside, to start this island over"
        )

    if record.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise fail(f"has version {record.get('checkpoint_version')!r}, expected {CHECKPOINT_VERSION}")
    if record.get("run_id") != run_id or record.get("island") != island:
        raise fail(f"belongs to {record.get('island')!r} of run {record.get('run_id')!r}")
    if record.get("settings_hash") != settings_hash:
        raise fail("was written with different settings")
    try:
        gen.set_state(torch.as_tensor(np.asarray(record["generator"], dtype=np.uint8)))
        # Fields written since version 1 began are counted from the resume on when missing.
        progress = Progress(**{f.name: _load(f, record[f.name]) for f in _FIELDS
                               if f.metadata.get("required") or f.name in record})
        state = dict(record["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise fail(f"is incomplete ({e})") from None
    if progress.generation < 0:
        raise fail("has a negative generation")
    return state, progress
