"""The island's record (islands/status/record.py): one encoder, a tolerant decoder, one champion rule."""
from __future__ import annotations

import json

import numpy as np

from islands.status.record import (MIGRATION_COUNTERS, STATUS_VERSION, HistoryLine, IslandStatus, Migration,
                                   MigrationEvent, champion)
from support.factories import status, status_body


def test_a_status_round_trips_and_says_its_version():
    body = status_body("island-03", best_ever=-1.5, best_genome=np.arange(3.0), pid=7,
                       migration={"events": 2, "sent": 4, "from:island-01": 3, "last_generation": 20})
    assert body["version"] == STATUS_VERSION and "algo" not in body  # empty figures are left out
    back = IslandStatus.from_body(body)
    assert back.island == "island-03" and back.best_ever == -1.5 and back.pid == 7
    assert back.migration == Migration(events=2, sent=4, last_generation=20, received_from={"island-01": 3})
    assert back.migration.to_body()["from:island-01"] == 3
    assert IslandStatus.from_body(back.to_body()).migration == back.migration


def test_the_decoder_ignores_unknown_keys_and_defaults_missing_or_bad_ones():
    s = IslandStatus.from_body({"island": "island-00", "from_the_future": 1, "pid": True, "best": float("nan"),
                                "generation": "ten", "migration": {"sent": -3, "adopted": 2.5}, "algo": {"sigma": 0.5,
                                                                                                       "x": "y"}})
    assert s.island == "island-00" and s.pid is None and s.best is None and s.generation is None
    assert s.migration.sent == 0 and s.migration.adopted == 0 and s.algo == {"sigma": 0.5}
    assert IslandStatus.from_body(None) == IslandStatus() == IslandStatus.from_body([1, 2])


def test_migration_counters_are_the_single_list():
    assert MIGRATION_COUNTERS == ("events", "sent", "received", "adopted", "rejected", "bad_files", "publish_errors", "skipped")
    assert set(Migration().to_body()) == set(MIGRATION_COUNTERS) | {"micros"}


def test_a_history_line_leaves_out_what_it_does_not_carry():
    plain = HistoryLine(generation=3, best=1.0, mean=0.5, best_ever=1.0, evaluations=40, time=1.5)
    assert list(plain.to_body()) == ["generation", "best", "mean", "best_ever", "evaluations", "time"]
    event = MigrationEvent(sent=2, received=3, adopted=1, rejected=2, sources=("island-01",), seconds=0.01)
    full = HistoryLine(generation=10, migration=event, diversity=0.2, foreign=0.1, algo={"sigma": 0.3})
    body = json.loads(json.dumps(full.to_body()))
    assert body["migration"]["sources"] == ["island-01"] and body["algo"] == {"sigma": 0.3}
    assert HistoryLine.from_body(body) == full


def test_the_champion_is_the_best_of_the_run_that_carries_a_genome():
    g = np.zeros(2)
    statuses = [status("island-00", best_ever=1.0, best_genome=g), status("island-01", best_ever=3.0),  # no genome
                status("island-02", best_ever=2.0, best_genome=g), status("island-03", best_ever=2.0, best_genome=g),
                status("island-04", best_ever=9.0, best_genome=g, run_id="old"), None]
    assert champion(statuses, "r1").island == "island-02"  # the first on ties
    assert champion(statuses).island == "island-04"
    assert champion([None, status()]) is None
