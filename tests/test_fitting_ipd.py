"""Maximum-likelihood fits to right-censored IPD (sim.fitting.ipd).

Statistical checks use fixed seeds; tolerances come from the binomial standard error of
a coverage proportion, se = sqrt(0.95 * 0.05 / R) for R replicates (3 se allowed), or from
optimiser tolerances for the cross-checks with lifelines and scipy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from sim.distributions import (
    Exponential,
    GeneralizedGamma,
    Gompertz,
    LogLogistic,
    LogNormal,
    Weibull,
)
from sim.errors import UserError
from sim.fitting import compare_families, fit_ipd, to_theta
from sim.fitting.ipd import LIFELINES_FITTERS, kaplan_meier, loglik

#: true distributions (months, PFS-like) used for parameter recovery
TRUTH = {
    "exponential": Exponential(scale=15.0),
    "weibull": Weibull(scale=14.0, shape=1.4),
    "gompertz": Gompertz(rate=0.04, shape=0.03),
    "loglogistic": LogLogistic(scale=12.0, shape=2.2),
    "lognormal": LogNormal(mu=2.4, sigma=0.8),
    "gengamma": GeneralizedGamma(mu=2.5, sigma=0.7, Q=0.5),
}
N_PATIENTS = 200
#: administrative censoring uniform on (0, C_MAX) months: about 20-30 % censored
C_MAX = 60.0


def simulate(dist, n: int, rng: np.random.Generator):
    """Durations and event indicators: T from ``dist``, censoring C ~ U(0, C_MAX)."""
    t = np.asarray(dist.sample(rng.uniform(size=n)), dtype=float)
    c = rng.uniform(0.0, C_MAX, size=n)
    return np.minimum(t, c), (t <= c).astype(float)


def coverage(family: str, reps: int, seed: int) -> np.ndarray:
    """Share of replicates whose 95 % Wald interval covers each true unconstrained parameter."""
    rng = np.random.default_rng(seed)
    truth = to_theta(family, TRUTH[family].params())
    hits = np.zeros(truth.size)
    z = stats.norm.ppf(0.975)
    for _ in range(reps):
        x, d = simulate(TRUTH[family], N_PATIENTS, rng)
        fit = fit_ipd(family, x, d)
        se = np.sqrt(np.diag(fit.cov))
        hits += np.abs(fit.estimate - truth) <= z * se
    return hits / reps


# 200 replicates -> se = 1.54 points, tolerance 3 se = 4.6 points; 100 for the slower
# generalised gamma (numerical gradient, ~65 ms per fit) -> se = 2.18 points, tolerance 6.5 points
@pytest.mark.parametrize(("family", "reps"), [
    ("exponential", 200), ("weibull", 200), ("gompertz", 200),
    ("loglogistic", 200), ("lognormal", 200), ("gengamma", 100),
])
def test_wald_intervals_cover_true_parameters_about_95_percent(family, reps):
    """Simulated IPD: 95 % Wald CIs of every parameter cover the truth 95 % +- 3 binomial se."""
    cov = coverage(family, reps, seed=20260 + reps + len(family))
    se = math.sqrt(0.95 * 0.05 / reps)
    assert np.all(np.abs(cov - 0.95) <= 3 * se), (family, cov)


@pytest.mark.parametrize("family", sorted(LIFELINES_FITTERS))
def test_native_fit_matches_lifelines_estimates_loglik_and_covariance(family):
    """Native ML equals lifelines' fitter on the same data to optimiser tolerance."""
    rng = np.random.default_rng(7)
    x, d = simulate(TRUTH[family], 300, rng)
    ours = fit_ipd(family, x, d)
    ref = fit_ipd(family, x, d, engine="lifelines")
    # lifelines stops at gradient norm ~1e-6 per observation: estimates agree to ~1e-4
    np.testing.assert_allclose(ours.estimate, ref.estimate, atol=1e-4)
    assert ours.loglik == pytest.approx(ref.loglik, abs=1e-6)
    assert ours.loglik >= ref.loglik - 1e-9  # never worse than lifelines
    np.testing.assert_allclose(ours.cov, ref.cov, rtol=2e-3, atol=1e-8)


def _gompertz_negll_reference(p, t, d):
    """Direct Gompertz -log L with h = a e^(b t), H = a (e^(b t) - 1) / b (test's own formula)."""
    a, b = math.exp(p[0]), p[1]
    H = a * (np.exp(b * t) - 1.0) / b
    return -(np.sum(d * (math.log(a) + b * t)) - np.sum(H))


