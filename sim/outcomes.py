"""From event records to outcomes: per-strategy summaries with 95 % CIs and paired
differences against a reference strategy (common random numbers make them tight).

Censoring only happens at the model horizon, after every other event, so below the
horizon the Kaplan-Meier estimate equals the empirical distribution; medians are
therefore sample medians with distribution-free order-statistic CIs (binomial method),
and KM curves are drawn with lifelines.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

Z95 = stats.norm.ppf(0.975)


def median_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Sample median and its distribution-free CI from order statistics.

    The CI is ``(x_(j), x_(k))`` with ``j, k`` the binomial(n, 1/2) quantiles, which covers
    the population median with probability >= ``level`` (exact, continuous data).
    """
    x = np.sort(np.asarray(x, float))
    n = x.size
    if n == 0:
        return (math.nan,) * 3
    a = (1 - level) / 2
    j = int(stats.binom.ppf(a, n, 0.5))
    k = int(stats.binom.isf(a, n, 0.5))
    return float(np.median(x)), float(x[max(j - 1, 0)]), float(x[min(k, n - 1)])


def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean with a normal-approximation 95 % CI (Monte Carlo standard error)."""
    x = np.asarray(x, float)
    m = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return m, m - Z95 * se, m + Z95 * se


def _with_ci(prefix: str, triple) -> dict:
    return {prefix: triple[0], f"{prefix}_lo": triple[1], f"{prefix}_hi": triple[2]}


def summarise(patients: pd.DataFrame, lines: pd.DataFrame, labels: dict | None = None) -> pd.DataFrame:
    """One row per strategy (see the column dictionary in ``docs/outputs.md``)."""
    rows = []
    for s, p in patients.groupby("strategy", sort=False, observed=True):
        ln = lines[lines["strategy"] == s]
        active = ln[ln["on_treatment_months"] > 0]
        tot = ln.groupby("patient_id")["on_treatment_months"].sum().reindex(p["patient_id"], fill_value=0.0)
        aes = ln.groupby("patient_id")["n_ae"].sum().reindex(p["patient_id"], fill_value=0)
        row = {"strategy": s, "label": (labels or {}).get(s, s), "n_patients": len(p)}
        row |= _with_ci("median_pfs1_months", median_ci(p["pfs1_months"]))
        row |= _with_ci("median_pfs2_months", median_ci(p["pfs2_months"]))
        row |= _with_ci("median_os_months", median_ci(p["os_months"]))
        row |= _with_ci("mean_os_months", mean_ci(p["os_months"]))
        row |= _with_ci("mean_time_on_treatment_months", mean_ci(tot.to_numpy()))
        row |= _with_ci("g34_ae_per_patient", mean_ci(aes.to_numpy()))
        row["share_any_g34_ae"] = float((aes > 0).mean())
        row["share_toxicity_discontinuation"] = float(ln.loc[ln["reason"] == "toxicity", "patient_id"].nunique() / len(p))
        row["mean_active_lines"] = float(len(active) / len(p))
        row["share_alive_at_horizon"] = float((~p["death"]).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """``counts[i, r]``: how many times item ``i`` (of ``n``) is drawn in resample ``r`` of the index
    matrix ``idx`` (one row per resample), in the smallest integer type that holds a resample's size."""
    b, m = idx.shape
    flat = (idx + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    counts = np.bincount(flat, minlength=b * n).reshape(b, n)
    return np.ascontiguousarray(counts.astype(np.int16 if m < 2 ** 15 else np.int64).T)


#: items per block of :func:`bootstrap_medians` (block sums locate an order statistic, then one block is scanned)
_BLOCK = 64


def bootstrap_medians(x: np.ndarray, idx: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """``np.median(x[idx], axis=1)``, the same values, from the resample counts (:func:`resample_counts`
    of ``idx``, computed once and reused across vectors).

    With ``x`` sorted, the order statistic ``k`` of resample ``r`` is the item where the cumulated
    counts of column ``r`` first exceed ``k``: block sums find its block, a scan of that block the
    item. No resampled copy of ``x`` and no partition per resample. Falls back to ``np.median`` when
    ``counts`` is None or ``x`` has NaN (whose median is NaN).
    """
    x = np.asarray(x, float)
    if counts is None or np.isnan(x).any():
        return np.median(x[idx], axis=1)
    n, b = counts.shape
    m = idx.shape[1]
    order = np.argsort(x, kind="stable")
    nb = -(-n // _BLOCK)
    g = np.zeros((nb * _BLOCK, b), counts.dtype)
    g[:n] = counts[order]
    g = g.reshape(nb, _BLOCK, b)
    cum_blocks = np.cumsum(g.sum(axis=1, dtype=np.int64), axis=0)        # (nb, b)
    cols = np.arange(b)

    def order_stat(k: int) -> np.ndarray:
        blk = np.count_nonzero(cum_blocks <= k, axis=0)                   # block of the k-th draw
        before = np.where(blk > 0, cum_blocks[np.maximum(blk - 1, 0), cols], 0)
        inside = before[:, None] + np.cumsum(g[blk, :, cols], axis=1, dtype=np.int64)   # (b, _BLOCK)
        return x[order[blk * _BLOCK + np.count_nonzero(inside <= k, axis=1)]]

    hi = order_stat(m // 2)
    if m % 2:
        return hi
    return np.mean(np.stack([order_stat(m // 2 - 1), hi], axis=1), axis=1)   # as np.median: mean of the two


def paired_differences(patients: pd.DataFrame, reference: str, seed: int, n_boot: int = 1000) -> pd.DataFrame:
    """Differences (strategy - reference) of mean and median OS, PFS1, PFS2, with 95 % CIs.

    Patients are paired (same patient under both strategies). Mean differences use the
    paired standard error; median differences a paired bootstrap (percentile CI) with a
    fixed generator derived from ``seed``.
    """
    wide = {m: patients.pivot(index="patient_id", columns="strategy", values=m)
            for m in ("os_months", "pfs1_months", "pfs2_months")}
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xB007,)))
    n = len(wide["os_months"])
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = resample_counts(idx, n)
    ref_boot = {m: bootstrap_medians(w[reference].to_numpy(), idx, counts) for m, w in wide.items()}
    rows = []
    for s in wide["os_months"].columns:
        if s == reference:
            continue
        row = {"strategy": s, "reference": reference}
        for m, w in wide.items():
            a, b = w[s].to_numpy(), w[reference].to_numpy()
            name = m.replace("_months", "")
            row |= _with_ci(f"diff_mean_{name}_months", mean_ci(a - b))
            boot = bootstrap_medians(a, idx, counts) - ref_boot[m]
            row |= {f"diff_median_{name}_months": float(np.median(a) - np.median(b)),
                    f"diff_median_{name}_months_lo": float(np.percentile(boot, 2.5)),
                    f"diff_median_{name}_months_hi": float(np.percentile(boot, 97.5))}
        rows.append(row)
    return pd.DataFrame(rows)
