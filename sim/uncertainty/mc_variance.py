"""How much of the PSA's spread is patient-level Monte Carlo noise: the analysis-of-variance
(ANOVA) method of O'Hagan, Stevenson & Madan (Health Econ 2007;16:1009-1023).

In a patient-level PSA each sample ``s`` estimates the conditional mean ``mu(theta_s)`` of an
output (here the incremental net benefit, INB, of a strategy vs the comparator) by the mean
``y_s`` of ``n`` simulated patients. One-way random-effects model::

    y_s = mu(theta_s) + e_s,   Var(mu(theta)) = sigma_theta^2,   Var(e_s) = tau^2 / n

with ``tau^2`` the within-sample (patient-level) variance of the per-patient INB. Estimates:
``tau^2_hat = mean_s s_s^2`` (the within-sample variances stored with every sample,
:func:`sim.uncertainty.psa.within_sample_moments`), ``V = Var_s(y_s)`` (between samples) and
``sigma_theta^2_hat = V - tau^2_hat / n``. The Monte Carlo share of the variance of INB across
samples is ``(tau^2_hat / n) / V``; it shrinks the contrast between samples toward noise, pulls
CEACs toward 0.5 and raises the EVPI. The number of patients per sample that brings the share
to a target ``p`` solves ``tau^2 / n = p (sigma_theta^2 + tau^2 / n)``:

    n_p = tau^2 (1 - p) / (p sigma_theta^2)

A pilot of ``S`` samples estimates ``V`` with a relative SE of about ``sqrt(2 / (S - 1))``, so
the point estimate ``n_p`` misses the target about half the time. The adaptive rule of
:func:`sim.uncertainty.psa.choose_patients` uses ``n_p^+``, the same formula with ``V`` at its
one-sided lower ``confidence`` bound ``V (S - 1) / chi2_{confidence, S - 1}`` (normal per-sample
means): the share is then below the target with that confidence.

With the same cohort in every sample (``sim.uncertainty.psa``: PSA varies parameters and event
streams, not who the patients are) part of ``tau^2`` is between-patient variation that does not
change between samples, so the share is an upper bound and ``n_p`` a conservative size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from sim.errors import UserError


def inb_within_variance(samples: pd.DataFrame, strategies: list[str], d: str, e: str, wtp: float) -> np.ndarray:
    """Within-sample variance over patients of the per-patient INB ``NB_d - NB_e`` at ``wtp``,
    per sample (ordered by sample), from the stored covariances (columns of
    :func:`sim.uncertainty.psa.within_sample_moments`)."""
    need = [f"cov_cost__{e}", f"cov_qaly__{e}", f"cov_cost_qaly__{e}", f"cov_cost__{d}", f"cov_qaly__{d}",
            f"cov_cost_qaly__{d}"]
    missing = [c for c in need if c not in samples.columns]
    if missing:
        raise UserError(f"psa samples lack the within-sample covariances {missing} (rerun the PSA)")

    def col(strategy, c):
        w = samples[samples["strategy"] == strategy].sort_values("sample")
        return w[c].to_numpy(float)

    vc = col(d, f"cov_cost__{d}") + col(e, f"cov_cost__{e}") - 2 * col(d, f"cov_cost__{e}")
    vq = col(d, f"cov_qaly__{d}") + col(e, f"cov_qaly__{e}") - 2 * col(d, f"cov_qaly__{e}")
    vcq = (col(d, f"cov_cost_qaly__{d}") + col(e, f"cov_cost_qaly__{e}") - col(d, f"cov_cost_qaly__{e}")
           - col(e, f"cov_cost_qaly__{d}"))
    return np.maximum(wtp * wtp * vq + vc - 2 * wtp * vcq, 0.0)


def anova(means: np.ndarray, within_var: np.ndarray, n: np.ndarray | float, target: float = 0.05,
          confidence: float = 0.9) -> dict:
    """Variance components of per-sample means (O'Hagan, Stevenson & Madan 2007).

    Parameters
    ----------
    means : array [S]
        Per-sample mean of the output.
    within_var : array [S]
        Per-sample variance over its ``n`` patients.
    n : int or array [S]
        Patients per sample.
    target : float
        Target Monte Carlo share of the variance.
    confidence : float
        Confidence of ``n_for_target_upper``.

    Returns
    -------
    dict
        ``variance`` (between samples), ``tau2`` (mean within-sample variance), ``mc_variance``
        (``mean_s within_var / n``), ``parameter_variance`` (``variance - mc_variance``, at least
        0), ``mc_share`` (``mc_variance / variance``), ``n_patients`` (mean ``n``),
        ``n_for_target`` (``tau2 (1 - target) / (target parameter_variance)``, rounded up; inf
        when no parameter variance is detected), ``n_for_target_upper`` (the same with the
        between-sample variance at its lower ``confidence`` bound).
    """
    y = np.asarray(means, float)
    s2 = np.asarray(within_var, float)
    nn = np.broadcast_to(np.asarray(n, float), y.shape)
    if y.size < 2 or s2.shape != y.shape or not np.all(np.isfinite(s2)) or np.any(nn < 2):
        raise UserError(f"anova needs >= 2 samples with finite within-sample variances and >= 2 patients, got "
                        f"{y.size} samples")
    if not 0 < target < 1:
        raise UserError(f"psa.patients.target_share must be in (0, 1), got {target}")
    V = float(y.var(ddof=1))
    mcv = float(np.mean(s2 / nn))
    tau2 = float(np.mean(s2))
    par = max(V - mcv, 0.0)
    need = math.ceil(tau2 * (1 - target) / (target * par)) if par > 0 else math.inf
    par_lo = V * (y.size - 1) / float(stats.chi2.ppf(confidence, y.size - 1)) - mcv
    upper = math.ceil(tau2 * (1 - target) / (target * par_lo)) if par_lo > 0 else math.inf
    return {"variance": V, "tau2": tau2, "mc_variance": mcv, "parameter_variance": par,
            "mc_share": mcv / V if V > 0 else math.nan, "n_patients": float(nn.mean()), "n_for_target": need,
            "n_for_target_upper": upper}


def mc_variance_table(samples: pd.DataFrame, strategies: list[str], comparator: str, wtps: Iterable[float],
                      target: float = 0.05) -> pd.DataFrame:
    """``psa_mc_variance``: one row per (strategy other than the comparator, WTP) with the
    :func:`anova` components of its INB vs ``comparator`` and ``below_target``
    (``mc_share < target``)."""
    rows = []
    for d in strategies:
        if d == comparator:
            continue
        for w in wtps:
            a = samples[samples["strategy"] == d].sort_values("sample")
            b = samples[samples["strategy"] == comparator].sort_values("sample")
            inb = w * (a["qaly"].to_numpy(float) - b["qaly"].to_numpy(float)) - (a["cost"].to_numpy(float)
                                                                                 - b["cost"].to_numpy(float))
            r = anova(inb, inb_within_variance(samples, strategies, d, comparator, w),
                      a["n_patients"].to_numpy(float), target)
            rows.append({"strategy": d, "comparator": comparator, "wtp": float(w), **r, "target_share": target,
                         "below_target": bool(r["mc_share"] < target)})
    return pd.DataFrame(rows)
