"""Exact continuous discounting (sim/economics/discount.py) against its defining sums and integrals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from sim.economics.discount import interval_factor, monthly_rate, point_factor, series_factor
from sim.errors import UserError

rates = st.sampled_from([0.0, 0.015, 0.03, 0.035, 0.06, 0.5])
times = st.floats(0.0, 600.0)


def test_one_year_later_is_worth_one_over_one_plus_d():
    """exp(-12 r) = 1 / (1 + d): the continuous monthly rate reproduces the annual convention."""
    for d in (0.0, 0.035, 0.06):
        assert point_factor(12.0, d) == pytest.approx(1 / (1 + d), rel=1e-14)


@settings(max_examples=100, deadline=None)
@given(times, times, times, rates)
def test_interval_factor_is_additive_and_matches_quadrature(a, b, c, d):
    """D(a, b) + D(b, c) = D(a, c) for a <= b <= c, and D equals the numerical integral of exp(-r t)."""
    a, b, c = sorted((a, b, c))
    assert interval_factor(a, b, d) + interval_factor(b, c, d) == pytest.approx(interval_factor(a, c, d),
                                                                                  rel=1e-10, abs=1e-12)
    r = monthly_rate(d)
    quad, _ = integrate.quad(lambda t: math.exp(-r * t), a, c)
    assert float(interval_factor(a, c, d)) == pytest.approx(quad, rel=1e-8, abs=1e-10)


@settings(max_examples=100, deadline=None)
@given(times, st.floats(0.1, 12.0), st.integers(0, 40), rates)
def test_series_factor_equals_explicit_sum(t0, step, n, d):
    """sum_{k<n} exp(-r (t0 + k step)) in closed form equals the explicit sum."""
    r = monthly_rate(d)
    want = sum(math.exp(-r * (t0 + k * step)) for k in range(n))
    assert float(series_factor(t0, step, n, d)) == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_reversed_or_nan_intervals_count_nothing_and_infinite_end_is_finite():
    """b <= a or NaN gives 0; b = inf gives exp(-r a) / r."""
    np.testing.assert_array_equal(interval_factor([5.0, 5.0, np.nan], [4.0, 5.0, 6.0], 0.035), [0.0, 0.0, 0.0])
    r = monthly_rate(0.035)
    assert float(interval_factor(12.0, np.inf, 0.035)) == pytest.approx(math.exp(-12 * r) / r)


@pytest.mark.parametrize("d", [-0.01, 1.0, 2.0])
def test_rate_outside_unit_interval_is_a_user_error(d):
    """An annual rate outside [0, 1) is refused with the value."""
    with pytest.raises(UserError, match=repr(d)):
        monthly_rate(d)
