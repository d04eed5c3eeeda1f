"""Readable names for config paths, strategies and table columns in figures and reports.

The run folder's CSV / Parquet files keep the machine names (``docs/outputs.md``); reports and
figures show these labels instead, with units.
"""

from __future__ import annotations

from collections.abc import Mapping

_PREFIXES = (("economics.utilities.sets.", "utility "), ("economics.utilities.ae_disutility.", "AE disutility "),
             ("economics.adverse_events.", "AE cost "), ("economics.monitoring.", "monitoring "),
             ("economics.discount.", "discount rate, "), ("economics.drugs.", ""), ("economics.", ""),
             ("therapies.", ""), ("model.", "model: "), ("cohort.", "cohort: "))
_WORDS = {"price_per_administration": "price per administration", "pfs.median": "median PFS",
          "pfs.hazard_ratio": "PFS hazard ratio", "pfs.landmark_survival": "PFS landmark survival",
          "pfs.shape": "PFS shape", "sunitinib_rechallenge.rechallenge.": "rechallenge ",
          "lu177_dotatate": "177Lu-dotatate", "ssa": "SSA", "bsc": "BSC", "captem": "CAPTEM",
          "swinburn2012.": "", "meng2017.": "", "ae_states.": "stable with ", "labs_per_month": "labs per month",
          "bsc_per_month": "BSC per month", "scan": "scan"}


def param_label(path: str) -> str:
    """Short readable name of a config path, e.g. ``economics.drugs.sunitinib.pack_price`` ->
    ``sunitinib pack price``; ``therapies.sunitinib_rechallenge.rechallenge.time_ratio`` ->
    ``rechallenge time ratio``."""
    text = str(path)
    head = ""
    for prefix, repl in _PREFIXES:
        if text.startswith(prefix):
            text, head = text[len(prefix):], repl
            break
    for k, v in _WORDS.items():
        text = text.replace(k, v)
    return (head + text).replace(".", " ").replace("_", " ").strip()


def short_label(strategy: str, labels: Mapping | None = None) -> str:
    """The part of a strategy label before ``:`` (``'Switch: SSA -> ...'`` -> ``'Switch'``)."""
    lab = str((labels or {}).get(strategy, strategy))
    return lab.split(":", 1)[0].strip() or str(strategy)


def column_labels(currency: str = "") -> dict[str, str]:
    """Display headers (with units) of the economics columns of ``docs/outputs.md`` and
    ``docs/outputs_psa.md``."""
    c = f" ({currency})" if currency else ""
    out = {"strategy": "strategy", "label": "label", "n_patients": "patients", "n_samples": "samples",
           "cost_total_disc": f"total cost{c}", "cost_total": f"total cost, undiscounted{c}",
           "ly_disc": "life-years", "ly": "life-years, undiscounted", "qaly_disc": "QALYs",
           "qaly": "QALYs, undiscounted", "pf_ly_disc": "progression-free years", "pd_ly_disc": "progressed years",
           "qaly_ae_loss_disc": "QALYs lost to AEs", "n_ae": "grade 3/4 AEs per patient",
           "cost": f"total cost{c}", "qaly_undiscounted": "QALYs, undiscounted", "ly_undiscounted":
               "life-years, undiscounted", "cost_undiscounted": f"total cost, undiscounted{c}",
           "effect": "QALYs", "status": "status", "comparator": "vs", "inc_cost": f"incremental cost{c}",
           "inc_effect": "incremental QALYs", "icer": f"ICER{c} per QALY", "delta_cost": f"incremental cost{c}",
           "delta_qaly": "incremental QALYs", "reference": "reference", "n_pairs": "pairs",
           "wtp": f"WTP{c} per QALY", "evppi": f"value per person{c}", "group": "parameter group",
           "n_parameters": "parameters", "method": "method", "optimal_strategy": "optimal strategy",
           "expected_nmb": f"expected NMB{c}", "probability_cost_effective": "P(cost-effective)",
           "evpi": f"EVPI per person{c}", "inb": f"INB{c}", "quadrant": "quadrant", "scenario": "scenario",
           "description": "description", "intervention": "intervention", "parameter": "parameter",
           "base_value": "base value", "low": "low", "high": "high", "inb_low": f"INB at low{c}",
           "inb_high": f"INB at high{c}", "swing": f"swing{c}", "icer_low": f"ICER at low{c}",
           "icer_high": f"ICER at high{c}", "source": "source", "se": "SE"}
    for col, name in (("median_pfs1_months", "median PFS1 (months)"), ("median_pfs2_months", "median PFS2 (months)"),
                      ("median_os_months", "median OS (months)"), ("mean_os_months", "mean OS (months)"),
                      ("mean_time_on_treatment_months", "mean time on treatment (months)"),
                      ("g34_ae_per_patient", "grade 3/4 AEs per patient"), ("share_any_g34_ae", "share with a grade 3/4 AE"),
                      ("share_toxicity_discontinuation", "share stopping for toxicity"),
                      ("mean_active_lines", "active lines per patient"), ("share_alive_at_horizon", "share alive at horizon")):
        out[col] = name
    for cat in ("drug", "administration", "monitoring", "ae", "bsc", "end_of_life"):
        name = {"ae": "AE management", "bsc": "BSC", "end_of_life": "end of life"}.get(cat, cat)
        out[f"cost_{cat}_disc"] = out[f"cost_{cat}"] = f"{name}{c}"
    return out


def dominance_text(inc, labels: Mapping | None = None) -> list[str]:
    """The status of each row of an incremental table (columns ``strategy``, ``cost``, ``effect``,
    ``status``) in words that say by what: ``dominated by switch`` (another strategy costs no more
    and gives at least as many QALYs), ``extendedly dominated by switch and prrt`` (a mix of the
    two frontier strategies around it does better), ``frontier`` otherwise."""
    rows = list(zip(inc["strategy"], inc["cost"], inc["effect"], inc["status"]))
    frontier = sorted(((e, s) for s, c, e, st in rows if str(st) not in ("dominated", "extendedly dominated")))
    out = []
    for s, c, e, st in rows:
        st = str(st)
        if st == "dominated":
            by = [t for t, c2, e2, _ in rows if t != s and c2 <= c and e2 >= e]
            best = min(by, key=lambda t: dict((r[0], r[1]) for r in rows)[t]) if by else None
            out.append(f"dominated by {short_label(best, labels)}" if best else "dominated")
        elif st == "extendedly dominated":
            below = [t for e2, t in frontier if e2 <= e]
            above = [t for e2, t in frontier if e2 > e]
            pair = [x for x in (below[-1] if below else None, above[0] if above else None) if x]
            out.append("extendedly dominated by " + " and ".join(short_label(t, labels) for t in pair)
                       if pair else "extendedly dominated")
        else:
            out.append(st)
    return out
