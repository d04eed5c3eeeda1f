"""Per-patient and per-strategy economic outcomes of one run.

:func:`evaluate` turns a run's ``patients``, ``lines`` and ``events`` tables into one row per
patient x strategy with costs by category, life-years and QALYs, undiscounted and discounted
(suffix ``_disc``; costs at ``spec.discount_costs``, effects at ``spec.discount_effects``).
:func:`summarise` gives per-strategy means with Monte Carlo standard errors
``SE = sd / sqrt(n)``; :func:`paired_differences` the means and paired SEs of differences
against a reference strategy (common random numbers make them much smaller than unpaired SEs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.economics.costs import COST_CATEGORIES, cost_accruals, infer_imaging_interval
from sim.economics.incremental import incremental
from sim.economics.qalys import effect_accruals
from sim.economics.records import RunArrays
from sim.economics.spec import EconomicsSpec
from sim.errors import UserError
from sim.events import EVENT_CODE

KEYS = ["strategy", "patient_id"]
EFFECT_COLUMNS = ("ly", "pf_ly", "pd_ly", "qaly_pf", "qaly_pd", "qaly_ae_loss", "qaly_syndrome_loss", "qaly")
COST_COLUMNS = tuple(f"cost_{c}" for c in COST_CATEGORIES) + ("cost_total",)
#: outcome columns of the per-patient table, undiscounted; each also has a ``_disc`` twin
MEASURES = EFFECT_COLUMNS + COST_COLUMNS


def evaluate(patients: pd.DataFrame, lines: pd.DataFrame, events: pd.DataFrame, spec: EconomicsSpec,
             imaging_interval_months: float | None = None) -> pd.DataFrame:
    """Costs, life-years and QALYs per patient x strategy.

    Parameters
    ----------
    patients, lines, events : DataFrame
        The run's tables (``patients.parquet``, ``lines.parquet``, ``events.parquet``).
    spec : EconomicsSpec
    imaging_interval_months : float, optional
        Time between scheduled scans (timing of scan costs when discounting); inferred from
        lines ended at a scan when not given (exact: ``progression_detected - start = n_scans * dt``).

    Returns
    -------
    DataFrame
        One row per row of ``patients`` (same order): ``strategy, patient_id, n_ae`` and for each
        ``m`` in :data:`MEASURES` the columns ``m`` (undiscounted) and ``m_disc`` (discounted).
    """
    patients = patients.reset_index(drop=True)
    dt = infer_imaging_interval(lines) if imaging_interval_months is None else imaging_interval_months
    ra = RunArrays.from_frames(patients, lines, events)
    cols = {k: patients[k].to_numpy() for k in KEYS}
    cols.update(evaluate_arrays(ra, spec, dt))
    return pd.DataFrame(cols, copy=False)


def evaluate_arrays(ra: RunArrays, spec: EconomicsSpec, imaging_interval_months: float) -> dict[str, np.ndarray]:
    """The outcome columns of :func:`evaluate` (``n_ae`` and every measure, undiscounted and
    ``_disc``) as arrays over the patient rows of ``ra``. Accruals are built once and valued at
    0 and at the spec's discount rates (costs and effects may differ)."""
    cols = {"n_ae": np.bincount(ra.ev_patient[ra.ev_event == EVENT_CODE["adverse_event"]], minlength=ra.n)}
    eff = effect_accruals(ra, spec)
    cost = cost_accruals(ra, spec, imaging_interval_months)
    for suffix, r_eff, r_cost in (("", 0.0, 0.0), ("_disc", spec.discount_effects, spec.discount_costs)):
        for m in ("ly", "pf_ly", "pd_ly", "qaly_ae_loss", "qaly_syndrome_loss"):
            cols[m + suffix] = eff[m].value(r_eff)
        cols["qaly_pf" + suffix] = spec.utility_pf * cols["pf_ly" + suffix]
        cols["qaly_pd" + suffix] = spec.utility_pd * cols["pd_ly" + suffix]
        cols["qaly" + suffix] = (cols["qaly_pf" + suffix] + cols["qaly_pd" + suffix] - cols["qaly_ae_loss" + suffix]
                                 - cols["qaly_syndrome_loss" + suffix])
        total = np.zeros(ra.n)
        for c in COST_CATEGORIES:
            cols[f"cost_{c}{suffix}"] = cost[c].value(r_cost)
            total = total + cols[f"cost_{c}{suffix}"]
        cols["cost_total" + suffix] = total
    order = ["n_ae"] + [f"{m}{s}" for m in MEASURES for s in ("", "_disc")]
    return {c: cols[c] for c in order}


def outcome_columns(per_patient: pd.DataFrame) -> list[str]:
    """Numeric outcome columns of a per-patient table (everything but the keys)."""
    return [c for c in per_patient.columns if c not in KEYS and pd.api.types.is_numeric_dtype(per_patient[c])]


