"""Containment (RELIABILITY.md R16): symlinks inside a run never lead a process out of it.

A symlink in place of `pool/<island>`, `islands/<island>`, a checkpoint, the status file or
the history, and ids like `../../x`: whatever an island or the pool does, a sibling directory
(the link target) is left exactly as it was.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from migration_pool import format as fmt
from migration_pool import island_ids
from migration_pool.errors import RunDirError
from migration_pool.legacy_batches import batch_name
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir
from support.factories import migrant_batch
from support.procs import evolve_cmd, run

FAST = ["--dim", "4", "--population", "12", "--generations", "12", "--migrate-every", "2",
        "--checkpoint-every", "4", "--seed", "1"]


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every path below `directory` with its size and mtime: any write, rename or delete shows."""
    found = {}
    for base, dirs, files in os.walk(directory):
        for name in dirs + files:
            p = os.path.join(base, name)
            st = os.lstat(p)
            found[os.path.relpath(p, directory)] = (st.st_size, st.st_mtime_ns)
    return found


def sibling(tmp_path: Path) -> Path:
    """Another run's pool-like directory, with a batch in it that GC would love to delete."""
    other = tmp_path / "other"
    other.mkdir()
    for g in range(1, 6):
        (other / batch_name(g)).write_bytes(b"another run's batch")
    (other / "checkpoint-00000004.isld").write_bytes(b"another run's checkpoint")
    return other


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A real run whose island-00 finished: made once (one island process), copied per test."""
    root = tmp_path_factory.mktemp("containment") / "run"
    done = run(evolve_cmd("island-00", root, *FAST))
    assert done.returncode == 0, done.stderr
    return root


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run", symlinks=True))


@pytest.mark.parametrize("link", ["pool/island-01", "islands/island-01"])
def test_a_symlinked_island_directory_is_refused_and_nothing_outside_changes(tmp_path, link, finished_run):
    root, other = copy_of(finished_run, tmp_path), sibling(tmp_path)  # a real run first
    before = snapshot(other)
    (root / link).symlink_to(other, target_is_directory=True)
    done = run(evolve_cmd("island-01", root, *FAST))
    assert done.returncode != 0 and "symlink" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(other) == before
    fresh = run(evolve_cmd("island-01", root, *FAST, "--fresh"))  # --fresh deletes: not there
    assert fresh.returncode != 0 and "symlink" in fresh.stderr
    assert snapshot(other) == before


@pytest.mark.parametrize("name", ["checkpoint-00000012.isld", "status.isld", "history.jsonl"])
def test_symlinked_files_are_replaced_or_refused_never_written_through(tmp_path, name, finished_run):
    root, other = copy_of(finished_run, tmp_path), sibling(tmp_path)
    before = snapshot(other)
    path = RunDir(root).island("island-00").dir / name
    path.unlink(missing_ok=True)
    path.symlink_to(other / "checkpoint-00000004.isld")
    done = run(evolve_cmd("island-00", root, *FAST))  # resumes, rewrites, appends
    assert "Traceback" not in done.stderr, done.stderr
    assert snapshot(other) == before


def test_the_pool_refuses_to_publish_or_collect_through_a_symlink(tmp_path):
    other = sibling(tmp_path)
    before = snapshot(other)
    rd = RunDir(tmp_path / "run")
    rd.ensure()
    rd.pool_dir("island-03").symlink_to(other, target_is_directory=True)
    pool = Pool(rd, "run-a")
    batch = migrant_batch(__import__("numpy").zeros((2, 3), "float32"), source="island-03",
                          generation=7)
    with pytest.raises(RunDirError, match="symlink"):
        pool.publish(batch)
    warnings: list[str] = []
    pool.warn = warnings.append
    assert pool.collect("island-03", keep=1) == 0 and "symlink" in warnings[0]
    assert snapshot(other) == before


@pytest.mark.parametrize("bad", ["../../../x", "island-00/../../x", "island-001", ".."])
def test_ids_that_are_not_canonical_never_become_paths(tmp_path, bad):
    rd = RunDir(tmp_path / "run")
    for use in (rd.island, rd.pool_dir, rd.ensure):
        with pytest.raises(RunDirError, match="not an island id"):
            use(bad)
    assert not (tmp_path / "x").exists() and os.listdir(tmp_path) in ([], ["run"])
    with pytest.raises(fmt.FormatError):
        island_ids.check_island_id(bad)
