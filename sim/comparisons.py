"""Pairwise comparisons a run is asked to answer, and where their differences come from.

``experiment.comparisons`` names pairs of the compared strategies, each with the sentence
saying what the pair isolates (``isolates``)::

    decision_point: {intervention: rechallenge_then_captem, comparator: captem_then_rechallenge,
                     isolates: "..."}

For each comparison :func:`comparison_table` gives the paired differences (intervention minus
comparator, same patients and uniforms) of mean OS, discounted costs and QALYs with their 95 %
CIs, the ICER and the incremental net monetary benefit at each WTP; :func:`phase_table`
decomposes the OS and QALY differences by *phase* of the pathway, so a reader sees where a
difference comes from.

Phases are the therapies of the two strategies: the time on a line of a therapy, from its
start to the start of the next line (its progression-free time, the detection lag, and any
holiday or gap after it), and the time on the terminal line (best supportive care of
refractory disease, after the last active line). A patient who skips a line spends no time in
that phase. A patient's phases add up to their OS (censored at the horizon) and their QALYs,
so the phase differences add up to the OS and QALY differences. QALYs per phase use the run's health-state
convention (:func:`sim.economics.qalys.state_segments`): ``u_PF`` and ``u_PD`` per year of
progression-free and progressed time, discounted continuously at the effects rate, minus the
grade 3/4 AE decrements of the events on that line and the decrement of an uncontrolled functional
syndrome over its time (:func:`sim.economics.qalys.uncontrolled_segments`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.economics.discount import interval_factor
from sim.economics.qalys import state_segments, uncontrolled_segments
from sim.economics.records import RunArrays
from sim.errors import check, mapping
from sim.events import EVENT_CODE
from sim.outcomes import mean_ci
from sim.units import MONTHS_PER_YEAR, weeks

TERMINAL = "terminal"


@dataclass(frozen=True)
class Comparison:
    """``intervention`` against ``comparator`` (strategy names) and what the pair isolates."""

    name: str
    intervention: str
    comparator: str
    isolates: str


def build_comparisons(exp: Mapping, strategies, note=None) -> list[Comparison]:
    """``experiment.comparisons`` validated; a comparison naming a strategy that is not among the
    compared ``strategies`` (e.g. after ``experiment.strategies=[...]``) is left out, and
    ``note(text)`` (if given) is told so. Names must be strings, intervention and comparator differ
    and ``isolates`` is a sentence."""
    out = []
    cfg = mapping("experiment.comparisons", exp.get("comparisons"), allow_none=True)
    for name, c in cfg.items():
        key = f"experiment.comparisons.{name}"
        c = mapping(key, c)
        unknown = sorted(set(c) - {"intervention", "comparator", "isolates"})
        check(not unknown, key, unknown[0] if unknown else None, "is not a comparison key (intervention, comparator, isolates)")
        for role in ("intervention", "comparator"):
            check(isinstance(c.get(role), str), f"{key}.{role}", c.get(role), "must name a strategy")
        check(c["intervention"] != c["comparator"], f"{key}.comparator", c["comparator"],
              "must differ from the intervention")
        check(isinstance(c.get("isolates"), str) and c["isolates"].strip(), f"{key}.isolates", c.get("isolates"),
              "must be a sentence saying what the comparison isolates")
        missing = [c[r] for r in ("intervention", "comparator") if c[r] not in strategies]
        if missing:
            if note is not None:
                note(f"comparison {name} left out: {', '.join(missing)} not among the compared strategies")
            continue
        out.append(Comparison(str(name), c["intervention"], c["comparator"], c["isolates"].strip()))
    return out


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    return mean_ci(np.asarray(a, float) - np.asarray(b, float))


def comparison_table(comparisons: list[Comparison], patients: pd.DataFrame, econ: pd.DataFrame | None,
                     wtp) -> pd.DataFrame:
    """One row per comparison: paired mean differences (intervention - comparator) of OS
    (months), discounted costs and QALYs with 95 % CIs, the ICER and the INB at each WTP (with CI)."""
    os_w = patients.pivot(index="patient_id", columns="strategy", values="os_months")
    rows = []
    for c in comparisons:
        row = {"comparison": c.name, "intervention": c.intervention, "comparator": c.comparator,
               "isolates": c.isolates}
        m, lo, hi = _paired(os_w[c.intervention], os_w[c.comparator])
        row |= {"delta_os_months": m, "delta_os_months_lo": lo, "delta_os_months_hi": hi}
        if econ is not None:
            cost = econ.pivot(index="patient_id", columns="strategy", values="cost_total_disc")
            qaly = econ.pivot(index="patient_id", columns="strategy", values="qaly_disc")
            dc, dq = cost[c.intervention] - cost[c.comparator], qaly[c.intervention] - qaly[c.comparator]
            for name, d in (("delta_cost", dc), ("delta_qaly", dq)):
                m, lo, hi = mean_ci(d.to_numpy())
                row |= {name: m, f"{name}_lo": lo, f"{name}_hi": hi}
            row["icer"] = _icer(row["delta_cost"], row["delta_qaly"])
            for w in wtp:
                m, lo, hi = mean_ci((float(w) * dq - dc).to_numpy())
                row |= {f"inb_{w:g}": m, f"inb_{w:g}_lo": lo, f"inb_{w:g}_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def _icer(dc: float, dq: float) -> float:
    """ICER, or NaN where one strategy dominates (cheaper and at least as effective)."""
    if dq > 0 and dc > 0:
        return dc / dq
    if dq < 0 and dc < 0:
        return dc / dq
    return math.nan


def icer_wording(row: Mapping) -> str:
    """``"ICER GBP x per QALY"``, ``"dominates"`` or ``"dominated"`` for a comparison row."""
    dc, dq = row["delta_cost"], row["delta_qaly"]
    if dq >= 0 and dc <= 0:
        return f"{row['intervention']} dominates {row['comparator']}"
    if dq <= 0 and dc >= 0:
        return f"{row['intervention']} is dominated by {row['comparator']}"
    word = "per QALY gained" if dq > 0 else "saved per QALY lost"
    return f"ICER {row['icer']:,.0f} {word}"


def _phase_arrays(ra: RunArrays, spec, horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per piece of lived time or AE decrement: patient row, therapy code (``ra.therapy_names``;
    time before the first line counts for the first line given, or the terminal one) and
    (months, discounted QALYs)."""
    p, a, b, progressed, row = state_segments(ra, with_line=True)
    a, b = np.minimum(a, horizon), np.minimum(b, horizon)
    syndrome_off = uncontrolled_segments(ra, p, row)
    first_line = np.full(ra.n, -1)
    first_line[ra.line_patient[::-1]] = np.arange(ra.line_patient.size)[::-1]
    row = np.where(row >= 0, row, first_line[p])
    code = ra.therapy[np.maximum(row, 0)]
    r = spec.discount_effects
    u = np.where(progressed, spec.utility_pd, spec.utility_pf) - np.where(syndrome_off, spec.uncontrolled_syndrome, 0.0)
    val = np.column_stack([b - a, u * interval_factor(a, b, r) / MONTHS_PER_YEAR])
    is_ae = ra.ev_event == EVENT_CODE["adverse_event"]
    if is_ae.any():                                   # AE decrements on the line of their event
        ae = np.flatnonzero(is_ae)
        pe, t = ra.ev_patient[ae], np.minimum(ra.ev_time[ae], horizon)
        stop = np.maximum(np.minimum(np.minimum(ra.ev_time[ae] + weeks(np.nan_to_num(ra.ev_value[ae])),
                                                ra.os_months[pe]), horizon), t)
        dec = np.array([spec.ae_decrement(str(x)) for x in ra.detail_names], dtype=float)[ra.ev_detail[ae]]
        lr = ra.line_row_of_events(is_ae)
        p, code = np.concatenate([p, pe]), np.concatenate([code, ra.therapy[np.maximum(lr, 0)]])
        val = np.vstack([val, np.column_stack([np.zeros(ae.size), -dec * interval_factor(t, stop, r) / MONTHS_PER_YEAR])])
    return p, code, val


