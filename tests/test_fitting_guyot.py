"""Guyot et al. (2012) reconstruction of IPD from Kaplan-Meier coordinates (sim.fitting.guyot).

Round trip: simulate IPD, take its KM step points and a risk table every 6 months (what a
digitiser and the published table give), rebuild, compare. Tolerances are stated against the
sampling error of the curve itself (Greenwood standard error) and of the fitted median.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.distributions import Weibull
from sim.errors import UserError
from sim.fitting.guyot import reconstruct_ipd
from sim.fitting.ipd import fit_ipd, kaplan_meier

TRUE = Weibull(scale=14.0, shape=1.4)
N = 150
RISK_EVERY = 6.0


def _trial(seed: int):
    """IPD with censoring U(6, 48) months (about 15 % censored) and its published summaries."""
    rng = np.random.default_rng(seed)
    t = np.asarray(TRUE.sample(rng.uniform(size=N)))
    c = rng.uniform(6.0, 48.0, size=N)
    x, d = np.minimum(t, c), (t <= c).astype(float)
    km = kaplan_meier(x, d)
    steps = km[km["events"] > 0]
    t_km = np.r_[0.0, steps["time"]]
    s_km = np.r_[1.0, steps["survival"]]
    t_risk = np.arange(0.0, x.max(), RISK_EVERY)
    n_risk = np.array([int(np.sum(x >= q)) for q in t_risk])
    return x, d, km, t_km, s_km, t_risk, n_risk


def _step(km, grid):
    """KM step function evaluated at ``grid`` (right-continuous)."""
    idx = np.searchsorted(km["time"].to_numpy(), grid, side="right") - 1
    return km["survival"].to_numpy()[idx]


def _greenwood_se(km, grid):
    """Greenwood se of the KM: S * sqrt(sum d / (n (n - d))) over event times <= t."""
    n, dd = km["at_risk"].to_numpy(float), km["events"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > dd, dd / (n * (n - dd)), 0.0)
    var = np.cumsum(terms)
    idx = np.searchsorted(km["time"].to_numpy(), grid, side="right") - 1
    return km["survival"].to_numpy()[idx] * np.sqrt(var[idx])


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_rebuilds_km_within_sampling_error(seed):
    """Rebuilt KM: sup-norm distance <= 0.035 overall, and within one Greenwood se of the
    original wherever at least 10 patients are at risk (the thin tail is not resolvable)."""
    x, d, km, t_km, s_km, t_risk, n_risk = _trial(seed)
    rec = reconstruct_ipd(t_km, s_km, t_risk, n_risk, total_events=int(d.sum()))
    km_rec = kaplan_meier(rec.durations, rec.events)
    grid = np.linspace(0.0, x.max(), 4000)
    gap = np.abs(_step(km, grid) - _step(km_rec, grid))
    assert gap.max() <= 0.035
    body = grid <= np.sort(x)[-10]
    assert np.all(gap[body] <= _greenwood_se(km, grid)[body] + 1e-12)
    assert rec.durations.size == N
    # the published numbers at risk are met exactly
    assert list(rec.risk_table["n_at_risk"]) == list(rec.risk_table["n_at_risk_reconstructed"])


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_refitted_median_within_its_standard_error(seed):
    """Weibull refitted to the rebuilt IPD: |median - median(original fit)| <= se(median) (delta method)."""
    x, d, km, t_km, s_km, t_risk, n_risk = _trial(seed)
    rec = reconstruct_ipd(t_km, s_km, t_risk, n_risk, total_events=int(d.sum()))
    orig = fit_ipd("weibull", x, d)
    m, lo, hi = orig.median_ci()
    se = m * (math.log(hi) - math.log(lo)) / (2 * 1.959963984540054)
    refit = fit_ipd("weibull", rec.durations, rec.events)
    assert abs(refit.distribution.median() - m) <= se
    assert abs(int(rec.events.sum()) - int(d.sum())) <= 1


def test_uncensored_curve_is_recovered_exactly():
    """No censoring: the rebuilt event times are the original ones."""
    rng = np.random.default_rng(4)
    t = np.sort(np.asarray(TRUE.sample(rng.uniform(size=60))))
    km = kaplan_meier(t, np.ones_like(t))
    steps = km[km["events"] > 0]
    t_risk = np.arange(0.0, t.max(), RISK_EVERY)
    n_risk = [int(np.sum(t >= q)) for q in t_risk]
    rec = reconstruct_ipd(np.r_[0.0, steps["time"]], np.r_[1.0, steps["survival"]], t_risk, n_risk,
                          total_events=60)
    np.testing.assert_allclose(np.sort(rec.durations), t)
    assert rec.events.sum() == 60


def test_unsorted_noisy_digitised_points_are_cleaned():
    """Digitiser output out of order and slightly increasing is sorted and made monotone."""
    rec = reconstruct_ipd([2.0, 1.0, 3.0, 0.5], [0.7, 0.9, 0.71, 0.95], [0.0, 2.0], [20, 14])
    assert np.all(np.diff(rec.steps["time"]) > 0)
    assert np.all(np.diff(rec.steps["survival"]) <= 0)
    assert rec.durations.size == 20


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"t_km": [0, 1], "s_km": [1, 90], "t_risk": [0], "n_risk": [10]}, "s_km"),
    ({"t_km": [0, 1], "s_km": [1, 0.9], "t_risk": [1], "n_risk": [10]}, "t_risk"),
    ({"t_km": [0, 1], "s_km": [1, 0.9], "t_risk": [0, 1], "n_risk": [10, 12]}, "n_risk"),
    ({"t_km": [0, 1], "s_km": [1, 0.9], "t_risk": [0], "n_risk": [10], "total_events": 11}, "total_events"),
])
def test_bad_input_raises_user_error_naming_the_key(kwargs, key):
    """Percent instead of proportion, risk table not from 0, increasing n at risk, too many events."""
    with pytest.raises(UserError, match=key):
        reconstruct_ipd(**kwargs)
