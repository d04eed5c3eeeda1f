"""Value of information and decision uncertainty from probabilistic sensitivity analysis.

All functions take net benefit (or costs and QALYs) as arrays with one row per PSA sample
(``S``) and one column per strategy (``D``).

* :func:`evpi` -- expected value of perfect information,
  ``EVPI = E_theta[max_d NB_d(theta)] - max_d E_theta[NB_d(theta)]``, with its Monte Carlo SE.
* :func:`evppi` -- expected value of partial perfect information for a subset ``phi`` of the
  parameters by the regression (non-parametric) method of Strong, Oakley & Brennan,
  Med Decis Making 2014;34:311-326: for every strategy ``d`` other than the first, the
  incremental net benefit ``INB_d = NB_d - NB_0`` is regressed on ``phi``; the fitted values
  ``g_d(phi)`` estimate ``E[INB_d | phi]`` and
  ``EVPPI = mean_s max(0, g_1(phi_s), ..., g_{D-1}(phi_s)) - max(0, mean_s g_1, ..., mean_s g_{D-1})``.
  Regression: ``"gam"`` -- a penalised regression spline (P-spline: cubic B-spline basis with
  a second-order difference penalty, smoothing parameter by generalised cross-validation;
  a tensor-product basis for two parameters), the analogue of mgcv's ``s()``/``te()`` used
  by Strong et al.; ``"gp"`` -- Gaussian-process regression (scikit-learn
  ``GaussianProcessRegressor``, constant x anisotropic RBF + white-noise kernel, inputs
  standardised, hyperparameters by maximum marginal likelihood), recommended by Strong et al.
  for more than two parameters. ``"auto"`` picks ``gam`` for 1-2 parameters, ``gp`` above.
  A GP fit is kept only when it predicts held-out samples better than their mean (5-fold
  cross-validation, :func:`gp_is_predictive`); otherwise -- typically few samples and many
  parameters, where the fit interpolates the Monte Carlo noise -- the fitted values are the mean
  and that contrast contributes 0 (method ``"gp, not predictive in cross-validation"``).
  Regression-based EVPPI needs many PSA samples (Strong et al. used 1,000 and more); with
  fewer it is biased (upwards by overfitting, downwards by this guard).
  When one strategy has the highest NB in every sample, EVPPI is 0 for every subset (the
  conditional expectations keep the order) and is returned as such (method ``"dominance"``).
  Uncertainty: a bootstrap over PSA samples of the fitted values (the Monte Carlo error of the
  outer expectation; the regression's own error is not propagated) -> SE and percentile CI.
* :func:`ceac` -- cost-effectiveness acceptability curves: at each willingness to pay (WTP)
  ``lambda``, the share of samples in which each strategy has the highest NMB
  ``lambda * QALY - cost`` (ties go to the first strategy, so columns sum to 1).
* :func:`ce_frontier` -- the cost-effectiveness acceptability frontier (CEAF): the strategy
  with the highest *expected* NMB at each WTP and its probability of being cost-effective.
* :func:`convergence` -- running mean (and MC 95 % band) of incremental net benefit against
  the number of samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import UserError

Z95 = 1.959963984540054


def _nb_matrix(nb, name: str = "nb") -> np.ndarray:
    a = np.asarray(nb, float)
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 1:
        raise UserError(f"{name} must be a 2-d array [samples x strategies] with >= 2 samples, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise UserError(f"{name} must be finite, got {int((~np.isfinite(a)).sum())} non-finite values")
    return a


@dataclass(frozen=True)
class VoiResult:
    """An EVPI or EVPPI estimate with its Monte Carlo SE and a 95 % interval."""

    value: float
    se: float
    lo: float
    hi: float
    method: str = ""

    def as_dict(self) -> dict:
        return {"value": self.value, "se": self.se, "lo": self.lo, "hi": self.hi, "method": self.method}


def evpi(nb) -> float:
    """``mean_s max_d nb[s, d] - max_d mean_s nb[s, d]`` (per-person EVPI, NB units)."""
    a = _nb_matrix(nb)
    return float(a.max(axis=1).mean() - a.mean(axis=0).max())


def evpi_se(nb) -> VoiResult:
    """EVPI with MC standard error: the SE of the mean of ``max_d nb - nb_{d*}`` where ``d*`` is
    the strategy with the highest mean (the choice of ``d*`` is treated as fixed)."""
    a = _nb_matrix(nb)
    best = int(np.argmax(a.mean(axis=0)))
    loss = a.max(axis=1) - a[:, best]
    v = float(loss.mean())
    se = float(loss.std(ddof=1) / math.sqrt(len(loss)))
    return VoiResult(v, se, max(v - Z95 * se, 0.0), v + Z95 * se, "definition")


# --------------------------------------------------------------------------- regressions
def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def _bspline_basis(x: np.ndarray, n_basis: int, degree: int = 3) -> np.ndarray:
    """Cubic B-spline basis on quantile-spaced knots (``n_basis`` columns)."""
    from scipy.interpolate import BSpline

    n_inner = max(n_basis - degree + 1, 2)
    inner = np.unique(np.quantile(x, np.linspace(0, 1, n_inner)))
    if inner.size < 2:  # constant column
        return np.ones((x.size, 1))
    t = np.r_[[inner[0]] * degree, inner, [inner[-1]] * degree]
    xx = np.clip(x, inner[0], inner[-1])
    B = BSpline.design_matrix(xx, t, degree).toarray()
    return B


def _diff_penalty(m: int, order: int = 2) -> np.ndarray:
    if m <= order:
        return np.zeros((m, m))
    D = np.diff(np.eye(m), n=order, axis=0)
    return D.T @ D


def fit_gam(x: np.ndarray, y: np.ndarray, n_basis: int | None = None) -> np.ndarray:
    """Fitted values of a penalised regression spline of ``y`` on ``x`` (1 or 2 columns).

    P-spline: cubic B-splines, second-order difference penalty (per margin for a tensor
    product), one smoothing parameter chosen by GCV over a log grid. Returns ``E[y | x]`` at
    the data points.
    """
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    n, k = x.shape
    if k > 2:
        raise UserError(f"evppi method 'gam' handles 1 or 2 parameters, got {k}; use method='gp'")
    if n_basis is None:
        n_basis = int(min(20 if k == 1 else 8, max(4, n // (10 if k == 1 else 20))))
    Bs = [_bspline_basis(x[:, j], n_basis) for j in range(k)]
    if k == 1:
        B = Bs[0]
        P = _diff_penalty(B.shape[1])
    else:
        B = np.einsum("ni,nj->nij", Bs[0], Bs[1]).reshape(n, -1)
        m1, m2 = Bs[0].shape[1], Bs[1].shape[1]
        P = np.kron(_diff_penalty(m1), np.eye(m2)) + np.kron(np.eye(m1), _diff_penalty(m2))
    BtB, Bty = B.T @ B, B.T @ y
    scale = np.trace(BtB) / max(np.trace(P), 1e-12)
    best = None
    for lam in np.logspace(-6, 4, 41) * scale:
        A = BtB + lam * P + 1e-10 * scale * np.eye(B.shape[1])
        try:
            coef = np.linalg.solve(A, Bty)
            edf = float(np.trace(np.linalg.solve(A, BtB)))
        except np.linalg.LinAlgError:
            continue
        rss = float(np.sum((y - B @ coef) ** 2))
        gcv = n * rss / max(n - edf, 1e-9) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, coef)
    return B @ best[1]


def _gp(xs: np.ndarray, yz: np.ndarray, seed: int):
    """A fitted scikit-learn GP (constant x anisotropic RBF + white noise) on standardised data."""
    import warnings

    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from threadpoolctl import threadpool_limits

    k = xs.shape[1]
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.ones(k), (1e-2, 1e3)) + WhiteKernel(0.5, (1e-6, 1e1))
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=False, n_restarts_optimizer=1, random_state=seed)
    # one BLAS thread: the n x n Cholesky factorisations are small, and threads only contend
    # (5x slower on a loaded 2-core machine, with identical results)
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        gp.fit(xs, yz)
    return gp


def _standardised_xy(x: np.ndarray, y: np.ndarray):
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    ym, ysd = float(y.mean()), float(y.std()) or 1.0
    return _standardise(x), (y - ym) / ysd, ym, ysd


def fit_gp(x: np.ndarray, y: np.ndarray, seed: int = 0, max_fit: int = 1500) -> np.ndarray:
    """Fitted posterior mean of a GP regression of ``y`` on ``x`` (any number of columns).

    Kernel ``C * RBF(anisotropic) + White``, standardised inputs and outputs, hyperparameters by
    maximum marginal likelihood. They are estimated on at most ``max_fit`` samples (a fixed
    random subset) to bound the O(n^3) cost, and the posterior mean is conditioned on them.
    """
    xs, yz, ym, ysd = _standardised_xy(x, y)
    idx = np.arange(len(y))
    if len(y) > max_fit:
        idx = np.sort(np.random.default_rng(seed).choice(len(y), max_fit, replace=False))
    return _gp(xs[idx], yz[idx], seed).predict(xs) * ysd + ym


def gp_is_predictive(x: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5, max_n: int = 500) -> bool:
    """Whether a GP of ``y`` on ``x`` predicts held-out samples better than their mean.

    ``folds``-fold cross-validation on at most ``max_n`` samples (a fixed random subset), the
    hyperparameters re-estimated in every fold: True when the GP's mean squared prediction error
    is below that of the training-fold mean. With few PSA samples and several parameters the
    marginal-likelihood fit can interpolate the Monte Carlo noise of ``y`` (white noise at its
    lower bound) and the EVPPI would then approach the EVPI for parameters unrelated to the net
    benefit; a fit with no out-of-sample predictive value is replaced by the mean (EVPPI 0).
    """
    xs, yz, _, _ = _standardised_xy(x, y)
    rng = np.random.default_rng(seed + 1)
    idx = np.arange(len(yz)) if len(yz) <= max_n else np.sort(rng.choice(len(yz), max_n, replace=False))
    xs, yz = xs[idx], yz[idx]
    fold = rng.permutation(len(yz)) % folds
    err_gp = err_mean = 0.0
    for f in range(folds):
        tr, te = fold != f, fold == f
        if tr.sum() < 3 or te.sum() == 0:
            continue
        err_gp += float(np.sum((_gp(xs[tr], yz[tr], seed).predict(xs[te]) - yz[te]) ** 2))
        err_mean += float(np.sum((yz[tr].mean() - yz[te]) ** 2))
    return err_gp < err_mean


def _fit(method: str, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, bool]:
    """Fitted ``E[y | x]`` and whether it was replaced by the mean (GP without predictive value)."""
    if np.ptp(y) == 0:
        return np.full_like(y, y.mean()), False
    if method == "gam":
        return fit_gam(x, y), False
    if method == "gp":
        if not gp_is_predictive(x, y, seed):
            return np.full_like(y, y.mean()), True
        return fit_gp(x, y, seed=seed), False
    raise UserError(f"evppi method must be one of ['auto', 'gam', 'gp'], got {method!r}")


def evppi(nb, params, method: str = "auto", n_boot: int = 500, seed: int = 0) -> VoiResult:
    """EVPPI of the parameters ``params`` (array ``[S]`` or ``[S x k]``) by regression.

    See the module docstring for the method and its interval (bootstrap of the fitted values).
    """
    a = _nb_matrix(nb)
    x = np.asarray(params, float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != a.shape[0]:
        raise UserError(f"evppi params must have one row per sample ({a.shape[0]}), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UserError("evppi params must be finite")
    if method == "auto":
        method = "gam" if x.shape[1] <= 2 else "gp"
    if a.shape[1] == 1:
        return VoiResult(0.0, 0.0, 0.0, 0.0, method)
    best = int(np.argmax(a.mean(axis=0)))
    if np.all(a[:, best] >= a.max(axis=1)):
        # one strategy is optimal in every sample: NB_best >= NB_d for every theta, hence also
        # E[NB_best | phi] >= E[NB_d | phi] for every phi, and EVPPI = 0 exactly (no regression)
        return VoiResult(0.0, 0.0, 0.0, 0.0, "dominance")
    inb = a[:, 1:] - a[:, [0]]
    fits = [_fit(method, x, inb[:, d], seed) for d in range(inb.shape[1])]
    fitted = np.column_stack([f for f, _ in fits])
    nulled = sum(n for _, n in fits)
    if nulled:
        method = f"{method}, not predictive in cross-validation" + (
            "" if nulled == len(fits) else f" for {nulled} of {len(fits)} contrasts")
    g = np.column_stack([np.zeros(len(fitted)), fitted])
    value = float(g.max(axis=1).mean() - g.mean(axis=0).max())
    value = max(value, 0.0)
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    S = len(g)
    for b in range(n_boot):
        gb = g[rng.integers(0, S, S)]
        boots[b] = gb.max(axis=1).mean() - gb.mean(axis=0).max()
    se = float(boots.std(ddof=1)) if n_boot > 1 else math.nan
    lo, hi = (np.quantile(boots, [0.025, 0.975]) if n_boot > 1 else (math.nan, math.nan))
    return VoiResult(value, se, float(max(lo, 0.0)), float(hi), method)


# --------------------------------------------------------------------------- CEAC / CEAF
def _wtp(wtp_grid) -> np.ndarray:
    w = np.atleast_1d(np.asarray(wtp_grid, float))
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise UserError(f"wtp grid must be a non-empty list of numbers >= 0, got {list(np.ravel(w))!r}")
    return w


def _cq(costs, qalys):
    c, q = _nb_matrix(costs, "costs"), _nb_matrix(qalys, "qalys")
    if c.shape != q.shape:
        raise UserError(f"costs and qalys must have the same shape, got {c.shape} and {q.shape}")
    return c, q


def net_benefit(costs, qalys, wtp: float) -> np.ndarray:
    """Net monetary benefit ``wtp * qalys - costs`` per sample and strategy."""
    c, q = _cq(costs, qalys)
    return wtp * q - c


def ceac(costs, qalys, wtp_grid, strategies=None) -> pd.DataFrame:
    """Probability that each strategy has the highest NMB at each WTP.

    Returns a long table ``wtp, strategy, probability`` (probabilities sum to 1 per WTP).
    """
    c, q = _cq(costs, qalys)
    w = _wtp(wtp_grid)
    names = list(strategies) if strategies is not None else [f"s{d}" for d in range(c.shape[1])]
    rows = []
    for lam in w:
        best = np.argmax(lam * q - c, axis=1)
        p = np.bincount(best, minlength=c.shape[1]) / c.shape[0]
        rows += [(float(lam), names[d], float(p[d])) for d in range(c.shape[1])]
    return pd.DataFrame(rows, columns=["wtp", "strategy", "probability"])


def ce_frontier(costs, qalys, wtp_grid, strategies=None) -> pd.DataFrame:
    """CEAF: at each WTP the strategy with the highest expected NMB, its expected NMB, the
    probability it is cost-effective, and the per-person EVPI at that WTP."""
    c, q = _cq(costs, qalys)
    w = _wtp(wtp_grid)
    names = list(strategies) if strategies is not None else [f"s{d}" for d in range(c.shape[1])]
    rows = []
    for lam in w:
        nb = lam * q - c
        mean = nb.mean(axis=0)
        d = int(np.argmax(mean))
        p = float(np.mean(np.argmax(nb, axis=1) == d))
        e = evpi_se(nb)
        rows.append((float(lam), names[d], float(mean[d]), p, e.value, e.se))
    return pd.DataFrame(rows, columns=["wtp", "optimal_strategy", "expected_nmb", "probability_cost_effective",
                                       "evpi", "evpi_se"])


def convergence(inb, steps: int = 50) -> pd.DataFrame:
    """Running mean of incremental net benefit ``inb`` ([S]) with its MC 95 % band, at
    ``steps`` sample counts from 2 to S (for a convergence plot)."""
    x = np.asarray(inb, float).ravel()
    S = x.size
    if S < 2:
        raise UserError(f"convergence needs >= 2 samples, got {S}")
    ns = np.unique(np.linspace(2, S, min(steps, S - 1)).round().astype(int))
    cs, cs2 = np.cumsum(x), np.cumsum(x * x)
    m = cs[ns - 1] / ns
    var = np.maximum(cs2[ns - 1] / ns - m * m, 0.0) * ns / (ns - 1)
    se = np.sqrt(var / ns)
    return pd.DataFrame({"n_samples": ns, "mean_inb": m, "se": se, "lo": m - Z95 * se, "hi": m + Z95 * se})
