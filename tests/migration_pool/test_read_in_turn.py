"""RunDir.read_in_turn: other islands' records, a bounded number per call, every one in turn."""
from __future__ import annotations

from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir


def test_other_islands_are_read_in_turn_and_unreadable_ones_skipped(tmp_path):
    rundir = RunDir(tmp_path)
    for i in range(5):
        (tmp_path / "islands" / f"island-0{i}").mkdir(parents=True)

    def read(files):
        if files.dir.name == "island-03":
            raise FormatError("corrupt")
        return files.dir.name

    seen, turn = [], 0
    for _ in range(2):  # four others, two per call: every other island once, then around again
        found, turn = rundir.read_in_turn("island-00", turn, 2, read)
        seen += [name for name, _ in found]
        assert all(name == body for name, body in found)
    assert seen == ["island-01", "island-02", "island-04"] and turn == 0  # island-03 skipped, never itself
    assert rundir.read_in_turn("island-00", 0, 32, read)[0] == [(n, n) for n in ("island-01", "island-02", "island-04")]
    assert RunDir(tmp_path / "none").read_in_turn("island-00", 0, 2, read) == ([], 0)
