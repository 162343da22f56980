"""Which setting won (islands/status/settings.py): own gain, confounding by migration, the table."""
from __future__ import annotations

import math
import time

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from islands.config import MigrationConfig
from islands.island import StopFlag
from islands.runs import evolve, new_manifest
from islands.status import report as rep
from islands.status.cli import status as status_cmd
from islands.status.plot import write_plot
from islands.status.record import IslandStatus
from islands.status.schema import SCHEMA
from islands.status.settings import settings_section, varied_names
from migration_pool.rundir import RunDir
from support.factories import QUIET, small_config, status_body

VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _entry(island: str, sigma: object, best: float, own: float | None, adopted: float | None,
           started: float = 0.0) -> dict:
    return {"island": island, "overrides": {} if sigma is None else {"mutation_sigma": sigma}, "best_ever": best,
            "own_gain": own, "adopted_gain": adopted, "started": started}


# Islands with sigma 0.2 reach the better best_ever, but mostly through immigrants; sigma
# 0.01 improved more by its own breeding.
STUDY = [
    _entry("island-00", 0.01, -5.0, 40.0, 0.0),
    _entry("island-01", 0.2, -1.0, 10.0, 30.0),
    _entry("island-02", 0.01, -3.0, 20.0, 10.0),
    _entry("island-03", 0.2, -2.0, 6.0, 50.0),
]


def test_confounded_study_ranks_by_own_gain():
    sec = settings_section(STUDY, migration_every=10, champion="island-01")
    assert sec["varied"] == ["mutation_sigma"]
    assert sec["confounded"] is True and sec["rank_by"] == "own_gain"
    assert sec["immigrant_share"] == pytest.approx(90.0 / 166.0)
    assert sec["note"].startswith("confounded: 54% of the improvement came from immigrants; ranked by own")
    (setting,) = sec["settings"]
    low, high = setting["values"]
    assert (low["value"], low["islands"], low["median_best_ever"], low["median_own_gain"], low["median_adopted_gain"]) \
        == (0.01, 2, -4.0, 30.0, 5.0)
    assert (high["value"], high["median_best_ever"], high["median_own_gain"]) == (0.2, -1.5, 8.0)
    assert (low["rank"], high["rank"]) == (1, 2)  # best_ever would have ranked them the other way
    assert setting["best_value"] == 0.01
    assert setting["champion_value"] == 0.2 and high["champion"] and not low["champion"]


@pytest.mark.parametrize("every, adopted", [(0, 0.0), (10, 0.0)])
def test_not_confounded_without_adopted_gain_ranks_by_best_ever(every, adopted):
    islands = [{**e, "adopted_gain": adopted} for e in STUDY]
    sec = settings_section(islands, migration_every=every, champion="island-01")
    assert sec["confounded"] is False and sec["note"] is None and sec["rank_by"] == "best_ever"
    assert sec["immigrant_share"] == (None if not every else 0.0)
    low, high = sec["settings"][0]["values"]
    assert (low["rank"], high["rank"]) == (2, 1) and sec["settings"][0]["best_value"] == 0.2


def test_minimisation_gains_compare_in_orders_of_magnitude():
    # sigma 0.01 started from a worse population: more absolute gain, fewer orders of magnitude.
    logs = {"island-00": (0.8, 0.0), "island-01": (2.0, 1.0), "island-02": (0.6, 0.2), "island-03": (1.8, 0.5)}
    islands = [{**e, "own_log_gain": logs[e["island"]][0], "adopted_log_gain": logs[e["island"]][1]} for e in STUDY]
    sec = settings_section(islands, migration_every=10, champion="island-01")
    assert sec["rank_by"] == "own_log_gain" and sec["immigrant_share"] == pytest.approx(1.7 / 6.9)
    assert "orders of magnitude of f(x)" in sec["note"]
    low, high = sec["settings"][0]["values"]
    assert (low["median_own_log_gain"], high["median_own_log_gain"]) == (pytest.approx(0.7), pytest.approx(1.9))
    assert (low["rank"], high["rank"]) == (2, 1) and sec["settings"][0]["best_value"] == 0.2
    positive = [{**e, "best_ever": 1.0} for e in islands]  # not a minimisation benchmark: absolute gains
    assert settings_section(positive, migration_every=10, champion=None)["rank_by"] == "own_gain"


def test_islands_without_recorded_gains_say_scores_may_be_confounded():
    islands = [{**e, "own_gain": None, "adopted_gain": None} for e in STUDY]
    sec = settings_section(islands, migration_every=10, champion=None)
    assert sec["confounded"] is True and sec["rank_by"] == "best_ever"
    assert "may be confounded" in sec["note"] and "--migrate-every 0" in sec["note"]
    assert sec["settings"][0]["values"][0]["median_own_gain"] is None
    assert sec["settings"][0]["champion_value"] is None


