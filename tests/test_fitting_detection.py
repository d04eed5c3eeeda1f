"""Observed (scan / clinically detected) PFS: sim.fitting.detection and summary fits on that scale.

Monte Carlo checks use fixed seeds and tolerances of ``Z`` binomial or order-statistic standard
errors (conftest).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from conftest import Z, compose_config, make_cohort
from sim.config import build_model
from sim.distributions import from_median
from sim.errors import UserError
from sim.run.executors import simulate
from sim.fitting import Detection, Landmark, Median, fit_summary
from sim.units import weeks

DT = weeks(12)
CURVES = [("weibull", 4.0, {"shape": 1.3}), ("lognormal", 10.0, {"sigma": 0.9}), ("gompertz", 8.0, {"shape": 0.05}),
          ("exponential", 15.0, {})]


def _mc(det, dist, n, seed):
    rng = np.random.default_rng(seed)
    return det.sample(dist, rng.random(n), rng.random(n), rng.random(n))


@pytest.mark.parametrize("family,median,shape", CURVES)
@pytest.mark.parametrize("c", [math.inf, 0.7, 3.0])
def test_observed_survival_matches_monte_carlo(family, median, shape, c):
    """S_Y(t) of the closed form equals the share of simulated observed times above t (Z binomial SE)."""
    dist = from_median(family, median, **shape)
    det = Detection(DT, c, 0.03)
    y = _mc(det, dist, 200_000, 1)
    t = np.array([0.5, DT, DT * 1.5, median, 2 * DT + 0.1, 2 * median])
    emp = (y[:, None] > t[None, :]).mean(axis=0)
    s = det.survival(dist, t)
    se = np.sqrt(s * (1 - s) / y.size)
    assert np.all(np.abs(emp - s) <= Z * se + 1e-12), (emp, s)


def test_scans_only_observed_survival_is_the_survival_at_the_last_scan():
    """Without clinical detection and deaths without progression, S_Y(t) = S(floor(t / dt) dt)."""
    dist = from_median("weibull", 7.0, shape=0.8)
    t = np.linspace(0.1, 30, 57)
    np.testing.assert_allclose(Detection(DT).survival(dist, t), dist.survival(np.floor(t / DT) * DT), rtol=1e-13)


def test_observed_median_is_the_first_time_observed_survival_reaches_one_half():
    """median() = inf{t : S_Y(t) <= 1/2}: at a scan when S_Y jumps over 1/2 there, else a root."""
    dist = from_median("exponential", 4.0)
    scans_only = Detection(DT)
    assert scans_only.median(dist) == pytest.approx(2 * DT)        # S(dt) = 0.62 > 1/2 >= S(2 dt) = 0.38
    det = Detection(DT, 1.0, 0.0)
    m = det.median(dist)
    assert DT < m < 2 * DT and det.survival_at(dist, m) == pytest.approx(0.5, abs=1e-9)


def test_median_window_puts_one_half_mid_jump_when_a_scan_is_inside_the_window():
    """A reported median next to a scan: 1/2 is the average of S_Y at m -+ h, so the fitted curve
    does not depend on which side of the scan rounding fell."""
    det = Detection(DT, 3.0, 0.03, median_halfwidth=0.05)
    lo = fit_summary("weibull", median=Median(2 * DT - 0.03), fixed={"shape": 1.0}, detection=det).distribution
    hi = fit_summary("weibull", median=Median(2 * DT + 0.03), fixed={"shape": 1.0}, detection=det).distribution
    # both windows contain the scan at 2 dt: nearly the same curve (vs a large jump without the window)
    assert lo.median() == pytest.approx(hi.median(), rel=0.02)
    sharp = Detection(DT, 3.0, 0.03, median_halfwidth=0.0)
    lo0 = fit_summary("weibull", median=Median(2 * DT - 0.03), fixed={"shape": 1.0}, detection=sharp).distribution
    hi0 = fit_summary("weibull", median=Median(2 * DT + 0.03), fixed={"shape": 1.0}, detection=sharp).distribution
    assert hi0.median() / lo0.median() > 1.08


@pytest.mark.parametrize("c", [math.inf, 3.0])
def test_summary_fit_with_detection_reproduces_its_median_and_landmark_on_the_detected_scale(c):
    """Fit a Weibull to median 18 + S(24) = 0.33 on the observed scale; observed times simulated from
    the fit have KM median 18 and S(24) 0.33 within Monte Carlo error (order-statistic CI, Z binomial SE)."""
    det = Detection(DT, c, 0.01, median_halfwidth=0.0)
    fit = fit_summary("weibull", median=Median(18.0, n=103), landmarks=[Landmark(24, 0.33, n=103)], detection=det)
    assert fit.exact and fit.constraints["binds"].all()
    y = np.sort(_mc(det, fit.distribution, 400_001, 2))
    n = y.size
    j, k = (int(stats.binom.ppf(q, n, 0.5)) for q in (stats.norm.cdf(-Z), stats.norm.cdf(Z)))
    assert y[j - 1] <= 18.0 <= y[k]                       # 18 inside the Z-sigma order-statistic interval
    s24 = (y > 24.0).mean()
    assert abs(s24 - 0.33) <= Z * math.sqrt(0.33 * 0.67 / n)


def test_summary_fit_with_detection_reproduces_its_median_through_the_simulator():
    """The model itself (plan_lines, both rules: scans every 12 weeks, clinical detection, deaths
    without progression) run with a fitted observation PFS gives the fitted observed median within order-statistic MC error."""
    cfg = compose_config(["cohort.n=1", "seed=17", "model.clinical_detection_months=3.0",
                          "model.disease_death.rate_per_year=0.36", "model.frailty_rho=0", "model.line_effect.hr_per_prior_line=1",
                          "+strategies.obs={lines: [observation, bsc]}", "experiment.strategies=[obs]",
                          "experiment.reference=obs"])
    det = Detection(DT, 3.0, 0.03)         # 0.36 a year = 0.03 a month (background deaths negligible at age 20)
    fit = fit_summary("weibull", median=Median(4.6), fixed={"shape": 1.0}, detection=det)
    cfg.therapies.observation.pfs = {"family": "weibull", "median": float(fit.distribution.median()), "shape": 1.0}
    cfg.model.prognostic_hr = {}                    # the plain patient (grade 2) at the fit's hazard
    m = build_model(cfg)
    cohort = make_cohort(20_000, age=20.0)          # (almost) no background deaths; reference covariates
    patients, _, _ = simulate(cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed,
                              engine="vectorised").frames()
    y = np.sort(patients["pfs1_months"].to_numpy())
    n = y.size
    j, k = (int(stats.binom.ppf(q, n, 0.5)) for q in (stats.norm.cdf(-Z), stats.norm.cdf(Z)))
    assert y[j - 1] <= 4.6 <= y[k]
    for t in (2.0, DT, 4.6, 8.0):
        s = det.survival_at(fit.distribution, t)
        assert abs((y > t).mean() - s) <= Z * math.sqrt(s * (1 - s) / n), t


def test_detection_rejects_bad_settings():
    """Bad detection settings name the setting."""
    with pytest.raises(UserError, match="interval"):
        Detection(0.0)
    with pytest.raises(UserError, match="death_rate"):
        Detection(DT, 3.0, -0.5)
    with pytest.raises(UserError, match="clinical_mean"):
        Detection(DT, -1.0)
