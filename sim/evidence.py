"""Evidence table: published figures, one row each, with source, section, citation and quote.

The table lives in ``data/evidence/evidence.csv`` (column dictionary and conventions in
``data/evidence/README.md``). It is the first link of the one-way data flow
(evidence -> fitted parameters -> therapies ...): nothing in the simulator should hard-code
a clinical number that is not traceable to a row here.

Conventions (short form; README has the full text):

* ``value`` is a plain number: proportions in [0, 1] (12 % -> 0.12), durations in the unit
  named by ``unit`` (``months`` for survival times, years converted to months).
* ``ci_low``/``ci_high`` hold a confidence interval, *unless* ``unit`` ends in ``_range``:
  then they hold the reported range ends and ``value`` is the reported central value
  (e.g. a median) or, if none is reported, the midpoint.
* ``unit`` ending in ``_max`` / ``_min``: the document gives an upper ("up to", "<") or lower
  ("over", "at least") bound, stored in ``value``.
* ``endpoint`` is ``<base>`` or ``<base>:<qualifier>`` with ``<base>`` from
  :data:`ENDPOINTS` (e.g. ``ae_g34_rate:neutropenia``, ``prevalence:mgmt_low``).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from sim.errors import UserError

DEFAULT_EVIDENCE_PATH = Path(__file__).resolve().parents[1] / "data" / "evidence" / "evidence.csv"

COLUMNS: tuple[str, ...] = (
    "id", "trial", "arm", "population", "n", "endpoint", "value", "unit",
    "ci_low", "ci_high", "source", "section", "citation", "quote",
)
NUMERIC_COLUMNS: tuple[str, ...] = ("n", "value", "ci_low", "ci_high")

#: Endpoint bases (the part before an optional ``:qualifier``) and their meaning.
ENDPOINTS: dict[str, str] = {
    # time-to-event summaries
    "median_pfs": "median progression-free survival (document's PFS/DFS wording kept in population)",
    "median_os": "median overall survival (from treatment start unless population says otherwise)",
    "median_ttp": "median time to tumour progression",
    "median_dor": "median duration of response",
    "median_follow_up": "median follow-up of the analysis",
    "median_time_to_onset": "median time to onset of the event in the qualifier",
    "median_treatment_free_interval": "median time from stopping a drug to restarting it",
    "hr_pfs": "hazard ratio for progression or death, arm vs comparator named in population",
    "hr_os": "hazard ratio for death, arm vs comparator named in population",
    "pfs_rate_6m": "proportion progression-free at 6 months",
    "pfs_rate_12m": "proportion progression-free at 12 months",
    "pfs_rate_24m": "proportion progression-free at 24 months",
    "dfs_rate_1y": "proportion disease-free at 1 year",
    "survival_rate_5y": "proportion alive at 5 years",
    "mortality_30d": "proportion dying within 30 days of a procedure",
    "mortality_postop": "post-operative mortality",
    "recurrence_rate": "proportion recurring after treatment",
    "local_recurrence_rate": "proportion with local recurrence after ablation",
    # response
    "orr": "objective (radiological) response rate, CR + PR (PR only where population says so)",
    "pr_rate": "partial response rate when reported separately from CR",
    "cr_rate": "complete response rate",
    "dcr": "disease control rate (CR + PR + SD)",
    "sd_rate": "stable disease rate (best response)",
    "objective_response_count": "number of objective responses",
    "complete_response_count": "number of complete responses",
    "response_rate_any_criteria": "response by mixed/unstated criteria (biochemical and/or radiological)",
    "morphologic_response_rate": "any measurable decrease in tumour size",
    "biochemical_response_rate": "tumour-marker / hormone response",
    "symptom_control_rate": "proportion with symptom control or improvement",
    "symptom_control_rate_3m": "symptom response at 3 months",
    "symptom_control_rate_6m": "symptom response at 6 months",
    "symptom_recurrence_rate_12m": "proportion of responders symptomatic again at 12 months",
    "clinical_benefit_rate": "composite 'beneficial' outcome as defined by the study",
    "glycemic_control_rate": "proportion achieving normal glucose (insulinoma)",
    # safety
    "ae_g34_rate": "grade 3-4 adverse event rate; qualifier = AE (any = any AE)",
    "ae_g3plus_rate": "grade >= 3 adverse event rate; qualifier = AE",
    "ae_g45_rate": "grade 4-5 adverse event rate; qualifier = AE",
    "ae_any_grade_rate": "adverse event rate of any grade (or grade not stated); qualifier = AE",
    "ae_serious_rate": "serious adverse event rate; qualifier = AE (any = any serious AE)",
    "ae_long_term_rate": "long-term / late toxicity rate (e.g. mds, acute_leukemia)",
    "ae_fatal_count": "number of fatal events of the qualifier type",
    "creatinine_clearance_decline_per_year": "annual relative decline in creatinine clearance",
    "time_to_nadir": "time to nadir of the qualifier (e.g. myelosuppression)",
    "duration": "duration of the qualifier (e.g. post-embolisation syndrome)",
    # design, population and treatment pattern
    "prevalence": "share of a population with the qualifier characteristic",
    "crossover_share": "share of the control arm crossing over to the experimental drug",
    "threshold": "a cut-off used by the document (qualifier names the variable)",
    "eligibility_progression_window": "progression required within this window before entry",
    "assessment_timepoint": "time point at which a registry/trial endpoint is assessed",
    "n_randomised": "number randomised",
    "n_planned": "planned sample size",
    "n_studies": "number of studies pooled",
    "monitoring_interval": "interval between monitoring visits / imaging / blood counts",
    # dosing and schedule
    "dose": "dose per administration or per day (see unit)",
    "dose_option": "one of several allowed doses",
    "max_daily_dose": "maximum daily dose",
    "cumulative_activity": "cumulative radioactivity administered",
    "interval_weeks": "interval between administrations, in weeks",
    "interval_months": "interval between administrations, in months",
    "administrations_per_week": "administrations per week",
    "cycle_length": "length of a treatment cycle (days or weeks, see unit)",
    "dosing_day_first": "first dosing day within a cycle",
    "dosing_day_last": "last dosing day within a cycle",
    "dosing_days_per_cycle": "number of dosing days per cycle",
    "dosing_weeks_per_cycle": "number of on-treatment weeks per cycle",
    "n_cycles": "number of cycles (planned or median given)",
    "n_doses": "number of doses in a course",
    "max_treatment_duration": "maximum protocol treatment duration",
    "infusion_duration": "duration of an infusion",
    "infusion_start_before_procedure": "start of a covering infusion before a procedure",
    "infusion_continue_after_procedure": "continuation of a covering infusion after a procedure",
    "time_to_therapeutic_level": "time until therapeutic drug levels are reached",
    "max_lesions": "maximum number of lesions treatable",
    # economics
    "price_per_pack": "list price of one pack",
    "pack_size": "tablets/capsules per pack",
    "unit_strength": "strength of one tablet/capsule",
    "utility": "health-state utility; qualifier = health state",
}

#: Units and their meaning.
UNITS: dict[str, str] = {
    "proportion": "share in [0, 1] (12 % -> 0.12)",
    "proportion_range": "share; ci_low/ci_high = range ends (not a CI); value = midpoint or reported centre",
    "proportion_max": "share; the document gives an upper bound ('up to', '<', 'or less')",
    "proportion_min": "share; the document gives a lower bound ('over', 'at least')",
    "ratio": "hazard ratio (ci_low/ci_high = 95% CI when given)",
    "months": "months (years converted: x 12)",
    "months_range": "months; ci_low/ci_high = range ends; value = reported median or midpoint",
    "months_max": "months; upper bound ('at least every six months')",
    "weeks": "weeks",
    "weeks_range": "weeks; ci_low/ci_high = range ends; value = midpoint",
    "days": "days",
    "days_range": "days; ci_low/ci_high = range ends; value = midpoint",
    "day_of_cycle": "day number within a treatment cycle (day 1 = first day)",
    "hours": "hours",
    "hours_range": "hours; ci_low/ci_high = range ends; value = midpoint",
    "minutes": "minutes",
    "count": "a count (patients, responses, cycles, doses, lesions, studies, tablets)",
    "count_range": "a count; ci_low/ci_high = range ends; value = reported median",
    "cm": "centimetres",
    "mg": "milligrams (strength of one unit)",
    "mg_per_day": "milligrams per day",
    "mg_per_day_range": "milligrams per day; ci_low/ci_high = range ends; value = midpoint",
    "mg_per_injection": "milligrams per injection/administration",
    "mg_per_kg": "milligrams per kg body weight per administration",
    "mg_per_m2_per_day": "milligrams per m2 body surface area per dosing day",
    "mg_per_m2_twice_daily": "milligrams per m2 per dose, given twice daily",
    "mg_per_hour": "milligrams per hour (continuous infusion)",
    "MU_per_injection_range": "million units per injection; ci_low/ci_high = range ends",
    "GBq_per_dose": "gigabecquerels per administration",
    "GBq_per_dose_range": "gigabecquerels per administration; ci_low/ci_high = range ends",
    "GBq_min": "gigabecquerels, lower bound ('at least')",
    "GBP": "pounds sterling",
    "utility": "utility index (1 = full health, 0 = dead)",
}

TRIAL_LEVEL_NOTE = "(n = trial total)"


def _parse(path: Path) -> pd.DataFrame:
    text_columns = [c for c in COLUMNS if c not in NUMERIC_COLUMNS]
    table = pd.read_csv(path, dtype={c: str for c in text_columns}, keep_default_na=False)
    if tuple(table.columns) != COLUMNS:
        raise UserError(f"evidence file {path} has columns {list(table.columns)}, expected {list(COLUMNS)}")
    for col in NUMERIC_COLUMNS:
        raw = table[col].astype(str).str.strip()
        numbers = pd.to_numeric(raw.where(raw != ""), errors="coerce")
        bad = raw.ne("") & numbers.isna()
        if bad.any():
            first = table.loc[bad, "id"].iloc[0]
            raise UserError(f"evidence file {path}: column {col!r} of row {first!r} is not a number")
        table[col] = numbers.astype("Int64") if col == "n" else numbers.astype(float)
    return table


def load_evidence(path: str | Path | None = None) -> pd.DataFrame:
    """Return the evidence table (one row per figure) with numeric n/value/ci columns.

    ``path`` defaults to :data:`DEFAULT_EVIDENCE_PATH`. Text columns are strings (blank = ""),
    ``n`` is a nullable integer, ``value``/``ci_low``/``ci_high`` are floats (blank = NaN).
    """
    path = DEFAULT_EVIDENCE_PATH if path is None else Path(path)
    if not path.is_file():
        raise UserError(f"evidence file not found: {path}")
    return _parse(path)


def lookup(evidence_id: str, table: pd.DataFrame | None = None) -> pd.Series:
    """Return the row with ``id == evidence_id`` (from ``table`` or the default file).

    Raises :class:`KeyError` naming the id and the closest existing ids if it is absent.
    """
    table = load_evidence() if table is None else table
    hits = table.loc[table["id"] == evidence_id]
    if hits.empty:
        close = difflib.get_close_matches(str(evidence_id), table["id"].tolist(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"evidence id {evidence_id!r} not found in the evidence table{hint}")
    return hits.iloc[0]


def endpoint_base(endpoint: str) -> str:
    """Return the vocabulary part of an endpoint (``'ae_g34_rate:neutropenia'`` -> ``'ae_g34_rate'``)."""
    return endpoint.split(":", 1)[0]
