"""The table of economic inputs of a run (``economics_inputs.csv`` / ``.parquet``): every number of
the ``economics`` config group with its unit, source, sensitivity range and rationale, plus the
derived monthly cost of each daily (oral) drug at full dose.

Columns: ``parameter`` (dotted path under ``economics``), ``value``, ``unit``, ``source``
(``evidence:<id>`` with the citation of ``data/evidence/evidence.csv``, ``derived:<formula>``, or
``assumption:<id>``), ``low``, ``high`` (range used by the sensitivity analyses; empty when the
value is not varied) and ``rationale`` (why that range). Output-only settings (``wtp_grid``) are
left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from sim.economics.spec import DrugCost
from sim.errors import is_number
from sim.evidence import load_evidence, lookup
from sim.units import DAYS_PER_MONTH

COLUMNS = ["parameter", "value", "unit", "source", "low", "high", "rationale"]
_SKIP = ("sources", "ranges", "wtp_grid", "therapy_drugs", "price_year")


def _leaves(node, prefix=""):
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{prefix}.{i}")
    elif is_number(node):
        yield prefix, float(node)


def unit_of(path: str, econ: Mapping) -> str:
    """Unit of the economics input at ``path`` (``currency`` from the config)."""
    cur = str(econ.get("currency", ""))
    parts = path.split(".")
    last = parts[-1]
    if parts[0] == "drugs":
        schedule = ((econ.get("drugs") or {}).get(parts[1]) or {}).get("schedule")
        return {"pack_price": f"{cur} per pack", "pack_size": "units per pack", "unit_mg": "mg per unit",
                "daily_dose_mg": "mg per day", "price_per_day": f"{cur} per day",
                "price_per_administration": f"{cur} per administration", "interval_weeks": "weeks",
                "max_administrations": "administrations",
                "administration_cost": f"{cur} per month on treatment" if schedule == "daily"
                else f"{cur} per administration"}.get(last, "")
    if parts[0] == "dispensing":
        return {"interval_days": "days between dispensings", "strength_mg": "mg per unit", "pack_size": "units per pack",
                "pack_price": f"{cur} per pack", "mg": "mg per day"}.get(last, "")
    if parts[0] == "monitoring":
        return {"scan": f"{cur} per scheduled scan", "labs_per_month": f"{cur} per month on treatment"}.get(last, cur)
    if parts[0] == "adverse_events":
        return f"{cur} per grade 3/4 event"
    if parts[0] == "utilities":
        if "ae_states" in parts:
            return "utility (stable disease with the AE)"
        return "utility decrement while the AE lasts" if parts[1] == "ae_disutility" else "utility"
    return {"bsc_per_month": f"{cur} per month on BSC", "end_of_life": f"{cur} per disease death",
            "costs": "per year", "effects": "per year", "horizon_years": "years", "wtp": f"{cur} per QALY"}.get(
        last if parts[0] != "wtp" else "wtp", "")


def _source(sources: Mapping, path: str) -> str:
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in sources:
            return str(sources[key])
    return ""


def _cite(src: str, evidence: dict | None = None) -> str:
    """``evidence:<id>`` with its citation appended (when the evidence table has it). ``evidence``
    (a dict, filled on first use) keeps the parsed evidence table for the next calls."""
    if not src.startswith("evidence:"):
        return src
    try:
        if evidence is None:
            evidence = {}
        if "table" not in evidence:
            evidence["table"] = load_evidence()
        row = lookup(src.split(":", 1)[1], evidence["table"])
    except (KeyError, ImportError, OSError):
        return src
    cit = row.get("citation")
    return f"{src} ({cit})" if isinstance(cit, str) and cit else src


def inputs_table(econ: Mapping) -> pd.DataFrame:
    """One row per numeric economics input (see the module docstring)."""
    sources, ranges = dict(econ.get("sources") or {}), dict(econ.get("ranges") or {})
    rows, evidence = [], {}              # the evidence table is parsed once (at the first citation)
    for path, value in _leaves({k: v for k, v in econ.items() if k not in _SKIP}):
        r = ranges.get(path) or {}
        rows.append({"parameter": path, "value": value, "unit": unit_of(path, econ),
                     "source": _cite(_source(sources, path), evidence), "low": float(r.get("low", math.nan)),
                     "high": float(r.get("high", math.nan)), "rationale": str(r.get("why", ""))})
        if path.startswith("drugs.") and path.endswith(".administration_cost"):
            name = path.split(".")[1]
            d = DrugCost.from_config(name, econ["drugs"][name])
            if d.schedule == "daily":
                rows.append({"parameter": f"drugs.{name}.cost_per_month", "value": d.cost_per_month,
                             "unit": f"{econ.get('currency', '')} per month at full dose",
                             "source": f"derived: pack_price / pack_size x daily_dose_mg / unit_mg x "
                                       f"{DAYS_PER_MONTH:.4g} days (scaled by the dose received)",
                             "low": math.nan, "high": math.nan, "rationale": ""})
    return pd.DataFrame(rows, columns=COLUMNS)
