"""Joining a run (islands/runs.py): the manifest is shared and contradictions are refused."""
from __future__ import annotations

import pytest

from islands.config import RunConfig
from islands.runs import evolve, open_run
from migration_pool.errors import ManifestConflict
from support.factories import QUIET
from support.factories import small_config as small


def test_the_manifest_is_shared_and_contradictions_are_refused(tmp_path):
    evolve("island-00", tmp_path, small(), **QUIET)
    run = open_run(tmp_path)
    assert run.config == small()
    # Joining with no explicit options takes the manifest's settings.
    joined = evolve("island-01", tmp_path, RunConfig(), **QUIET)
    assert joined.evaluations == 30 * 61
    with pytest.raises(ManifestConflict, match="population") as info:
        evolve("island-02", tmp_path, small(population=31), explicit={"population": 31}, **QUIET)
    assert info.value.recorded == 30
    evolve("island-02", tmp_path, small(), explicit={"population": 30, "ga.crossover": "sbx"}, **QUIET)
