"""The manifest record (islands/manifest.py): every field that reaches a path, a script or a
command is checked when the manifest is decoded, with one line naming the field."""
from __future__ import annotations

import uuid

import pytest

from islands.config import RunConfig
from islands.manifest import new_manifest, run_from_manifest
from migration_pool.errors import FormatError


def manifest(**fields):
    return {**new_manifest(RunConfig(problem="sphere", dim=3, population=8), planned_islands=["island-00"]), **fields}


@pytest.mark.parametrize("run_id", [uuid.uuid4().hex, str(uuid.uuid4()), "r1", "A" * 64],
                         ids=["uuid4-hex", "uuid4", "r1", "A*64"])  # ids the same in every pytest-xdist worker
def test_run_ids_a_run_writes_or_a_test_names_decode(tmp_path, run_id):
    assert run_from_manifest(tmp_path, manifest(run_id=run_id)).run_id == run_id


@pytest.mark.parametrize("run_id", ["abc\ntouch /tmp/pwned", "x\r", "a b", "", "-rf", "../../etc", "$(id)", "a;b",
                                    "run\u2028id", "é" * 4, "A" * 65, 123, None, ["x"]])
def test_a_run_id_that_could_break_a_script_or_a_path_is_refused_in_one_line(tmp_path, run_id):
    with pytest.raises(FormatError, match="run_id") as e:
        run_from_manifest(tmp_path, manifest(run_id=run_id))
    assert "\n" not in str(e.value) and "\r" not in str(e.value) and "\u2028" not in str(e.value)


@pytest.mark.parametrize("field, value", [
    ("devices", ["cuda:0"]), ("devices", {"island-00": "cuda:0\nx"}), ("devices", {"island-00": 3}),
    ("overrides", ["x"]), ("overrides", {"island-00": "population=3"}),
])
def test_per_island_devices_and_overrides_of_the_wrong_shape_are_refused(tmp_path, field, value):
    with pytest.raises(FormatError, match=field):
        run_from_manifest(tmp_path, manifest(**{field: value}))


def test_devices_and_overrides_a_launcher_writes_decode(tmp_path):
    run = run_from_manifest(tmp_path, manifest(devices={"island-00": "cuda:1"}, overrides={"island-00": {"seed": 3}}))
    assert run.device("island-00") == "cuda:1" and run.device("island-01") == "cpu"
    assert run.overrides("island-00") == {"seed": 3}
