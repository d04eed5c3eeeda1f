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
#: |Q| below which the generalised gamma uses Temme's uniform asymptotic
#: expansion instead of scipy's incomplete gamma functions (whose lower tail
#: loses accuracy for shape 1/Q^2 >~ 3e5; relative errors reach 1e-1 at 1e8).
_TEMME_Q = 3e-3


def _coef(*fractions):
    """Series coefficients given lowest order first, returned highest first for ``np.polyval``."""
    return np.array(fractions[::-1], dtype=float)


#: r(y) = 2 (e^y - 1 - y) / y^2 = sum_{n >= 2} 2 y^(n-2) / n!
_R_COEF = _coef(*(2.0 / math.factorial(n) for n in range(2, 20)))
# Temme (1979), DLMF 8.12: eta = sign(y) sqrt(2 (e^y - 1 - y)) with y = log(x/a);
# Taylor series in eta of y/eta and of the coefficients c0(eta), c1(eta).
_Y_OVER_ETA = _coef(
    1, -1 / 6, 1 / 36, -1 / 270, 1 / 4320, 1 / 17010, -139 / 5443200, 1 / 204120,
    -571 / 2351462400, -281 / 1515591000, 163879 / 2172751257600, -5221 / 354648294000,
)
_TEMME_C0 = _coef(
    -1 / 3, 1 / 12, -2 / 135, 1 / 864, 1 / 2835, -139 / 777600, 1 / 25515, -571 / 261273600,
    -281 / 151559100, 163879 / 197522841600, -5221 / 29554024500, 5246819 / 782190452736000,
)
_TEMME_C1 = _coef(
    -1 / 540, -1 / 288, 1 / 378, -77 / 77760, 1 / 4860, -1 / 2488320, -2743 / 151559100,
    41969 / 5486745600, -11 / 6823440, 47207 / 10158317568000, 3761 / 27280638000,
    -3599669 / 62575236218880,
)


def _arr(x):
    """Return ``x`` as a float ndarray (no copy when already one)."""
    return np.asarray(x, dtype=float)


def _out(x):
    """Return 0-d arrays as numpy float scalars, other arrays unchanged."""
    return np.asarray(x)[()]


def _r(y):
    """:math:`r(y) = 2(e^y - 1 - y)/y^2` (so :math:`r(0) = 1`), without cancellation."""
    y = _arr(y)
    small = np.abs(y) < 0.5
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        big = 2.0 * (np.expm1(y) - y) / (y * y)
    big = np.where(np.isinf(y), np.where(y > 0, np.inf, 0.0), big)
    return np.where(small, np.polyval(_R_COEF, np.where(small, y, 0.0)), big)


def log_stirling_gap(a: float) -> float:
    """:math:`a \\log a - a - \\log\\Gamma(a)`, accurate for large ``a``."""
    if a < 100.0:
        return a * math.log(a) - a - math.lgamma(a)
    return 0.5 * math.log(a / (2 * math.pi)) - 1 / (12 * a) + 1 / (360 * a**3) - 1 / (1260 * a**5)


