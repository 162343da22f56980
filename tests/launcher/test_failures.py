"""Why the launcher gave an island up (`launcher.failures`): the cause and what to do."""
from __future__ import annotations

import errno

from launcher.failures import os_error_text, why_failed


def test_the_islands_own_error_line_is_the_reason_even_when_lines_follow_it(tmp_path):
    tail = ["--- launcher: start 3 of island-00 ---", "island-00: resuming from generation 10",
            "error: No space left on device; free some space, then run the same command again",
            "island-00: gen 11/40"]
    assert why_failed(tmp_path, tail) == "No space left on device; free some space, then run the same command again"
    assert why_failed(tmp_path, tail[:2] + ["ValueError: bad"]) == "ValueError: bad"  # no error line: the last one


def test_an_empty_log_on_a_disk_with_room_says_how_to_see_why(tmp_path):
    why = why_failed(tmp_path, ["--- launcher: start 1 of island-00 ---"])  # only the launcher's own line
    assert why.startswith("its log is empty; run `islands evolve ISLAND") and str(tmp_path) in why


def test_an_os_error_says_what_to_do():
    full = OSError(errno.ENOSPC, "No space left on device", "/r/islands/island-00/island.log")
    assert os_error_text(full) == ("No space left on device (/r/islands/island-00/island.log); free some space, "
                                   "then run the same command again")
    assert "make the run directory writable" in os_error_text(OSError(errno.EROFS, "Read-only file system"))
    assert os_error_text(OSError(errno.EISDIR, "Is a directory", "x")).startswith("Is a directory (x); fix that")
