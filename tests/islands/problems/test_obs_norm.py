"""Observation statistics (islands/problems/obs_norm.py): exact merges, frozen generations,
untrusted records from other islands. Pure numpy: no environment needed."""
from __future__ import annotations

import numpy as np
import pytest

from islands.problems.obs_norm import CLIP, ObsNorm, ObsStats, frozen_from_body, resolve_mode


def test_merging_any_split_gives_the_statistics_of_the_whole_set():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, [0.1, 10.0, 1e3], size=(500, 3))
    whole = ObsStats.of(x)
    for cuts in ([1], [250], [7, 8, 400], [499]):
        parts = np.split(x, cuts)
        merged = ObsStats.empty(3)
        for p in parts:
            merged = merged.merged(ObsStats.of(p))
        assert merged.count == 500
        np.testing.assert_allclose(merged.mean, x.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(merged.std(), x.std(axis=0), rtol=1e-9)
        np.testing.assert_allclose(merged.m2, whole.m2, rtol=1e-9)


def test_non_finite_rows_are_left_out_and_a_constant_dimension_does_not_divide_by_zero():
    x = np.array([[1.0, 5.0], [np.nan, 5.0], [3.0, 5.0], [np.inf, 5.0]])
    s = ObsStats.of(x)
    assert s.count == 2 and s.mean.tolist() == [2.0, 5.0]
    assert s.std()[1] > 0  # floored
    assert ObsStats.of(np.full((3, 2), np.nan)).count == 0


def test_a_generation_is_evaluated_with_frozen_statistics_folded_in_when_the_seed_changes():
    norm = ObsNorm(2, "island")
    norm.reseed(10)
    x = np.array([[100.0, -4.0], [102.0, -2.0]])
    first = norm.apply(x)
    norm.collecting = True
    norm.observe(x)
    assert norm.pending.count == 2 and norm.own.count == 0
    np.testing.assert_array_equal(norm.apply(x), first)  # frozen during the generation
    norm.reseed(10)  # the same generation's episodes again (migration at g): nothing folded
    assert norm.own.count == 0
    norm.reseed(11)
    assert norm.own.count == 2 and norm.pending.count == 0
    np.testing.assert_allclose(norm.apply(x), [[-1, -1], [1, 1]], atol=1e-6)
    assert np.abs(norm.apply(np.array([[1e9, -1e9]]))).max() == CLIP  # clipped
    norm.collecting = False
    norm.observe(x * 7)
    assert norm.pending.count == 0  # not a training evaluation: nothing collected


def test_a_generation_summed_step_by_step_keeps_its_precision_far_from_zero():
    rng = np.random.default_rng(3)
    x = 1e6 + rng.normal(0.0, 1e-2, size=(4000, 2))  # a large offset, a tiny spread
    norm = ObsNorm(2, "island")
    norm.reseed(0)
    norm.collecting = True
    for chunk in np.split(x, 40):
        norm.observe(chunk)
    norm.reseed(1)
    np.testing.assert_allclose(norm.own.mean, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(norm.own.std(), x.std(axis=0), rtol=1e-6)
    for chunk in np.split(x + 1.0, 40):  # the next generation is summed around the frozen mean
        norm.observe(chunk)
    norm.reseed(2)
    both = np.concatenate([x, x + 1.0])
    np.testing.assert_allclose(norm.own.std(), both.std(axis=0), rtol=1e-6)


def test_state_round_trips_through_a_checkpoint_body_exactly():
    rng = np.random.default_rng(1)
    norm = ObsNorm(3, "run")
    norm.reseed(1)
    norm.collecting = True
    norm.observe(rng.normal(size=(20, 3)))
    norm.reseed(2)
    norm.observe(rng.normal(size=(5, 3)))
    norm.set_other("island-07", ObsStats.of(rng.normal(5, 2, size=(30, 3))))
    copy = ObsNorm(3, "run")
    copy.restore(norm.to_body())
    assert copy.to_body() == norm.to_body()
    norm.reseed(3)
    copy.reseed(3)
    np.testing.assert_array_equal(copy.mean, norm.mean)
    np.testing.assert_array_equal(copy.std, norm.std)
    with pytest.raises(ValueError, match="width 4"):
        ObsNorm(4, "run").restore(norm.to_body())


def test_other_islands_statistics_are_untrusted_validated_and_capped():
    good = ObsStats.of(np.arange(12.0).reshape(6, 2)).to_body()
    assert ObsStats.from_body(good, 2) is not None
    forged = [None, [], {"count": 1}, {**good, "mean": [1.0]}, {**good, "mean": [np.nan, 0.0]},
              {**good, "m2": [-1.0, 0.0]}, {**good, "count": -3}, {**good, "count": float("inf")},
              {**good, "mean": "ab"}, {**good, "count": 1e-300, "m2": [1e300, 1e300]},
              {**good, "mean": [1e300, 0.0]}, {**good, "mean": [1e30, 0.0]}]
    for body in forged:
        assert ObsStats.from_body(body, 2) is None, body
    norm = ObsNorm(2, "run")
    norm.reseed(0)
    norm.collecting = True
    norm.observe(np.random.default_rng(2).normal(size=(100, 2)))
    norm.reseed(1)
    # A forged record claiming a billion observations far away weighs as much as the island's own.
    norm.set_other("island-99", ObsStats(1e9, np.array([1e6, 1e6]), np.full(2, 1e9)))
    merged = norm.merged()
    assert merged.count == 200
    assert 4e5 < merged.mean[0] < 6e5  # half the weight, not all of it
    # Even records a check let through cannot make the transform unusable: it falls back on its own.
    norm.set_other("island-98", ObsStats(1e9, np.array([9e11, 9e11]), np.full(2, 9e11 * 1e9)))
    norm.reseed(2)
    assert np.isfinite(norm.std).all() and np.isfinite(norm.apply(np.ones((1, 2)))).all()
    island_only = ObsNorm(2, "island")
    island_only.set_other("island-99", ObsStats(5.0, np.zeros(2), np.ones(2)))
    assert island_only.others == {}  # "island" mode keeps its own statistics only


def test_a_warm_up_starts_the_statistics_before_the_first_population():
    norm = ObsNorm(2, "island")
    assert norm.needs_warmup
    norm.warm(np.array([[0.0, 10.0], [2.0, 30.0]]))
    assert not norm.needs_warmup and norm.own.count == 2
    np.testing.assert_allclose(norm.apply(np.array([[1.0, 20.0]])), [[0.0, 0.0]], atol=1e-6)  # in use at once


def test_recorded_transforms_are_checked_where_they_are_used():
    assert frozen_from_body({"mean": [0, 1], "std": [1, 2]}, 2) is not None
    for bad in ({"mean": [0, 1]}, {"mean": [0, 1], "std": [1, 0]}, {"mean": [0], "std": [1]},
                {"mean": [0, np.nan], "std": [1, 1]}, "x"):
        assert frozen_from_body(bad, 2) is None
    norm = ObsNorm(2, "island")
    norm.use(np.array([1.0, 1.0]), np.array([2.0, 2.0]))
    norm.reseed(5)
    norm.reseed(6)  # a recorded transform stays as recorded
    assert norm.mean.tolist() == [1.0, 1.0] and norm.std.tolist() == [2.0, 2.0]


def test_auto_normalises_only_where_no_dimension_is_bounded():
    assert resolve_mode("auto", np.array([False, False])) == "run"
    assert resolve_mode("auto", np.array([True, False])) == "off"
    assert resolve_mode("island", np.array([True])) == "island"
    with pytest.raises(ValueError, match="obs_norm must be one of"):
        resolve_mode("yes", np.array([True]))
