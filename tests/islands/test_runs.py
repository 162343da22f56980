"""Joining a run (islands/runs.py): the manifest is shared and contradictions are refused."""
from __future__ import annotations

import pytest

from islands.config import RunConfig
from islands.runs import evolve
from islands.status.reader import open_run
from migration_pool.errors import ManifestConflict
from support.factories import QUIET
from support.factories import small_config as small


def test_the_manifest_is_shared_and_contradictions_are_refused(tmp_path):
    evolve("island-00", tmp_path, small(), **QUIET)
    run = open_run(tmp_path)
    assert run.config == small()
    # A different RunConfig is a contradiction, as on the command line (not the old run's result).
    with pytest.raises(ManifestConflict, match="dim"):
        evolve("island-01", tmp_path, RunConfig(), **QUIET)
    # Joining with no config (or no explicit options) takes the manifest's settings.
    joined = evolve("island-01", tmp_path, **QUIET)
    assert joined.evaluations == 30 * 61
    assert evolve("island-03", tmp_path, RunConfig(), explicit={}, **QUIET).evaluations == 30 * 61
    with pytest.raises(ManifestConflict, match="population") as info:
        evolve("island-02", tmp_path, small(population=31), explicit={"population": 31}, **QUIET)
    assert info.value.recorded == 30
    evolve("island-02", tmp_path, small(), explicit={"population": 30, "ga.crossover": "sbx"}, **QUIET)


@pytest.mark.parametrize("bad, good", [
    (dict(problem="rastrign"), dict(problem="rastrigin")),
    (dict(algorithm="cmaes", algorithm_params={"sigma0": "x"}), dict(algorithm="cmaes", algorithm_params={"sigma0": "0.2"})),
    (dict(algorithm="pure"), dict(algorithm="pure", problem="xor")),
    (dict(problem_params={"nope": 1}), dict()),
])
def test_a_typo_writes_no_manifest_and_the_corrected_call_starts_the_run(tmp_path, bad, good):
    from islands.errors import ConfigError

    root = tmp_path / "run"
    with pytest.raises(ConfigError):
        evolve("island-00", root, small(generations=2, **bad), **QUIET)
    assert not root.exists() or not any(root.iterdir())  # nothing the corrected call would contradict
    result = evolve("island-00", root, small(generations=2, **good), **QUIET)
    assert result.generation == 2
