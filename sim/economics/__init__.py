"""Health economics: costs, QALYs, discounting, incremental analysis (columns: ``docs/outputs.md``).

Typical use on a run's tables::

    from sim.economics import load_spec, evaluate, summarise, incremental
    spec = load_spec("uk_nhs")
    per_patient = evaluate(patients, lines, events, spec)
    summary = summarise(per_patient)
    inc = incremental(summary, wtp=spec.wtp)
"""

from sim.economics.discount import interval_factor, monthly_rate, point_factor, series_factor
from sim.economics.evaluate import (MEASURES, economics_summary, evaluate, incremental_with_se, paired_differences,
                                    summarise)
from sim.economics.incremental import frontier_status, incremental, net_benefit
from sim.economics.spec import DrugCost, EconomicsSpec, load_spec

__all__ = [
    "DrugCost", "EconomicsSpec", "MEASURES", "economics_summary", "evaluate", "frontier_status", "incremental",
    "incremental_with_se", "interval_factor", "load_spec", "monthly_rate", "net_benefit", "paired_differences",
    "point_factor", "series_factor", "summarise",
]
