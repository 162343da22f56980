"""The tuners' pure parts: successive halving's rung rule, PBT's donor choice, the space's draws,
containment (the guard against forged records) and explore step, and the segment record."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from islands.errors import ConfigError
from islands.tuning import rules, space
from islands.tuning.config import TunerConfig, tuner_line
from islands.tuning.segments import Segment

SPACE = space.parse_space(["mutation_sigma=0.01:0.5:log", "tournament_size=2:7", "crossover=sbx,blx",
                           "algo.F=0.1:0.9"])


def test_the_first_segment_at_a_rung_stays_and_only_the_top_third_stays_later():
    assert rules.survives_rung(-5.0, [], 3)  # the first to arrive
    assert rules.survives_rung(-1.0, [-5.0], 3)  # n=2: the better of two stays
    assert not rules.survives_rung(-5.0, [-1.0], 3)  # the worse does not: max(1, 2 // 3) = 1 place
    assert not rules.survives_rung(-5.0, [-1.0, -2.0], 3)  # n=3: one may be better, two are
    assert rules.survives_rung(-1.0, [-5.0, -2.0, -3.0, -4.0, -6.0], 3)  # the best of 6
    assert rules.survives_rung(-2.0, [-1.0, -3.0, -4.0, -5.0, -6.0], 3)  # second of 6: top 6 // 3 = 2
    assert not rules.survives_rung(-3.0, [-1.0, -2.0, -4.0, -5.0, -6.0], 3)
    # Only strictly better segments count: a tie takes no place from it.
    assert rules.survives_rung(-2.0, [-2.0], 3)
    assert rules.survives_rung(-2.0, [-2.0, -2.0, -5.0], 3)  # n=4: one place, none strictly better
    assert not rules.survives_rung(-2.0, [-1.0, -2.0, -5.0], 3)


def test_pbt_copies_from_the_top_only_when_ranked_at_the_bottom():
    rng = np.random.default_rng(0)
    scores = {"island-00": -1.0, "island-01": -2.0, "island-02": -3.0, "island-03": -4.0}
    assert rules.pbt_donor("island-03", scores, 0.25, rng) == "island-00"
    assert rules.pbt_donor("island-00", scores, 0.25, rng) is None
    assert rules.pbt_donor("island-02", scores, 0.25, rng) is None  # k = 1: only the last copies
    assert rules.pbt_donor("island-02", scores, 0.5, rng) in ("island-00", "island-01")
    assert rules.pbt_donor("island-00", {"island-00": -1.0}, 0.5, rng) is None  # alone
    # A donor no better (an unknown score, a tie) is never copied.
    assert rules.pbt_donor("island-01", {"island-00": -math.inf, "island-01": -math.inf}, 0.5, rng) is None


@given(st.integers(0, 2**32 - 1))
def test_draws_and_explores_stay_in_the_space(seed):
    rng = np.random.default_rng(seed)
    drawn = space.draw(SPACE, rng)
    assert space.contains(SPACE, drawn)
    moved = space.explore(SPACE, drawn, rng, keep=frozenset({"crossover"}))
    assert space.contains(SPACE, moved) and moved["crossover"] == drawn["crossover"]
    assert moved["tournament_size"] != drawn["tournament_size"] or drawn["tournament_size"] in (2, 7)


def test_a_list_member_counts_only_with_its_own_type():
    """A forged record may not slip `True` or `1.0` in for the listed `1` (equal in Python, but
    another setting for the algorithm): containment compares types too."""
    listed = space.parse_space(["algo.k=1,2,4", "crossover=sbx,blx"])
    assert space.contains(listed, {"algo.k": 2, "crossover": "blx"})
    for forged in (True, 1.0, 2.0, "2"):
        assert not space.contains(listed, {"algo.k": forged, "crossover": "blx"}), forged


@pytest.mark.parametrize("seed", range(10))
def test_explore_moves_a_small_integer_by_at_least_one(seed):
    """2 * 1.2 and 2 / 1.2 both round back to 2: explore still moves it, to 1 or 3, never leaves it."""
    small = space.parse_space(["algo.k=1:3"])
    moved = space.explore(small, {"algo.k": 2}, np.random.default_rng(seed))
    assert moved["algo.k"] in (1, 3)


@pytest.mark.parametrize("forged", [
    {"mutation_sigma": 5.0, "tournament_size": 3, "crossover": "sbx", "algo.F": 0.5},  # out of range
    {"mutation_sigma": 0.1, "tournament_size": 3.5, "crossover": "sbx", "algo.F": 0.5},  # not an integer
    {"mutation_sigma": 0.1, "tournament_size": 3, "crossover": "evil", "algo.F": 0.5},  # not a listed value
    {"mutation_sigma": 0.1, "tournament_size": 3, "crossover": "sbx"},  # a name missing
    {"mutation_sigma": 0.1, "tournament_size": 3, "crossover": "sbx", "algo.F": 0.5, "population": 2},  # extra
    {"mutation_sigma": float("nan"), "tournament_size": 3, "crossover": "sbx", "algo.F": 0.5},
    {"mutation_sigma": True, "tournament_size": 3, "crossover": "sbx", "algo.F": 0.5},
    "mutation_sigma=0.1",
])
def test_settings_outside_the_space_are_not_contained(forged):
    assert not space.contains(SPACE, forged)


def test_tuner_config_checks_its_schedule_and_names_its_rungs():
    with pytest.raises(ConfigError, match="needs --vary"):
        TunerConfig(kind="asha")
    with pytest.raises(ConfigError, match="--reduction"):
        TunerConfig(kind="asha", space=("mutation_sigma=0.1:0.2",), reduction=1)
    asha = TunerConfig(kind="asha", space=("mutation_sigma=0.1:0.2",), rung=5, reduction=3)
    assert [asha.rung_index(a) for a in (4, 5, 6, 15, 45, 46)] == [None, 0, None, 1, 2, None]
    assert "rungs at 5, 15, 45 generations" in tuner_line(asha, 100)
    assert TunerConfig(kind="pbt", space=("mutation_sigma=0.1:0.2",)).rung_index(10) is None
    assert tuner_line(TunerConfig(), 100) is None


def test_a_segment_record_round_trips_and_a_forged_one_is_refused():
    s = Segment("island-01", 2, {"mutation_sigma": 0.1}, 40, 10, 500, -3.5, (-4.0,), "island-00#1", "halved", "why", 7)
    assert Segment.from_body("island-01", s.to_body()) == s
    assert Segment.from_body("island-02", s.to_body()) is None  # written under another island's name
    for key, bad in (("index", -1), ("start", "0"), ("end", "promoted"), ("rungs", list(range(100))),
                     ("settings", [1]), ("why", "x" * 1000), ("evaluations", True)):
        assert Segment.from_body("island-01", {**s.to_body(), key: bad}) is None, key
    nan = Segment.from_body("island-01", {**s.to_body(), "best": float("nan")})
    assert nan is not None and nan.best == -math.inf  # an unknown fitness is never better than anything
