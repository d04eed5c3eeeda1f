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
  Regression: ``"gam"`` -- a penalised regression spline (P-spline: cubic B-spline bases with
  second-order difference penalties, one smoothing parameter per term chosen by generalised
  cross-validation; one smooth, a tensor product for two parameters, an additive model
  ``s(x1) + ... + s(xk)`` above), the analogue of mgcv's ``s()`` / ``te()`` used by Strong et
  al.; ``"gp"`` -- Gaussian-process regression (scikit-learn ``GaussianProcessRegressor``,
  constant x anisotropic RBF + white-noise kernel, inputs standardised, hyperparameters by
  maximum marginal likelihood), recommended by Strong et al. for more than two parameters.
  ``"auto"`` picks ``gam`` for 1-2 parameters, ``gp`` above. A GP fit is kept only when it
  predicts held-out samples better than the additive P-spline (5-fold cross-validation,
  :func:`gp_is_predictive`); otherwise -- typically few samples and many parameters, where the
  GP interpolates the Monte Carlo noise -- the additive P-spline is used. The additive model
  contains every one-parameter smooth of its members, so a group is not valued below its
  members by a failed GP (the fault of a GP replaced by the mean).
  Regression-based EVPPI needs many PSA samples (Strong et al. used 1,000 and more) and is
  biased upwards by the noise it fits: :func:`noise_floor` is the EVPPI of dummy parameters of
  pure noise, the level below which an EVPPI cannot be told from zero.
  When one strategy has the highest NB in every sample, EVPPI is 0 for every subset (the
  conditional expectations keep the order) and is returned as such (method ``"dominance"``).
  Uncertainty: bootstrap resamples of the PSA samples combined with draws of the fitted values
  from the regression's posterior -> SE and percentile interval. Diagnostics: R^2 and a
  residual check (F test of the residuals on cubic polynomials of the inputs).
* :func:`ceac` -- cost-effectiveness acceptability curves: at each willingness to pay (WTP)
  ``lambda``, the share of samples in which each strategy has the highest NMB
  ``lambda * QALY - cost`` (ties go to the first strategy, so columns sum to 1).
* :func:`ce_frontier` -- the cost-effectiveness acceptability frontier (CEAF): the strategy
  with the highest *expected* NMB at each WTP and its probability of being cost-effective.
* :func:`convergence` -- running mean (and MC 95 % band) of incremental net benefit against
  the number of samples.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.interpolate import BSpline
