"""Costs of a run (:class:`~sim.economics.records.RunArrays`) as accruals by category (vectorised).

Accounting rules (summarised in ``docs/outputs.md``), each cost discounted exactly (:mod:`sim.economics.discount`)
and truncated at the economic horizon ``H`` (``spec.horizon_months``; flows stop at ``H``,
one-offs after ``H`` are dropped):

* **drug**, ``daily`` schedule (``drug_costing: continuous``, the default):
  ``c_m * sum_s level_s * D(t_s, t_{s+1})`` over the line's dose-level segments between ``start``
  and ``start + on_treatment_months`` (level 1 at start; ``dose_change`` and ``interruption`` events
  set it), ``D(a, b) = integral_a^b exp(-r t) dt``; undiscounted this is
  ``c_m * on_treatment_months * dose_intensity``. With ``drug_costing: packs``, drugs with a ``dispensing`` entry are priced by the packs dispensed
  (:mod:`sim.economics.dispensing`: strengths, pack sizes, the dose levels, waste at a dose change);
  ``cycle`` schedule: ``p * RDI * sum_{k<n} exp(-r (start + k h))`` with
  ``n = min(ceil(on_treatment_months / h), max_administrations)``;
* **administration**: per administration (cycle drugs) at the same times, or per month on treatment
  (daily drugs);
* **monitoring**: ``scan`` at each scheduled imaging visit ``start + k * dt`` (``k = 1..n_scans``,
  ``dt`` the imaging interval), ``scan`` at the unscheduled visit of a progression detected between
  scans (``unscheduled_scans = 1``, at ``progression_detected``), plus ``labs_per_month`` over the
  time on active treatment;
* **ae**: one-off per grade 3/4 event at its onset (``adverse_event`` rows, by type);
* **bsc**: per month on a terminal line (best supportive care; ``pfs_true`` is NaN there);
* **end_of_life**: one-off at disease death (``death_cause == 'disease'``).

Each category is an :class:`~sim.economics.discount.Accruals` (flows, one-offs, series), built
once and valued at any discount rate; accruals can be attributed to patients (the default) or
to line rows (``per_line=True``, for per-line checks).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.economics.discount import Accruals
from sim.economics.dispensing import dispensing_plans, pack_costs
from sim.economics.records import RunArrays
from sim.economics.spec import EconomicsSpec
from sim.events import EVENT_CODE
from sim.units import weeks

COST_CATEGORIES = ("drug", "administration", "monitoring", "ae", "bsc", "end_of_life")
_DOSE, _INTERRUPT, _AE = EVENT_CODE["dose_change"], EVENT_CODE["interruption"], EVENT_CODE["adverse_event"]


def infer_imaging_interval(lines: pd.DataFrame, default: float = weeks(12)) -> float:
    """Imaging interval (months) recovered from lines ended at a scheduled scan:
    ``(detected - start) / n_scans``."""
    prog = lines[(lines["reason"] == "progression") & (lines["n_scans"] > 0)]
    if "unscheduled_scans" in prog:
        prog = prog[prog["unscheduled_scans"] == 0]
    if prog.empty:
        return default
    dt = (prog["progression_detected"] - prog["start"]) / prog["n_scans"]
    return float(np.median(dt.to_numpy(float)))


def drug_table(names: list, used: np.ndarray, spec: EconomicsSpec) -> dict[str, np.ndarray]:
    """Drug schedule fields per therapy code (index into ``names``) for the codes in ``used``:
    ``daily``, ``cycle``, ``cost_per_month``, ``price``, ``interval``, ``max_admin``,
    ``admin_cost``, ``scale`` (zeros / NaN for codes with no drug or not used)."""
    n = len(names)
    t = {"daily": np.zeros(n, bool), "cycle": np.zeros(n, bool), "cost_per_month": np.zeros(n),
         "price": np.zeros(n), "interval": np.full(n, math.nan), "max_admin": np.full(n, math.inf),
         "admin_cost": np.zeros(n), "scale": np.ones(n, bool)}
    for c in np.unique(used):
        d = spec.drug_for(str(names[c]))
        if d is None:
            continue
        t["daily"][c], t["cycle"][c] = d.schedule == "daily", d.schedule == "cycle"
        t["cost_per_month"][c], t["price"][c] = d.cost_per_month, d.price_per_administration
        t["interval"][c], t["max_admin"][c] = d.interval_months, d.max_administrations
        t["admin_cost"][c], t["scale"][c] = d.administration_cost, d.dose_intensity_scaling
    return t


def dose_segments(ra: RunArrays, rows: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, ...]:
    """Piecewise-constant dose level of the daily-drug line rows ``rows``: ``(row, t0, t1, level)``,
    one entry per segment, sorted by (row, t0).

    The dose level ``L(t)`` on ``[start, start + on_treatment)`` is ``L = R(t) (1 - I(t))`` where
    ``R(t)`` is the value of the last dose reduction (a ``dose_change`` other than ``resume``:
    cumulative relative dose; 1 before any) and ``I(t) = 1`` while interrupted (the last
    ``interruption`` / ``resume`` before ``t`` is an interruption). A reduction during an
    interruption therefore costs nothing until the resumption, as in the engine's relative dose
    intensity. ``L = 1`` throughout for rows whose drug is not scaled by dose (``scale`` False,
    indexed by line row).
    """
    sel = (ra.ev_event == _DOSE) | (ra.ev_event == _INTERRUPT)
    ev_row = np.full(ra.ev_event.size, -1)
    ev_row[sel] = ra.line_row_of_events(sel)
    is_daily_row = np.zeros(ra.line.size, bool)
    is_daily_row[rows] = True
    ch = np.flatnonzero(sel & (ev_row >= 0))
    ch = ch[is_daily_row[ev_row[ch]]]
    resume_code = ra.detail_names.index("resume") if "resume" in ra.detail_names else -1
    is_int = ra.ev_event[ch] == _INTERRUPT
    is_resume = (ra.ev_event[ch] == _DOSE) & (ra.ev_detail[ch] == resume_code)
    is_red = (ra.ev_event[ch] == _DOSE) & ~is_resume
    # change points: the line start (level 1, not interrupted), then each dose event of the line
    row = np.concatenate([rows, ev_row[ch]])
    time = np.concatenate([ra.start[rows], ra.ev_time[ch]])
    order_tie = np.concatenate([np.zeros(rows.size, np.int64), np.ones(ch.size, np.int64)])
    red = np.concatenate([np.ones(rows.size), np.where(is_red, ra.ev_value[ch], np.nan)])
    off = np.concatenate([np.zeros(rows.size), np.where(is_int, 1.0, np.where(is_resume, 0.0, np.nan))])
    o = np.lexsort((np.arange(row.size), order_tie, time, row))
    row, time, red, off = row[o], time[o], red[o], off[o]
    # forward fill within a line: every line's first point (its start) is valid, so a global
    # "last valid index" never reaches into the previous line
    idx = np.arange(row.size)
    red = red[np.maximum.accumulate(np.where(np.isnan(red), 0, idx))]
    off = off[np.maximum.accumulate(np.where(np.isnan(off), 0, idx))]
    treat_end = ra.start[row] + ra.on_treatment[row]
    same_next = np.append(row[1:] == row[:-1], False)
    t1 = np.minimum(np.where(same_next, np.append(time[1:], 0.0), treat_end), treat_end)
    lvl = np.where(scale[row], red * (1.0 - off), 1.0)
    return row, time, t1, lvl


def _daily_drug_flows(ra: RunArrays, rows: np.ndarray, owner: np.ndarray, cost: np.ndarray, scale: np.ndarray,
                      horizon: float, acc: Accruals) -> None:
    """Dose-level-weighted flows of the daily-drug line rows ``rows`` (``owner``: whom they accrue to):
    flow ``cost * L`` over each segment of :func:`dose_segments`."""
    if rows.size == 0:
        return
    row, time, t1, lvl = dose_segments(ra, rows, scale)
    acc.flow(owner[row], np.minimum(time, horizon), np.minimum(t1, horizon), cost[row] * lvl)


def cost_accruals(ra: RunArrays, spec: EconomicsSpec, imaging_interval_months: float,
                  per_line: bool = False) -> dict[str, Accruals]:
    """Costs by category (:data:`COST_CATEGORIES`) as accruals (module docstring).

    ``per_line=True`` attributes line-level costs (drug, administration, monitoring, bsc) to
    line rows instead of patients (``ae`` and ``end_of_life`` stay per patient).
    """
    H = spec.horizon_months
    owner = np.arange(ra.line.size) if per_line else ra.line_patient
    n_owner = ra.line.size if per_line else ra.n
    acc = {c: Accruals(n_owner if c in ("drug", "administration", "monitoring", "bsc") else ra.n)
           for c in COST_CATEGORIES}
    tab = drug_table(ra.therapy_names, ra.therapy, spec)
    th = ra.therapy
    start, end, tot = ra.start, ra.end, ra.on_treatment
    treat_end = start + tot
    s_h, te_h, e_h = (np.minimum(x, H) for x in (start, treat_end, end))

    # drug + administration
    daily = tab["daily"][th] & (tot > 0)
    rows = np.flatnonzero(daily)
    plans = dispensing_plans(spec.config, ra.therapy_names, spec)     # {therapy code: plan}; {} = continuous
    packed = np.isin(th[rows], list(plans))
    _daily_drug_flows(ra, rows[~packed], owner, tab["cost_per_month"][th], tab["scale"][th], H, acc["drug"])
    if packed.any():
        pack_costs(ra, rows[packed], owner, plans, dose_segments(ra, rows[packed], tab["scale"][th]), H, acc["drug"])
    acc["administration"].flow(owner[rows], s_h[rows], te_h[rows], tab["admin_cost"][th[rows]])
    cyc = np.flatnonzero(tab["cycle"][th] & (tot > 0))
    if cyc.size:
        h = tab["interval"][th[cyc]]
        s = start[cyc]
        n = np.minimum(np.ceil(tot[cyc] / h - 1e-9), tab["max_admin"][th[cyc]])
        n_h = np.where(s <= H, np.floor((H - s) / h + 1e-12) + 1.0, 0.0)     # administrations at t <= H
        n = np.minimum(n, n_h)
        rdi = np.nan_to_num(ra.dose_intensity[cyc], nan=1.0)
        scale = np.where(tab["scale"][th[cyc]], rdi, 1.0)
        acc["drug"].series(owner[cyc], s, h, n, tab["price"][th[cyc]] * scale)
        acc["administration"].series(owner[cyc], s, h, n, tab["admin_cost"][th[cyc]])

    # monitoring: scans at start + k dt (k = 1..n_scans, t <= H), the unscheduled scan of an
    # off-schedule detection at its time, labs while on active treatment
    dt = float(imaging_interval_months)
    n_scans_h = np.minimum(ra.n_scans, np.where(start <= H, np.floor((H - start) / dt + 1e-12), 0.0))
    acc["monitoring"].series(owner, start + dt, dt, n_scans_h, spec.scan_cost)
    extra = np.flatnonzero((ra.unscheduled_scans > 0) & (ra.progression_detected <= H))
    acc["monitoring"].one_off(owner[extra], ra.progression_detected[extra], spec.scan_cost)
    acc["monitoring"].flow(owner, s_h, te_h, spec.labs_per_month)

    # best supportive care on terminal lines
    term = np.flatnonzero(np.isnan(ra.pfs_true))
    acc["bsc"].flow(owner[term], s_h[term], e_h[term], spec.bsc_per_month)

    # one-off AE management at onset, end of life at disease death
    ae = np.flatnonzero((ra.ev_event == _AE) & (ra.ev_time <= H))
    unit = np.array([spec.ae_cost(str(a)) for a in ra.detail_names], dtype=float) if ra.detail_names else np.zeros(0)
    acc["ae"].one_off(ra.ev_patient[ae], ra.ev_time[ae], unit[ra.ev_detail[ae]] if ae.size else np.zeros(0))
    eol = np.flatnonzero(ra.disease_death & (ra.os_months <= H))
    acc["end_of_life"].one_off(eol, ra.os_months[eol], spec.end_of_life)
    return acc
