"""Checkpoints (islands/checkpoint.py): a torn or foreign checkpoint is never silently resumed."""
from __future__ import annotations

import pytest

from islands.errors import CheckpointError
from islands.island import StopFlag
from islands.runs import evolve
from migration_pool.rundir import RunDir
from support.factories import QUIET
from support.factories import small_config as small


def test_a_corrupt_newest_checkpoint_falls_back_and_all_corrupt_is_a_clear_error(tmp_path):
    stop = StopFlag()
    evolve("island-00", tmp_path, small(), stop=stop,
           on_status=lambda s: setattr(stop, "requested", s.generation >= 35), **QUIET)
    rundir = RunDir(tmp_path)
    paths = rundir.island("island-00").checkpoint_paths()
    assert len(paths) == 3
    newest_gen = int(paths[0].stem.split("-")[1])
    paths[0].write_bytes(paths[0].read_bytes()[:-7])  # torn
    result = evolve("island-00", tmp_path, small(), **QUIET)
    assert result.resumed_from == int(paths[1].stem.split("-")[1]) < newest_gen
    for p in rundir.island("island-00").checkpoint_paths():
        p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="--fresh"):
        evolve("island-00", tmp_path, small(), **QUIET)
    again = evolve("island-00", tmp_path, small(), fresh=True, **QUIET)
    assert again.resumed_from is None and again.generation == 60


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    evolve("island-00", tmp_path, small(), **QUIET)
    rundir = RunDir(tmp_path)
    record, _ = rundir.island("island-00").load_checkpoint()
    record["settings_hash"] = "0" * 16
    rundir.island("island-00").save_checkpoint(record["generation"], record)
    with pytest.raises(CheckpointError, match="different settings"):
        evolve("island-00", tmp_path, small(), **QUIET)