def summarise(per_patient: pd.DataFrame) -> pd.DataFrame:
    """Per-strategy means and Monte Carlo standard errors.

    Returns one row per strategy (in order of first appearance): ``strategy, n_patients`` and for
    every outcome column ``m`` its mean ``m`` and ``m_se = sd(m) / sqrt(n)`` (``ddof = 1``).
    """
    cols = outcome_columns(per_patient)
    g = per_patient.groupby("strategy", sort=False)[cols]
    mean, sd, n = g.mean(), g.std(ddof=1), g.size()
    se = sd.div(np.sqrt(n), axis=0).fillna(0.0).add_suffix("_se")
    out = pd.concat([n.rename("n_patients"), mean, se], axis=1)
    order = ["n_patients"] + [x for c in cols for x in (c, f"{c}_se")]
    return out[order].reset_index()


def paired_differences(per_patient: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Mean differences vs ``reference`` with paired SEs (patients matched by ``patient_id``).

    Returns one row per other strategy: ``strategy, reference, n_pairs`` and for every outcome
    ``m``: ``m`` = mean of ``m_i(s) - m_i(ref)`` and ``m_se`` its standard error.
    """
    if reference not in set(per_patient["strategy"]):
        raise UserError(f"reference strategy {reference!r} is not in the per-patient table")
    cols = outcome_columns(per_patient)
    ref = per_patient[per_patient["strategy"] == reference].set_index("patient_id")[cols]
    rows = []
    for s, df in per_patient[per_patient["strategy"] != reference].groupby("strategy", sort=False):
        d = df.set_index("patient_id")[cols].sub(ref).dropna()
        row = {"strategy": s, "reference": reference, "n_pairs": len(d)}
        m, se = d.mean(), d.std(ddof=1) / np.sqrt(max(len(d), 1))
        for c in cols:
            row[c], row[f"{c}_se"] = m[c], se[c]
        rows.append(row)
    return pd.DataFrame(rows)


def economics_summary(per_patient: pd.DataFrame, spec: EconomicsSpec | None = None,
                      labels: dict | None = None) -> pd.DataFrame:
    """The per-strategy table ``economics_summary.csv``: :func:`summarise` with a label and the
    currency / price year of the costs (``docs/outputs.md``)."""
    s = summarise(per_patient)
    s.insert(1, "label", [(labels or {}).get(x, x) for x in s["strategy"]])
    if spec is not None:
        s.insert(2, "currency", spec.currency)
        s.insert(3, "price_year", spec.price_year)
    return s


def incremental_with_se(per_patient: pd.DataFrame, wtp, cost: str = "cost_total_disc",
                        effect: str = "qaly_disc") -> pd.DataFrame:
    """Full incremental analysis (:func:`sim.economics.incremental.incremental`) of the
    per-strategy means, with Monte Carlo standard errors.

    Added columns: ``cost_se``, ``effect_se`` (``sd / sqrt(n)`` per strategy);
    ``inc_cost_se``, ``inc_effect_se``: paired SE of the mean per-patient difference against
    the comparator, ``sd(x_i(s) - x_i(c)) / sqrt(n)`` (the same patients under both strategies,
    common random numbers); ``nmb_<l>_se``, ``nhb_<l>_se``: SE of the mean of the per-patient
    ``l * E_i - C_i`` and ``E_i - C_i / l``. The ICER has no SE (a ratio of means); judge it by
    ``inc_cost_se`` and ``inc_effect_se``.
    """
    means = per_patient.groupby("strategy", sort=False)[[cost, effect]].mean().reset_index()
    out = incremental(means, wtp, cost=cost, effect=effect)
    g = per_patient.groupby("strategy", sort=False)
    n = g.size()
    se = g[[cost, effect]].std(ddof=1).div(np.sqrt(n), axis=0).fillna(0.0)
    out["cost_se"] = out["strategy"].map(se[cost])
    out["effect_se"] = out["strategy"].map(se[effect])
    wide_c = per_patient.pivot(index="patient_id", columns="strategy", values=cost)
    wide_e = per_patient.pivot(index="patient_id", columns="strategy", values=effect)
    inc_c_se, inc_e_se = [], []
    for s, comp in zip(out["strategy"], out["comparator"]):
        if comp is None or (isinstance(comp, float) and np.isnan(comp)):
            inc_c_se.append(np.nan)
            inc_e_se.append(np.nan)
            continue
        dc = (wide_c[s] - wide_c[comp]).dropna()
        de = (wide_e[s] - wide_e[comp]).dropna()
        inc_c_se.append(dc.std(ddof=1) / np.sqrt(len(dc)))
        inc_e_se.append(de.std(ddof=1) / np.sqrt(len(de)))
    pos = list(out.columns).index("icer") + 1
    out.insert(pos, "inc_effect_se", inc_e_se)
    out.insert(pos, "inc_cost_se", inc_c_se)
    for w in np.atleast_1d(np.asarray(wtp, dtype=float)):
        tag = f"{w:g}"
        x = per_patient.assign(_nmb=w * per_patient[effect] - per_patient[cost],
                               _nhb=per_patient[effect] - per_patient[cost] / w).groupby("strategy", sort=False)
        sd = x[["_nmb", "_nhb"]].std(ddof=1).div(np.sqrt(n), axis=0).fillna(0.0)
        out.insert(list(out.columns).index(f"nmb_{tag}") + 1, f"nmb_{tag}_se", out["strategy"].map(sd["_nmb"]))
        out.insert(list(out.columns).index(f"nhb_{tag}") + 1, f"nhb_{tag}_se", out["strategy"].map(sd["_nhb"]))
    return out
