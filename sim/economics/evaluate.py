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

from sim.economics.costs import COST_CATEGORIES, patient_costs
from sim.economics.qalys import patient_effects
from sim.economics.spec import EconomicsSpec
from sim.errors import UserError

KEYS = ["strategy", "patient_id"]
EFFECT_COLUMNS = ("ly", "pf_ly", "pd_ly", "qaly_pf", "qaly_pd", "qaly_ae_loss", "qaly")
COST_COLUMNS = tuple(f"cost_{c}" for c in COST_CATEGORIES) + ("cost_total",)
#: outcome columns of the per-patient table, undiscounted; each also has a ``_disc`` twin
MEASURES = EFFECT_COLUMNS + COST_COLUMNS


def _require(df: pd.DataFrame, name: str, cols) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise UserError(f"{name} table lacks columns {missing}")


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
    _require(patients, "patients", KEYS + ["os_months", "death", "death_cause"])
    _require(lines, "lines", KEYS + ["line", "therapy", "start", "end", "reason", "pfs_true", "progression_true",
                                     "progression_detected", "on_treatment_months", "dose_intensity", "n_scans"])
    _require(events, "events", KEYS + ["time", "line", "event", "detail", "value"])
    patients = patients.reset_index(drop=True)
    out = patients[KEYS].copy()
    n_ae = events[events["event"] == "adverse_event"].groupby(KEYS).size()
    out["n_ae"] = n_ae.reindex(pd.MultiIndex.from_frame(patients[KEYS]), fill_value=0).to_numpy()
    eff0 = patient_effects(patients, lines, events, spec, 0.0)
    effd = patient_effects(patients, lines, events, spec, spec.discount_effects)
    c0 = patient_costs(patients, lines, events, spec, 0.0, imaging_interval_months)
    cd = patient_costs(patients, lines, events, spec, spec.discount_costs, imaging_interval_months)
    for m in EFFECT_COLUMNS:
        out[m], out[f"{m}_disc"] = eff0[m].to_numpy(), effd[m].to_numpy()
    for m in COST_COLUMNS:
        out[m], out[f"{m}_disc"] = c0[m].to_numpy(), cd[m].to_numpy()
    return out


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