def phase_table(comparisons: list[Comparison], patients: pd.DataFrame, lines: pd.DataFrame, events: pd.DataFrame,
                spec, horizon_months: float, strategies: Mapping) -> pd.DataFrame:
    """Per comparison and phase (a therapy of either strategy, in the order of the intervention's
    lines, the comparator's own after them, the terminal line last): mean months and discounted
    QALYs per patient in it under both strategies and the paired differences with 95 % CIs
    (module docstring). The phase differences of a comparison add up to its OS and QALY
    differences."""
    per = {}
    for s in {x for c in comparisons for x in (c.intervention, c.comparator)}:
        sel = [df[df["strategy"] == s] for df in (patients, lines, events)]
        ra = RunArrays.from_frames(*sel)
        p, code, val = _phase_arrays(ra, spec, horizon_months)
        out = np.zeros((ra.n, len(ra.therapy_names), 2))
        np.add.at(out, (p, code), val)
        order = np.argsort(ra.patient_id)
        per[s] = (ra.patient_id[order], out[order], list(ra.therapy_names))
    rows = []
    for c in comparisons:
        (ia, va, na), (ib, vb, nb) = per[c.intervention], per[c.comparator]
        check(np.array_equal(ia, ib), "experiment.comparisons", c.name, "needs the same patients in both strategies")
        la, lb = strategies[c.intervention].therapy_names, strategies[c.comparator].therapy_names
        phases = [t for t in la[:-1]] + [t for t in lb[:-1] if t not in la[:-1]]
        phases = list(dict.fromkeys(phases)) + [la[-1]] + ([lb[-1]] if lb[-1] != la[-1] else [])
        for ph in phases:
            xa = va[:, na.index(ph)] if ph in na else np.zeros((len(ia), 2))
            xb = vb[:, nb.index(ph)] if ph in nb else np.zeros((len(ib), 2))
            row = {"comparison": c.name, "phase": ph, "terminal": ph in (la[-1], lb[-1]),
                   "in_intervention": ph in la, "in_comparator": ph in lb}
            for j, what in enumerate(("months", "qaly_disc")):
                row[f"intervention_{what}"] = float(xa[:, j].mean())
                row[f"comparator_{what}"] = float(xb[:, j].mean())
                m, lo, hi = _paired(xa[:, j], xb[:, j])
                row |= {f"delta_{what}": m, f"delta_{what}_lo": lo, f"delta_{what}_hi": hi}
            rows.append(row)
    return pd.DataFrame(rows)