def test_late_starters_are_named_in_the_note():
    islands = [{**e, "started": 1000.0 + 40.0 * n} for n, e in enumerate(STUDY)]
    sec = settings_section(islands, migration_every=10, champion=None)
    assert sec["start_spread_s"] == 120.0
    assert "started up to 120 s apart" in sec["note"] and "late starter" in sec["note"]
    close = settings_section(STUDY, migration_every=10, champion=None)
    assert close["start_spread_s"] == 0.0 and "late starter" not in close["note"]


def test_what_counts_as_varied():
    same = [_entry(f"island-0{n}", 0.1, -1.0, 1.0, 0.0) for n in range(3)]
    assert varied_names(same) == [] and settings_section(same, migration_every=10, champion=None) is None
    mixed = same + [_entry("island-03", None, -1.0, 1.0, 0.0)]  # the run's default counts as a value
    sec = settings_section(mixed, migration_every=10, champion=None)
    assert [v["value"] for v in sec["settings"][0]["values"]] == [None, 0.1]
    two = [{**e, "overrides": {**e["overrides"], "algorithm": "ga" if n < 2 else "de"}} for n, e in enumerate(STUDY)]
    assert varied_names(two) == ["algorithm", "mutation_sigma"]
    sec = settings_section(two, migration_every=10, champion="island-03")
    assert [s["champion_value"] for s in sec["settings"]] == ["de", 0.2]


def test_status_gains_decode_tolerantly():
    s = IslandStatus.from_body(status_body(own_gain=3.5, adopted_gain=0.0, own_improvements=4, adopted_improvements=0,
                                           own_log_gain=1.25))
    assert (s.own_gain, s.adopted_gain, s.own_improvements, s.adopted_improvements) == (3.5, 0.0, 4, 0)
    assert (s.own_log_gain, s.adopted_log_gain) == (1.25, None)
    assert IslandStatus.from_body(s.to_body()) == s
    bad = IslandStatus.from_body(status_body(own_gain="x", adopted_gain=-1.0, own_improvements=True,
                                             adopted_improvements=-2))
    assert (bad.own_gain, bad.adopted_gain, bad.own_improvements, bad.adopted_improvements) == (None,) * 4
    old = status_body()
    for key in ("own_gain", "adopted_gain", "own_improvements", "adopted_improvements"):
        old.pop(key)
    assert IslandStatus.from_body(old).own_gain is None


