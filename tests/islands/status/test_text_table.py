"""The plain island table `islands status` draws for many islands: the rich table's columns and
cells, aligned, with the state in its colour."""
from __future__ import annotations

import io

from rich.console import Console

from islands.status import cli as status_cli
from islands.status.report import build_report
from islands.status.text_table import RICH_ROWS, text_table
from scripts.bench_status import build


def test_columns_are_aligned_and_the_state_keeps_its_colour():
    rows = [["island-00", ("running", "green"), "5/10", "-0.5", "a note"],
            ["island-100", ("dead", "bold red"), "10/10", "-12.25", ""]]
    text = text_table(["island", "state", "gen", "best", "note"], rows, ("island", "state", "note"), {})
    lines = text.plain.split("\n")
    assert lines[0].split() == ["island", "state", "gen", "best", "note"]
    assert lines[1] == "island-00   running   5/10    -0.5  a note"
    assert lines[2].rstrip() == "island-100  dead     10/10  -12.25"
    styled = {text.plain[s.start:s.end].strip(): str(s.style) for s in text.spans}
    assert styled["running"] == "green" and styled["dead"] == "bold red"


def _rows(report: dict, monkeypatch, rich_rows: int) -> list[list[str]]:
    monkeypatch.setattr(status_cli, "RICH_ROWS", rich_rows)
    out = io.StringIO()
    Console(file=out, width=240, color_system=None).print(status_cli.render(report))
    return [ln.split() for ln in out.getvalue().splitlines() if ln.startswith("island-")]


def test_past_the_rich_limit_every_island_has_its_row_with_the_same_cells(tmp_path, monkeypatch):
    islands = RICH_ROWS + 5
    build(tmp_path / "run", islands, generations=20, dim=3)  # the status benchmark's run, written by RunDir
    report = build_report(tmp_path / "run")
    plain, rich = _rows(report, monkeypatch, RICH_ROWS), _rows(report, monkeypatch, 10 * islands)
    assert len(plain) == len(rich) == islands
    assert plain == rich
    assert plain[-1][:3] == [f"island-{islands - 1}", "finished", "20/20"]