def test_gompertz_fit_matches_direct_scipy_optimum():
    """Gompertz ML (which lifelines lacks) equals a Nelder-Mead optimum of the textbook likelihood."""
    rng = np.random.default_rng(11)
    x, d = simulate(TRUTH["gompertz"], 400, rng)
    fit = fit_ipd("gompertz", x, d)
    ref = optimize.minimize(_gompertz_negll_reference, x0=[math.log(0.05), 0.01], args=(x, d),
                            method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    np.testing.assert_allclose(fit.estimate, ref.x, atol=1e-6)
    assert fit.loglik == pytest.approx(-ref.fun, abs=1e-8)


def test_exponential_fit_equals_closed_form():
    """Exponential: scale = total time / events, var(log scale) = 1 / events."""
    rng = np.random.default_rng(3)
    x, d = simulate(TRUTH["exponential"], 250, rng)
    fit = fit_ipd("exponential", x, d)
    D = d.sum()
    assert fit.params["scale"] == pytest.approx(x.sum() / D, rel=1e-10)
    assert fit.cov[0, 0] == pytest.approx(1.0 / D, rel=1e-5)
    assert fit.loglik == pytest.approx(-D * math.log(x.sum() / D) - D, rel=1e-12)


@pytest.mark.parametrize("family", sorted(TRUTH))
def test_loglik_equals_sum_of_log_hazard_minus_cumhazard(family):
    """ell(theta) = sum d log h(t) - H(t) evaluated with sim.distributions at the same theta."""
    rng = np.random.default_rng(5)
    dist = TRUTH[family]
    x, d = simulate(dist, 80, rng)
    direct = float(np.sum(d * np.log(dist.hazard(x)) - dist.cumhazard(x)))
    assert loglik(family, to_theta(family, dist.params()), x, d) == pytest.approx(direct, rel=1e-9)


def test_aic_bic_follow_definitions_and_compare_ranks():
    """AIC = 2k - 2 ell, BIC = k log n - 2 ell; the table is sorted by AIC with delta 0 first."""
    rng = np.random.default_rng(9)
    x, d = simulate(TRUTH["weibull"], 150, rng)
    table = compare_families(x, d, families=("exponential", "weibull", "lognormal"))
    assert list(table["aic"]) == sorted(table["aic"])
    assert table["delta_aic"].iloc[0] == 0.0
    for _, row in table.iterrows():
        assert row["aic"] == pytest.approx(2 * row["k"] - 2 * row["loglik"])
        assert row["bic"] == pytest.approx(row["k"] * math.log(150) - 2 * row["loglik"])


def test_draw_theta_reproduces_estimate_and_covariance():
    """Mean and covariance of 4000 draws match the fit within Monte Carlo error."""
    rng = np.random.default_rng(13)
    x, d = simulate(TRUTH["weibull"], 150, rng)
    fit = fit_ipd("weibull", x, d)
    draws = fit.draw_theta(4000, np.random.default_rng(1))
    se_mean = np.sqrt(np.diag(fit.cov) / 4000)
    assert np.all(np.abs(draws.mean(axis=0) - fit.estimate) <= 4 * se_mean)
    # sample variance: relative se sqrt(2 / (n - 1)) = 2.2 %
    np.testing.assert_allclose(np.diag(np.cov(draws.T)), np.diag(fit.cov), rtol=4 * math.sqrt(2 / 3999))
    dists = fit.draw(3, np.random.default_rng(2))
    assert all(isinstance(dd, Weibull) for dd in dists)


def test_kaplan_meier_has_product_limit_values():
    """KM: S drops by the factor (1 - d/n) at each event time; counts are lifelines' event table."""
    km = kaplan_meier([1.0, 2.0, 2.0, 3.0, 4.0], [1, 1, 0, 1, 0])
    s = dict(zip(km["time"], km["survival"], strict=True))
    assert s[1.0] == pytest.approx(0.8)
    assert s[2.0] == pytest.approx(0.8 * 3 / 4)
    assert s[3.0] == pytest.approx(0.6 * 1 / 2)
    assert int(km["at_risk"].iloc[0]) == 5


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"family": "weibul", "durations": [1.0, 2.0]}, "family"),
    ({"family": "weibull", "durations": [1.0, -2.0]}, "durations"),
    ({"family": "weibull", "durations": [1.0, 2.0], "events": [1, 2]}, "events"),
    ({"family": "weibull", "durations": [1.0, 2.0], "events": [0, 0]}, "events"),
    ({"family": "gompertz", "durations": [1.0, 2.0], "engine": "lifelines"}, "engine"),
    ({"family": "weibull", "durations": [1.0, 2.0], "engine": "R"}, "engine"),
])
def test_bad_input_raises_user_error_naming_the_key(kwargs, key):
    """Invalid family, durations, events or engine: UserError whose message names the key."""
    with pytest.raises(UserError, match=key):
        fit_ipd(**kwargs)
