"""Costs per patient x strategy from the lines and events tables of a run (vectorised).

Accounting rules (summarised in ``docs/outputs.md``), each cost discounted exactly (:mod:`sim.economics.discount`)
and truncated at the economic horizon ``H`` (``spec.horizon_months``; flows stop at ``H``,
one-offs after ``H`` are dropped):

* **drug**, ``daily`` schedule: ``c_m * sum_s level_s * D(t_s, t_{s+1})`` over the line's dose-level
  segments between ``start`` and ``start + on_treatment_months`` (level 1 at start; ``dose_change``
  and ``interruption`` events set it), ``D(a, b) = integral_a^b exp(-r t) dt``; undiscounted this
  is ``c_m * on_treatment_months * dose_intensity``.
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
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.economics.discount import interval_factor, point_factor, series_factor
from sim.economics.spec import EconomicsSpec
from sim.units import weeks

KEYS = ["strategy", "patient_id"]
COST_CATEGORIES = ("drug", "administration", "monitoring", "ae", "bsc", "end_of_life")


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


def _drug_table(lines: pd.DataFrame, spec: EconomicsSpec) -> pd.DataFrame:
    """Per line: drug schedule fields (NaN / 0 where the therapy has no drug)."""
    rows = {}
    for th in lines["therapy"].unique():
        d = spec.drug_for(str(th))
        rows[th] = dict(
            schedule="" if d is None else d.schedule,
            cost_per_month=0.0 if d is None else d.cost_per_month,
            price_per_administration=0.0 if d is None else d.price_per_administration,
            interval_months=math.nan if d is None else d.interval_months,
            max_administrations=math.inf if d is None else d.max_administrations,
            administration_cost=0.0 if d is None else d.administration_cost,
            scale=True if d is None else d.dose_intensity_scaling,
        )
    tab = pd.DataFrame.from_dict(rows, orient="index")
    return tab.reindex(lines["therapy"].to_numpy()).reset_index(drop=True)


def _daily_drug_cost(lines: pd.DataFrame, drug: pd.DataFrame, events: pd.DataFrame, annual: float,
                     horizon: float) -> np.ndarray:
    """Discounted dose-level-weighted on-treatment time x cost per month, per line (daily drugs).

    The dose level ``L(t)`` on ``[start, start + on_treatment_months)`` is piecewise constant:
    ``L = R(t) * (1 - I(t))`` where ``R(t)`` is the value of the last dose reduction
    (``dose_change`` event other than ``resume``, value = cumulative relative dose; 1 before
    any) and ``I(t) = 1`` while interrupted (the last ``interruption`` / ``resume`` event before
    ``t`` is an interruption). A reduction during an interruption therefore costs nothing until
    the resumption, as in the engine's relative dose intensity. Returns
    ``c_m * sum_segments L * D(t0, t1)`` with ``D`` the discount integral, clipped at ``horizon``.
    """
    out = np.zeros(len(lines))
    daily = (drug["schedule"] == "daily").to_numpy() & (lines["on_treatment_months"].to_numpy(float) > 0)
    if not daily.any():
        return out
    li = lines.loc[daily, KEYS + ["line", "start", "on_treatment_months"]].copy()
    li["row"] = np.flatnonzero(daily)
    li["treat_end"] = li["start"] + li["on_treatment_months"]
    base = li[KEYS + ["line", "row", "treat_end"]].assign(time=li["start"], red=1.0, off=0.0, order=0)
    ch = events[events["event"].isin(("dose_change", "interruption"))][KEYS + ["line", "time", "event", "detail",
                                                                             "value"]]
    ch = ch.merge(li[KEYS + ["line", "row", "treat_end"]], on=KEYS + ["line"], how="inner")
    is_int = (ch["event"] == "interruption").to_numpy()
    is_resume = (ch["event"] == "dose_change").to_numpy() & (ch["detail"].astype(str) == "resume").to_numpy()
    is_red = (ch["event"] == "dose_change").to_numpy() & ~is_resume
    ch = ch.assign(red=np.where(is_red, ch["value"].to_numpy(float), np.nan),
                   off=np.where(is_int, 1.0, np.where(is_resume, 0.0, np.nan)), order=1)
    seg = pd.concat([base, ch[base.columns]], ignore_index=True)
    seg = seg.sort_values(["row", "time", "order"], kind="stable")
    g = seg.groupby("row", sort=False)
    seg["red"] = g["red"].ffill()
    seg["off"] = g["off"].ffill()
    nxt = g["time"].shift(-1)
    seg["t1"] = np.minimum(nxt.fillna(seg["treat_end"]).to_numpy(float), seg["treat_end"].to_numpy(float))
    scale = drug["scale"].to_numpy(bool)[seg["row"].to_numpy()]
    lvl = np.where(scale, seg["red"].to_numpy(float) * (1.0 - seg["off"].to_numpy(float)), 1.0)
    t0 = np.minimum(seg["time"].to_numpy(float), horizon)
    t1 = np.minimum(seg["t1"].to_numpy(float), horizon)
    val = lvl * interval_factor(t0, t1, annual)
    np.add.at(out, seg["row"].to_numpy(), val)
    return out * drug["cost_per_month"].to_numpy(float)


def line_costs(lines: pd.DataFrame, events: pd.DataFrame, spec: EconomicsSpec, annual: float,
               imaging_interval_months: float, horizon: float | None = None) -> pd.DataFrame:
    """Costs per line (rows aligned with ``lines``): drug, administration, monitoring, ae, bsc.

    ``annual`` is the annual discount rate for costs (0 = undiscounted).
    """
    H = spec.horizon_months if horizon is None else horizon
    drug = _drug_table(lines, spec)
    start = lines["start"].to_numpy(float)
    end = lines["end"].to_numpy(float)
    tot = lines["on_treatment_months"].to_numpy(float)
    treat_end = start + tot
    s_h, te_h, e_h = (np.minimum(x, H) for x in (start, treat_end, end))
    rdi = np.nan_to_num(lines["dose_intensity"].to_numpy(float), nan=1.0)
    sched = drug["schedule"].to_numpy(str)

    # drug + administration
    c_drug = _daily_drug_cost(lines, drug, events, annual, H)
    on_t = interval_factor(s_h, te_h, annual)
    daily = sched == "daily"
    c_admin = np.where(daily, drug["administration_cost"].to_numpy(float) * on_t, 0.0)
    cyc = (sched == "cycle") & (tot > 0)
    if cyc.any():
        h = drug["interval_months"].to_numpy(float)
        with np.errstate(invalid="ignore"):
            n = np.ceil(tot / h - 1e-9)
            n = np.minimum(n, drug["max_administrations"].to_numpy(float))
            n_h = np.where(start <= H, np.floor((H - start) / h + 1e-12) + 1.0, 0.0)  # administrations at t <= H
            n = np.minimum(n, n_h)
        n = np.where(cyc, np.nan_to_num(n, nan=0.0), 0.0)
        ser = series_factor(start, np.where(cyc, h, 1.0), n, annual)
        scale = np.where(drug["scale"].to_numpy(bool), rdi, 1.0)
        c_drug = c_drug + np.where(cyc, drug["price_per_administration"].to_numpy(float) * scale * ser, 0.0)
        c_admin = c_admin + np.where(cyc, drug["administration_cost"].to_numpy(float) * ser, 0.0)

    # monitoring: scans at start + k dt (k = 1..n_scans, t <= H), the unscheduled scan of an
    # off-schedule detection at its time, labs while on active treatment
    dt = float(imaging_interval_months)
    n_scans = lines["n_scans"].to_numpy(float)
    n_scans_h = np.minimum(n_scans, np.where(start <= H, np.floor((H - start) / dt + 1e-12), 0.0))
    c_mon = spec.scan_cost * series_factor(start + dt, np.full_like(start, dt), n_scans_h, annual)
    if "unscheduled_scans" in lines:  # one unscheduled scan at an off-schedule detection
        t_u = lines["progression_detected"].to_numpy(float)
        extra = (lines["unscheduled_scans"].to_numpy(float) > 0) & (t_u <= H)
        c_mon = c_mon + np.where(extra, spec.scan_cost * point_factor(np.where(extra, t_u, 0.0), annual), 0.0)
    c_mon = c_mon + spec.labs_per_month * on_t

    # best supportive care on terminal lines
    terminal = lines["pfs_true"].isna().to_numpy()
    c_bsc = np.where(terminal, spec.bsc_per_month * interval_factor(s_h, e_h, annual), 0.0)

    out = lines[KEYS + ["line"]].copy()
    out["cost_drug"], out["cost_administration"], out["cost_monitoring"], out["cost_bsc"] = c_drug, c_admin, c_mon, c_bsc
    return out


def ae_costs(events: pd.DataFrame, spec: EconomicsSpec, annual: float, horizon: float | None = None) -> pd.Series:
    """One-off AE management costs per (strategy, patient_id), discounted to onset."""
    H = spec.horizon_months if horizon is None else horizon
    ae = events[(events["event"] == "adverse_event") & (events["time"] <= H)]
    unit = ae["detail"].map(lambda a: spec.ae_cost(str(a))).to_numpy(float)
    val = unit * point_factor(ae["time"].to_numpy(float), annual)
    return pd.Series(val, index=pd.MultiIndex.from_frame(ae[KEYS])).groupby(level=KEYS).sum()


def patient_costs(patients: pd.DataFrame, lines: pd.DataFrame, events: pd.DataFrame, spec: EconomicsSpec,
                  annual: float, imaging_interval_months: float | None = None) -> pd.DataFrame:
    """Costs by category and in total per patient x strategy (rows and order of ``patients``).

    Returns columns ``cost_<category>`` for :data:`COST_CATEGORIES` and ``cost_total``.
    """
    H = spec.horizon_months
    dt = infer_imaging_interval(lines) if imaging_interval_months is None else imaging_interval_months
    idx = pd.MultiIndex.from_frame(patients[KEYS])
    lc = line_costs(lines, events, spec, annual, dt, H)
    per = lc.groupby(KEYS)[["cost_drug", "cost_administration", "cost_monitoring", "cost_bsc"]].sum()
    out = per.reindex(idx, fill_value=0.0)
    out["cost_ae"] = ae_costs(events, spec, annual, H).reindex(idx, fill_value=0.0).to_numpy()
    os_t = patients["os_months"].to_numpy(float)
    eol = patients["death"].to_numpy(bool) & (patients["death_cause"].to_numpy(str) == "disease") & (os_t <= H)
    out["cost_end_of_life"] = np.where(eol, spec.end_of_life * point_factor(os_t, annual), 0.0)
    out = out[[f"cost_{c}" for c in COST_CATEGORIES]]
    out["cost_total"] = out.sum(axis=1)
    return out.reset_index(drop=True)