def _temme_logsf(zeta, Q: float):
    """Generalised gamma :math:`\\log S` for small ``|Q|`` as a function of :math:`\\zeta`.

    With :math:`\\eta = Q\\zeta`, Temme's expansion of the incomplete gamma
    function (DLMF 8.12.3-8.12.4) gives, for either sign of ``Q``,

    .. math::
        S = \\Phi(-\\zeta) + Q\\,\\phi(\\zeta)\\,\\{c_0(\\eta) + Q^2 c_1(\\eta) + O(Q^4)\\}.

    Returns ``(log S, m, corr)`` with ``m = phi(zeta)/Phi(-zeta)`` and ``corr``
    the relative correction ``Q (c0 + Q^2 c1) m``.  ``zeta`` must be finite.
    """
    eta = np.clip(Q * zeta, -1.0, 1.0)  # c0, c1 series converge for |eta| < 2 sqrt(pi)
    c = np.polyval(_TEMME_C0, eta) + Q * Q * np.polyval(_TEMME_C1, eta)
    lsf = special.log_ndtr(-zeta)
    m = np.exp(-0.5 * zeta * zeta - _LOG_SQRT_2PI - lsf)
    corr = Q * c * m
    return lsf + np.log1p(corr), m, corr


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
    The exponent is :math:`Q w` (signed), exactly as in flexsurv's
    ``pgengamma``; with :math:`|Q| w` the survival would increase in
    :math:`t` for :math:`Q < 0`.  Special cases: :math:`Q = 1` is
    ``Weibull(scale=e^mu, shape=1/sigma)``; :math:`Q = \\sigma` is the gamma
    distribution with shape :math:`\\sigma^{-2}` and scale
    :math:`e^\\mu \\sigma^2`; :math:`Q = 0` is ``LogNormal(mu, sigma)``.
    scipy equivalent: ``gengamma(a=Q**-2, c=Q/sigma, scale=exp(mu) * Q**(2*sigma/Q))``.
    Mean: :math:`e^\\mu \\gamma^{-\\sigma/Q}\\Gamma(\\gamma + \\sigma/Q)/\\Gamma(\\gamma)`
    if :math:`\\gamma + \\sigma/Q > 0`, else ``inf``.

    For :math:`0 < |Q| < 3\\cdot 10^{-3}` (:math:`\\gamma > 1.1\\cdot 10^5`) the
    incomplete gamma function is evaluated with Temme's uniform asymptotic
    expansion (see :func:`_temme_logsf`), which stays accurate in both tails
    and tends continuously to the log-normal as :math:`Q \\to 0`.

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

    def _w(self, t):
        """Standardised log time :math:`w = (\\ln t - \\mu)/\\sigma` (``-inf`` at 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.log(t) - self.mu) / self.sigma

    # -- cumulative hazard --------------------------------------------------
    def cumhazard(self, t):
        Q = self.Q
        if Q == 0.0:
            return _lognormal_cumhazard(t, self.mu, self.sigma)
        t = np.maximum(_arr(t), 0.0)
        shape = t.shape
        w = self._w(t.ravel())
        if abs(Q) < _TEMME_Q:
            H = self._temme_cumhazard(w)
        else:
            H = self._gamma_cumhazard(w)
        return _out(H.reshape(shape))

    def _gamma_cumhazard(self, w):
        """:math:`H` from scipy's incomplete gamma functions (``|Q| >= 3e-3``)."""
        Q = self.Q
        g = Q**-2
        with np.errstate(over="ignore", invalid="ignore"):
            u = np.exp(Q * w - 2.0 * math.log(abs(Q)))
        P = special.gammainc(g, u)
        big = P > 0.5  # use whichever of P, 1 - P is the small tail
        with np.errstate(divide="ignore"):
            if Q > 0.0:  # S = 1 - P
                H = -np.log1p(-P)
                if big.any():
                    H[big] = -np.log(special.gammaincc(g, u[big]))
            else:  # S = P
                H = -np.log(P)
                if big.any():
                    H[big] = -np.log1p(-special.gammaincc(g, u[big]))
        return H

    def _temme_cumhazard(self, w):
        """:math:`H` from Temme's expansion (``0 < |Q| < 3e-3``)."""
        # zeta = sign(w) sqrt(2 gamma (e^y - 1 - y)) = w sqrt(r(y)), y = Q w
        with np.errstate(invalid="ignore"):
            zeta = np.where(np.isinf(w), w, w * np.sqrt(_r(self.Q * w)))
        H = np.full_like(zeta, np.inf)
        H[np.isnan(zeta)] = np.nan
        H[zeta == -np.inf] = 0.0
        fin = np.isfinite(zeta)
        H[fin] = -_temme_logsf(zeta[fin], self.Q)[0]
        return H

    # -- inverse cumulative hazard -------------------------------------------
    def inverse_cumhazard(self, h):
        Q = self.Q
        if Q == 0.0:
            return _lognormal_inverse_cumhazard(h, self.mu, self.sigma)
        h = _arr(h)
        shape = h.shape
        h = h.ravel()
        w = self._temme_inverse_w(h) if abs(Q) < _TEMME_Q else self._gamma_inverse_w(h)
        with np.errstate(over="ignore"):
            return _out(np.exp(self.mu + self.sigma * w).reshape(shape))

    def _gamma_inverse_w(self, h):
        """:math:`w` with :math:`H = h` via scipy's incomplete gamma inverses."""
        Q = self.Q
        g = Q**-2
        s = np.exp(-h)  # survival level, accurate where small
        small = s < 0.5
        rest = ~small
        # invert the small tail: S = s where s < 1/2, else 1 - S = -expm1(-h)
        tail_inv, head_inv = (
            (special.gammainccinv, special.gammaincinv)
            if Q > 0.0
            else (special.gammaincinv, special.gammainccinv)
        )
        u = np.empty_like(h)
        u[small] = tail_inv(g, s[small])
        u[rest] = head_inv(g, -np.expm1(-h[rest]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.log(u) + 2.0 * math.log(abs(Q))) / Q

    def _temme_inverse_w(self, h):
        """:math:`w` with :math:`H = h` via Newton steps on Temme's expansion."""
        Q = self.Q
        zeta = -special.ndtri_exp(-h)  # log-normal start, exact for Q -> 0
        fin = np.isfinite(zeta)
        z, target = zeta[fin], -h[fin]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for _ in range(3):  # converges like O(Q^2) per step
                logsf, m, corr = _temme_logsf(z, Q)
                # d log S / d zeta, neglecting the O(Q^2) slope of c0 + Q^2 c1
                slope = -m + corr * (m - z) / (1.0 + corr)
                step = (logsf - target) / slope
                z = z - np.where(np.isfinite(step), step, 0.0)
        zeta[fin] = z
        # back from zeta to w = y / Q, with e^y - 1 - y = eta^2 / 2, eta = Q zeta
        eta = Q * zeta
        w = zeta * np.polyval(_Y_OVER_ETA, np.clip(eta, -0.25, 0.25))
        far = np.abs(eta) > 0.25  # beyond any representable survival; Newton on y
        if far.any():
            e, c = eta[far], 0.5 * eta[far] ** 2
            with np.errstate(over="ignore", invalid="ignore"):
                y = np.where(e > 0, np.log1p(c + np.log1p(c)), -1.0 - c)
                for _ in range(40):
                    y = y - (0.5 * y * y * _r(y) - c) / np.expm1(y)
            w[far] = np.where(np.isinf(e), zeta[far], y / Q)
        return w

    # -- density and hazard --------------------------------------------------
    def _logpdf(self, t):
        """:math:`\\log f(t)` for ``t > 0``.

        Written as :math:`-\\log(\\sigma t) + K(Q) - \\tfrac12 w^2 r(Qw)` with
        :math:`K = \\log|Q| + \\gamma\\log\\gamma - \\gamma - \\log\\Gamma(\\gamma)`
        and :math:`r(y) = 2(e^y - 1 - y)/y^2`, free of cancellation for large
        :math:`\\gamma` and equal to the log-normal density at :math:`Q = 0`.
        """
        Q = self.Q
        if abs(Q) <= 0.1:  # Stirling series, gamma >= 100
            K = -_LOG_SQRT_2PI - Q**2 / 12 + Q**6 / 360 - Q**10 / 1260
        else:
            K = math.log(abs(Q)) + log_stirling_gap(Q**-2)
        w = self._w(t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return -np.log(self.sigma * t) + K - 0.5 * w * w * _r(Q * w)

    def hazard(self, t):
        Q, sigma = self.Q, self.sigma
        if Q == 0.0:
            return _lognormal_hazard(t, self.mu, sigma)
        t = _arr(t)
        # limit at t = 0: f(t) ~ C t^(1/(Q sigma) - 1) for Q > 0, -> 0 for Q < 0
        e = 1.0 / (Q * sigma) - 1.0
        if Q < 0.0 or e > 0.0:
            at0 = 0.0
        elif e < 0.0:
            at0 = np.inf
        else:
            g = Q**-2
            at0 = math.exp(math.log(abs(Q)) - math.log(sigma) + g * math.log(g)
                           - self.mu - math.lgamma(g))
        with np.errstate(invalid="ignore", over="ignore"):
            h = np.exp(self._logpdf(t) + _arr(self.cumhazard(t)))
        return _out(np.where(t > 0.0, h, np.where(t == 0.0, at0, 0.0)))

    def mean(self) -> float:
        Q, sigma = self.Q, self.sigma
        x = sigma * Q  # = r / g with g = Q^-2, r = sigma / Q
        if 1.0 + x <= 0.0:
            return math.inf
        # log[Gamma(g + r) / (Gamma(g) g^r)] = g h(x) + gap(g) - gap(g + r),
        # h(x) = (1 + x) log1p(x) - x, gap(a) = a log a - a - lgamma(a)
        if abs(x) < 0.1:
            g_h = sigma**2 * sum((-x) ** (n - 2) / (n * (n - 1)) for n in range(2, 30))
        else:
            g_h = ((1.0 + x) * math.log1p(x) - x) / Q**2
        if Q == 0.0:
            d_gap = 0.0
        elif abs(Q) < _TEMME_Q and 1.0 + x > 1e-3:  # Stirling series, no overflow in g
            d_gap = -0.5 * math.log1p(x) - Q**2 / 12 * x / (1 + x) + Q**6 / 360 * (1 - (1 + x) ** -3)
        else:
            g = Q**-2
            d_gap = log_stirling_gap(g) - log_stirling_gap(g * (1.0 + x))
        return math.exp(self.mu + g_h + d_gap)

    @classmethod
    def from_median(cls, median: float, *, sigma: float, Q: float) -> GeneralizedGamma:
        """Generalised gamma with median ``median``: :math:`\\mu = \\ln m - \\ln t_{1/2}(\\mu=0)`."""
        m = _positive(cls.family, "median", median)
        unit = cls(mu=0.0, sigma=sigma, Q=Q)
        return cls(mu=math.log(m) - math.log(unit.median()), sigma=unit.sigma, Q=unit.Q)


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
