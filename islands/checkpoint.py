"""What an island checkpoint holds, and turning it back into a running island.

A checkpoint is a plain record (numpy arrays and scalars, msgpack on disk, never pickle):
the population, the generator state, counters and the best-ever individual. With the
generator state inside, a resumed island continues bit for bit as if never interrupted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from islands.errors import CheckpointError
from islands.status.record import MIGRATION_COUNTERS

CHECKPOINT_VERSION = 1


@dataclass
class Progress:
    """The island loop's counters, all of which a resume must restore."""

    generation: int = 0
    evaluations: int = 0
    best_ever: float = float("-inf")
    best_ever_genome: Any = None
    best_ever_generation: int = 0
    stale: int = 0  # generations without improving best_ever
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
    # Flat, as `islands.status.record.Migration.to_body` writes it: the migrator adds to it in place.
    migration: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MIGRATION_COUNTERS, 0))


def make_record(
    run_id: str,
    island: str,
    settings_hash: str,
    state_record: dict[str, Any],
    gen: torch.Generator,
    progress: Progress,
) -> dict[str, Any]:
    """The checkpoint body for the pool's `save_checkpoint`."""
    return {
        "checkpoint_version": CHECKPOINT_VERSION,
        "run_id": run_id,
        "island": island,
        "settings_hash": settings_hash,
        "generation": progress.generation,
        "evaluations": progress.evaluations,
        "best_ever": progress.best_ever,
        "best_ever_genome": progress.best_ever_genome,
        "best_ever_generation": progress.best_ever_generation,
        "stale": progress.stale,
        "own_gain": progress.own_gain,
        "adopted_gain": progress.adopted_gain,
        "own_improvements": progress.own_improvements,
        "adopted_improvements": progress.adopted_improvements,
        "own_log_gain": progress.own_log_gain,
        "adopted_log_gain": progress.adopted_log_gain,
        "migration": dict(progress.migration),
        "generator": gen.get_state().cpu().numpy(),
        "state": state_record,
    }


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
        progress = Progress(
            generation=int(record["generation"]),
            evaluations=int(record["evaluations"]),
            best_ever=float(record["best_ever"]),
            best_ever_genome=record["best_ever_genome"],
            best_ever_generation=int(record["best_ever_generation"]),
            stale=int(record["stale"]),
            migration={k: int(v) for k, v in dict(record["migration"]).items()},
            # checkpoints written before these were recorded: counted from the resume on
            own_gain=float(record.get("own_gain", 0.0)),
            adopted_gain=float(record.get("adopted_gain", 0.0)),
            own_improvements=int(record.get("own_improvements", 0)),
            adopted_improvements=int(record.get("adopted_improvements", 0)),
            own_log_gain=float(record.get("own_log_gain", 0.0)),
            adopted_log_gain=float(record.get("adopted_log_gain", 0.0)),
        )
        state = dict(record["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise fail(f"is incomplete ({e})") from None
    if progress.generation < 0:
        raise fail("has a negative generation")
    return state, progress
