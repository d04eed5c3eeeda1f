"""Maximum-likelihood fits to published summary statistics.

Each reported number becomes one approximately normal likelihood term
:math:`-\\tfrac12 r_j^2`, :math:`r_j = (g_j(\\theta) - y_j)/s_j`, and the fit maximises
:math:`\\ell(\\theta) = -\\tfrac12 \\sum_j r_j^2` (a weighted non-linear least-squares
problem, solved with ``scipy.optimize.least_squares``):

=====================================  ===============================  ===========================================
information                            model quantity :math:`g_j`       standard error :math:`s_j`
=====================================  ===============================  ===========================================
median :math:`m` with 95 % CI (lo, hi)  :math:`\\log \\mathrm{median}(\\theta)`  :math:`(\\log hi - \\log lo)/(2 \\cdot 1.96)`
median :math:`m` with n, no CI         :math:`S_\\theta(m)` (target 1/2)  :math:`\\sqrt{0.25/n}` (binomial at the median)
landmark :math:`S(t) = p` with n       :math:`S_\\theta(t)`                :math:`\\sqrt{p(1-p)/n}`
hazard ratio with 95 % CI              :math:`\\log HR`                   :math:`(\\log hi - \\log lo)/(2 \\cdot 1.96)`
time ratio (AFT) with 95 % CI          :math:`\\log \\phi`                 as for the hazard ratio
=====================================  ===============================  ===========================================

(the z value is ``1.96`` for a 95 % interval; other levels via ``level``). The median (as
:math:`S(m) = 1/2`) and the landmarks of one arm (same n) come from the same patients: their
errors are correlated, :math:`\\mathrm{Cov}(\\hat S(a), \\hat S(b)) = S(b)(1 - S(a))/n` for
:math:`a < b`, and the residuals are whitened with that covariance (:func:`_whitening`), so the
fit's covariance is the sampling covariance of the parameters (coverage tested).

A number without CI or n carries no uncertainty: it is fitted with a nominal
standard error (0.1 on log scales, 0.05 on the survival scale) and the covariance of
the fit is then NaN (point estimate only). With as many numbers as free parameters
the maximum is the exact solution :math:`r = 0` and the covariance is
:math:`(J^\\top J)^{-1}`, :math:`J = \\partial r/\\partial\\theta`; in general it is the
inverse of the numerical Hessian of :math:`-\\ell`.

Parameters stated by assumption (``fixed``, e.g. a Weibull shape of 1 where only a median
is reported) are held at their value and carry zero variance; the others are fitted.

Treated arm against a fitted reference arm (:func:`fit_summary` with ``reference``):
the free parameters are :math:`(\\theta_{ref}, e)` with :math:`e` the log effect, and the
reference fit enters as its normal approximation
:math:`-\\tfrac12(\\theta_{ref}-\\hat\\theta_{ref})^\\top\\hat\\Sigma_{ref}^{-1}(\\theta_{ref}-\\hat\\theta_{ref})`.
Under proportional hazards (``effect="ph"``, :math:`S_{trt} = S_{ref}^{HR}`, :math:`e = \\log HR`)
the treated curve stays in the family for the exponential (:math:`\\lambda_{trt} = \\lambda/HR`),
Weibull (:math:`\\lambda_{trt} = \\lambda HR^{-1/k}`) and Gompertz (:math:`a_{trt} = a\\,HR`).
For the other families use the accelerated-failure-time alternative (``effect="aft"``,
:math:`S_{trt}(t) = S_{ref}(t/\\phi)`, :math:`e = \\log\\phi`): scale :math:`\\times\\phi`
(exponential, Weibull, log-logistic), :math:`\\mu + \\log\\phi` (log-normal, generalised gamma),
:math:`a/\\phi, b/\\phi` (Gompertz). A reported HR can be turned into a time ratio only under
a Weibull, :math:`\\phi = HR^{-1/k}`; otherwise give the time ratio or fit treated-arm
landmarks/median.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from sim.distributions import FAMILIES, SurvivalDistribution
from sim.errors import UserError
from sim.fitting.detection import Detection
from sim.fitting.parameterisation import (
    THETA_NAMES,
    check_family,
    from_theta,
    natural_index,
    to_natural,
    to_theta,
)
from sim.fitting.result import (
    ParametricFit,
    SummaryFit,
    _frozen_array,
    covariance_from_hessian,
    numerical_hessian,
)

__all__ = ["Detection", "HazardRatio", "Landmark", "Median", "TimeRatio", "fit_summary", "treated_theta"]

PH_FAMILIES = ("exponential", "weibull", "gompertz")
#: nominal standard errors for numbers reported without any uncertainty
_NOMINAL_SE_LOG = 0.1
_NOMINAL_SE_SURV = 0.05
#: |fitted - target| below which a constraint is reported as binding (met exactly)
BIND_TOL = 1e-6


def _pos(key: str, v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise UserError(f"{key} must be a positive number, got {v!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise UserError(f"{key} must be a positive number, got {v!r}")
    return x


def _ci(key: str, ci, value: float) -> tuple[float, float] | None:
    if ci is None:
        return None
    try:
        lo, hi = (float(c) for c in ci)
    except (TypeError, ValueError):
        raise UserError(f"{key} must be a (lower, upper) pair, got {ci!r}") from None
    if not (0 < lo < value < hi and math.isfinite(hi)):
        raise UserError(f"{key} must satisfy 0 < lower < value ({value}) < upper, got {ci!r}")
    return lo, hi


def _n(key: str, n) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"{key} must be a positive integer, got {n!r}")
    return int(n)


@dataclass(frozen=True)
class Median:
    """Reported median survival ``value`` (months), optional 95 % ``ci`` and arm size ``n``."""

    value: float
    ci: tuple[float, float] | None = None
    n: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "value", _pos("median.value", self.value))
        object.__setattr__(self, "ci", _ci("median.ci", self.ci, self.value))
        object.__setattr__(self, "n", _n("median.n", self.n))


@dataclass(frozen=True)
class Landmark:
    """Reported survival ``survival`` = S(``time``), with arm size ``n`` (binomial SE)."""

    time: float
    survival: float
    n: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "time", _pos("landmark.time", self.time))
        try:
            p = float(self.survival)
        except (TypeError, ValueError):
            p = float("nan")
        if not 0.0 < p < 1.0:
            raise UserError(f"landmark.survival must be in (0, 1), got {self.survival!r}")
        object.__setattr__(self, "survival", p)
        object.__setattr__(self, "n", _n("landmark.n", self.n))


@dataclass(frozen=True)
class HazardRatio:
    """Reported hazard ratio treated vs reference, optional 95 % ``ci``."""

    value: float
    ci: tuple[float, float] | None = None

    def __post_init__(self):
        object.__setattr__(self, "value", _pos("hazard_ratio.value", self.value))
        object.__setattr__(self, "ci", _ci("hazard_ratio.ci", self.ci, self.value))


@dataclass(frozen=True)
class TimeRatio:
    """Acceleration factor :math:`\\phi` (treated times = :math:`\\phi` x reference times), optional 95 % ``ci``."""

    value: float
    ci: tuple[float, float] | None = None

    def __post_init__(self):
        object.__setattr__(self, "value", _pos("time_ratio.value", self.value))
        object.__setattr__(self, "ci", _ci("time_ratio.ci", self.ci, self.value))


def treated_theta(family: str, theta_ref, log_effect: float, effect: str = "ph") -> np.ndarray:
    """Unconstrained parameters of the treated arm from the reference and the log effect.

    PH (:math:`e = \\log HR`): exponential :math:`\\log\\lambda - e`; Weibull
    :math:`\\log\\lambda - e/k`; Gompertz :math:`\\log a + e`.
    AFT (:math:`e = \\log\\phi`): :math:`\\log` scale :math:`+ e` (exponential, Weibull,
    log-logistic); :math:`\\mu + e` (log-normal, generalised gamma); Gompertz
    :math:`\\log a - e`, :math:`b e^{-e}`.
    """
    th = np.array(theta_ref, dtype=float)
    if effect == "ph":
        if family == "exponential":
            th[0] -= log_effect
        elif family == "weibull":
            th[0] -= log_effect / math.exp(th[1])
        elif family == "gompertz":
            th[0] += log_effect
        else:
            raise UserError(
                f"effect 'ph' keeps the family only for {PH_FAMILIES}; use effect='aft' for {family!r}"
            )
    elif effect == "aft":
        if family == "gompertz":
            th[0] -= log_effect
            th[1] *= math.exp(-log_effect)
        else:  # first parameter is log scale or mu for all the other families
            th[0] += log_effect
    else:
        raise UserError(f"effect must be 'ph' or 'aft', got {effect!r}")
    return th


@dataclass(frozen=True)
class _Term:
    name: str
    scale: str
    target: float        # on the fitting scale
    se: float            # nan = no uncertainty reported
    nominal_se: float
    fn: object           # (dist, log_effect) -> model value on the fitting scale
    show: object         # fitting-scale value -> reported value
    n: int | None = None      # arm size of a survival-scale (binomial) term
    time: float = math.nan    # its time point (months)


def _whitening(terms: Sequence[_Term], scales: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor ``L`` of the terms' sampling covariance (residuals ``L^{-1}(g - y)``).

    Survival-scale terms of one arm (same ``n``: the median as ``S(m) = 1/2`` and the landmarks)
    are estimated from the same patients, so their errors are correlated; for empirical survival
    at times ``a < b``, ``Cov(S_hat(a), S_hat(b)) = S(b) (1 - S(a)) / n`` (taken at the reported
    values). Other terms are independent (diagonal ``scales^2``).
    """
    k = len(terms)
    cov = np.diag(np.asarray(scales, float) ** 2)
    for i in range(k):
        for j in range(i + 1, k):
            a, b = terms[i], terms[j]
            if a.n is not None and a.n == b.n and a.scale in ("S(median)", "S(t)") and b.scale in ("S(median)", "S(t)"):
                (t1, s1), (t2, s2) = sorted([(a.time, a.target), (b.time, b.target)])
                cov[i, j] = cov[j, i] = s2 * (1.0 - s1) / a.n
    return np.linalg.cholesky(cov)