def test_report_of_hand_made_statuses_has_the_section(tmp_path):
    rd = RunDir(tmp_path)
    ids = [e["island"] for e in STUDY]
    rd.create_or_read_manifest(lambda: {"schema": 1, "run_id": "r1", "created": 0.0, "islands": ids, "overrides": {},
                                        "config": {"problem": "sphere", "dim": 3, "migration": {"every": 10}}})
    for e in STUDY:
        rd.ensure(e["island"])
        rd.island(e["island"]).write_status(status_body(e["island"], overrides=e["overrides"], best_ever=e["best_ever"],
                                                 own_gain=e["own_gain"], adopted_gain=e["adopted_gain"],
                                                 best_genome=np.zeros(3), started=0.0, heartbeat=time.time()))
    report = rep.build_report(tmp_path)
    VALIDATOR.validate(report)
    assert report["settings"] == settings_section(STUDY, migration_every=10, champion="island-01")
    table = CliRunner().invoke(status_cmd, ["--run-dir", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "ranked by median own gain" in table.output and "came from immigrants" in table.output
    assert "mutation_sigma" in table.output and "champion" in table.output


# -- real runs, in this process -------------------------------------------------------------
IDS = [f"island-{n:02d}" for n in range(4)]


def _study(root, every: int) -> dict:
    """Four islands, mutation_sigma 0.01 and 0.2 alternating, run one after the other (so the
    later ones start late and adopt their neighbours' evolved genomes)."""
    cfg = small_config(generations=40, migration=MigrationConfig(every=every, migrants=3, topology="ring"))
    overrides = {i: {"mutation_sigma": (0.01, 0.2)[n % 2]} for n, i in enumerate(IDS)}
    RunDir(root).create_or_read_manifest(lambda: new_manifest(cfg, islands=IDS, overrides=overrides))
    for island in IDS:
        evolve(island, root, cfg, **QUIET)
    report = rep.build_report(root)
    VALIDATOR.validate(report)
    return report


@pytest.fixture(scope="module")
def migrating(tmp_path_factory):
    root = tmp_path_factory.mktemp("study-migrating")
    return root, _study(root, every=2)


def test_real_study_with_migration_is_confounded(migrating, tmp_path):
    root, report = migrating
    sec = report["settings"]
    assert sec["varied"] == ["mutation_sigma"]
    assert [(v["value"], v["islands"]) for v in sec["settings"][0]["values"]] == [(0.01, 2), (0.2, 2)]
    islands = {i["island"]: i for i in report["islands"]}
    assert all(i["own_gain"] > 0 and i["own_improvements"] > 0 for i in islands.values())
    assert islands["island-00"]["adopted_gain"] == 0.0  # it ran first: nothing to adopt
    assert sum(i["adopted_gain"] for i in islands.values()) > 0
    assert sec["confounded"] and sec["rank_by"] == "own_log_gain" and "came from immigrants" in sec["note"]
    assert 0 < sec["immigrant_share"] < 1
    for island, entry in islands.items():  # own + adopted gains add up to best_ever's rise from generation 0
        first = RunDir(root).island(island).read_history()[0]["best_ever"]
        assert entry["own_gain"] + entry["adopted_gain"] == pytest.approx(entry["best_ever"] - first, rel=1e-9)
        decades = math.log10(first / entry["best_ever"])
        assert entry["own_log_gain"] + entry["adopted_log_gain"] == pytest.approx(decades, rel=1e-9)
    champ = report["archipelago"]["champion"]["island"]
    assert sec["settings"][0]["champion_value"] == islands[champ]["overrides"]["mutation_sigma"]
    png = write_plot(root, report, tmp_path / "study.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_study_without_migration_is_not_confounded(tmp_path):
    report = _study(tmp_path, every=0)
    sec = report["settings"]
    assert not sec["confounded"] and sec["note"] is None and sec["rank_by"] == "best_ever"
    assert all(i["adopted_gain"] == 0.0 == i["adopted_log_gain"] and i["own_gain"] > 0 for i in report["islands"])
    table = CliRunner().invoke(status_cmd, ["--run-dir", str(tmp_path)])
    assert table.exit_code == 0 and "ranked by median best_ever" in table.output
    assert "confounded" not in table.output


def test_resume_keeps_own_gain(tmp_path):
    cfg = small_config(generations=60)
    whole = evolve("island-00", tmp_path / "whole", cfg, **QUIET)
    stop = StopFlag()
    evolve("island-00", tmp_path / "split", cfg, stop=stop,
           on_status=lambda s: setattr(stop, "requested", s.generation >= 35), **QUIET)
    ckpt, _ = RunDir(tmp_path / "split").island("island-00").load_checkpoint()
    assert ckpt["generation"] < 60 and ckpt["own_gain"] > 0 and ckpt["own_improvements"] > 0
    resumed = evolve("island-00", tmp_path / "split", cfg, **QUIET)
    assert resumed.resumed_from == ckpt["generation"] and resumed.best == whole.best
    a, b = (IslandStatus.from_body(RunDir(tmp_path / d).island("island-00").read_status()) for d in ("whole", "split"))
    assert a.own_gain > ckpt["own_gain"] and (b.own_gain, b.own_improvements) == (a.own_gain, a.own_improvements)
    assert 0 < ckpt["own_log_gain"] < a.own_log_gain == b.own_log_gain


def test_checkpoint_without_gains_resumes_from_zero(tmp_path):
    cfg = small_config(generations=60)
    stop = StopFlag()
    evolve("island-00", tmp_path, cfg, stop=stop,
           on_status=lambda s: setattr(stop, "requested", s.generation >= 35), **QUIET)
    rundir = RunDir(tmp_path)
    record, _ = rundir.island("island-00").load_checkpoint()
    for key in ("own_gain", "adopted_gain", "own_improvements", "adopted_improvements", "own_log_gain",
                "adopted_log_gain"):
        record.pop(key)
    rundir.island("island-00").save_checkpoint(record["generation"], record)
    evolve("island-00", tmp_path, cfg, **QUIET)
    s = IslandStatus.from_body(rundir.island("island-00").read_status())
    assert s.generation == 60 and s.adopted_gain == 0.0 and s.own_gain is not None and s.own_gain >= 0


def test_orders_of_magnitude_are_floored_at_both_ends():
    from islands.budget_share import LOG_FLOOR, log_gain as _decades

    assert _decades(-10.0, -1.0) == pytest.approx(1.0)
    assert _decades(-10.0, -1e-28) == pytest.approx(13.0)  # to the floor, not beyond
    assert _decades(-1e-14, -1e-20) == 0.0  # below the floor an improvement gains nothing, never < 0
    assert _decades(-LOG_FLOOR * 10, 0.0) == pytest.approx(1.0)
