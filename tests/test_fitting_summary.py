"""Fits to published summary statistics (sim.fitting.summary).

When the information determines the parameters (as many numbers as free parameters) the
fit must reproduce them exactly (to solver tolerance) and propagate each number's standard
error back unchanged; otherwise it is a weighted least-squares compromise whose report says
which constraints are met and by how many standard errors the others miss.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.distributions import Gompertz, LogLogistic, LogNormal, Weibull
from sim.errors import UserError
from sim.fitting.result import numerical_gradient
from sim.fitting.summary import HazardRatio, Landmark, Median, TimeRatio, fit_summary
from sim.fitting.parameterisation import from_theta
from sim.therapies.pfs import build_pfs

Z95 = 1.959963984540054


@pytest.mark.parametrize("dist", [
    Weibull(scale=22.0, shape=1.6),
    LogLogistic(scale=15.0, shape=2.5),
    LogNormal(mu=2.7, sigma=0.9),
    Gompertz(rate=0.03, shape=0.04),
], ids=lambda d: d.family)
def test_median_and_landmark_recover_two_parameter_family_exactly(dist):
    """Median + one landmark determine a 2-parameter family: parameters recovered, both constraints bind."""
    m = dist.median()
    s24 = float(dist.survival(24.0))
    fit = fit_summary(dist.family, median=Median(m, n=100), landmarks=[Landmark(24.0, s24, n=100)])
    for name, value in dist.params().items():
        assert fit.params[name] == pytest.approx(value, rel=1e-7)
    assert fit.exact
    assert fit.constraints["binds"].all()
    assert np.abs(fit.constraints["z"]).max() < 1e-6


def test_clarinet_placebo_and_lanreotide_match_therapy_config_formula():
    """CLARINET: median 18 + S(24) = 0.33 and HR 0.47 give the Weibulls of sim.therapies.pfs."""
    ref = fit_summary("weibull", median=Median(18.0, n=103), landmarks=[Landmark(24.0, 0.33, n=103)])
    spec = {"family": "weibull", "median": 18.0, "landmark_months": 24, "landmark_survival": 0.33}
    for name, value in build_pfs("pfs", spec).params().items():
        assert ref.params[name] == pytest.approx(value, rel=1e-9)
    trt = fit_summary("weibull", hazard_ratio=HazardRatio(0.47, (0.30, 0.73)), reference=ref, effect="ph")
    for name, value in build_pfs("pfs", {**spec, "hazard_ratio": 0.47}).params().items():
        assert trt.params[name] == pytest.approx(value, rel=1e-9)
    t = np.array([3.0, 12.0, 30.0])
    np.testing.assert_allclose(trt.distribution.survival(t), ref.distribution.survival(t) ** 0.47, rtol=1e-9)
    assert trt.joint_names == ("reference:log_scale", "reference:log_shape", "log_hazard_ratio")
    assert trt.constraints["binds"].all()


def test_exact_fit_propagates_each_reported_standard_error_unchanged():
    """Exactly determined: the delta-method se of each fitted quantity equals the reported se."""
    fit = fit_summary("weibull", median=Median(20.7, ci=(16.0, 27.0)), landmarks=[Landmark(12.0, 0.81, n=42)])
    se_log_median = (math.log(27.0) - math.log(16.0)) / (2 * Z95)
    se_s12 = math.sqrt(0.81 * 0.19 / 42)
    for g, se in [(lambda th: math.log(from_theta("weibull", th).median()), se_log_median),
                  (lambda th: float(from_theta("weibull", th).survival(12.0)), se_s12)]:
        grad = numerical_gradient(g, fit.estimate, rel=1e-6)
        assert math.sqrt(grad @ fit.cov @ grad) == pytest.approx(se, rel=1e-3)


def test_hazard_ratio_uncertainty_adds_to_reference_uncertainty():
    """Treated-arm log-HR se in the joint covariance equals the reported CI's se; reference part unchanged."""
    ref = fit_summary("weibull", median=Median(18.0, n=103), landmarks=[Landmark(24.0, 0.33, n=103)])
    trt = fit_summary("weibull", hazard_ratio=HazardRatio(0.47, (0.30, 0.73)), reference=ref)
    se_log_hr = (math.log(0.73) - math.log(0.30)) / (2 * Z95)
    assert math.sqrt(trt.joint_cov[2, 2]) == pytest.approx(se_log_hr, rel=1e-3)
    np.testing.assert_allclose(trt.joint_cov[:2, :2], ref.cov, rtol=1e-3)


def test_time_ratio_shifts_median_under_aft():
    """AFT with time ratio phi: treated median = phi x reference median (log-logistic)."""
    ref = fit_summary("loglogistic", median=Median(10.0, n=80), landmarks=[Landmark(24.0, 0.2, n=80)])
    trt = fit_summary("loglogistic", time_ratio=TimeRatio(1.8, (1.3, 2.5)), reference=ref)
    assert trt.distribution.median() == pytest.approx(1.8 * ref.distribution.median(), rel=1e-8)
    assert trt.params["shape"] == pytest.approx(ref.params["shape"], rel=1e-10)


def test_fixed_shape_with_median_equals_from_median_and_has_zero_variance_for_shape():
    """Median + stated Weibull shape: from_median(median, shape); shape not estimated (variance 0)."""
    fit = fit_summary("weibull", median=Median(11.4, ci=(9.0, 14.0)), fixed={"shape": 1.0})
    ref = Weibull.from_median(11.4, shape=1.0)
    assert fit.params["scale"] == pytest.approx(ref.scale, rel=1e-9)
    assert fit.params["shape"] == 1.0
    assert fit.fixed == ("log_shape",)
    assert fit.cov[1, 1] == 0.0 and fit.cov[0, 1] == 0.0
    draws = fit.draw_params(50, np.random.default_rng(0))
    assert (draws["shape"] == 1.0).all()


