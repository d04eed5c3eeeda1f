"""Tests for :mod:`sim.distributions`.

Monte Carlo checks use fixed seeds and tolerances of ``Z`` Monte Carlo
standard errors (never tuned digits).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.distributions import (
    FAMILIES,
    Exponential,
    GeneralizedGamma,
    Gompertz,
    LogLogistic,
    LogNormal,
    SurvivalDistribution,
    Weibull,
    from_median,
    make_distribution,
)

Z = 4.0  # tolerance in Monte Carlo standard errors
N = 200_000  # Monte Carlo sample size
RTOL = 1e-10  # agreement with scipy.stats


def _gengamma_scipy(mu, sigma, Q):
    """scipy ``gengamma`` equal to flexsurv ``gengamma(mu, sigma, Q)``."""
    return stats.gengamma(a=Q**-2, c=Q / sigma, scale=math.exp(mu + 2 * sigma / Q * math.log(abs(Q))))


# id -> (distribution, equivalent scipy.stats frozen distribution, finite variance?)
CASES = {
    "exponential-a": (Exponential(11.4), stats.expon(scale=11.4), True),
    "exponential-b": (Exponential(0.5), stats.expon(scale=0.5), True),
    "weibull-a": (Weibull(11.4, 1.2), stats.weibull_min(c=1.2, scale=11.4), True),
    "weibull-b": (Weibull(3.0, 0.6), stats.weibull_min(c=0.6, scale=3.0), True),
    "gompertz-a": (Gompertz(0.05, 0.1), stats.gompertz(c=0.5, scale=10.0), True),
    "gompertz-b": (Gompertz(0.2, 0.02), stats.gompertz(c=10.0, scale=50.0), True),
    "loglogistic-a": (LogLogistic(10.0, 2.5), stats.fisk(c=2.5, scale=10.0), True),
    "loglogistic-b": (LogLogistic(3.0, 0.8), stats.fisk(c=0.8, scale=3.0), False),
    "lognormal-a": (LogNormal(2.3, 0.8), stats.lognorm(s=0.8, scale=math.exp(2.3)), True),
    "lognormal-b": (LogNormal(0.5, 1.5), stats.lognorm(s=1.5, scale=math.exp(0.5)), True),
    "gengamma-a": (GeneralizedGamma(2.0, 0.7, 0.5), _gengamma_scipy(2.0, 0.7, 0.5), True),
    "gengamma-b": (GeneralizedGamma(1.5, 0.5, -0.6), _gengamma_scipy(1.5, 0.5, -0.6), True),
    # generalised gamma special cases (flexsurv): Q = 1 Weibull, Q = sigma gamma, Q = 0 log-normal
    "gengamma-Q=1": (GeneralizedGamma(2.0, 0.8, 1.0), stats.weibull_min(c=1 / 0.8, scale=math.exp(2.0)), True),
    "gengamma-Q=sigma": (
        GeneralizedGamma(2.0, 0.6, 0.6),
        stats.gamma(a=0.6**-2, scale=math.exp(2.0) * 0.6**2),
        True,
    ),
    "gengamma-Q=0": (GeneralizedGamma(2.0, 0.8, 0.0), stats.lognorm(s=0.8, scale=math.exp(2.0)), True),
}
CURED = Gompertz(0.1, -0.08)  # S(inf) = exp(-1.25)
ALL_DISTS = {**{k: v[0] for k, v in CASES.items()}, "gompertz-cured": CURED}
P_GRID = np.array([1e-6, 1e-3, 0.05, 0.3, 0.5, 0.8, 0.99, 0.9999])


def _rng(name: str) -> np.random.Generator:
    """Reproducible generator, distinct per test case."""
    return np.random.default_rng(sum(map(ord, name)) * 7919)


def _check_survival_fraction(x, t, expected):
    """Assert the empirical P(x > t) is within Z binomial SEs of ``expected``."""
    se = np.sqrt(expected * (1 - expected) / x.size)
    emp = (x[:, None] > np.atleast_1d(t)).mean(axis=0)
    assert np.all(np.abs(emp - expected) <= Z * se), (emp, expected, se)


@pytest.mark.parametrize("name", CASES)
def test_matches_scipy(name):
    """survival, cdf, pdf, hazard, quantile, median and mean agree with scipy.stats."""
    d, ref, _ = CASES[name]
    t = ref.ppf(P_GRID)
    np.testing.assert_allclose(d.survival(t), ref.sf(t), rtol=RTOL)
    np.testing.assert_allclose(d.cdf(t), ref.cdf(t), rtol=RTOL)
    np.testing.assert_allclose(d.pdf(t), ref.pdf(t), rtol=RTOL)
    np.testing.assert_allclose(d.hazard(t), ref.pdf(t) / ref.sf(t), rtol=RTOL)
    np.testing.assert_allclose(d.quantile(P_GRID), t, rtol=RTOL)
    np.testing.assert_allclose(d.inverse_survival(1 - P_GRID), t, rtol=1e-8)
    assert d.median() == pytest.approx(ref.median(), rel=RTOL)
    ref_mean = ref.mean()  # scipy returns nan for an infinite mean
    assert d.mean() == (pytest.approx(ref_mean, rel=1e-8) if np.isfinite(ref_mean) else math.inf)


def test_gengamma_negative_q_matches_flexsurv_formula():
    """gengamma with Q < 0 has S(t) = P(Q^-2, Q^-2 exp(Q w)) as flexsurv's pgengamma."""
    from scipy.special import gammainc

    mu, sigma, Q = 1.5, 1.2, -0.8
    t = np.array([0.1, 1.0, 5.0, 20.0, 100.0])
    w = (np.log(t) - mu) / sigma
    expected = gammainc(Q**-2, Q**-2 * np.exp(Q * w))
    np.testing.assert_allclose(GeneralizedGamma(mu, sigma, Q).survival(t), expected, rtol=RTOL)
    assert np.all(np.diff(expected) < 0)


