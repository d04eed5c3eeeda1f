"""Parametric survival distributions for time-to-event sampling.

Time unit is months throughout.  Every distribution is defined by its
cumulative hazard :math:`H(t)` and the inverse :math:`H^{-1}(h)`; everything
else follows generically in :class:`SurvivalDistribution`:

* :math:`S(t) = e^{-H(t)}`, :math:`F(t) = 1 - S(t)`, :math:`f(t) = h(t) S(t)`;
* ``quantile(p) = H^{-1}(-\\log(1 - p))``;
* ``inverse_survival(s) = H^{-1}(-\\log s)``;
* ``sample(u, hr) = H^{-1}(-\\log(u) / hr)`` -- inverse-transform sampling
  under proportional hazards, :math:`S_{hr}(t) = S(t)^{hr}`;
* ``sample_given(t0, u, hr) = H^{-1}(H(t0) - \\log(u) / hr)`` -- draw of the
  total time :math:`T` conditional on :math:`T > t_0`.

Working in cumulative-hazard space keeps draws accurate for ``u`` near 0
and 1 and for long left-truncation times.  All methods are vectorised:
they accept scalars or arrays (broadcast with numpy rules) and return a
numpy float scalar for scalar input, an ndarray otherwise.  Negative times
are treated as 0 (:math:`H(t) = 0`, :math:`h(t) = 0` for :math:`t < 0`).

Use :func:`make_distribution` / :func:`from_median` (or :data:`FAMILIES`) to
build a distribution from configuration.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
from scipy import integrate, special

__all__ = [
    "FAMILIES",
    "Exponential",
    "GeneralizedGamma",
    "Gompertz",
    "LogLogistic",
    "LogNormal",
    "SurvivalDistribution",
    "Weibull",
    "from_median",
    "make_distribution",
]

_LN2 = math.log(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: |b| below which a Gompertz is evaluated as an exponential.
_GOMPERTZ_B_EPS = 1e-12
#: |Q| below which a generalised gamma is evaluated as a log-normal.
_GENGAMMA_Q_EPS = 1e-8
#: gamma shape above which scipy's ``gammainc`` (cephes) loses accuracy in the
#: lower tail (relative errors up to 1e-1 at shape 1e8); above it the lower
#: tail is taken from ``chndtr(2x, 2a, 0)`` (DiDonato & Morris algorithm).
_LARGE_GAMMA_SHAPE = 2e5
#: Taylor coefficients 1/n!, n = 2..17, highest first, for expm1mx.
_EXPM1MX_COEF = np.array([1.0 / math.factorial(n) for n in range(17, 1, -1)])


def _arr(x):
    """Return ``x`` as a float ndarray (no copy when already one)."""
    return np.asarray(x, dtype=float)


def _out(x):
    """Return 0-d arrays as numpy float scalars, other arrays unchanged."""
    return np.asarray(x)[()]


def _expm1mx(y):
    """:math:`e^y - 1 - y` without cancellation for small ``|y|``."""
    y = _arr(y)
    small = np.abs(y) < 0.5
    ys = np.where(small, y, 0.0)
    series = np.polyval(_EXPM1MX_COEF, ys) * ys * ys
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(small, series, np.expm1(y) - y)


def _log_stirling_gap(a: float) -> float:
    """:math:`a \log a - a - \log\Gamma(a)`, accurate for large ``a``."""
    if a < 100.0:
        return a * math.log(a) - a - math.lgamma(a)
    return 0.5 * math.log(a / (2 * math.pi)) - 1 / (12 * a) + 1 / (360 * a**3) - 1 / (1260 * a**5)


def _gammainc_lower(a: float, x):
    """Regularised lower incomplete gamma :math:`P(a, x)`, accurate in the tail for any ``a``."""
    if a <= _LARGE_GAMMA_SHAPE:
        return special.gammainc(a, x)
    return special.chndtr(2.0 * x, 2.0 * a, 0.0)


def _gammaincinv_lower(a: float, p):
    """Inverse of :func:`_gammainc_lower` in ``x`` for ``p`` in [0, 1/2]."""
    x = special.gammaincinv(a, p)
    if a <= _LARGE_GAMMA_SHAPE:
        return x
    # polish scipy's start with Newton steps on log P in v = log x
    ok = (x > 0.0) & np.isfinite(x)
    v, logp = np.log(x[ok]), np.log(p[ok])
    gap = _log_stirling_gap(a)
    for _ in range(4):
        logP = np.log(_gammainc_lower(a, np.exp(v)))
        # log of x * density(x) = a log x - x - lgamma(a) = gap - a * expm1mx(v - log a)
        log_xdens = gap - a * _expm1mx(v - math.log(a))
        v = v - (logP - logp) * np.exp(logP - log_xdens)
    x[ok] = np.exp(v)
    return x


def _real(family: str, name: str, value) -> float:
    """Convert a parameter to a finite float or raise ``ValueError``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{family}.{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{family}.{name} must be finite, got {v!r}")
    return v


def _positive(family: str, name: str, value) -> float:
    """Convert a parameter to a finite float > 0 or raise ``ValueError``."""
    v = _real(family, name, value)
    if v <= 0.0:
        raise ValueError(f"{family}.{name} must be > 0, got {v!r}")
    return v


class SurvivalDistribution(ABC):
    """Abstract parametric survival distribution on :math:`[0, \\infty)`.

    Subclasses are frozen, slotted dataclasses that implement
    :meth:`cumhazard`, :meth:`inverse_cumhazard`, :meth:`hazard` and
    :meth:`from_median`; they may override :meth:`mean` with a closed form.
    """

    __slots__ = ()
    family: ClassVar[str]

    # ----------------------------------------------------------- per family
    @abstractmethod
    def cumhazard(self, t):
        """Cumulative hazard :math:`H(t) = \\int_0^t h(x)\\,dx` (0 for ``t <= 0``)."""

    @abstractmethod
    def inverse_cumhazard(self, h):
        """Time ``t`` with :math:`H(t) = h` for ``h >= 0``; ``inf`` where ``h >= H(inf)``."""

    @abstractmethod
    def hazard(self, t):
        """Hazard rate :math:`h(t) = f(t) / S(t)` (per month)."""

    @classmethod
    @abstractmethod
    def from_median(cls, median: float, **shape) -> SurvivalDistribution:
        """Instance with the given median and shape parameter(s)."""

    # ------------------------------------------------------------- generic
    def survival(self, t):
        """Survival function :math:`S(t) = \\exp(-H(t))`."""
        return _out(np.exp(-_arr(self.cumhazard(t))))

    def cdf(self, t):
        """Distribution function :math:`F(t) = 1 - S(t)` (computed as ``-expm1(-H)``)."""
        return _out(-np.expm1(-_arr(self.cumhazard(t))))

    def pdf(self, t):
        """Density :math:`f(t) = h(t) S(t)` (0 where :math:`S(t) = 0`)."""
        s = _arr(self.survival(t))
        with np.errstate(invalid="ignore"):
            f = _arr(self.hazard(t)) * s
        return _out(np.where(s > 0.0, f, 0.0))

    def quantile(self, p):
        """Time ``t`` with :math:`F(t) = p`; ``inf`` where never reached, ``nan`` outside [0, 1]."""
        p = _arr(p)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.log1p(-p)
        h = np.where((p >= 0.0) & (p <= 1.0), h, np.nan)
        return self.inverse_cumhazard(h)

    def inverse_survival(self, s):
        """Time ``t`` with :math:`S(t) = s`, via :math:`H^{-1}(-\\log s)`."""
        s = _arr(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.log(s)
        return self.inverse_cumhazard(h)

    def sample(self, u, hr=1.0):
        """Inverse-transform draw under a proportional-hazards multiplier.

        Parameters
        ----------
        u : float or array_like
            Uniform(0, 1) variates.
        hr : float or array_like, default 1.0
            Hazard ratio (> 0); the draw follows :math:`S(t)^{hr}`.
            Broadcast against ``u``.

        Returns
        -------
        float or ndarray
            :math:`T = H^{-1}(-\\log(u) / hr)`, i.e. :math:`S(T)^{hr} = u`.
            ``inf`` where the (cured) distribution never reaches that level.
        """
        with np.errstate(divide="ignore"):
            h = -np.log(_arr(u)) / _arr(hr)
        return self.inverse_cumhazard(h)

    def sample_given(self, t0, u, hr=1.0):
        """Draw the total time ``T`` conditional on survival to ``t0``.

        Parameters
        ----------
        t0 : float or array_like
            Time already survived (months, >= 0).
        u : float or array_like
            Uniform(0, 1) variates.
        hr : float or array_like, default 1.0
            Hazard ratio applied from ``t0`` on.

        Returns
        -------
        float or ndarray
            ``T >= t0`` solving :math:`H(T) = H(t_0) - \\log(u) / hr`, i.e.
            :math:`(S(T)/S(t_0))^{hr} = u`.
        """
        t0 = _arr(t0)
        with np.errstate(divide="ignore"):
            h = _arr(self.cumhazard(t0)) - np.log(_arr(u)) / _arr(hr)
        return _out(np.maximum(_arr(self.inverse_cumhazard(h)), t0))

    def median(self) -> float:
        """Median survival time :math:`S^{-1}(1/2)`."""
        return float(self.inverse_cumhazard(_LN2))

    def mean(self) -> float:
        """Mean survival time :math:`\\int_0^\\infty S(t)\\,dt` (``inf`` if :math:`S(\\infty) > 0`)."""
        return self._mean_numeric()

    def _mean_numeric(self) -> float:
        """Mean by numerical integration of :math:`S` with ``scipy.integrate.quad``."""
        if float(self.survival(np.inf)) > 0.0:
            return math.inf
        m = self.median()
        f = lambda x: float(self.survival(x))  # noqa: E731
        head, _ = integrate.quad(f, 0.0, m, limit=200)
        tail, _ = integrate.quad(f, m, np.inf, limit=200)
        return head + tail

    def params(self) -> dict[str, float]:
        """Parameters as ``{name: value}`` (constructor keyword names)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------
# Exponential
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Exponential(SurvivalDistribution):
    """Exponential distribution (constant hazard).

    .. math::
        h(t) = 1/\\lambda, \\quad H(t) = t/\\lambda, \\quad
        S(t) = e^{-t/\\lambda}, \\quad \\mathrm{E}[T] = \\lambda,
        \\quad \\mathrm{median} = \\lambda \\ln 2.

    Parameters
    ----------
    scale : float
        Mean survival time :math:`\\lambda > 0` (months).
    """

    family: ClassVar[str] = "exponential"
    scale: float

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive(self.family, "scale", self.scale))

    def cumhazard(self, t):
        with np.errstate(over="ignore"):
            return _out(np.maximum(_arr(t), 0.0) / self.scale)

    def inverse_cumhazard(self, h):
        return _out(_arr(h) * self.scale)

    def hazard(self, t):
        t = _arr(t)
        return _out(np.where(t < 0.0, 0.0, 1.0 / self.scale))

    def mean(self) -> float:
        return self.scale

    @classmethod
    def from_median(cls, median: float) -> Exponential:
        """Exponential with median ``median``: :math:`\\lambda = m / \\ln 2`."""
        return cls(scale=_positive(cls.family, "median", median) / _LN2)


# ---------------------------------------------------------------------------
# Weibull
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Weibull(SurvivalDistribution):
    """Weibull distribution (lifelines ``WeibullFitter``: ``lambda_``, ``rho_``).

    .. math::
        S(t) = \\exp\\{-(t/\\lambda)^k\\}, \\quad H(t) = (t/\\lambda)^k, \\quad
        h(t) = \\frac{k}{\\lambda}(t/\\lambda)^{k-1},

    :math:`\\mathrm{E}[T] = \\lambda\\,\\Gamma(1 + 1/k)`,
    :math:`\\mathrm{median} = \\lambda (\\ln 2)^{1/k}`.

    Parameters
    ----------
    scale : float
        Scale :math:`\\lambda > 0` (months); :math:`S(\\lambda) = e^{-1}`.
    shape : float
        Shape :math:`k > 0`; hazard increasing for :math:`k > 1`,
        decreasing for :math:`k < 1`, constant (exponential) for :math:`k = 1`.
    """

    family: ClassVar[str] = "weibull"
    scale: float
    shape: float

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive(self.family, "scale", self.scale))
        object.__setattr__(self, "shape", _positive(self.family, "shape", self.shape))

    def cumhazard(self, t):
        with np.errstate(over="ignore"):
            return _out((np.maximum(_arr(t), 0.0) / self.scale) ** self.shape)

    def inverse_cumhazard(self, h):
        with np.errstate(invalid="ignore"):
            return _out(self.scale * _arr(h) ** (1.0 / self.shape))

    def hazard(self, t):
        t = _arr(t)
        k, lam = self.shape, self.scale
        with np.errstate(divide="ignore", invalid="ignore"):
            h = (k / lam) * (np.maximum(t, 0.0) / lam) ** (k - 1.0)
        return _out(np.where(t < 0.0, 0.0, h))

    def mean(self) -> float:
        return self.scale * math.gamma(1.0 + 1.0 / self.shape)

    @classmethod
    def from_median(cls, median: float, *, shape: float) -> Weibull:
        """Weibull with median ``median``: :math:`\\lambda = m / (\\ln 2)^{1/k}`."""
        m = _positive(cls.family, "median", median)
        k = _positive(cls.family, "shape", shape)
        return cls(scale=m / _LN2 ** (1.0 / k), shape=k)


# ---------------------------------------------------------------------------
# Gompertz
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Gompertz(SurvivalDistribution):
    """Gompertz distribution (flexsurv ``gompertz``: ``rate``, ``shape``).

    .. math::
        h(t) = a e^{b t}, \\quad H(t) = \\frac{a}{b}(e^{b t} - 1), \\quad
        S(t) = \\exp\\{-H(t)\\}.

    For :math:`b \\to 0` this is the exponential with rate :math:`a`
    (used when :math:`|b| < 10^{-12}`).  For :math:`b < 0` the hazard decays
    and :math:`S(\\infty) = e^{a/b} > 0` (cure fraction): quantiles above
    :math:`1 - e^{a/b}` and the corresponding samples are ``inf``, as is the
    mean.  For :math:`b > 0`,
    :math:`\\mathrm{E}[T] = b^{-1} e^{a/b} E_1(a/b)`.

    Parameters
    ----------
    rate : float
        Hazard at time 0, :math:`a > 0` (per month).
    shape : float
        Log-hazard slope :math:`b` (per month), any real number.
    """

    family: ClassVar[str] = "gompertz"
    rate: float
    shape: float

    def __post_init__(self):
        object.__setattr__(self, "rate", _positive(self.family, "rate", self.rate))
        object.__setattr__(self, "shape", _real(self.family, "shape", self.shape))

    def cumhazard(self, t):
        t = np.maximum(_arr(t), 0.0)
        a, b = self.rate, self.shape
        if abs(b) < _GOMPERTZ_B_EPS:
            return _out(a * t)
        with np.errstate(over="ignore"):
            return _out((a / b) * np.expm1(b * t))

    def inverse_cumhazard(self, h):
        h = _arr(h)
        a, b = self.rate, self.shape
        if abs(b) < _GOMPERTZ_B_EPS:
            return _out(h / a)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            x = (b / a) * h
            t = np.log1p(x) / b
        if b < 0.0:
            t = np.where(x <= -1.0, np.inf, t)
        return _out(t)

    def hazard(self, t):
        t = _arr(t)
        with np.errstate(over="ignore"):
            h = self.rate * np.exp(self.shape * t)
        return _out(np.where(t < 0.0, 0.0, h))

    def mean(self) -> float:
        a, b = self.rate, self.shape
        if abs(b) < _GOMPERTZ_B_EPS:
            return 1.0 / a
        if b < 0.0:
            return math.inf
        z = a / b
        if z < 700.0:  # e^z E1(z) without overflow
            return math.exp(z) * float(special.exp1(z)) / b
        return self._mean_numeric()

    @classmethod
    def from_median(cls, median: float, *, shape: float) -> Gompertz:
        """Gompertz with median ``median`` and shape ``b``: :math:`a = \\ln 2 \\, b / (e^{b m} - 1)`."""
        m = _positive(cls.family, "median", median)
        b = _real(cls.family, "shape", shape)
        return cls(rate=_LN2 / (m * float(special.exprel(b * m))), shape=b)


# ---------------------------------------------------------------------------
# Log-logistic
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogLogistic(SurvivalDistribution):
    """Log-logistic distribution (scipy ``fisk(c=shape, scale=scale)``).

    .. math::
        S(t) = \\frac{1}{1 + (t/\\alpha)^\\beta}, \\quad
        H(t) = \\log\\{1 + (t/\\alpha)^\\beta\\}, \\quad
        h(t) = \\frac{(\\beta/\\alpha)(t/\\alpha)^{\\beta-1}}{1 + (t/\\alpha)^\\beta},

    median :math:`\\alpha`; :math:`\\mathrm{E}[T] = \\alpha (\\pi/\\beta)/\\sin(\\pi/\\beta)`
    for :math:`\\beta > 1`, else ``inf``.

    Parameters
    ----------
    scale : float
        Scale :math:`\\alpha > 0` = median survival (months).
    shape : float
        Shape :math:`\\beta > 0`; the hazard is unimodal for :math:`\\beta > 1`
        and decreasing for :math:`\\beta \\le 1`.
    """

    family: ClassVar[str] = "loglogistic"
    scale: float
    shape: float

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive(self.family, "scale", self.scale))
        object.__setattr__(self, "shape", _positive(self.family, "shape", self.shape))

    def _z(self, t):
        """:math:`\\beta \\log(t/\\alpha)` (``-inf`` at 0)."""
        with np.errstate(divide="ignore"):
            return self.shape * (np.log(t) - math.log(self.scale))

    def cumhazard(self, t):
        return _out(np.logaddexp(0.0, self._z(np.maximum(_arr(t), 0.0))))

    def inverse_cumhazard(self, h):
        h = _arr(h)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            # log(e^h - 1), stable for small and large h
            lem = np.where(h > 1.0, h + np.log1p(-np.exp(-h)), np.log(np.expm1(h)))
            return _out(self.scale * np.exp(lem / self.shape))

    def hazard(self, t):
        t = _arr(t)
        b, a = self.shape, self.scale
        at0 = 0.0 if b > 1.0 else (1.0 / a if b == 1.0 else np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = (b / t) * special.expit(self._z(t))
        return _out(np.where(t > 0.0, h, np.where(t == 0.0, at0, 0.0)))

    def mean(self) -> float:
        b = self.shape
        if b <= 1.0:
            return math.inf
        return self.scale * (math.pi / b) / math.sin(math.pi / b)

    @classmethod
    def from_median(cls, median: float, *, shape: float) -> LogLogistic:
        """Log-logistic with median ``median``: :math:`\\alpha = m`."""
        return cls(scale=_positive(cls.family, "median", median), shape=shape)


# ---------------------------------------------------------------------------
# Log-normal (shared helpers are reused by the generalised gamma with Q = 0)
# ---------------------------------------------------------------------------
def _lognormal_cumhazard(t, mu, sigma):
    """:math:`-\\log \\Phi(-w)`, :math:`w = (\\ln t - \\mu)/\\sigma`."""
    with np.errstate(divide="ignore"):
        w = (np.log(np.maximum(_arr(t), 0.0)) - mu) / sigma
    return _out(-special.log_ndtr(-w))


def _lognormal_inverse_cumhazard(h, mu, sigma):
    """Solve :math:`\\log \\Phi(-w) = -h` with ``ndtri_exp`` (stable for all h)."""
    w = -special.ndtri_exp(-_arr(h))
    with np.errstate(over="ignore"):
        return _out(np.exp(mu + sigma * w))


def _lognormal_hazard(t, mu, sigma):
    """:math:`\\phi(w) / \\{\\sigma t \\Phi(-w)\\}` in log space."""
    t = _arr(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (np.log(t) - mu) / sigma
        logh = -0.5 * w * w - _LOG_SQRT_2PI - special.log_ndtr(-w) - np.log(sigma * t)
        h = np.exp(logh)
    return _out(np.where(t > 0.0, h, 0.0))


@dataclass(frozen=True, slots=True)
class LogNormal(SurvivalDistribution):
    """Log-normal distribution: :math:`\\ln T \\sim N(\\mu, \\sigma^2)`.

    .. math::
        S(t) = 1 - \\Phi\\!\\left(\\frac{\\ln t - \\mu}{\\sigma}\\right), \\quad
        H(t) = -\\log S(t),

    median :math:`e^\\mu`, :math:`\\mathrm{E}[T] = e^{\\mu + \\sigma^2/2}`.
    scipy equivalent: ``lognorm(s=sigma, scale=exp(mu))``.

    Parameters
    ----------
    mu : float
        Mean of :math:`\\ln T` (log-months), any real number.
    sigma : float
        Standard deviation of :math:`\\ln T`, :math:`\\sigma > 0`.
    """

    family: ClassVar[str] = "lognormal"
    mu: float
    sigma: float

    def __post_init__(self):
        object.__setattr__(self, "mu", _real(self.family, "mu", self.mu))
        object.__setattr__(self, "sigma", _positive(self.family, "sigma", self.sigma))

    def cumhazard(self, t):
        return _lognormal_cumhazard(t, self.mu, self.sigma)

    def inverse_cumhazard(self, h):
        return _lognormal_inverse_cumhazard(h, self.mu, self.sigma)

    def hazard(self, t):
        return _lognormal_hazard(t, self.mu, self.sigma)

    def mean(self) -> float:
        return math.exp(self.mu + 0.5 * self.sigma**2)

    @classmethod
    def from_median(cls, median: float, *, sigma: float) -> LogNormal:
        """Log-normal with median ``median``: :math:`\\mu = \\ln m`."""
        return cls(mu=math.log(_positive(cls.family, "median", median)), sigma=sigma)


# ---------------------------------------------------------------------------
# Generalised gamma
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GeneralizedGamma(SurvivalDistribution):
    """Generalised gamma, Prentice (1974) / flexsurv ``gengamma`` parameterisation.

    With :math:`w = (\\ln t - \\mu)/\\sigma`, :math:`\\gamma = Q^{-2}` and
    :math:`u = \\gamma \\exp(Q w)` (so :math:`u \\sim \\mathrm{Gamma}(\\gamma, 1)`):

    .. math::
        S(t) = \\begin{cases}
            1 - P(\\gamma, u) & Q > 0 \\\\
            P(\\gamma, u)     & Q < 0 \\\\
            1 - \\Phi(w)      & Q = 0 \\text{ (log-normal)}
        \\end{cases}
        \\qquad
        f(t) = \\frac{|Q|\\, u^{\\gamma} e^{-u}}{\\sigma t\\, \\Gamma(\\gamma)},

    where :math:`P` is the regularised lower incomplete gamma function.
    Note the exponent is :math:`Q w` (signed), exactly as in flexsurv's
    ``pgengamma``; with :math:`|Q| w` the survival would increase in
    :math:`t` for :math:`Q < 0`.  Special cases: :math:`Q = 1` is
    ``Weibull(scale=e^mu, shape=1/sigma)``; :math:`Q = \\sigma` is the gamma
    distribution with shape :math:`\\sigma^{-2}` and scale
    :math:`e^\\mu \\sigma^2`; :math:`Q = 0` is ``LogNormal(mu, sigma)``
    (used for :math:`|Q| < 10^{-8}`).  scipy equivalent:
    ``gengamma(a=Q**-2, c=Q/sigma, scale=exp(mu) * Q**(2*sigma/Q))``.
    Mean: :math:`e^\\mu \\gamma^{-\\sigma/Q}\\Gamma(\\gamma + \\sigma/Q)/\\Gamma(\\gamma)`
    if :math:`\\gamma + \\sigma/Q > 0`, else ``inf``.

    Parameters
    ----------
    mu : float
        Location on the log-time scale (log-months), any real number.
    sigma : float
        Scale on the log-time scale, :math:`\\sigma > 0`.
    Q : float
        Shape, any real number.
    """

    family: ClassVar[str] = "gengamma"
    mu: float
    sigma: float
    Q: float

    def __post_init__(self):
        object.__setattr__(self, "mu", _real(self.family, "mu", self.mu))
        object.__setattr__(self, "sigma", _positive(self.family, "sigma", self.sigma))
        object.__setattr__(self, "Q", _real(self.family, "Q", self.Q))

    def _lognormal(self) -> bool:
        return abs(self.Q) < _GENGAMMA_Q_EPS

    def _u(self, t):
        """:math:`u = \\gamma e^{Q w}` for ``t >= 0`` (flat array)."""
        Q = self.Q
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            w = (np.log(t) - self.mu) / self.sigma
            return np.exp(-2.0 * math.log(abs(Q)) + Q * w)

    def cumhazard(self, t):
        if self._lognormal():
            return _lognormal_cumhazard(t, self.mu, self.sigma)
        t = np.maximum(_arr(t), 0.0)
        shape = t.shape
        u = self._u(t.ravel())
        g = self.Q**-2
        P = _gammainc_lower(g, u)
        with np.errstate(divide="ignore"):
            if self.Q > 0.0:  # S = 1 - P = Qc
                H = -np.log1p(-P)
                big = P > 0.5
                if big.any():
                    H[big] = -np.log(special.gammaincc(g, u[big]))
            else:  # S = P
                H = -np.log(P)
                big = P > 0.5
                if big.any():
                    H[big] = -np.log1p(-special.gammaincc(g, u[big]))
        return _out(H.reshape(shape))

    def inverse_cumhazard(self, h):
        if self._lognormal():
            return _lognormal_inverse_cumhazard(h, self.mu, self.sigma)
        h = _arr(h)
        shape = h.shape
        h = h.ravel()
        g = self.Q**-2
        s = np.exp(-h)  # survival level, accurate where small
        small = s < 0.5
        # upper-tail inverse (u with S = s) where s is small, lower-tail inverse
        # with 1 - s = -expm1(-h) where s is near 1
        tail_inv, head_inv = (
            (special.gammainccinv, _gammaincinv_lower)
            if self.Q > 0.0
            else (_gammaincinv_lower, special.gammainccinv)
        )
        u = np.empty_like(h)
        u[small] = tail_inv(g, s[small])
        rest = ~small
        u[rest] = head_inv(g, -np.expm1(-h[rest]))
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            w = (np.log(u) + 2.0 * math.log(abs(self.Q))) / self.Q
            t = np.exp(self.mu + self.sigma * w)
        return _out(t.reshape(shape))

    def _logpdf(self, t):
        """:math:`\\log f(t)` for ``t > 0``.

        Uses :math:`\\gamma \\log u - u - \\log\\Gamma(\\gamma) =
        (\\gamma\\log\\gamma - \\gamma - \\log\\Gamma(\\gamma)) - \\gamma (e^{Qw} - 1 - Qw)`,
        free of cancellation for large :math:`\\gamma`.
        """
        g = self.Q**-2
        with np.errstate(divide="ignore", invalid="ignore"):
            w = (np.log(t) - self.mu) / self.sigma
            return (
                math.log(abs(self.Q)) - np.log(self.sigma * t)
                + _log_stirling_gap(g) - g * _expm1mx(self.Q * w)
            )

    def hazard(self, t):
        if self._lognormal():
            return _lognormal_hazard(t, self.mu, self.sigma)
        t = _arr(t)
        Q, sigma, g = self.Q, self.sigma, self.Q**-2
        # limit at t = 0: f(t) ~ C t^(g Q / sigma - 1) for Q > 0, -> 0 for Q < 0
        e = g * Q / sigma - 1.0
        if Q < 0.0 or e > 0.0:
            at0 = 0.0
        elif e < 0.0:
            at0 = np.inf
        else:
            at0 = math.exp(math.log(abs(Q)) - math.log(sigma) + g * math.log(g)
                           - self.mu - math.lgamma(g))
        with np.errstate(invalid="ignore", over="ignore"):
            h = np.exp(self._logpdf(t) + _arr(self.cumhazard(t)))
        return _out(np.where(t > 0.0, h, np.where(t == 0.0, at0, 0.0)))

    def mean(self) -> float:
        if self._lognormal():
            return math.exp(self.mu + 0.5 * self.sigma**2)
        g, r = self.Q**-2, self.sigma / self.Q
        if g + r <= 0.0:
            return math.inf
        return math.exp(self.mu - r * math.log(g) + math.lgamma(g + r) - math.lgamma(g))

    @classmethod
    def from_median(cls, median: float, *, sigma: float, Q: float) -> GeneralizedGamma:
        """Generalised gamma with median ``median``: :math:`\\mu = \\ln m - \\sigma w_{1/2}`.

        :math:`w_{1/2} = \\ln(u_{1/2}/\\gamma)/Q`, with :math:`u_{1/2}` the
        median of :math:`\\mathrm{Gamma}(\\gamma, 1)` (:math:`w_{1/2} = 0` for Q = 0).
        """
        m = _positive(cls.family, "median", median)
        s = _positive(cls.family, "sigma", sigma)
        q = _real(cls.family, "Q", Q)
        if abs(q) < _GENGAMMA_Q_EPS:
            w = 0.0
        else:
            g = q**-2
            w = (math.log(float(special.gammaincinv(g, 0.5))) - math.log(g)) / q
        return cls(mu=math.log(m) - s * w, sigma=s, Q=q)


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------
FAMILIES: dict[str, type[SurvivalDistribution]] = {
    cls.family: cls
    for cls in (Exponential, Weibull, Gompertz, LogLogistic, LogNormal, GeneralizedGamma)
}


def _family_class(family: str) -> type[SurvivalDistribution]:
    try:
        return FAMILIES[family]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown distribution family {family!r}; choose one of {', '.join(FAMILIES)}"
        ) from None


def make_distribution(family: str, **params) -> SurvivalDistribution:
    """Build a distribution from its family name and parameters.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES` (``"exponential"``, ``"weibull"``,
        ``"gompertz"``, ``"loglogistic"``, ``"lognormal"``, ``"gengamma"``).
    **params : float
        The family's parameters by name, e.g. ``scale=12.0, shape=1.3``
        (as returned by :meth:`SurvivalDistribution.params`).

    Raises
    ------
    ValueError
        Unknown family, missing/unexpected parameter names, or invalid values.
    """
    cls = _family_class(family)
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise ValueError(
            f"{family} parameters are ({', '.join(names)}); "
            f"missing {missing}, unexpected {extra}"
        )
    return cls(**params)


def from_median(family: str, median: float, **shape) -> SurvivalDistribution:
    """Build a distribution of ``family`` with the given median and shape(s).

    Shape keywords per family: exponential -- none; weibull, gompertz,
    loglogistic -- ``shape``; lognormal -- ``sigma``; gengamma -- ``sigma``, ``Q``.
    """
    cls = _family_class(family)
    try:
        return cls.from_median(median, **shape)
    except TypeError as exc:
        raise ValueError(f"{family}.from_median: {exc}") from None
