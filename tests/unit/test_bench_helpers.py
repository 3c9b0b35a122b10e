"""The benchmarks' pure helpers: percentiles, slope fit, report tables."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlearn.bench.measure import percentile, slope
from fleetlearn.bench.report import by_scenario, markdown

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_numpy_linear(values, q):
    assert percentile(values, q) == pytest.approx(np.percentile(values, q), abs=1e-6)


def test_slope_recovers_a_line_with_noise():
    xs = [float(i) for i in range(100)]
    rng = np.random.default_rng(0)
    ys = [2.5 * x + 7 + float(rng.normal(0, 0.1)) for x in xs]
    assert slope(xs, ys) == pytest.approx(2.5, abs=0.01)


def test_helpers_refuse_too_little_data():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        slope([1.0], [2.0])


def test_report_groups_rows_by_scenario_with_their_own_columns():
    rows = [{"scenario": "a", "x": 1}, {"scenario": "b", "y": 2.5}, {"scenario": "a", "z": "q"}]
    groups = by_scenario(rows)
    assert groups["a"] == (["x", "z"], [["1", "-"], ["-", "q"]])
    assert groups["b"] == (["y"], [["2.5"]])
    assert markdown(rows, "fleetlearn bench", "d").count("|---|") == 2
