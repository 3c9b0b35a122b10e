"""The domain types: moments combine with + and -, and the types' module is free of JSON."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.messages import Scaler
from tests.reference.learner import moments_of

JSON_LIBRARIES = ("json", "orjson", "msgspec")

# blocks of rows of two columns; bounded so float tolerances can be stated honestly
value = st.floats(-1e3, 1e3, allow_nan=False)
block = st.lists(st.tuples(value, value), min_size=0, max_size=30)


def rows(values):
    return np.array(values, dtype=float).reshape(-1, 2)


def assert_same_moments(got, want, scale):
    """Equal counts; means and M2 equal up to rounding at the magnitude ``scale`` of M2."""
    assert got.count == want.count
    assert np.allclose(got.mean, want.mean, rtol=1e-9, atol=1e-9)
    assert np.all(np.abs(got.m2 - want.m2) <= 1e-9 * (1.0 + scale))


@settings(max_examples=300, deadline=None)
@given(block, block)
def test_subtracting_what_was_added_gives_back_the_moments(left, right):
    a, b = moments_of(rows(left)), moments_of(rows(right))
    total = a + b
    # rounding in total.m2 and in the shift between the means is what M2 can lose
    scale = total.m2 + b.count * (b.mean - a.mean) ** 2
    assert_same_moments(total - b, a, scale)
    assert_same_moments(total - a, b, scale + a.count * (b.mean - a.mean) ** 2)


@settings(max_examples=300, deadline=None)
@given(block, block, block)
def test_adding_moments_is_associative_commutative_and_exact(left, middle, right):
    a, b, c = (moments_of(rows(v)) for v in (left, middle, right))
    exact = moments_of(rows(left + middle + right))
    scale = exact.m2
    assert_same_moments(a + b, b + a, scale)
    assert_same_moments((a + b) + c, a + (b + c), scale)
    assert_same_moments((a + b) + c, exact, scale)


def test_adding_nothing_changes_nothing_and_all_minus_all_is_nothing():
    a = moments_of(np.array([[1.0, 2.0], [3.0, 5.0]]))
    for same in (a + Scaler.empty(2), Scaler.empty(2) + a):
        assert same.count == 2 and np.array_equal(same.mean, a.mean)
        assert np.array_equal(same.m2, a.m2)
    nothing = a - a
    assert nothing.count == 0 and not nothing.mean.any() and not nothing.m2.any()


def test_moments_that_do_not_fit_are_refused():
    a = moments_of(np.array([[1.0, 2.0], [3.0, 5.0]]))
    with pytest.raises(ValueError, match="cannot take 4 samples out of 2"):
        _ = a - (a + a)
    with pytest.raises(ValueError, match="moments of 2 and 3 columns do not combine"):
        _ = a + Scaler.empty(3)
    with pytest.raises(TypeError):
        _ = a + 1


def loaded_json_libraries(module: str) -> list[str]:
    """The JSON libraries a fresh interpreter holds after importing ``module`` alone."""
    code = (f"import sys, {module}; "
            f"print(' '.join(m for m in {JSON_LIBRARIES!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


@pytest.mark.parametrize("module", ["broker.messages", "broker.columns", "learners.stats"])
def test_the_domain_types_import_no_json_library(module):
    assert loaded_json_libraries(module) == []


@pytest.mark.parametrize("module", ["learners.aggregate", "learners.ledger",
                                    "learners.strategies", "devices.simulator",
                                    "gateway.validation"])
def test_code_that_needs_only_the_types_imports_no_codec(module):
    assert loaded_json_libraries(module) == []
