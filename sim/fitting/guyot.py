"""Reconstruction of individual patient data from published Kaplan-Meier curves.

Guyot P, Ades AE, Ouwens MJNM, Welton NJ. Enhanced secondary analysis of survival data:
reconstructing the data from published Kaplan-Meier survival curves.
BMC Med Res Methodol 2012;12:9 (algorithm of their R code, translated step by step).

Inputs are digitised curve coordinates :math:`(T_k, S_k)`, k = 1..K, and the numbers at
risk :math:`n^{risk}_i` at times :math:`t^{risk}_i` (i = 1..I, :math:`t^{risk}_1 = 0`);
optionally the total number of events. For each risk interval
:math:`[t^{risk}_i, t^{risk}_{i+1})` holding curve points :math:`k = l_i .. u_i`:

1. first guess of the number censored in the interval,
   :math:`c_i = \\mathrm{round}(n^{risk}_i S_{l_{i+1}}/S_{l_i} - n^{risk}_{i+1})`;
2. the :math:`c_i` censoring times are spread evenly over the interval,
   :math:`T_{l_i} + j (T_{l_{i+1}} - T_{l_i})/(c_i + 1)`, and counted per curve step;
3. events at each step follow from the drop of the curve,
   :math:`d_k = \\mathrm{round}(\\hat n_k (1 - S_k / \\hat S_{last}))`, with
   :math:`\\hat S_k = \\hat S_{last}(1 - d_k/\\hat n_k)` and
   :math:`\\hat n_{k+1} = \\hat n_k - d_k - c_k`;
4. :math:`c_i` is corrected by :math:`\\hat n_{l_{i+1}} - n^{risk}_{i+1}` and steps 2-3 repeated
   until the reconstructed number at risk at :math:`t^{risk}_{i+1}` equals the published one.

In the last interval (no number at risk at its end) the censoring rate of the earlier
intervals is assumed; if the total number of events is given, the censoring there is
adjusted until the events add up. Events are placed at :math:`T_k`, censorings at the
mid-points :math:`(T_k + T_{k+1})/2`, and patients left at the end are censored at
:math:`T_K`.

Pre-processing (not in the published code, needed for raw digitiser output): points
are sorted by time, :math:`S` is made non-increasing (running minimum), duplicate times
keep their lowest :math:`S`, a point :math:`(0, 1)` is added when missing, and a point is
inserted at every risk-table time (with the step value of the curve there) so that every
risk interval starts at a curve point. Risk-table rows at or after the last curve point
are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import UserError

__all__ = ["ReconstructedIPD", "reconstruct_ipd"]

_MAX_ITER = 10_000


@dataclass(frozen=True, eq=False)
class ReconstructedIPD:
    """Reconstructed individual patient data.

    Attributes
    ----------
    durations, events : ndarray
        One entry per patient (events 1 = event, 0 = censored).
    steps : DataFrame
        Per (processed) curve point: ``time, survival`` (digitised), ``km`` (of the
        reconstruction), ``n_at_risk``, ``events``, ``censored``.
    risk_table : DataFrame
        ``time, n_at_risk`` (published, as used) and ``n_at_risk_reconstructed``.
    """

    durations: np.ndarray
    events: np.ndarray
    steps: pd.DataFrame
    risk_table: pd.DataFrame


def _as_1d(key: str, x) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float).ravel()
    except (TypeError, ValueError):
        raise UserError(f"{key} must be numbers, got {x!r}") from None
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise UserError(f"{key} must be a non-empty array of finite numbers, got {x!r}")
    return a


def _prepare_curve(t_km, s_km, t_risk) -> tuple[np.ndarray, np.ndarray]:
    t = _as_1d("t_km", t_km)
    s = _as_1d("s_km", s_km)
    if t.size != s.size:
        raise UserError(f"s_km must have the length of t_km ({t.size}), got length {s.size}")
    if np.any(t < 0):
        raise UserError(f"t_km must be >= 0, got {t[t < 0][0]!r}")
    if np.any((s < 0) | (s > 1)):
        raise UserError(f"s_km must be proportions in [0, 1] (not percent), got {s[(s < 0) | (s > 1)][0]!r}")
    order = np.argsort(t, kind="stable")
    t, s = t[order], s[order]
    if t[0] > 0:
        t, s = np.concatenate([[0.0], t]), np.concatenate([[1.0], s])
    s[t == 0.0] = 1.0
    s = np.minimum.accumulate(s)
    # duplicate times: keep the last (lowest S)
    keep = np.append(t[1:] != t[:-1], True)
    t, s = t[keep], s[keep]
    # a point at each risk time inside the curve, at the curve's step value
    for tr in t_risk:
        if tr < t[-1] and not np.any(t == tr):
            j = np.searchsorted(t, tr, side="right") - 1
            t = np.insert(t, j + 1, tr)
            s = np.insert(s, j + 1, s[j])
    return t, s


def _hist(x: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """R ``hist(x, breaks)$counts``: bins (b0, b1], (b1, b2], ... with b0 included."""
    nb = breaks.size - 1
    idx = np.clip(np.searchsorted(breaks, x, side="left") - 1, 0, nb - 1)
    return np.bincount(idx, minlength=nb)


def _spread(n_cens: int, t0: float, t1: float, breaks: np.ndarray) -> np.ndarray:
    j = np.arange(1, n_cens + 1)
    return _hist(t0 + j * (t1 - t0) / (n_cens + 1), breaks)


def reconstruct_ipd(t_km, s_km, t_risk, n_risk, total_events: int | None = None) -> ReconstructedIPD:
    """Reconstruct IPD from a digitised Kaplan-Meier curve and its numbers at risk (Guyot 2012).

    Parameters
    ----------
    t_km, s_km : array_like
        Digitised curve coordinates: times (months) and survival proportions in [0, 1].
    t_risk : array_like
        Times of the numbers-at-risk table, increasing, starting at 0.
    n_risk : array_like of int
        Numbers at risk at ``t_risk`` (``n_risk[0]`` = patients in the arm), non-increasing.
    total_events : int, optional
        Total number of events in the arm, if reported.

    Returns
    -------
    ReconstructedIPD
    """
    tr = _as_1d("t_risk", t_risk)
    nr = _as_1d("n_risk", n_risk)
    if tr.size != nr.size:
        raise UserError(f"n_risk must have the length of t_risk ({tr.size}), got length {nr.size}")
    if tr[0] != 0.0:
        raise UserError(f"t_risk must start at 0, got {tr[0]!r}")
    if np.any(np.diff(tr) <= 0):
        raise UserError(f"t_risk must be strictly increasing, got {t_risk!r}")
    if np.any(nr < 0) or np.any(nr != np.round(nr)) or np.any(np.diff(nr) > 0) or nr[0] < 1:
        raise UserError(f"n_risk must be non-increasing non-negative integers with n_risk[0] >= 1, got {n_risk!r}")
    if total_events is not None and (isinstance(total_events, bool)
                                     or not isinstance(total_events, (int, np.integer))
                                     or not 0 <= total_events <= nr[0]):
        raise UserError(f"total_events must be an integer in [0, n_risk[0]], got {total_events!r}")

    tS, S = _prepare_curve(t_km, s_km, tr)
    if tS[-1] <= 0:
        raise UserError(f"t_km must reach beyond time 0, got {t_km!r}")
    use = tr < tS[-1]
    tr, nr = tr[use], nr[use].astype(int).copy()
    n_int = tr.size
    n_t = tS.size
    lower = np.searchsorted(tS, tr, side="left")
    upper = np.append(lower[1:] - 1, n_t - 1)

    n_hat = np.full(n_t + 1, nr[0] + 1, dtype=np.int64)
    cen = np.zeros(n_t, dtype=np.int64)
    d = np.zeros(n_t, dtype=np.int64)
    km_hat = np.ones(n_t)
    last_i = np.zeros(n_int, dtype=np.int64)
    n_censor = np.zeros(n_int, dtype=np.int64)

    def events_on(i: int, lo: int, hi: int, first_interval: bool, guard_negative: bool) -> int:
        """Steps 3 of the algorithm on points lo..hi; returns the last point with an event."""
        last = int(last_i[i])
        n_hat[lo] = nr[i]
        for k in range(lo, hi + 1):
            if first_interval and k == lo:
                d[k] = 0
                km_hat[k] = 1.0
            else:
                if km_hat[last] > 0 and n_hat[k] > 0:
                    d[k] = int(np.round(n_hat[k] * (1.0 - S[k] / km_hat[last])))
                    d[k] = min(max(d[k], 0), n_hat[k])
                    km_hat[k] = km_hat[last] * (1.0 - d[k] / n_hat[k])
                else:
                    d[k] = 0
                    km_hat[k] = km_hat[last]
            n_hat[k + 1] = n_hat[k] - d[k] - cen[k]
            if guard_negative and n_hat[k + 1] < 0:
                n_hat[k + 1] = 0
                cen[k] = n_hat[k] - d[k]
            if d[k] != 0:
                last = k
        return last

    # ---- intervals 1 .. I-1 (number at risk known at both ends)
    for i in range(n_int - 1):
        lo, hi, nxt = lower[i], upper[i], lower[i + 1]
        ratio = S[nxt] / S[lo] if S[lo] > 0 else 0.0
        n_censor[i] = int(np.round(nr[i] * ratio - nr[i + 1]))
        last = int(last_i[i])
        for _ in range(_MAX_ITER):
            if not (n_hat[nxt] > nr[i + 1] or (n_hat[nxt] < nr[i + 1] and n_censor[i] > 0)):
                break
            if n_censor[i] <= 0:
                cen[lo:hi + 1] = 0
                n_censor[i] = 0
            else:
                cen[lo:hi + 1] = _spread(int(n_censor[i]), tS[lo], tS[nxt], tS[lo:nxt + 1])
            last = events_on(i, lo, hi, i == 0, guard_negative=False)
            n_censor[i] += n_hat[nxt] - nr[i + 1]
        if n_hat[nxt] < nr[i + 1]:
            nr[i + 1] = n_hat[nxt]
        last_i[i + 1] = last

    # ---- last interval: censoring rate of the earlier intervals
    L = n_int - 1
    lo, hi = lower[L], upper[L]

    def censor_last():
        if n_censor[L] <= 0 or hi <= lo:  # nothing to spread (or no room to spread it)
            cen[lo:hi] = 0
            n_censor[L] = 0
        else:
            cen[lo:hi] = _spread(int(n_censor[L]), tS[lo], tS[hi], tS[lo:hi + 1])

    if n_int > 1:
        span = tS[upper[L - 1]] - tS[lower[0]]
        rate = n_censor[:L].sum() * (tS[hi] - tS[lo]) / span if span > 0 else 0.0
        n_censor[L] = min(int(np.round(rate)), nr[L])
    else:
        n_censor[L] = 0
    censor_last()
    events_on(L, lo, hi, n_int == 1, guard_negative=True)

    if total_events is not None:
        sum_before = int(d[:upper[L - 1] + 1].sum()) if n_int > 1 else 0
        if n_int > 1 and sum_before >= total_events:
            d[lo:hi + 1] = 0
            cen[lo:hi] = 0
            n_hat[lo + 1:hi + 2] = nr[L]
        else:
            sumd = int(d[:hi + 1].sum())
            for _ in range(_MAX_ITER):
                if not (sumd > total_events or (sumd < total_events and n_censor[L] > 0)):
                    break
                n_censor[L] += sumd - total_events
                censor_last()
                events_on(L, lo, hi, n_int == 1, guard_negative=True)
                sumd = int(d[:hi + 1].sum())

    # ---- IPD
    n = int(nr[0])
    dur = [np.repeat(tS, d)]
    ev = [np.ones(int(d.sum()))]
    mids = 0.5 * (tS[:-1] + tS[1:])
    dur.append(np.repeat(mids, cen[:-1]))
    ev.append(np.zeros(int(cen[:-1].sum())))
    used = int(d.sum() + cen[:-1].sum())
    if used < n:
        dur.append(np.full(n - used, tS[-1]))
        ev.append(np.zeros(n - used))
    durations = np.concatenate(dur)[:n]
    events = np.concatenate(ev)[:n]

    steps = pd.DataFrame({"time": tS, "survival": S, "km": km_hat, "n_at_risk": n_hat[:n_t],
                          "events": d, "censored": cen})
    at_risk = [int(np.sum(durations >= t)) for t in tr]
    risk_table = pd.DataFrame({"time": tr, "n_at_risk": np.asarray(n_risk, dtype=float).ravel()[use].astype(int),
                               "n_at_risk_reconstructed": at_risk})
    return ReconstructedIPD(durations=durations, events=events, steps=steps, risk_table=risk_table)