from scipy.linalg import cho_factor, cho_solve
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from threadpoolctl import threadpool_limits

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
    diagnostics: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"value": self.value, "se": self.se, "lo": self.lo, "hi": self.hi, "method": self.method,
                **self.diagnostics}


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
def _one_blas_thread(f):
    """Run ``f`` with one BLAS thread: its matrices are small, and threads only contend (ten times
    slower on a loaded 2-core machine, with identical results)."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return f(*args, **kwargs)
    return wrapper


@dataclass(frozen=True)
class Regression:
    """A fitted regression ``g(x) = E[y | x]`` of one incremental net benefit on the parameters.

    Attributes
    ----------
    fitted : ndarray [S]
        ``g`` at the samples.
    factor : ndarray [S x r]
        Posterior draws of the fitted values are ``fitted + factor @ z``, ``z ~ N(0, I_r)``
        (P-spline: ``X chol(V_b)`` with ``V_b = sigma^2 (X'X + sum_j lambda_j S_j)^-1``, the
        Bayesian covariance of Wood, Generalized Additive Models, 2nd ed. 2017, section 6.10;
        GP: the Cholesky factor of the latent posterior covariance).
    method : str
        ``gam`` (one smooth, an additive model ``s(x1) + ... + s(xk)``, or a tensor product for
        two parameters), ``gp`` or ``constant`` (``y`` constant).
    edf : float
        Effective degrees of freedom (``tr`` of the hat matrix; NaN for a GP).
    r2 : float
        In-sample ``1 - RSS / TSS``.
    resid_p : float
        Residual check: p-value of the F test of the residuals on cubic polynomials of each
        input (plus the product for two inputs). A small value means structure the regression
        missed (too few samples or too smooth a fit).
    """

    fitted: np.ndarray
    factor: np.ndarray
    method: str
    edf: float
    r2: float
    resid_p: float


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def _bspline_basis(x: np.ndarray, n_basis: int, degree: int = 3) -> np.ndarray:
    """Cubic B-spline basis on quantile-spaced knots (``n_basis`` columns)."""
    n_inner = max(n_basis - degree + 1, 2)
    inner = np.unique(np.quantile(x, np.linspace(0, 1, n_inner)))
    if inner.size < 2:  # constant column
        return np.ones((x.size, 1))
    t = np.r_[[inner[0]] * degree, inner, [inner[-1]] * degree]
    xx = np.clip(x, inner[0], inner[-1])
    return BSpline.design_matrix(xx, t, degree).toarray()


def _diff_penalty(m: int, order: int = 2) -> np.ndarray:
    if m <= order:
        return np.zeros((m, m))
    D = np.diff(np.eye(m), n=order, axis=0)
    return D.T @ D


def _design(x: np.ndarray, tensor: bool, n_basis: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """P-spline design ``X`` and penalty matrices ``S_j`` (each ``p x p``).

    One parameter or an additive model: intercept plus, per parameter, a cubic B-spline basis
    with the sum-to-zero identifiability constraint (``B Z``, ``Z`` spanning the null space of
    ``1'B``, as mgcv absorbs it) and its second-order difference penalty ``Z' D'D Z``. Tensor
    product of two parameters: the row-wise Kronecker product of the two margins' bases (it
    contains the intercept and both main effects) with one penalty per margin."""
    n, k = x.shape
    if n_basis is None:
        n_basis = int(min(20 if k == 1 else 8 if tensor else 6, max(4, n // (10 if k == 1 else 20))))
    Bs = [_bspline_basis(x[:, j], n_basis) for j in range(k)]
    if tensor:
        B1, B2 = Bs
        X = np.einsum("ni,nj->nij", B1, B2).reshape(n, -1)
        m1, m2 = B1.shape[1], B2.shape[1]
        return X, [np.kron(_diff_penalty(m1), np.eye(m2)), np.kron(np.eye(m1), _diff_penalty(m2))]
    blocks, pens = [np.ones((n, 1))], []
    for B in Bs:
        if B.shape[1] < 2:
            continue
        q, _ = np.linalg.qr(B.sum(axis=0)[:, None], mode="complete")
        Z = q[:, 1:]
        blocks.append(B @ Z)
        pens.append(Z.T @ _diff_penalty(B.shape[1]) @ Z)
    X = np.hstack(blocks)
    p = X.shape[1]
    S, at = [], 1
    for P in pens:
        full = np.zeros((p, p))
        full[at:at + len(P), at:at + len(P)] = P
        S.append(full)
        at += len(P)
    return X, S


def _penalised(XtX: np.ndarray, Xty: np.ndarray, yty: float, n: int, S: list[np.ndarray], lam: np.ndarray):
    """(GCV score, coefficients, edf, rss, A^-1) of the penalised least squares with ``lam``."""
    A = XtX + sum(l * Sj for l, Sj in zip(lam, S)) + 1e-9 * np.trace(XtX) / len(XtX) * np.eye(len(XtX))
    try:
        c = cho_factor(A)
    except np.linalg.LinAlgError:
        return math.inf, None, math.nan, math.nan, None
    coef = cho_solve(c, Xty)
    Ainv = cho_solve(c, np.eye(len(A)))
    edf = float(np.sum(Ainv * XtX))                      # tr(A^-1 X'X)
    rss = max(float(yty - 2 * coef @ Xty + coef @ XtX @ coef), 0.0)
    return n * rss / max(n - edf, 1e-9) ** 2, coef, edf, rss, Ainv


def _residual_p(x: np.ndarray, resid: np.ndarray, edf: float) -> float:
    """p-value of the F test of ``resid`` on cubic polynomials of each (standardised) column of
    ``x`` (and the product of two columns): the residual check of a regression."""
    xs = _standardise(x)
    cols = [xs ** d for d in (1, 2, 3)]
    if x.shape[1] == 2:
        cols.append((xs[:, 0] * xs[:, 1])[:, None])
    F_ = np.column_stack([np.ones(len(resid))] + cols)
    q = F_.shape[1] - 1
    df2 = len(resid) - max(edf, 1.0) - q
    if df2 < 1:
        return math.nan
    coef, *_ = np.linalg.lstsq(F_, resid, rcond=None)
    rss1 = float(np.sum((resid - F_ @ coef) ** 2))
    rss0 = float(np.sum((resid - resid.mean()) ** 2))
    if rss0 <= 0:
        return 1.0
    stat = ((rss0 - rss1) / q) / max(rss1 / df2, 1e-300)
    return float(stats.f.sf(stat, q, df2))


@_one_blas_thread
def gam_regression(x: np.ndarray, y: np.ndarray, tensor: bool | None = None, n_basis: int | None = None,
                   grid: int = 21, sweeps: int = 3) -> Regression:
    """Penalised regression spline (P-spline) of ``y`` on ``x`` with its Bayesian posterior.

    ``g(x) = b0 + sum_j f_j(x_j)`` (one or more parameters, additive) or ``f(x1, x2)`` (tensor
    product; the default for two parameters), cubic B-splines on quantile knots with
    second-order difference penalties (Eilers & Marx, Stat Sci 1996;11:89-121). The smoothing
    parameters ``lambda_j`` (one per term or margin) minimise the generalised cross-validation
    score ``GCV = n RSS / (n - edf)^2`` over a log grid, coordinate by coordinate for several
    terms. Posterior of the coefficients ``N(b_hat, sigma^2 (X'X + sum_j lambda_j S_j)^-1)`` with
    ``sigma^2 = RSS / (n - edf)`` (the analogue of mgcv's ``Vp``).
    """
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    y = np.asarray(y, float)
    n, k = x.shape
    if tensor is None:
        tensor = k == 2
    X, S = _design(x, tensor and k == 2, n_basis)
    XtX, Xty, yty = X.T @ X, X.T @ y, float(y @ y)
    scale = np.array([np.trace(XtX) / max(np.trace(Sj), 1e-12) for Sj in S])
    steps = np.logspace(-6, 4, grid)
    lam = scale * 1e-1
    best = _penalised(XtX, Xty, yty, n, S, lam)
    for _ in range(sweeps if len(S) > 1 else 1):
        changed = False
        for j in range(len(S)):
            for v in steps * scale[j]:
                trial = lam.copy()
                trial[j] = v
                r = _penalised(XtX, Xty, yty, n, S, trial)
                if r[0] < best[0] - 1e-12 * abs(best[0]):
                    best, lam, changed = r, trial, True
        if not changed:
            break
    _, coef, edf, rss, Ainv = best
    fitted = X @ coef
    sigma2 = rss / max(n - edf, 1.0)
    Vb = sigma2 * (Ainv + Ainv.T) / 2
    w, V = np.linalg.eigh(Vb)
    factor = X @ (V * np.sqrt(np.clip(w, 0, None)))
    tss = float(np.sum((y - y.mean()) ** 2))
    return Regression(fitted, factor, "gam", edf, 1 - rss / tss if tss > 0 else 1.0, _residual_p(x, y - fitted, edf))


def fit_gam(x: np.ndarray, y: np.ndarray, n_basis: int | None = None) -> np.ndarray:
    """Fitted values ``E[y | x]`` of :func:`gam_regression` at the data points."""
    return gam_regression(x, y, n_basis=n_basis).fitted


def _gp(xs: np.ndarray, yz: np.ndarray, seed: int):
    """A fitted scikit-learn GP (constant x anisotropic RBF + white noise) on standardised data."""
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


def _fit_subset(n: int, max_fit: int, seed: int) -> np.ndarray:
    if n <= max_fit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_fit, replace=False))


@_one_blas_thread
def gp_regression(x: np.ndarray, y: np.ndarray, seed: int = 0, max_fit: int = 1500) -> Regression:
    """Gaussian-process regression of ``y`` on ``x`` (any number of columns) with the latent
    posterior covariance at the samples.

    Kernel ``C * RBF(anisotropic) + White`` on standardised inputs and outputs, hyperparameters
    by maximum marginal likelihood (Strong, Oakley & Brennan 2014, section 3.3), estimated on at
    most ``max_fit`` samples (a fixed random subset) to bound the O(n^3) cost; the posterior is
    conditioned on them. The white-noise variance is removed from the predictive covariance, so
    draws are of ``E[y | x]``, not of ``y``."""
    xs, yz, ym, ysd = _standardised_xy(x, y)
    idx = _fit_subset(len(y), max_fit, seed)
    gp = _gp(xs[idx], yz[idx], seed)
    with threadpool_limits(limits=1, user_api="blas"):
        mean, cov = gp.predict(xs, return_cov=True)
    noise = float(gp.kernel_.k2.noise_level)
    cov = cov - noise * np.eye(len(cov))
    w, V = np.linalg.eigh((cov + cov.T) / 2)
    factor = (V * np.sqrt(np.clip(w, 0, None))) * ysd
    fitted = mean * ysd + ym
    tss = float(np.sum((y - y.mean()) ** 2))
    rss = float(np.sum((y - fitted) ** 2))
    return Regression(fitted, factor, "gp", math.nan, 1 - rss / tss if tss > 0 else 1.0,
                      _residual_p(np.asarray(x, float).reshape(len(y), -1), y - fitted, 1.0))


def fit_gp(x: np.ndarray, y: np.ndarray, seed: int = 0, max_fit: int = 1500) -> np.ndarray:
    """Fitted posterior mean ``E[y | x]`` of a GP regression (see :func:`gp_regression`)."""
    xs, yz, ym, ysd = _standardised_xy(x, y)
    idx = _fit_subset(len(y), max_fit, seed)
    return _gp(xs[idx], yz[idx], seed).predict(xs) * ysd + ym


@_one_blas_thread
def cv_errors(x: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5, max_n: int = 500) -> dict[str, float]:
    """Mean squared prediction errors on held-out samples of the GP, the additive P-spline and
    the training mean, by ``folds``-fold cross-validation on at most ``max_n`` samples (a fixed
    random subset; hyperparameters and smoothing parameters re-estimated in every fold)."""
    xs, yz, _, _ = _standardised_xy(x, y)
    rng = np.random.default_rng(seed + 1)
    idx = np.arange(len(yz)) if len(yz) <= max_n else np.sort(rng.choice(len(yz), max_n, replace=False))
    xs, yz = xs[idx], yz[idx]
    fold = rng.permutation(len(yz)) % folds
    err = {"gp": 0.0, "gam": 0.0, "mean": 0.0}
    for f in range(folds):
        tr, te = fold != f, fold == f
        if tr.sum() < 3 or te.sum() == 0:
            continue
        err["gp"] += float(np.sum((_gp(xs[tr], yz[tr], seed).predict(xs[te]) - yz[te]) ** 2))
        err["gam"] += float(np.sum((_gam_predict(xs[tr], yz[tr], xs[te]) - yz[te]) ** 2))
        err["mean"] += float(np.sum((yz[tr].mean() - yz[te]) ** 2))
    return {k: v / len(yz) for k, v in err.items()}


def _gam_predict(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    """Additive P-spline fitted on (``xtr``, ``ytr``) and evaluated at ``xte``: the basis is built on
    the inputs of all rows (knots depend on ``x`` only, never on ``y``), the coefficients and the
    smoothing parameter (one for all terms, by GCV) on the training rows."""
    both = np.vstack([xtr, xte])
    X, S = _design(both, False)
    Xtr, Xte = X[:len(xtr)], X[len(xtr):]
    XtX, Xty, yty = Xtr.T @ Xtr, Xtr.T @ ytr, float(ytr @ ytr)
    scale = np.array([np.trace(XtX) / max(np.trace(Sj), 1e-12) for Sj in S])
    best = None
    for v in np.logspace(-6, 4, 11):
        r = _penalised(XtX, Xty, yty, len(ytr), S, scale * v)
        if best is None or r[0] < best[0]:
            best = r
    return Xte @ best[1]


def gp_is_predictive(x: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5, max_n: int = 500) -> bool:
    """Whether a GP of ``y`` on ``x`` predicts held-out samples better than the additive P-spline
    (and than the mean) in ``folds``-fold cross-validation (:func:`cv_errors`). With few PSA
    samples and several parameters the marginal-likelihood fit can interpolate the Monte Carlo
    noise of ``y`` (white noise at its lower bound), and the EVPPI would then approach the EVPI
    for parameters unrelated to the net benefit."""
    e = cv_errors(x, y, seed, folds, max_n)
    return e["gp"] < min(e["gam"], e["mean"])


def regression(method: str, x: np.ndarray, y: np.ndarray, seed: int = 0) -> Regression:
    """``E[y | x]`` by ``method``: ``gam`` (:func:`gam_regression`) or ``gp``
    (:func:`gp_regression`, kept only when it predicts held-out samples better than the
    additive P-spline, :func:`gp_is_predictive`; otherwise the additive P-spline, method
    ``"gam (gp not better in cross-validation)"``). A constant ``y`` gives its mean."""
    if np.ptp(y) == 0:
        return Regression(np.full_like(y, y.mean()), np.zeros((len(y), 1)), "constant", 1.0, 1.0, 1.0)
    if method == "gam":
        return gam_regression(x, y)
    if method == "gp":
        if gp_is_predictive(x, y, seed):
            return gp_regression(x, y, seed=seed)
        r = gam_regression(x, y, tensor=False)
        return Regression(r.fitted, r.factor, "gam (gp not better in cross-validation)", r.edf, r.r2, r.resid_p)
    raise UserError(f"evppi method must be one of ['auto', 'gam', 'gp'], got {method!r}")


def _evppi_of(g: np.ndarray) -> float:
    """``mean_s max_d g[s, d] - max_d mean_s g[s, d]`` of fitted conditional INBs (column 0 = 0)."""
    return float(g.max(axis=1).mean() - g.mean(axis=0).max())


def _params(a: np.ndarray, params) -> np.ndarray:
    x = np.asarray(params, float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != a.shape[0]:
        raise UserError(f"evppi params must have one row per sample ({a.shape[0]}), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UserError("evppi params must be finite")
    return x


def dominated(a: np.ndarray) -> bool:
    """Whether one strategy has the highest NB in every sample (then every EVPPI is exactly 0:
    ``NB_best >= NB_d`` for every theta implies ``E[NB_best | phi] >= E[NB_d | phi]``)."""
    best = int(np.argmax(a.mean(axis=0)))
    return bool(np.all(a[:, best] >= a.max(axis=1)))


@_one_blas_thread
def evppi(nb, params, method: str = "auto", n_boot: int = 500, seed: int = 0) -> VoiResult:
    """EVPPI of the parameters ``params`` (array ``[S]`` or ``[S x k]``) by regression.

    ``EVPPI = mean_s max_d g_d(phi_s) - max_d mean_s g_d(phi_s)`` with ``g_0 = 0`` and
    ``g_d = E[NB_d - NB_0 | phi]`` fitted by :func:`regression` (Strong, Oakley & Brennan, Med
    Decis Making 2014;34:311-326). ``method="auto"``: ``gam`` for 1-2 parameters, ``gp`` above.

    Interval: ``n_boot`` draws, each a bootstrap resample of the samples combined with a draw of
    the fitted values from the regression's posterior (so both the Monte Carlo error of the
    outer expectation and the regression's own error enter); SE and 2.5 / 97.5 % percentiles.
    An estimate by regression is biased upwards by the noise it fits: compare it with the
    noise floor (:func:`noise_floor`). ``diagnostics`` holds the worst residual-check p-value
    and the smallest R^2 over the ``D - 1`` contrasts, and the mean edf.
    """
    a = _nb_matrix(nb)
    x = _params(a, params)
    if method == "auto":
        method = "gam" if x.shape[1] <= 2 else "gp"
    if method not in ("gam", "gp"):
        raise UserError(f"evppi method must be one of ['auto', 'gam', 'gp'], got {method!r}")
    if a.shape[1] == 1 or dominated(a):
        return VoiResult(0.0, 0.0, 0.0, 0.0, "dominance" if a.shape[1] > 1 else method)
    inb = a[:, 1:] - a[:, [0]]
    fits = [regression(method, x, inb[:, d], seed) for d in range(inb.shape[1])]
    S = len(a)
    g = np.column_stack([np.zeros(S)] + [f.fitted for f in fits])
    value = max(_evppi_of(g), 0.0)
    methods = sorted({f.method for f in fits})
    diag = {"r2": float(min(f.r2 for f in fits)),
            "resid_p": float(np.nanmin([f.resid_p for f in fits])) if any(np.isfinite(f.resid_p) for f in fits)
            else math.nan,
            "edf": float(np.nanmean([f.edf for f in fits])) if any(np.isfinite(f.edf) for f in fits) else math.nan}
    if n_boot < 2:
        return VoiResult(value, math.nan, math.nan, math.nan, "; ".join(methods), diag)
    rng = np.random.default_rng(seed)
    draws = [f.fitted[:, None] + f.factor @ rng.standard_normal((f.factor.shape[1], n_boot)) for f in fits]
    boots = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, S, S)
        gb = np.column_stack([np.zeros(S)] + [d[idx, b] for d in draws])
        boots[b] = _evppi_of(gb)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return VoiResult(value, float(boots.std(ddof=1)), float(max(lo, 0.0)), float(max(hi, 0.0)), "; ".join(methods),
                     diag)


@_one_blas_thread
def noise_floor(nb, k: int = 1, method: str = "gam", replicates: int = 20, seed: int = 0,
                quantile: float = 0.95) -> tuple[float, float]:
    """The EVPPI of pure noise: (``quantile`` and mean over ``replicates``) of the EVPPI, by
    ``method``, of ``k`` dummy parameters drawn independently of everything (uniform columns
    from ``numpy.random.default_rng((seed, k, r))``).

    A regression estimate of EVPPI is positive even for a parameter that the net benefit does
    not depend on (the fit follows the Monte Carlo noise); an EVPPI at or below the noise floor
    of a group of the same size cannot be told apart from zero. For ``method="gp"`` the floor is
    that of the additive P-spline: on pure noise the GP does not predict held-out samples better
    and :func:`regression` falls back to it.
    """
    a = _nb_matrix(nb)
    if a.shape[1] == 1 or dominated(a) or replicates < 1:
        return 0.0, 0.0
    inb = a[:, 1:] - a[:, [0]]
    vals = []
    for r in range(replicates):
        x = np.random.default_rng((seed, k, r)).uniform(size=(len(a), k))
        fits = [gam_regression(x, inb[:, d], tensor=(k == 2 and method == "gam")).fitted
                for d in range(inb.shape[1])]
        vals.append(max(_evppi_of(np.column_stack([np.zeros(len(a))] + fits)), 0.0))
    return float(np.quantile(vals, quantile)), float(np.mean(vals))


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