def test_overdetermined_fit_reports_which_constraints_bind_and_z_values():
    """Three numbers for two parameters: WLS minimum; loglik = -sum(z^2)/2; a precise number misses less."""
    m = 20.0 * math.log(2.0) ** (1 / 1.3)
    se_m = math.log(1.1 / 0.9) / (2 * Z95)
    fit = fit_summary("weibull", median=Median(m, ci=(m * 0.9, m * 1.1)),
                      landmarks=[Landmark(6.0, 0.90, n=400), Landmark(30.0, 0.20, n=30)])
    c = fit.constraints.set_index("constraint")
    assert not fit.exact
    assert fit.loglik == pytest.approx(-0.5 * float(np.sum(c["z"] ** 2)), rel=1e-9)
    assert not c["binds"].all()

    def objective(th):  # the test's own weighted sum of squares
        d = from_theta("weibull", th)
        return 0.5 * (((math.log(d.median()) - math.log(m)) / se_m) ** 2
                      + ((float(d.survival(6.0)) - 0.9) / math.sqrt(0.09 / 400)) ** 2
                      + ((float(d.survival(30.0)) - 0.2) / math.sqrt(0.16 / 30)) ** 2)

    assert objective(fit.estimate) == pytest.approx(-fit.loglik, rel=1e-9)
    # stationary: the gradient of the objective vanishes at the fit (relative to its curvature)
    assert np.abs(numerical_gradient(objective, fit.estimate, rel=1e-7)).max() < 1e-4


def test_numbers_without_uncertainty_give_point_estimate_and_nan_covariance():
    """Median and landmark without n or CI: exact point fit, covariance NaN, draw refuses."""
    fit = fit_summary("weibull", median=Median(20.7), landmarks=[Landmark(12.0, 0.81)])
    assert fit.distribution.median() == pytest.approx(20.7, rel=1e-9)
    assert float(fit.distribution.survival(12.0)) == pytest.approx(0.81, rel=1e-9)
    assert np.isnan(fit.cov).all()
    with pytest.raises(UserError, match="cov"):
        fit.draw(2, np.random.default_rng(0))


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"family": "weibull", "median": Median(10.0)}, "constraint"),
    ({"family": "weibull", "median": Median(10.0), "fixed": {"rate": 1.0}}, "fixed"),
    ({"family": "lognormal", "hazard_ratio": HazardRatio(0.5), "effect": "ph"}, "reference"),
    ({"family": "exponential", "median": Median(10.0), "effect": "po"}, "effect"),
])
def test_bad_specification_raises_user_error_naming_the_key(kwargs, key):
    """Too few constraints, unknown fixed parameter, ratio without reference, unknown effect."""
    with pytest.raises(UserError, match=key):
        fit_summary(**kwargs)


def test_ph_effect_on_non_ph_family_is_refused():
    """A hazard ratio cannot keep a log-normal in its family: UserError pointing to effect='aft'."""
    ref = fit_summary("lognormal", median=Median(10.0, n=80), landmarks=[Landmark(24.0, 0.2, n=80)])
    with pytest.raises(UserError, match="aft"):
        fit_summary("lognormal", hazard_ratio=HazardRatio(0.5, (0.3, 0.8)), reference=ref)


@pytest.mark.parametrize(("build", "key"), [
    (lambda: Median(-1.0), "median.value"),
    (lambda: Median(10.0, ci=(12.0, 14.0)), "median.ci"),
    (lambda: Landmark(12.0, 81.0), "landmark.survival"),
    (lambda: HazardRatio(0.5, ci=(0.6, 0.9)), "hazard_ratio.ci"),
])
def test_invalid_reported_numbers_raise_user_error(build, key):
    """Negative median, CI not around the value, percent instead of proportion."""
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        build()


# 200 simulated trials of n = 150 per case: coverage se = 1.54 points, tolerance 3 se = 4.6 points
@pytest.mark.parametrize("detected", [False, True], ids=["true_times", "detected_times"])
@pytest.mark.parametrize("truth", [Weibull(scale=20.0, shape=1.5), LogLogistic(scale=15.0, shape=2.0)],
                         ids=lambda d: d.family)
def test_median_and_landmark_fit_intervals_cover_the_truth_about_95_percent(truth, detected):
    """Simulated trials (no censoring): the sample median and S(24) with n give 95 % Wald intervals
    that cover the true parameters 95 % +- 3 binomial se (the median and landmark of one arm are
    correlated; the fit whitens them). With detection the trial observes the scan / clinical
    detection times of sim.fitting.detection and the fit is on that scale."""
    from sim.fitting import Detection, to_theta
    from sim.units import weeks

    det = Detection(weeks(12), 3.0, 0.01) if detected else None
    theta = to_theta(truth.family, truth.params())
    rng = np.random.default_rng(31 + detected)
    reps, n, hits = 200, 150, np.zeros(2)
    for _ in range(reps):
        u = rng.random((3, n))
        y = truth.sample(u[0]) if det is None else det.sample(truth, u[0], u[1], u[2])
        m = float(np.quantile(y, 0.5, method="inverted_cdf"))
        fit = fit_summary(truth.family, median=Median(round(m, 1), n=n),
                          landmarks=[Landmark(24.0, float((y > 24.0).mean()), n=n)], detection=det)
        hits += np.abs(fit.estimate - theta) <= Z95 * np.sqrt(np.diag(fit.cov))
    cover = hits / reps
    assert np.all(np.abs(cover - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / reps)), cover
