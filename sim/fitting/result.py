"""Fit results shared by the IPD and summary-statistic fitters, and numerical derivatives.

A fit keeps its point estimate :math:`\\hat\\theta` and covariance :math:`\\hat\\Sigma`
on the unconstrained scale of :mod:`sim.fitting.parameterisation`, so that a
probabilistic analysis draws correlated parameters with
:math:`\\theta^{(s)} \\sim N(\\hat\\theta, \\hat\\Sigma)` (:meth:`ParametricFit.draw`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim.distributions import SurvivalDistribution
from sim.errors import UserError
from sim.fitting.parameterisation import from_theta, to_natural

__all__ = ["FitResult", "ParametricFit", "SummaryFit", "numerical_gradient", "numerical_hessian"]


def _frozen_array(x) -> np.ndarray:
    a = np.array(x, dtype=float)
    a.setflags(write=False)
    return a


def _steps(x, rel: float) -> np.ndarray:
    return rel * np.maximum(1.0, np.abs(x))


def numerical_gradient(f: Callable[[np.ndarray], float], x, rel: float = 1e-5) -> np.ndarray:
    """Central-difference gradient :math:`(f(x + h e_i) - f(x - h e_i)) / 2h`."""
    x = np.asarray(x, dtype=float)
    h = _steps(x, rel)
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        g[i] = (f(x + e) - f(x - e)) / (2.0 * h[i])
    return g


def numerical_hessian(f: Callable[[np.ndarray], float], x, grad: Callable | None = None,
                      rel: float | None = None) -> np.ndarray:
    """Symmetric finite-difference Hessian of the scalar ``f`` at ``x``.

    With an analytic gradient ``grad`` the Hessian is the central difference of the
    gradient (step :math:`10^{-5}\\max(1, |x_i|)`); otherwise the second central
    differences of ``f`` (step :math:`10^{-4}\\max(1, |x_i|)`):
    :math:`H_{ij} \\approx [f(x+h_i+h_j) - f(x+h_i-h_j) - f(x-h_i+h_j) + f(x-h_i-h_j)]/(4 h_i h_j)`.
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    H = np.empty((k, k))
    if grad is not None:
        h = _steps(x, 1e-5 if rel is None else rel)
        for i in range(k):
            e = np.zeros(k)
            e[i] = h[i]
            H[i] = (np.asarray(grad(x + e)) - np.asarray(grad(x - e))) / (2.0 * h[i])
        return 0.5 * (H + H.T)
    h = _steps(x, 1e-4 if rel is None else rel)
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(x + 2 * ei) - 2.0 * f0 + f(x - 2 * ei)) / (4.0 * h[i] ** 2)
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4.0 * h[i] * h[j])
    return H


def covariance_from_hessian(neg_hessian: np.ndarray) -> tuple[np.ndarray, bool]:
    """:math:`\\Sigma = (-\\nabla^2 \\ell)^{-1}` and whether it is positive definite (else NaNs)."""
    k = neg_hessian.shape[0]
    try:
        np.linalg.cholesky(neg_hessian)
        cov = np.linalg.inv(neg_hessian)
        return 0.5 * (cov + cov.T), True
    except np.linalg.LinAlgError:
        return np.full((k, k), np.nan), False


