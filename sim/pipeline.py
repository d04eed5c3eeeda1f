"""One comparison run: build the model, simulate every strategy, summarise outcomes and (with an
``economics`` config group) costs, QALYs and the full incremental analysis, write the run folder
(``docs/outputs.md``) and, when :mod:`sim.report.html` exists, its report."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from sim import background
from sim.comparisons import build_comparisons, comparison_table, format_comparisons, phase_table
from sim.config import Model, build_model, to_container
from sim.economics import EconomicsSpec, economics_summary, evaluate, incremental_with_se
from sim.economics import paired_differences as econ_differences
from sim.economics.inputs import inputs_table
from sim.flow import flow_figure, flow_labels, never_given_notes, subgroup_table, treatment_flow
from sim.outcomes import paired_differences, summarise
from sim.report.figures import ce_plane_paired, km_overview, km_strategy_figures
from sim.report.html import cohort_characteristics, write_report
from sim.report.labels import dominance_text, short_label
from sim.report.resource_figures import queue_figure
from sim.resources import format_resources, queue_trace, resource_table
from sim.run.executors import simulate
from sim.runio import Steps, atomic_run_dir, progress_bar, run_folder_name, warn_small_cohort, write_manifest

SUMMARY_COLUMNS = ["strategy", "n_patients", "median_pfs1_months", "median_pfs2_months", "median_os_months",
                   "mean_os_months", "mean_time_on_treatment_months", "g34_ae_per_patient"]


def simulate_model(model: Model, progress="auto"):
    """Simulate with the model's executor (``engine``, ``chunk_size``) and return (patients, lines,
    events) frames; patients carry baseline columns."""
    return simulate_run(model, progress)[:3]


def simulate_run(model: Model, progress="auto"):
    """:func:`simulate_model` and the queue monitors of the model's shared resources (a list of
    :class:`~sim.resources.QueueMonitor`, empty without resources): (patients, lines, events, queues)."""
    n = len(model.cohort)
    with progress_bar(progress, n, "simulating") as bar:
        rec = simulate(model.cohort, model.strategies, model.therapies, model.rules, model.lifetable,
                       model.seed, engine=model.engine, chunk_size=model.chunk_size, progress=bar.update,
                       centre=model.centre)
    queues = list(rec.queues)
    patients, lines, events = rec.frames()
    patients = patients.merge(model.cohort, on="patient_id", how="left")
    order = {s: i for i, s in enumerate(model.strategies)}
    patients = patients.sort_values(["strategy", "patient_id"], key=lambda c: c.map(order) if c.name == "strategy" else c)
    lines = lines[["patient_id", "strategy"] + [c for c in lines.columns if c not in ("patient_id", "strategy")]]
    lines = lines.sort_values(["strategy", "patient_id", "line"], key=lambda c: c.map(order) if c.name == "strategy" else c)
    events = events.sort_values(["strategy", "patient_id", "time"], kind="stable",
                                key=lambda c: c.map(order) if c.name == "strategy" else c)
    return (patients.reset_index(drop=True), lines.reset_index(drop=True), events.reset_index(drop=True), queues)


def economics_spec_of(plain: dict):
    """The validated :class:`~sim.economics.EconomicsSpec` of the ``economics`` group, or None
    when the composed config has none (then no economics tables are written)."""
    if plain.get("economics") is None:
        return None
    return EconomicsSpec.from_config(plain["economics"])


def economics_tables(patients, lines, events, spec, model: Model, labels: dict) -> dict[str, pd.DataFrame]:
    """Per-patient economics, per-strategy summary and full incremental analysis of one run.

    Returns ``{"economics_patients", "economics_summary", "incremental", "economics_differences",
    "economics_inputs"}`` (columns in ``docs/outputs.md``). Scan costs are timed on the model's
    imaging interval.
    """
    per = evaluate(patients, lines, events, spec, imaging_interval_months=model.rules.imaging_interval_months)
    return {"economics_patients": per,
            "economics_summary": economics_summary(per, spec, labels),
            "incremental": incremental_with_se(per, spec.wtp),
            "economics_differences": econ_differences(per, model.reference),
            "economics_inputs": inputs_table(spec.config)}


def write_report_if_available(folder: Path, kind: str, plain: dict, tables: dict, figures: dict,
                              labels: dict) -> bool:
    """``sim.report.html.write_report(folder, kind, plain, tables, figures, labels)`` (``report.html`` /
    ``report.md``); True."""
    write_report(folder, kind, plain, tables, figures, labels)
    return True


def analyse(patients, lines, events, model: Model, spec, comparisons, labels: dict, step,
            queues=()) -> tuple[dict, dict, pd.DataFrame]:
    """The tables of a comparison run: (tables, economics tables, treatment flow); ``step`` is the
    :class:`~sim.runio.Steps` progress (``analysing outcomes``, ``costs and QALYs``); ``queues``: the
    monitors of the shared resources (table ``resources``)."""
    step.start("analysing outcomes")
    tables = {"summary": summarise(patients, lines, labels),
              "differences": paired_differences(patients, model.reference, model.seed)}
    step.start("costs and QALYs")
    econ = economics_tables(patients, lines, events, spec, model, labels) if spec is not None else {}
    flow = treatment_flow(lines, events, patients.groupby("strategy", observed=True).size().to_dict(),
                          list(model.strategies))
    tables["treatment_flow"] = flow
    for text in never_given_notes(flow, events, model.strategies):
        print(f"pnetsim: note: {text}", file=sys.stderr)
    tables["subgroups"] = subgroup_table(patients, econ.get("economics_patients"),
                                         spec.wtp[0] if spec is not None else None, list(model.strategies))
    if comparisons:
        tables["comparisons"] = comparison_table(comparisons, patients, econ.get("economics_patients"),
                                                 spec.wtp if spec is not None else ())
        if spec is not None:
            tables["phases"] = phase_table(comparisons, patients, lines, events, spec,
                                           model.rules.horizon_months, model.strategies)
    if queues:
        tables["resources"] = resource_table(queues)
    return tables, econ, flow


def write_tables(folder: Path, patients, lines, events, tables: dict, econ: dict, queues=()) -> None:
    """The record and table files of a comparison run (``docs/outputs.md``); the economics tables are
    added to ``tables``."""
    patients.to_parquet(folder / "patients.parquet", index=False)
    lines.to_parquet(folder / "lines.parquet", index=False)
    events.to_parquet(folder / "events.parquet", index=False)
    if queues:
        queue_trace(queues).to_parquet(folder / "resource_queue.parquet", index=False)
    for name in ("summary", "differences", "comparisons", "phases", "treatment_flow", "subgroups", "resources"):
        if name in tables:
            tables[name].to_csv(folder / f"{name}.csv", index=False, float_format="%.6g")
            tables[name].to_parquet(folder / f"{name}.parquet", index=False)
    if econ:
        econ["economics_patients"].to_parquet(folder / "economics_patients.parquet", index=False)
        for name in ("economics_summary", "incremental", "economics_differences", "economics_inputs"):
            econ[name].to_csv(folder / f"{name}.csv", index=False, float_format="%.10g")   # costs > 1e5
            econ[name].to_parquet(folder / f"{name}.parquet", index=False)
            tables[name] = econ[name]


def run_compare(cfg, job: int | None = None) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The default experiment: compare strategies on one cohort.

    Returns (folder, tables) with tables ``summary``, ``differences`` and, when the config has an
    ``economics`` group, ``economics_summary``, ``incremental`` and ``economics_differences``.
    """
    t0 = time.perf_counter()
    model = build_model(cfg)
    plain = to_container(cfg)
    if plain["cohort"].get("source"):
        plain["cohort"]["n"] = len(model.cohort)     # the file's rows are the cohort (manifest, report)
    spec = economics_spec_of(plain)            # validated before the (long) simulation
    comparisons = build_comparisons(plain["experiment"], list(model.strategies),
                                    note=lambda text: print(f"pnetsim: note: {text}", file=sys.stderr))
    if spec is not None:
        for st in model.strategies.values():
            for th in st.therapy_names:
                spec.drug_for(th)               # every therapy given must have a drug entry (or null)
    warn_small_cohort(len(model.cohort))
    t1 = time.perf_counter()
    progress = plain["output"].get("progress", "auto")
    patients, lines, events, queues = simulate_run(model, progress)
    t2 = time.perf_counter()
    labels = {s: st.label for s, st in model.strategies.items()}
    figures_on = plain["output"].get("figures", True)
    final = run_folder_name(plain, job)
    with Steps(progress, ["analysing outcomes", "costs and QALYs", "writing tables", "figures", "report"]) as step, \
            atomic_run_dir(final) as tmp:
        # the KM figures (the longest drawing) are drawn in two child processes while the tables are
        # analysed and written (sim/background.py); the other figures need the analysis
        km = [background.start(km_overview, patients, tmp, labels),
              background.start(km_strategy_figures, patients, lines, tmp, labels)] if figures_on else []
        try:
            tables, econ, flow = analyse(patients, lines, events, model, spec, comparisons, labels, step, queues)
            t3 = time.perf_counter()
            step.start("writing tables")
            write_tables(tmp, patients, lines, events, tables, econ, queues)
            step.start("figures")
            figures = {}
            if figures_on:
                others = {"treatment_flow": flow_figure(
                    flow, tmp / "treatment_flow.png",
                    {s: textwrap.fill(f"{s}: {t}", 140) for s, t in flow_labels(flow, 1).items()})}
                if queues:
                    others["resource_queue"] = queue_figure(queues, tmp / "resource_queue.png")
                if econ and len(model.strategies) > 1:
                    others["ce_plane_paired"] = ce_plane_paired(
                        econ["economics_patients"], model.reference, tmp / "ce_plane_paired.png", labels,
                        spec.wtp, currency=str(econ["economics_summary"]["currency"].iloc[0]), seed=model.seed)
                paths = [km[0].result(), *km[1].result()]
                figures = {Path(path).stem: Path(path) for path in paths} | others
        finally:
            for task in km:
                task.cancel()
        step.start("report")
        tables["cohort_characteristics"] = cohort_characteristics(model.cohort, plain["cohort"])
        report = write_report_if_available(tmp, "compare", plain, tables, figures, labels)
        t4 = time.perf_counter()
        write_manifest(tmp, plain, model.seed,
                       {"build": t1 - t0, "simulate": t2 - t1, "analyse": t3 - t2, "write": t4 - t3,
                        "total": t4 - t0},
                       {"n_patients": len(model.cohort), "strategies": list(model.strategies),
                        "patients_per_second": len(model.cohort) * len(model.strategies) / max(t2 - t1, 1e-9),
                        "report": report})
    return final, tables


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=compare`` (see ``experiments/run.py``): run folder and printed text
    (outcome summary, then costs / QALYs and the incremental analysis when economics is configured)."""
    folder, tables = run_compare(cfg, job)
    text = format_summary(tables["summary"])
    if "economics_summary" in tables:
        text += "\n\n" + format_economics(tables["economics_summary"], tables["incremental"],
                                           tables.get("economics_differences"))
    text += "\n\n" + format_flow(tables["treatment_flow"]) + "\n\n" + format_subgroups(tables["subgroups"])
    if "phases" in tables:
        cur = tables["economics_summary"]["currency"].iloc[0] if "currency" in tables["economics_summary"] else ""
        text += "\n\n" + format_comparisons(tables["comparisons"], tables["phases"], cur)
    if "resources" in tables:
        text += "\n\n" + format_resources(tables["resources"])
    return folder, text


def format_flow(flow: pd.DataFrame) -> str:
    """Human-readable treatment flow: per strategy and line, the therapies given (share of the
    cohort) and the reasons lines were skipped before it."""
    out = ["Treatment flow (therapy given at each line, share of the strategy's patients; skipped before it):"]
    for s, g in flow.groupby("strategy", sort=False):
        out.append(f"  {s}")
        for ln, h in g.groupby("line"):
            given = ", ".join(f"{t} {100 * x:.0f} %" for t, x in zip(h["therapy"], h["share"]) if t)
            skip = h["skipped_before"].iloc[0]
            out.append(f"    line {ln}: {given or '-'}" + (f"  [skipped: {skip}]" if skip else ""))
    return "\n".join(out)


def format_subgroups(sub: pd.DataFrame) -> str:
    """Human-readable subgroup table: per subgroup the best strategy and each strategy's mean OS
    (and NMB when economics is configured)."""
    econ = "nmb" in sub.columns
    head = "Subgroups (mean OS months" + (f"; NMB at {sub['wtp'].iloc[0]:,.0f} per QALY" if econ else "") + "):"
    out = [head]
    for (var, val), g in sub.groupby(["subgroup", "value"], sort=False):
        cells = [f"{r.strategy} {r.mean_os_months:.1f}" + (f" / {r.nmb:,.0f}" if econ else "")
                 for r in g.itertuples()]
        b = g.iloc[0]
        out.append(f"  {var}={val} (n={int(b['n_patients'])}): best {b['best_strategy']} "
                   f"(margin {b['margin']:,.1f} ± {b['margin_se']:,.1f}); " + "; ".join(cells))
    return "\n".join(out)


def format_summary(summary: pd.DataFrame) -> str:
    """Titled table of clinical outcomes per strategy: medians and means in months with 95 % CIs,
    grade 3/4 adverse events per patient."""
    n = summary["n_patients"]
    title = (f"Clinical outcomes ({int(n.iloc[0]):,} patients per strategy; months, estimate (95 % CI))"
             if n.nunique() == 1 else "Clinical outcomes (months, estimate (95 % CI))")
    out = pd.DataFrame({"strategy": summary["strategy"], "patients": [f"{int(x):,}" for x in n]})
    heads = {"median_pfs1_months": "median PFS1", "median_pfs2_months": "median PFS2",
             "median_os_months": "median OS", "mean_os_months": "mean OS",
             "mean_time_on_treatment_months": "mean time on treatment",
             "g34_ae_per_patient": "grade 3/4 AEs per patient"}
    for col in SUMMARY_COLUMNS[2:]:
        digits = 2 if col == "g34_ae_per_patient" else 1
        out[heads.get(col, col)] = [f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})" for m, lo, hi in
                                    zip(summary[col], summary[f"{col}_lo"], summary[f"{col}_hi"])]
    return title + "\n" + out.to_string(index=False)


def _vs_reference(diff: pd.DataFrame, cur: str, labels: dict | None) -> str:
    """Paired incremental costs and QALYs of each strategy against the reference, with the ICER or
    the dominance in words."""
    ref = str(diff["reference"].iloc[0])
    rows = []
    for _, r in diff.iterrows():
        dc, dq = float(r["cost_total_disc"]), float(r["qaly_disc"])
        sc, sq = 1.96 * float(r["cost_total_disc_se"]), 1.96 * float(r["qaly_disc_se"])
        if dc <= 0 and dq >= 0:
            verdict = f"dominates {short_label(ref, labels)}"
        elif dc >= 0 and dq <= 0:
            verdict = f"dominated by {short_label(ref, labels)}"
        elif dq > 0:
            verdict = f"{dc / dq:,.0f} per QALY gained"
        else:
            verdict = f"{dc / dq:,.0f} saved per QALY lost"
        rows.append({"strategy": r["strategy"], f"incremental cost ({cur})": f"{dc:,.0f} ({dc - sc:,.0f} to {dc + sc:,.0f})",
                     "incremental QALYs": f"{dq:.3f} ({dq - sq:.3f} to {dq + sq:.3f})", f"ICER ({cur} per QALY)": verdict})
    return (f"Incremental costs and QALYs vs {ref} (discounted, paired per patient; {cur}, estimate (95 % CI)):\n"
            + pd.DataFrame(rows).to_string(index=False))


def format_economics(econ: pd.DataFrame, inc: pd.DataFrame, diff: pd.DataFrame | None = None,
                     labels: dict | None = None) -> str:
    """Titled economics tables: discounted costs, life-years and QALYs per strategy (± Monte Carlo SE);
    incremental costs and QALYs against the reference (``diff``, when given); and the full incremental
    analysis with the dominance in words (``dominated by switch``) and the NMB at each WTP."""
    cur = econ["currency"].iloc[0] if "currency" in econ else ""
    yr = econ["price_year"].iloc[0] if "price_year" in econ else ""
    t = pd.DataFrame({"strategy": econ["strategy"]})
    for col, name, fmt in (("cost_total_disc", f"total cost ({cur})", "{:,.0f} ± {:,.0f}"),
                           ("cost_drug_disc", f"drug cost ({cur})", "{:,.0f} ± {:,.0f}"),
                           ("ly_disc", "life-years", "{:.3f} ± {:.3f}"),
                           ("qaly_disc", "QALYs", "{:.3f} ± {:.3f}"),
                           ("qaly", "QALYs, undiscounted", "{:.3f} ± {:.3f}")):
        t[name] = [fmt.format(m, s) for m, s in zip(econ[col], econ[f"{col}_se"])]
    w = [c[4:] for c in inc.columns if c.startswith("nmb_") and not c.endswith("_se")]
    i = pd.DataFrame({"strategy": inc["strategy"], "status": dominance_text(inc, labels),
                      "vs": [("" if pd.isna(x) else short_label(x, labels)) for x in inc["comparator"]],
                      f"ICER ({cur} per QALY)": [("" if pd.isna(x) else f"{x:,.0f}") for x in inc["icer"]]})
    for tag in w:
        i[f"NMB at {float(tag):,.0f} per QALY ({cur})"] = [f"{m:,.0f} ± {s:,.0f}"
                                                          for m, s in zip(inc[f"nmb_{tag}"], inc[f"nmb_{tag}_se"])]
    parts = [f"Costs and QALYs per patient (discounted; {cur}, {yr} prices; estimate ± Monte Carlo SE):\n"
             + t.to_string(index=False)]
    if diff is not None and len(diff):
        parts.append(_vs_reference(diff, cur, labels))
    parts.append(f"Full incremental analysis (ICER vs the previous strategy on the cost-effectiveness frontier; "
                 f"NMB = net monetary benefit):\n" + i.to_string(index=False))
    return "\n\n".join(parts)