def _observed(detection: Detection | None):
    """``(survival(dist, t), median(dist))`` of the reported (observed) PFS: the true-time curve
    itself, or the detected-time curve of :class:`~sim.fitting.detection.Detection`."""
    if detection is None:
        return (lambda dist, t: float(dist.survival(t))), (lambda dist: float(dist.median()))
    return detection.survival_at, detection.median


def _median_survival(detection: Detection | None):
    """Model value of the ``S(median)`` term: ``S(m)``, or with detection the observed
    survival averaged over the median's rounding window (:meth:`Detection.median_window_survival`)."""
    if detection is None:
        return lambda dist, m: float(dist.survival(m))
    return detection.median_window_survival


def _terms(median: Median | None, landmarks: Sequence[Landmark], ratio, level: float,
           detection: Detection | None = None) -> list[_Term]:
    z = stats.norm.ppf(0.5 + level / 2.0)
    surv, med = _observed(detection)
    out: list[_Term] = []
    if median is not None:
        m = median
        if m.ci is not None:
            se = (math.log(m.ci[1]) - math.log(m.ci[0])) / (2.0 * z)
            out.append(_Term("median", "log median", math.log(m.value), se, _NOMINAL_SE_LOG,
                             lambda dist, e: math.log(med(dist)), math.exp))
        else:
            se = math.sqrt(0.25 / m.n) if m.n is not None else math.nan
            msurv = _median_survival(detection)
            out.append(_Term("median", "S(median)", 0.5, se, _NOMINAL_SE_SURV,
                             lambda dist, e, _m=m.value: msurv(dist, _m), None, m.n, m.value))
    for lm in landmarks:
        if not isinstance(lm, Landmark):
            raise UserError(f"landmarks must hold Landmark(time, survival, n) items, got {lm!r}")
        se = math.sqrt(lm.survival * (1 - lm.survival) / lm.n) if lm.n is not None else math.nan
        out.append(_Term(f"S({lm.time:g})", "S(t)", lm.survival, se, _NOMINAL_SE_SURV,
                         lambda dist, e, _t=lm.time: surv(dist, _t), lambda v: v, lm.n, lm.time))
    if ratio is not None:
        name = "hazard_ratio" if isinstance(ratio, HazardRatio) else "time_ratio"
        se = (math.log(ratio.ci[1]) - math.log(ratio.ci[0])) / (2.0 * z) if ratio.ci else math.nan
        out.append(_Term(name, f"log {name}", math.log(ratio.value), se, _NOMINAL_SE_LOG,
                         lambda dist, e: e, math.exp))
    return out