@dataclass(frozen=True, eq=False)
class ParametricFit:
    """A fitted parametric survival distribution with its uncertainty.

    Attributes
    ----------
    family : str
        Family name (key of :data:`sim.distributions.FAMILIES`).
    params : dict
        Natural parameters (constructor keywords of the distribution).
    distribution : SurvivalDistribution
        The distribution at the estimate.
    estimate : ndarray
        :math:`\\hat\\theta`, unconstrained parameters named by ``param_names``.
    cov : ndarray
        :math:`\\hat\\Sigma`, covariance of :math:`\\hat\\theta` (NaN if unavailable).
    param_names : tuple of str
        Names of the unconstrained parameters.
    loglik : float
        Maximised log-likelihood.
    converged : bool
        Optimiser success and a positive-definite information matrix.
    """

    family: str
    params: dict
    distribution: SurvivalDistribution
    estimate: np.ndarray
    cov: np.ndarray
    param_names: tuple
    loglik: float
    converged: bool

    def se(self) -> dict[str, float]:
        """Standard errors :math:`\\sqrt{\\hat\\Sigma_{ii}}` of the unconstrained parameters."""
        return dict(zip(self.param_names, np.sqrt(np.diag(self.cov)).tolist(), strict=True))

    def quantity_ci(self, quantity: Callable[[SurvivalDistribution], float], level: float = 0.95,
                    log: bool = True) -> tuple[float, float, float]:
        """Delta-method interval for a scalar function of the distribution.

        With :math:`g(\\theta)` = ``quantity(distribution)`` (on the log scale if ``log``),
        :math:`\\mathrm{se} = \\sqrt{\\nabla g^\\top \\hat\\Sigma \\nabla g}` and the interval
        :math:`g \\pm z\\,\\mathrm{se}` (exponentiated back if ``log``).

        Returns
        -------
        (estimate, lower, upper)
        """
        if not 0.0 < level < 1.0:
            raise UserError(f"level must be in (0, 1), got {level!r}")
        tr = (lambda v: math.log(v)) if log else (lambda v: v)  # noqa: E731
        g = lambda th: tr(float(quantity(from_theta(self.family, th))))  # noqa: E731
        est = g(self.estimate)
        grad = numerical_gradient(g, self.estimate, rel=1e-6)
        se = math.sqrt(float(grad @ self.cov @ grad))
        z = stats.norm.ppf(0.5 + level / 2.0)
        lo, hi = est - z * se, est + z * se
        back = math.exp if log else (lambda v: v)
        return back(est), back(lo), back(hi)

    def median_ci(self, level: float = 0.95) -> tuple[float, float, float]:
        """Median with its delta-method interval on the log scale: ``(median, lower, upper)``."""
        return self.quantity_ci(lambda d: d.median(), level=level, log=True)

    def draw_theta(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` x k draws :math:`\\theta^{(s)} \\sim N(\\hat\\theta, \\hat\\Sigma)` (unconstrained scale).

        Components with zero variance (parameters fixed by assumption, see
        ``fixed`` of :func:`sim.fitting.summary.fit_summary`) stay at their estimate;
        the others are drawn jointly with the Cholesky factor of their covariance block,
        :math:`\\theta_F = \\hat\\theta_F + L z`, :math:`L L^\\top = \\hat\\Sigma_{FF}`, :math:`z \\sim N(0, I)`.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise UserError(f"n must be a non-negative integer, got {n!r}")
        if not np.all(np.isfinite(self.cov)):
            raise UserError(
                f"cov of the {self.family} fit must be finite to draw (no uncertainty was reported), "
                f"got {np.asarray(self.cov).tolist()!r}"
            )
        est = np.asarray(self.estimate, dtype=float)
        cov = np.asarray(self.cov, dtype=float)
        free = np.diag(cov) > 0.0
        out = np.tile(est, (int(n), 1))
        if free.any():
            L = np.linalg.cholesky(cov[np.ix_(free, free)])
            z = rng.standard_normal((int(n), int(free.sum())))
            out[:, free] += z @ L.T
        return out

    def draw(self, n: int, rng: np.random.Generator) -> list[SurvivalDistribution]:
        """``n`` distributions at correlated parameter draws (see :meth:`draw_theta`).

        Used by a probabilistic sensitivity analysis: the correlation between the
        parameters of the fit is kept.
        """
        return [from_theta(self.family, th) for th in self.draw_theta(n, rng)]

    def draw_params(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` draws of the natural parameters (one column per constructor keyword)."""
        return pd.DataFrame([to_natural(self.family, th) for th in self.draw_theta(n, rng)])


@dataclass(frozen=True, eq=False)
class FitResult(ParametricFit):
    """Maximum-likelihood fit to individual patient data (right censored).

    Adds :math:`\\mathrm{AIC} = 2k - 2\\ell`, :math:`\\mathrm{BIC} = k\\log n - 2\\ell`,
    the number of observations ``n`` and of events ``n_events``.
    """

    aic: float
    bic: float
    n: int
    n_events: int


@dataclass(frozen=True, eq=False)
class SummaryFit(ParametricFit):
    """Fit to published summary statistics (see :func:`sim.fitting.summary.fit_summary`).

    Adds ``constraints`` (one row per piece of information: target, fitted value,
    standard error, z, whether it binds), ``exact`` (as many constraints as free
    parameters), ``fixed`` (names of the unconstrained parameters held at an assumed
    value, zero variance) and, for a fit against a reference arm, the joint parameter vector
    (reference :math:`\\theta` + log effect) with its covariance.
    """

    constraints: pd.DataFrame
    exact: bool
    fixed: tuple = ()
    joint_names: tuple = ()
    joint_estimate: np.ndarray | None = None
    joint_cov: np.ndarray | None = None