def test_gompertz_negative_shape_matches_formula():
    """Gompertz with b < 0: S(t) = exp(-(a/b)(e^{bt} - 1)), h(t) = a e^{bt}, cure S(inf) = e^{a/b}."""
    a, b = CURED.rate, CURED.shape
    t = np.array([0.0, 1.0, 10.0, 100.0])
    np.testing.assert_allclose(CURED.survival(t), np.exp(-(a / b) * np.expm1(b * t)), rtol=RTOL)
    np.testing.assert_allclose(CURED.hazard(t), a * np.exp(b * t), rtol=RTOL)
    assert CURED.survival(np.inf) == pytest.approx(math.exp(a / b), rel=RTOL)


def test_gompertz_tiny_shape_is_exponential():
    """Gompertz with |b| < 1e-12 (and b = 0) behaves as the exponential with rate a."""
    e = Exponential(1 / 0.3)
    t = np.array([0.5, 3.0, 30.0])
    for b in (0.0, 1e-13, -1e-13):
        g = Gompertz(0.3, b)
        np.testing.assert_allclose(g.survival(t), e.survival(t), rtol=1e-10)
        np.testing.assert_allclose(g.quantile([0.1, 0.9]), e.quantile([0.1, 0.9]), rtol=1e-10)
        assert g.mean() == pytest.approx(e.mean(), rel=1e-10)


@pytest.mark.parametrize("name", ALL_DISTS)
def test_hazard_is_derivative_of_cumhazard(name):
    """h = f / S and dH/dt = h, -dS/dt = f by central finite differences."""
    d = ALL_DISTS[name]
    t = d.quantile(np.array([0.01, 0.2, 0.5, 0.6 if name == "gompertz-cured" else 0.9]))
    dt = 1e-5 * t
    np.testing.assert_allclose((d.cumhazard(t + dt) - d.cumhazard(t - dt)) / (2 * dt), d.hazard(t), rtol=1e-6)
    np.testing.assert_allclose((d.survival(t - dt) - d.survival(t + dt)) / (2 * dt), d.pdf(t), rtol=1e-6)
    np.testing.assert_allclose(d.hazard(t), d.pdf(t) / d.survival(t), rtol=1e-12)


@pytest.mark.parametrize("name", ALL_DISTS)
def test_inverse_cumhazard_round_trip_including_tails(name):
    """H^{-1}(H(t)) = t and H(H^{-1}(h)) = h from S = 1 - 1e-15 down to S = 1e-300."""
    d = ALL_DISTS[name]
    # stop at S = 1e-300, before the cure plateau, and where t still fits in a double
    h_max = min(-math.log(1e-300), 0.999 * d.cumhazard(np.inf), d.cumhazard(1e300))
    h = np.geomspace(1e-15, h_max, 80)
    t = d.inverse_cumhazard(h)
    assert np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)
    np.testing.assert_allclose(d.cumhazard(t), h, rtol=1e-9)
    np.testing.assert_allclose(d.inverse_cumhazard(d.cumhazard(t)), t, rtol=1e-9)
    # the survival-scale entry points agree at the extremes
    np.testing.assert_allclose(d.survival(d.inverse_survival(np.exp(-h_max))), np.exp(-h_max), rtol=1e-9)
    s = 1 - 1e-15
    np.testing.assert_allclose(d.cdf(d.inverse_survival(s)), 1 - s, rtol=1e-9)
    assert d.inverse_cumhazard(0.0) == 0.0 and d.survival(0.0) == 1.0


