"""The array lineage curve (`lineage_curve.over_time`, what the status report uses) is
`lineage.over_time` (the pure-Python rule the launcher's summary uses) on the same samples."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from islands.status import lineage, lineage_curve


def _island(draw_gens, origins_per_sample, times):
    gens = np.array(draw_gens, dtype=np.int64)
    rows = np.array([(i, k, v) for i, counts in enumerate(origins_per_sample) for k, v in sorted(counts.items())],
                    dtype=np.int64).reshape(-1, 3)
    return gens, np.array([np.nan if t is None else t for t in times], dtype=np.float64), rows


samples = st.lists(st.tuples(st.integers(-2, 400), st.dictionaries(st.integers(0, 9), st.integers(1, 50), max_size=4),
                             st.one_of(st.none(), st.floats(0, 1e4))), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(samples, max_size=6), st.integers(1, 60))
def test_the_array_curve_is_the_python_curve(islands, bins):
    series, points = [], {}
    for n, pts in enumerate(islands):
        pts = sorted(pts, key=lambda p: p[0])  # a history is in generation order
        series.append(_island([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]))
        points[f"island-{n:02d}"] = pts
    want = lineage.over_time(points, bins=bins)
    got = lineage_curve.over_time(series, bins=bins)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g["generation"], g["time"], g["islands"], g["carried"]) == \
            (w["generation"], w["time"], w["islands"], w["carried"])
        assert g["effective_origins"] == pytest.approx(w["effective_origins"], rel=1e-9)
        assert g["dominant_share"] == pytest.approx(w["dominant_share"], rel=1e-12)


def test_a_takeover_shows_in_both():
    a = [(0, {0: 10}, 1.0), (50, {1: 10}, 2.0), (100, {1: 10}, 3.0)]
    b = [(0, {1: 10}, 1.5), (100, {1: 10}, 3.5)]
    want = lineage.over_time({"island-00": a, "island-01": b}, bins=3)
    got = lineage_curve.over_time([_island(*zip(*[(g, c, t) for g, c, t in x])) for x in (a, b)], bins=3)
    assert [p["dominant_share"] for p in got] == [p["dominant_share"] for p in want] == [0.5, 1.0, 1.0]