def format_comparisons(table: pd.DataFrame, phases: pd.DataFrame, currency: str = "") -> str:
    """Terminal text: per comparison the sentence it isolates, the differences and the phases."""
    out = []
    for r in table.to_dict("records"):
        out.append(f"Comparison {r['comparison']}: {r['intervention']} vs {r['comparator']}")
        out.append(f"  isolates: {r['isolates']}")
        line = (f"  mean OS {r['delta_os_months']:+.1f} months ({r['delta_os_months_lo']:+.1f} to "
                f"{r['delta_os_months_hi']:+.1f})")
        if "delta_qaly" in r:
            line += (f"; QALYs {r['delta_qaly']:+.3f} ({r['delta_qaly_lo']:+.3f} to {r['delta_qaly_hi']:+.3f}); "
                     f"costs {currency} {r['delta_cost']:+,.0f} ({r['delta_cost_lo']:+,.0f} to {r['delta_cost_hi']:+,.0f}); "
                     f"{icer_wording(r)}")
        out.append(line)
        ph = phases[phases["comparison"] == r["comparison"]]
        t = pd.DataFrame({
            "phase (therapy)": [f"{x} (after the last active line)" if term else x
                                for x, term in zip(ph["phase"], ph["terminal"])],
            "months": [f"{a:.2f} / {b:.2f}" for a, b in zip(ph["intervention_months"], ph["comparator_months"])],
            "delta months (95% CI)": [f"{m:+.2f} ({lo:+.2f} to {hi:+.2f})" for m, lo, hi in
                                      zip(ph["delta_months"], ph["delta_months_lo"], ph["delta_months_hi"])],
            "delta QALYs (95% CI)": [f"{m:+.3f} ({lo:+.3f} to {hi:+.3f})" for m, lo, hi in
                                     zip(ph["delta_qaly_disc"], ph["delta_qaly_disc_lo"], ph["delta_qaly_disc_hi"])]})
        out.append("  by phase (months per patient: intervention / comparator):")
        out.append("\n".join("    " + s for s in t.to_string(index=False).splitlines()))
    return "\n".join(out)