@pytest.mark.parametrize("name", CASES)
def test_sample_median_and_mean(name):
    """Sample median and mean match theory within Z Monte Carlo SEs."""
    d, _, finite_variance = CASES[name]
    x = d.sample(_rng(name).random(N))
    se_median = math.sqrt(0.25 / N) / d.pdf(d.median())
    assert abs(np.median(x) - d.median()) <= Z * se_median
    if finite_variance:
        assert abs(x.mean() - d.mean()) <= Z * x.std(ddof=1) / math.sqrt(N)


@pytest.mark.parametrize("name", ALL_DISTS)
def test_sample_with_hazard_ratio(name):
    """sample(u, hr) has survival S(t)**hr (proportional hazards)."""
    d, hr = ALL_DISTS[name], 1.7
    x = d.sample(_rng(name + "hr").random(N), hr)
    t = d.quantile(np.array([0.1, 0.3, 0.5]))
    _check_survival_fraction(x, t, d.survival(t) ** hr)


def test_sample_broadcasts_hazard_ratio():
    """sample and sample_given broadcast u, hr and t0 elementwise."""
    d = Weibull(10.0, 1.3)
    u = np.array([[0.1, 0.5, 0.9]])
    hr = np.array([[0.5], [2.0]])
    x = d.sample(u, hr)
    assert x.shape == (2, 3)
    assert x[1, 2] == pytest.approx(d.sample(0.9, 2.0), rel=1e-15)
    np.testing.assert_allclose(d.survival(x) ** hr, np.broadcast_to(u, (2, 3)), rtol=1e-12)
    y = d.sample_given(np.array([[0.0], [5.0]]), u, hr)
    assert y.shape == (2, 3) and np.all(y[1] >= 5.0)
    assert isinstance(d.sample(0.3), float) and isinstance(d.survival(2.0), float)


@pytest.mark.parametrize("hr", [1.0, 2.5])
@pytest.mark.parametrize("name", ALL_DISTS)
def test_sample_given_is_conditional(name, hr):
    """sample_given(t0, u, hr) >= t0 with survival (S(t)/S(t0))**hr beyond t0."""
    d = ALL_DISTS[name]
    t0 = d.quantile(0.4)
    x = d.sample_given(t0, _rng(name + "given").random(N), hr)
    assert np.all(x >= t0)
    t = d.quantile(np.array([0.45, 0.55, 0.65]))
    _check_survival_fraction(x, t, (d.survival(t) / d.survival(t0)) ** hr)


def test_sample_given_stable_far_in_tail():
    """sample_given stays finite and > t0 when S(t0) underflows to ~1e-250."""
    for d in (Weibull(5.0, 1.5), LogNormal(1.0, 0.5), GeneralizedGamma(1.0, 0.5, 0.7)):
        t0 = d.inverse_survival(1e-250)
        x = d.sample_given(t0, np.array([0.999999, 0.5, 1e-9]))
        assert np.all(np.isfinite(x)) and np.all(x > t0) and np.all(np.diff(x) > 0)


def test_gompertz_negative_shape_cure_fraction():
    """Gompertz with b < 0 gives inf samples with frequency S(inf), inf quantiles and mean."""
    s_inf = CURED.survival(np.inf)
    x = CURED.sample(_rng("cure").random(N))
    frac_inf = np.isinf(x).mean()
    assert abs(frac_inf - s_inf) <= Z * math.sqrt(s_inf * (1 - s_inf) / N)
    assert np.isinf(CURED.quantile(1 - 0.5 * s_inf)) and np.isfinite(CURED.quantile(1 - 2 * s_inf))
    assert CURED.mean() == math.inf
    assert not np.any(np.isnan(x))


@pytest.mark.parametrize(
    "family, shape",
    [
        ("exponential", {}),
        ("weibull", {"shape": 1.2}),
        ("weibull", {"shape": 0.5}),
        ("gompertz", {"shape": 0.05}),
        ("gompertz", {"shape": -0.05}),
        ("gompertz", {"shape": 0.0}),
        ("loglogistic", {"shape": 2.0}),
        ("lognormal", {"sigma": 0.8}),
        ("gengamma", {"sigma": 0.7, "Q": 0.5}),
        ("gengamma", {"sigma": 1.2, "Q": -0.8}),
        ("gengamma", {"sigma": 0.7, "Q": 0.0}),
    ],
)
def test_from_median(family, shape):
    """from_median (module function and classmethod) returns the requested median."""
    d = from_median(family, 11.4, **shape)
    assert d.family == family
    assert d.median() == pytest.approx(11.4, rel=1e-10)
    assert d.survival(11.4) == pytest.approx(0.5, rel=1e-10)
    assert FAMILIES[family].from_median(11.4, **shape) == d
    for key, value in shape.items():
        assert d.params()[key] == value