def fit_summary(
    family: str,
    *,
    median: Median | None = None,
    landmarks: Sequence[Landmark] = (),
    hazard_ratio: HazardRatio | None = None,
    time_ratio: TimeRatio | None = None,
    reference: ParametricFit | None = None,
    effect: str | None = None,
    fixed: Mapping[str, float] | None = None,
    level: float = 0.95,
    detection: Detection | None = None,
) -> SummaryFit:
    """Fit ``family`` by maximum likelihood to reported summary statistics.

    Parameters
    ----------
    family : str
        One of :data:`sim.distributions.FAMILIES`.
    median : Median, optional
        Median with CI (normal on :math:`\\log` median) or with n (binomial at the median).
    landmarks : sequence of Landmark
        Survival proportions :math:`S(t) = p` with n (binomial-normal).
    hazard_ratio : HazardRatio, optional
        HR of this arm vs ``reference`` (requires ``reference``; proportional hazards).
    time_ratio : TimeRatio, optional
        Acceleration factor vs ``reference`` (requires ``reference``; AFT).
    reference : ParametricFit, optional
        Fitted reference arm of the same trial (same ``family``); its estimate and
        covariance enter as a normal likelihood and the treated curve is
        :func:`treated_theta` of it.
    effect : {"ph", "aft"}, optional
        How the treated arm relates to ``reference``; default ``"ph"`` with a hazard
        ratio (or none given), ``"aft"`` with a time ratio.
    fixed : mapping, optional
        Natural parameters held at a stated value (e.g. ``{"shape": 1.0}`` for a Weibull
        with an assumed shape); they are not estimated and have zero variance in ``cov``.
        Not allowed together with ``reference``.
    level : float
        Confidence level of the reported intervals (default 0.95, z = 1.96).
    detection : Detection, optional
        How the trial observed PFS (scan interval, clinical detection between scans,
        pre-progression death share; :mod:`sim.fitting.detection`). Given, the median and
        landmarks are fitted on the *observed* scale -- ``S_Y`` and its median -- while the
        fitted distribution is that of the true event time (what the model draws); a hazard
        or time ratio acts on the true times. ``None``: reported numbers are true-time ones.

    Returns
    -------
    SummaryFit
        Estimate and covariance of the (treated) arm's unconstrained parameters,
        ``constraints`` report (``constraint, scale, target, fitted, se, z, binds``)
        and, with a reference, the joint estimate/covariance of
        :math:`(\\theta_{ref}, \\log\\text{effect})`.

    Raises
    ------
    UserError
        Unknown family, invalid numbers, fewer constraints than free parameters, an
        effect without reference, or PH requested for a non-PH family.
    """
    check_family(family)
    if not 0.0 < level < 1.0:
        raise UserError(f"level must be in (0, 1), got {level!r}")
    if median is not None and not isinstance(median, Median):
        raise UserError(f"median must be a Median(value, ci, n), got {median!r}")
    if hazard_ratio is not None and time_ratio is not None:
        raise UserError(f"give hazard_ratio or time_ratio, not both, got {hazard_ratio!r} and {time_ratio!r}")
    if effect is None:
        effect = "aft" if time_ratio is not None else "ph"
    if effect not in ("ph", "aft"):
        raise UserError(f"effect must be 'ph' or 'aft', got {effect!r}")
    if hazard_ratio is not None and effect != "ph":
        raise UserError(f"hazard_ratio needs effect='ph', got effect={effect!r}")
    if time_ratio is not None and effect != "aft":
        raise UserError(f"time_ratio needs effect='aft', got effect={effect!r}")
    ratio = hazard_ratio if hazard_ratio is not None else time_ratio
    if ratio is not None and reference is None:
        raise UserError(f"reference must be a fitted reference arm when a ratio is given, got {reference!r}")
    if reference is not None:
        if reference.family != family:
            raise UserError(f"reference.family must equal family {family!r}, got {reference.family!r}")
        if effect == "ph":
            treated_theta(family, reference.estimate, 0.0, "ph")  # raises for non-PH families

    landmarks = tuple(landmarks)
    terms = _terms(median, landmarks, ratio, level, detection)
    k = len(THETA_NAMES[family])
    fixed_theta = _fixed_theta(family, fixed)
    if fixed_theta and reference is not None:
        raise UserError(f"fixed must be empty for a fit against a reference arm, got {dict(fixed)!r}")

    # ---- free parameters x and the map x -> (theta of this arm, log effect)
    ref_resid = None
    if reference is None:
        free = np.array([i not in fixed_theta for i in range(k)])
        base = _start(family, median, landmarks, fixed, detection)
        for i, v in fixed_theta.items():
            base[i] = v
        n_free = int(free.sum())

        def split(x):
            th = base.copy()
            th[free] = x
            return th, 0.0

        x0 = base[free]
    else:
        th_ref = np.asarray(reference.estimate, dtype=float)
        ref_cov = np.asarray(reference.cov, dtype=float)
        e0 = math.log(ratio.value) if ratio is not None else 0.0
        ref_free = (np.diag(ref_cov) > 0.0) if np.all(np.isfinite(ref_cov)) else np.zeros(k, dtype=bool)
        n_ref_free = int(ref_free.sum())
        n_free = n_ref_free + 1
        if n_ref_free:
            L = np.linalg.cholesky(ref_cov[np.ix_(ref_free, ref_free)])

            def _ref_resid(x):
                return np.linalg.solve(L, x[:n_ref_free] - th_ref[ref_free])

            ref_resid = _ref_resid

        def split(x):
            th = th_ref.copy()
            th[ref_free] = x[:n_ref_free]
            return treated_theta(family, th, x[n_ref_free], effect), x[n_ref_free]

        x0 = np.append(th_ref[ref_free], e0)

    if n_free == 0:
        raise UserError(f"fixed must leave at least one {family} parameter free, got {dict(fixed)!r}")
    n_constraints = len(terms) + (n_ref_free if reference is not None else 0)
    if n_constraints < n_free:
        raise UserError(
            f"{family} has {n_free} free parameter(s) but only {n_constraints} constraint(s) were given "
            f"(median={median!r}, landmarks={list(landmarks)!r}, ratio={ratio!r})"
        )
    has_all_se = all(np.isfinite(tm.se) for tm in terms)
    scales = np.array([tm.se if np.isfinite(tm.se) else tm.nominal_se for tm in terms])
    targets = np.array([tm.target for tm in terms])
    chol = _whitening(terms, scales)

    def model_values(x):
        th, e = split(x)
        dist = from_theta(family, th)
        return np.array([tm.fn(dist, e) for tm in terms])

    def residuals(x):
        try:
            with np.errstate(all="ignore"):
                r = np.linalg.solve(chol, model_values(x) - targets)
        except (ValueError, OverflowError):
            return np.full(n_constraints, 1e6)
        if ref_resid is not None:
            r = np.concatenate([r, ref_resid(x)])
        return np.where(np.isfinite(r), r, 1e6)

    res = optimize.least_squares(residuals, x0, method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15,
                                 max_nfev=5000, x_scale=1.0)
    x = res.x
    objective = lambda y: 0.5 * float(np.sum(residuals(y) ** 2))  # noqa: E731
    H = numerical_hessian(objective, x, rel=1e-4)
    joint_cov, pd_ok = covariance_from_hessian(H)
    if not has_all_se:
        joint_cov = np.full_like(joint_cov, np.nan)

    th, e = split(x)
    if reference is None:
        cov = np.zeros((k, k))
        cov[np.ix_(free, free)] = joint_cov
    else:
        # delta method: cov(theta_trt) = J cov(x) J^T, J = d theta_trt / d x
        J = np.empty((k, n_free))
        for j in range(n_free):
            h = 1e-6 * max(1.0, abs(x[j]))
            ep = np.zeros(n_free)
            ep[j] = h
            J[:, j] = (split(x + ep)[0] - split(x - ep)[0]) / (2 * h)
        cov = J @ joint_cov @ J.T
    dist = from_theta(family, th)

    # ---- report
    fitted = model_values(x)
    rows = []
    for tm, fv in zip(terms, fitted, strict=True):
        if tm.name == "median":
            tgt, fit_v = (median.value, _observed(detection)[1](dist))
        elif tm.show is not None:
            tgt, fit_v = tm.show(tm.target), tm.show(fv)
        else:
            tgt, fit_v = tm.target, fv
        zval = (fv - tm.target) / tm.se if np.isfinite(tm.se) else math.nan
        # met: on the fitting scale (for an observed median, 1/2 at the rounding window of m)
        met = abs(fv - tm.target) <= BIND_TOL * max(1.0, abs(tm.target))
        rows.append({"constraint": tm.name, "scale": tm.scale, "target": tgt, "fitted": fit_v,
                     "se": tm.se, "z": zval, "binds": bool(met)})
    if reference is not None and n_ref_free:
        ref_se = np.sqrt(np.diag(ref_cov))[ref_free]
        ref_names = [nm for nm, f in zip(reference.param_names, ref_free, strict=True) if f]
        for name, tgt, fv, se in zip(ref_names, th_ref[ref_free], x[:n_ref_free], ref_se, strict=True):
            rows.append({"constraint": f"reference:{name}", "scale": name, "target": tgt, "fitted": fv,
                         "se": se, "z": (fv - tgt) / se,
                         "binds": bool(abs(fv - tgt) <= BIND_TOL * max(1.0, abs(tgt)))})
    report = pd.DataFrame(rows, columns=["constraint", "scale", "target", "fitted", "se", "z", "binds"])

    if reference is None:
        joint_names: tuple = ()
    else:
        joint_names = (*(f"reference:{n}" for n, f in zip(reference.param_names, ref_free, strict=True) if f),
                       f"log_{_effect_name(effect)}")
    return SummaryFit(
        family=family,
        params=to_natural(family, th),
        distribution=dist,
        estimate=_frozen_array(th),
        cov=_frozen_array(0.5 * (cov + cov.T)),
        param_names=THETA_NAMES[family],
        loglik=-objective(x),
        converged=bool(res.success and pd_ok),
        constraints=report,
        exact=n_constraints == n_free,
        fixed=tuple(THETA_NAMES[family][i] for i in sorted(fixed_theta)),
        joint_names=joint_names,
        joint_estimate=_frozen_array(x) if reference is not None else None,
        joint_cov=_frozen_array(joint_cov) if reference is not None else None,
    )