@pytest.mark.parametrize("name", ALL_DISTS)
def test_params_round_trip(name):
    """make_distribution(family, **params()) rebuilds an equal, hashable instance."""
    d = ALL_DISTS[name]
    assert isinstance(d, SurvivalDistribution)
    rebuilt = make_distribution(d.family, **d.params())
    assert rebuilt == d and hash(rebuilt) == hash(d)
    assert all(isinstance(v, float) for v in d.params().values())
    with pytest.raises(AttributeError):  # frozen
        setattr(d, next(iter(d.params())), 1.0)


@pytest.mark.parametrize(
    "family, params, message",
    [
        ("weibull", {"scale": -1, "shape": 1.0}, "weibull.scale must be > 0, got -1.0"),
        ("weibull", {"scale": 1.0, "shape": 0.0}, "weibull.shape must be > 0, got 0.0"),
        ("exponential", {"scale": float("inf")}, "exponential.scale must be finite, got inf"),
        ("gompertz", {"rate": 0.1, "shape": float("nan")}, "gompertz.shape must be finite, got nan"),
        ("gompertz", {"rate": -0.1, "shape": 0.1}, "gompertz.rate must be > 0, got -0.1"),
        ("loglogistic", {"scale": 2.0, "shape": "x"}, "loglogistic.shape must be a real number, got 'x'"),
        ("lognormal", {"mu": 1.0, "sigma": -2.0}, "lognormal.sigma must be > 0, got -2.0"),
        ("gengamma", {"mu": 1.0, "sigma": 1.0, "Q": float("inf")}, "gengamma.Q must be finite, got inf"),
    ],
)
def test_validation_messages(family, params, message):
    """Invalid parameters raise ValueError naming the parameter and the bad value."""
    with pytest.raises(ValueError) as exc:
        make_distribution(family, **params)
    assert str(exc.value) == message


def test_factory_errors():
    """Unknown families, wrong parameter names and bad medians raise clear ValueErrors."""
    with pytest.raises(ValueError, match=r"unknown distribution family 'x'; choose one of exponential, weibull"):
        make_distribution("x", scale=1.0)
    with pytest.raises(ValueError, match="unknown distribution family 'cox'"):
        from_median("cox", 3.0)
    with pytest.raises(ValueError, match=r"weibull parameters are \(scale, shape\)"):
        make_distribution("weibull", scale=1.0, k=2.0)
    with pytest.raises(ValueError, match="weibull.median must be > 0, got -3.0"):
        from_median("weibull", -3.0, shape=1.0)
    with pytest.raises(ValueError, match="weibull"):
        from_median("weibull", 3.0)
    assert set(FAMILIES) == {"exponential", "weibull", "gompertz", "loglogistic", "lognormal", "gengamma"}


def test_negative_times_and_invalid_probabilities():
    """Negative times have S = 1 and zero hazard; quantile is nan outside [0, 1] and inf at 1."""
    for d in ALL_DISTS.values():
        assert d.survival(-1.0) == 1.0 and d.hazard(-1.0) == 0.0 and d.pdf(-1.0) == 0.0
        assert np.all(np.isnan(d.quantile([-0.1, 1.1])))
        assert d.quantile(0.0) == 0.0 and d.quantile(1.0) == np.inf


_dists = st.one_of(
    st.builds(Exponential, st.floats(0.01, 1e3)),
    st.builds(Weibull, st.floats(0.01, 1e3), st.floats(0.2, 8.0)),
    st.builds(Gompertz, st.floats(1e-3, 2.0), st.floats(-1.0, 1.0)),
    st.builds(LogLogistic, st.floats(0.01, 1e3), st.floats(0.2, 8.0)),
    st.builds(LogNormal, st.floats(-3.0, 6.0), st.floats(0.05, 3.0)),
    st.builds(GeneralizedGamma, st.floats(-3.0, 6.0), st.floats(0.05, 3.0), st.floats(-3.0, 3.0)),
)


@settings(max_examples=150, deadline=None)
@given(d=_dists, p=st.lists(st.floats(1e-12, 1 - 1e-12), min_size=1, max_size=20))
def test_quantile_property(d, p):
    """For random valid parameters quantile is monotone and survival(quantile(p)) = 1 - p."""
    p = np.sort(np.array(p))
    q = d.quantile(p)
    assert np.all(q[1:] >= q[:-1]) and np.all(q >= 0)
    finite = np.isfinite(q)
    # inf only beyond a cure fraction or beyond the largest double
    assert np.all(-np.log1p(-p[~finite]) >= d.cumhazard(np.finfo(float).max) * (1 - 1e-9))
    lower = finite & (p < 0.5)
    upper = finite & (p >= 0.5)
    np.testing.assert_allclose(d.cdf(q[lower]), p[lower], rtol=1e-7)
    np.testing.assert_allclose(d.survival(q[upper]), 1 - p[upper], rtol=1e-7)