def _effect_name(effect: str) -> str:
    return "hazard_ratio" if effect == "ph" else "time_ratio"


def _fixed_theta(family: str, fixed: Mapping[str, float] | None) -> dict[int, float]:
    """``{theta index: value}`` of the natural parameters in ``fixed`` (checked)."""
    if not fixed:
        return {}
    if not isinstance(fixed, Mapping):
        raise UserError(f"fixed must be a mapping of parameter names to values, got {fixed!r}")
    out = {}
    for name, value in fixed.items():
        i = natural_index(family, name)
        try:
            th = to_theta(family, {**FAMILIES[family].from_median(1.0, **_UNIT_SHAPES[family]).params(),
                                   name: float(value)})
        except (TypeError, ValueError):
            raise UserError(f"fixed.{name} must be a valid {family} {name}, got {value!r}") from None
        out[i] = float(th[i])
    return out


_UNIT_SHAPES = {"exponential": {}, "weibull": {"shape": 1.0}, "gompertz": {"shape": 0.0},
                "loglogistic": {"shape": 1.5}, "lognormal": {"sigma": 1.0}, "gengamma": {"sigma": 1.0, "Q": 0.5}}


def _start(family: str, median: Median | None, landmarks: Sequence[Landmark],
           fixed: Mapping[str, float] | None = None, detection: Detection | None = None) -> np.ndarray:
    """Starting values: the family's ``from_median`` at a unit-ish (or the fixed) shape (with
    detection, at the reported median less half a scan interval: the mean wait for a scan)."""
    if median is not None:
        m = median.value
        if detection is not None:
            m = max(0.5 * m, m - 0.5 * detection.interval)
    elif landmarks:
        lm = landmarks[0]
        m = lm.time * math.log(2.0) / -math.log(lm.survival)  # exponential through the landmark
    else:
        m = 12.0
    shapes = dict(_UNIT_SHAPES[family])
    for name, value in (fixed or {}).items():
        if name in shapes:
            shapes[name] = float(value)
    dist: SurvivalDistribution = FAMILIES[family].from_median(m, **shapes)
    return to_theta(family, dist.params())
