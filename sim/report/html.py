"""Run reports: ``report.html`` (self-contained, figures embedded as base64 PNG) and
``report.md`` (same content, figures linked relative to the run folder).

:func:`write_report` builds one list of blocks (headings, paragraphs, tables, figures,
preformatted text) and renders it twice, so the two files always say the same thing:

* **Methods** filled from the resolved configuration: decision problem, population,
  comparators, perspective, time horizon, discount rates, currency and price year, model
  structure, outcomes and their valuation, uncertainty analysis, and a CHEERS 2022 checklist
  (Husereau et al., BMJ 2022;376:e067975) stating where each item the model can fill is
  reported and which items a simulation run cannot fill.
* **Results**: the tables of the run (``docs/outputs.md``, ``docs/outputs_psa.md``) with
  estimates and intervals combined (``x (lo to hi)``, ``x ± se``), and its figures (Kaplan-Meier
  curves, cost-effectiveness plane, CEAC with the frontier, EVPPI bars, convergence, tornado).
* **Provenance**: seed, creation time, git revision, package versions, timings (from
  ``manifest.json`` when it is already written, else collected now), the files of the run
  folder, and the resolved configuration.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import UserError

KINDS = ("compare", "psa", "dsa")
#: tables too long to print in a report (they are in the run folder)
LONG_TABLES = {"ce_plane", "convergence", "ceac", "ceaf", "economics_patients", "patients", "lines", "events",
               "psa_samples"}
MAX_ROWS = 40


# --------------------------------------------------------------------------- formatting
def fmt(v) -> str:
    """A cell as text: thousands separators for large numbers, 4 significant digits otherwise,
    ``-`` for missing values."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10000 else str(int(v))
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "-"
        a = abs(float(v))
        if a >= 1000:
            return f"{float(v):,.0f}"
        if a == 0:
            return "0"
        return f"{float(v):.4g}"
    return str(v)


def _missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and not math.isfinite(float(v)))


def pretty(table: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Text table: each column ``x`` with ``x_lo`` / ``x_hi`` becomes ``x (lo to hi)``, with
    ``x_se`` ``x ± se``; the interval and SE columns are dropped. ``columns`` selects (and
    orders) the estimate columns to keep (missing ones are skipped)."""
    cols = [c for c in (columns or list(table.columns)) if c in table.columns]
    extra = {f"{c}{s}" for c in cols for s in ("_lo", "_hi", "_se")}
    out = {}
    for c in cols:
        if c in extra and c not in (columns or []):
            continue
        x = table[c]
        if f"{c}_lo" in table.columns and f"{c}_hi" in table.columns:
            out[c] = [fmt(v) if _missing(v) else f"{fmt(v)} ({fmt(lo)} to {fmt(hi)})"
                      for v, lo, hi in zip(x, table[f"{c}_lo"], table[f"{c}_hi"])]
        elif f"{c}_se" in table.columns:
            out[c] = [fmt(v) if _missing(v) else f"{fmt(v)} ± {fmt(se)}" for v, se in zip(x, table[f"{c}_se"])]
        else:
            out[c] = [fmt(v) for v in x]
    return pd.DataFrame(out)


def _md_table(t: pd.DataFrame) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    head = "| " + " | ".join(esc(c) for c in t.columns) + " |"
    sep = "|" + "|".join("---" for _ in t.columns) + "|"
    rows = ["| " + " | ".join(esc(v) for v in r) + " |" for r in t.itertuples(index=False)]
    return "\n".join([head, sep] + rows)


def _html_table(t: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
                   for r in t.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


# --------------------------------------------------------------------------- document
class Doc:
    """Blocks of a report, rendered to HTML and Markdown with the same content."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def items(self, rows: list[tuple[str, str]]):
        """A definition list ``name: text``."""
        self.blocks.append(("items", rows))

    def table(self, caption: str, t: pd.DataFrame, file: str | None = None, prettify: bool = True,
              columns: list[str] | None = None):
        if t is None or len(t) == 0:
            return
        n = len(t)
        shown = pretty(t.head(MAX_ROWS), columns) if prettify else t.head(MAX_ROWS).map(fmt)
        note = (f"first {MAX_ROWS} of {n} rows; " if n > MAX_ROWS else "") + \
            (f"all columns in `{file}.csv` / `{file}.parquet`" if file else "")
        self.blocks.append(("table", caption, shown, note))

    def figure(self, caption: str, path):
        path = Path(path)
        if path.is_file():
            self.blocks.append(("figure", caption, path))

    def pre(self, summary: str, text: str):
        self.blocks.append(("pre", summary, text))

    def _rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.folder.resolve()).as_posix()
        except ValueError:
            return path.resolve().as_posix()

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "items":
                out.append("\n".join(f"- **{k}**: {v}" for k, v in b[1]))
            elif b[0] == "table":
                out.append(f"**{b[1]}**" + (f" ({b[3]})" if b[3] else "") + "\n\n" + _md_table(b[2]))
            elif b[0] == "figure":
                out.append(f"![{b[1]}]({self._rel(b[2])})\n\n*{b[1]}*")
            elif b[0] == "pre":
                out.append(f"<details><summary>{b[1]}</summary>\n\n```\n{b[2]}\n```\n\n</details>")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        e = html.escape
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "items":
                body.append("<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in b[1]) + "</ul>")
            elif b[0] == "table":
                cap = e(b[1]) + (f" <small>({e(b[3])})</small>" if b[3] else "")
                body.append(f"<figure class='tbl'><figcaption>{cap}</figcaption>{_html_table(b[2])}</figure>")
            elif b[0] == "figure":
                data = base64.b64encode(b[2].read_bytes()).decode("ascii")
                body.append(f"<figure><img alt='{e(b[1])}' src='data:image/png;base64,{data}'>"
                            f"<figcaption>{e(b[1])} <small>({e(self._rel(b[2]))})</small></figcaption></figure>")
            elif b[0] == "pre":
                body.append(f"<details><summary>{e(b[1])}</summary><pre>{e(b[2])}</pre></details>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
                 "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f0f0}"
                 "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
                 "figcaption{font-size:13px;color:#444;margin:.3em 0}pre{font-size:11px;background:#f7f7f7;"
                 "padding:.5em;overflow-x:auto}")
        return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# --------------------------------------------------------------------------- methods
def _get(plain: Mapping, path: str, default=None):
    node = plain
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _pct(v) -> str:
    return "-" if v is None else f"{100 * float(v):g} % a year"


def _methods(doc: Doc, kind: str, plain: Mapping, tables: Mapping, labels: Mapping) -> list[tuple[str, str, str]]:
    """Methods section; returns the CHEERS rows ``(item, topic, where/what)``."""
    econ = plain.get("economics") or {}
    exp = plain.get("experiment") or {}
    strategies = list(exp.get("strategies") or [])
    cur, year = econ.get("currency", "-"), econ.get("price_year", "-")
    persp = econ.get("perspective") or ("UK NHS and personal social services (NICE reference case; inferred from "
                                        "currency GBP, `economics.perspective` not set)" if cur == "GBP" else
                                        "health-care payer (`economics.perspective` not set)")
    cohort = plain.get("cohort") or {}
    model = plain.get("model") or {}
    n = cohort.get("n")
    if cohort.get("source"):
        pop = f"{fmt(n) if n else ''} patients read from the cohort file `{cohort['source']}`".strip()
    else:
        age = cohort.get("age") or {}
        grade = cohort.get("grade") or {}
        pop = (f"virtual cohort of {fmt(n)} adults with metastatic pancreatic neuroendocrine tumour starting "
               f"first-line systemic therapy (age mean {age.get('mean', '-')}, SD {age.get('sd', '-')} years; "
               f"grade " + ", ".join(f"{k} {v:g}" for k, v in grade.items()) +
               f"; non-functioning share {cohort.get('non_functioning', '-')}), generated with a Gaussian copula "
               f"from `configs/cohort` (every marginal cited or a labelled assumption)")
    comps = []
    for s in strategies:
        lines = _get(plain, f"strategies.{s}.lines", [])
        comps.append((labels.get(s, s), f"`{s}`: " + " → ".join(map(str, lines))
                      + (" (reference)" if s == exp.get("reference") else "")))
    horizon = model.get("horizon_years")
    eh = econ.get("horizon_years")
    disc = econ.get("discount") or {}
    util_set = _get(econ, "utilities.set")
    utils = _get(econ, f"utilities.sets.{util_set}", {}) or {}
    src = econ.get("sources") or {}
    usrc = ", ".join(f"{k} {v:g} ({src.get(f'utilities.sets.{util_set}.{k}', 'uncited')})" for k, v in utils.items())
    doc.h(2, "Methods")
    doc.items([
        ("Decision problem", {
            "compare": "comparison of treatment sequences for metastatic pancreatic NET, in particular sunitinib "
                       "rechallenge after progression vs switching therapy",
            "psa": f"probabilistic sensitivity analysis and value of information of "
                   f"{_get(plain, 'psa.intervention', '-')} vs {_get(plain, 'psa.comparator', '-')}",
            "dsa": f"deterministic (one-way and scenario) sensitivity analysis of "
                   f"{exp.get('intervention', '-')} vs {exp.get('comparator', '-')}"}[kind]),
        ("Population", pop),
        ("Setting and location", f"costs in {cur}; utilities and unit costs of configs/economics "
                                 f"(the uk_nhs set is the NHS in England)"),
        ("Perspective", persp),
        ("Time horizon", f"{horizon} years (model; patients followed to death or the horizon)"
                         + ("" if eh is None else f"; economic accrual stops at {eh} years")),
        ("Discount rates", f"costs {_pct(disc.get('costs'))}, effects {_pct(disc.get('effects'))} "
                           f"(continuous-time discounting, docs/outputs.md)"),
        ("Currency and price year", f"{cur}, {year} prices; no currency conversion"),
        ("Outcomes", "progression-free survival per line, PFS2, overall survival, grade 3/4 adverse events, "
                     "life-years, QALYs (health-state utility x time minus AE disutilities) and costs by category"),
        ("Valuation of outcomes", f"utility set `{util_set}`: {usrc}" if utils else "no economics configured"),
        ("Model", f"individual-level discrete-event simulation (SimPy), one process per patient through "
                  f"ordered lines of therapy; scans every {model.get('imaging_interval_weeks', '-')} weeks detect "
                  f"progression (or earlier, when clinically apparent after a mean delay of "
                  f"{model.get('clinical_detection_months') or 'inf'} months); background mortality from national life tables; every strategy meets the same "
                  f"random numbers per patient (common random numbers); master seed {plain.get('seed')}"),
    ])
    doc.h(3, "Comparators")
    doc.items(comps)
    rows = [("1", "Title", "report title"),
            ("2", "Abstract", "not filled by the model"),
            ("3", "Background and objectives", "Decision problem (Methods)"),
            ("4", "Health economic analysis plan", "not filled by the model"),
            ("5", "Study population", "Population (Methods)"),
            ("6", "Setting and location", "Setting and location (Methods)"),
            ("7", "Comparators", "Comparators (Methods)"),
            ("8", "Perspective", "Perspective (Methods)"),
            ("9", "Time horizon", "Time horizon (Methods)"),
            ("10", "Discount rate", "Discount rates (Methods)"),
            ("11", "Selection of outcomes", "Outcomes (Methods)"),
            ("12", "Measurement of outcomes", "therapy PFS / AE inputs from trials: configs/therapy with evidence ids"),
            ("13", "Valuation of outcomes", "Valuation of outcomes (Methods)"),
            ("14", "Measurement and valuation of resources and costs", "configs/economics (sources per value)"),
            ("15", "Currency, price date, and conversion", "Currency and price year (Methods)"),
            ("16", "Rationale and description of model", "Model (Methods); README.md"),
            ("17", "Analytics and assumptions", "Model (Methods); data/evidence/assumptions.csv"),
            ("18", "Characterising heterogeneity", "patient covariates modify PFS (covariate hazard ratios)"),
            ("19", "Characterising distributional effects", "not filled by the model"),
            ("20", "Characterising uncertainty",
             {"psa": "probabilistic sensitivity analysis (Uncertainty analysis)",
              "dsa": "one-way ranges and scenarios (Uncertainty analysis)",
              "compare": "Monte Carlo SEs and 95 % intervals; PSA / DSA are separate runs"}[kind]),
            ("21", "Approach to engagement with patients and others affected", "not filled by the model"),
            ("22", "Study parameters", "parameter table (PSA) / configs with evidence ids"),
            ("23", "Summary of main results", "Results"),
            ("24", "Effect of uncertainty", "Results" if kind in ("psa", "dsa") else "Monte Carlo intervals in Results"),
            ("25", "Effect of engagement with patients and others affected", "not filled by the model"),
            ("26", "Study findings, limitations, generalisability, and current knowledge", "not filled by the model"),
            ("27", "Source of funding", "not filled by the model"),
            ("28", "Conflicts of interest", "not filled by the model")]
    return rows


def _uncertainty_methods(doc: Doc, kind: str, plain: Mapping, tables: Mapping) -> None:
    if kind == "psa":
        p = plain.get("psa") or {}
        ev = p.get("evppi") or {}
        doc.h(3, "Uncertainty analysis")
        doc.p(f"Probabilistic sensitivity analysis with {p.get('samples')} samples (samples {p.get('first_sample', 0)}"
              f" to {p.get('first_sample', 0) + (p.get('samples') or 0) - 1}). For sample s every uncertain parameter is "
              f"drawn by inverse transform from its named stream 'psa/<path>' at s, the cohort (the base-case "
              f"cohort) is simulated under every strategy with the event streams of sample s (common random "
              f"numbers across strategies), and the per-strategy mean discounted costs and QALYs are kept. "
              f"Sample s depends only on (seed, s). Distributions: beta for utilities and probabilities, gamma for "
              f"costs (method of moments, SE = range / 3.92), log-uniform / uniform over the stated ranges for "
              f"rechallenge efficacy, log-normal for hazard ratios (SE of the log from the published 95 % CI) and "
              f"for PFS medians. The PFS medians use a stated SE of the log median (labelled assumption) because "
              f"no fitted covariance is available yet; a multivariate normal on fitted survival parameters "
              f"(`dist: mvnormal` with the fit's covariance) replaces them when a fit provides one.")
        doc.p(f"EVPI = E[max_d NB_d] - max_d E[NB_d] per person. EVPPI by regression (Strong, Oakley & Brennan, "
              f"Med Decis Making 2014;34:311-326): the incremental net benefit of each strategy is regressed on "
              f"the group's parameters (method '{ev.get('method', 'auto')}': penalised regression spline for 1-2 "
              f"parameters, Gaussian process above) and EVPPI = mean of the row maxima of the fitted values minus "
              f"the maximum of their means; intervals from {ev.get('n_boot', 500)} bootstrap resamples of the "
              f"fitted values.")
        doc.table("Uncertain parameters and their distributions", tables.get("psa_parameters"), "psa_parameters",
                  prettify=False)
    elif kind == "dsa":
        doc.h(3, "Uncertainty analysis")
        doc.p("One-way sensitivity analysis: each parameter set to the low and the high end of its range, all others "
              "at base case, with common random numbers (the master seed) so that differences come from the "
              "parameter; incremental net monetary benefit (INB) at the primary WTP. Scenario analyses as listed.")


# --------------------------------------------------------------------------- results
def _results_compare(doc: Doc, tables: Mapping, figures: Mapping) -> set:
    doc.h(2, "Results")
    doc.table("Clinical outcomes per strategy (95 % CI)", tables.get("summary"), "summary")
    doc.table("Paired differences vs the reference strategy (95 % CI)", tables.get("differences"), "differences")
    doc.table("Costs, life-years and QALYs per strategy (mean ± Monte Carlo SE)", tables.get("economics_summary"),
              "economics_summary", columns=["strategy", "label", "n_patients", "cost_total_disc", "cost_drug_disc",
                                            "ly_disc", "qaly_disc", "cost_total", "ly", "qaly", "n_ae"])
    inc = tables.get("incremental")
    if inc is not None and len(inc):
        cols = ["strategy", "status", "cost", "effect", "comparator", "inc_cost", "inc_effect", "icer"] + \
            [c for c in inc.columns if c.startswith(("nmb_", "best_")) and not c.endswith("_se")]
        doc.table("Full incremental analysis (discounted; ICER vs the previous frontier strategy)", inc,
                  "incremental", columns=cols)
    doc.table("Paired differences in costs and QALYs vs the reference (mean ± paired SE)",
              tables.get("economics_differences"), "economics_differences",
              columns=["strategy", "reference", "n_pairs", "cost_total_disc", "qaly_disc", "ly_disc"])
    for name in sorted(figures, key=lambda k: (k != "km_overview", k)):
        if str(name).startswith("km_"):
            doc.figure("Kaplan-Meier curves: " + ("OS, PFS1 and PFS2 by strategy" if name == "km_overview"
                                                  else f"strategy {name[3:]}"), figures[name])
    return {"summary", "differences", "economics_summary", "incremental", "economics_differences"}


def _results_psa(doc: Doc, tables: Mapping, figures: Mapping, labels: Mapping) -> set:
    doc.h(2, "Results")
    doc.table("Mean discounted costs, QALYs and life-years over PSA samples (2.5-97.5 % percentiles)",
              tables.get("psa_summary"), "psa_summary",
              columns=["strategy", "label", "n_samples", "cost", "qaly", "ly", "cost_undiscounted", "qaly_undiscounted"])
    inc = tables.get("psa_incremental")
    if inc is not None and len(inc):
        cols = ["strategy", "comparator", "delta_cost", "delta_qaly", "icer", "status"] + \
            [c for c in inc.columns if c.startswith(("inmb_", "p_ce_")) and not c.endswith(("_lo", "_hi", "_se"))]
        doc.table("Incremental results vs the comparator (means, 95 % percentile intervals; INMB = incremental net "
                  "monetary benefit; p_ce = probability of a higher NMB than the comparator)", inc, "psa_incremental",
                  columns=cols)
    ev = tables.get("evppi")
    wtps = sorted(set(ev["wtp"])) if ev is not None and len(ev) else []
    ce = tables.get("ceac")
    if ce is not None and len(ce) and wtps:
        t = ce[ce["wtp"].isin(wtps)].pivot(index="wtp", columns="strategy", values="probability").reset_index()
        t.columns = ["wtp"] + [labels.get(c, c) for c in t.columns[1:]]
        doc.table("Probability that each strategy is cost-effective (CEAC) at the report thresholds", t, "ceac",
                  prettify=False)
    f = tables.get("ceaf")
    if f is not None and len(f) and wtps:
        doc.table("Acceptability frontier (strategy with the highest expected NMB) and EVPI",
                  f[f["wtp"].isin(wtps)], "ceaf",
                  columns=["wtp", "optimal_strategy", "expected_nmb", "probability_cost_effective", "evpi"])
    if ev is not None and len(ev):
        doc.table("EVPI and EVPPI per person by parameter group (95 % interval; SE: Monte Carlo / bootstrap)",
                  ev.assign(evppi_lo=ev["lo"], evppi_hi=ev["hi"]), "evppi",
                  columns=["wtp", "group", "n_parameters", "evppi", "se", "method"])
    for name, cap in (("ce_plane", "Cost-effectiveness plane (each point one PSA sample; crosses: means)"),
                      ("ceac", "Cost-effectiveness acceptability curves and frontier"),
                      ("evppi", "EVPI and EVPPI by parameter group"),
                      ("convergence", "Convergence of the mean incremental net benefit with the number of samples")):
        if name in figures:
            doc.figure(cap, figures[name])
    return {"psa_summary", "psa_incremental", "ceac", "ceaf", "evppi", "psa_parameters", "ce_plane", "convergence"}


def _results_dsa(doc: Doc, tables: Mapping, figures: Mapping) -> set:
    doc.h(2, "Results")
    doc.table("Scenario analyses (incremental, discounted; ± Monte Carlo SE)", tables.get("scenarios"), "scenarios",
              columns=["scenario", "description", "intervention", "comparator", "wtp", "delta_cost", "delta_qaly",
                       "icer", "quadrant", "inb"])
    doc.table("One-way sensitivity analysis (widest swing first)", tables.get("tornado"), "tornado",
              columns=["parameter", "base_value", "low", "high", "inb_low", "inb_high", "swing", "icer_low",
                       "quadrant_low", "icer_high", "quadrant_high", "source"])
    doc.table("Full incremental analysis per scenario", tables.get("scenario_incremental"), "scenario_incremental")
    if "tornado" in figures:
        doc.figure("Tornado diagram: INB at the low and high end of each range", figures["tornado"])
    return {"scenarios", "tornado", "scenario_incremental"}


# --------------------------------------------------------------------------- provenance
def _provenance(doc: Doc, folder: Path, plain: Mapping) -> None:
    from sim.runio import git_revision, versions

    path = Path(folder) / "manifest.json"
    if path.is_file():
        man = json.loads(path.read_text())
        origin = "manifest.json"
    else:
        man = {"seed": plain.get("seed"), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_revision(),
               "versions": versions()}
        origin = "collected when the report was written (manifest.json is written last)"
    doc.h(2, "Provenance")
    git = man.get("git") or {}
    doc.items([("Seed", str(man.get("seed"))), ("Created", str(man.get("created"))),
               ("Git revision", f"{git.get('commit')}" + (" (uncommitted changes)" if git.get("dirty") else "")),
               ("Versions", ", ".join(f"{k} {v}" for k, v in (man.get("versions") or {}).items())),
               ("Source", origin)])
    if man.get("timings_seconds"):
        doc.p("Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in man["timings_seconds"].items()))
    files = sorted(p.name for p in Path(folder).iterdir() if p.is_file() and p.name not in ("report.html", "report.md"))
    doc.p("Files of the run folder: " + ", ".join(files + ["report.html", "report.md"]))
    try:
        from omegaconf import OmegaConf
        text = OmegaConf.to_yaml(OmegaConf.create(dict(plain)))
    except Exception:  # pragma: no cover - plain JSON fallback
        text = json.dumps(plain, indent=2, default=str)
    doc.pre("Resolved configuration", text)


# --------------------------------------------------------------------------- entry points
def write_report(folder, kind: str, plain_cfg: Mapping, tables: Mapping[str, pd.DataFrame],
                 figures: Mapping[str, Path], labels: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` of a run folder.

    Parameters
    ----------
    folder : path
        The run folder (figures inside it are linked relative in the Markdown).
    kind : {"compare", "psa", "dsa"}
        Experiment kind (selects the results section).
    plain_cfg : mapping
        The resolved configuration (methods and provenance are filled from it).
    tables : mapping
        Result tables by name (``docs/outputs.md``, ``docs/outputs_psa.md``); tables the kind
        does not know are listed under "Other tables".
    figures : mapping
        Figure name -> PNG path.
    labels : mapping, optional
        Strategy name -> label.

    Returns
    -------
    (Path, Path)
        Paths of ``report.html`` and ``report.md``.
    """
    if kind not in KINDS:
        raise UserError(f"experiment.kind must be one of {list(KINDS)} for a report, got {kind!r}")
    folder = Path(folder)
    labels = dict(labels or {})
    figures = {k: Path(v) for k, v in (figures or {}).items() if v is not None}
    tables = {k: v for k, v in (tables or {}).items() if isinstance(v, pd.DataFrame)}
    name = _get(plain_cfg, "experiment.name", kind)
    title = f"pnetsim report: {name} ({kind})"
    doc = Doc(folder)
    doc.h(1, title)
    doc.p(f"Seed {plain_cfg.get('seed')}; strategies "
          + ", ".join(labels.get(s, s) for s in (_get(plain_cfg, "experiment.strategies") or [])) + ".")
    cheers = _methods(doc, kind, plain_cfg, tables, labels)
    _uncertainty_methods(doc, kind, plain_cfg, tables)
    shown = {"compare": lambda: _results_compare(doc, tables, figures),
             "psa": lambda: _results_psa(doc, tables, figures, labels),
             "dsa": lambda: _results_dsa(doc, tables, figures)}[kind]()
    rest = [k for k in tables if k not in shown and k not in LONG_TABLES]
    if rest:
        doc.h(3, "Other tables")
        for k in rest:
            doc.table(k, tables[k], k)
    doc.h(2, "CHEERS 2022 checklist")
    doc.table("Where each CHEERS 2022 item is reported (Husereau et al., BMJ 2022;376:e067975)",
              pd.DataFrame(cheers, columns=["item", "topic", "reported in"]), prettify=False)
    _provenance(doc, folder, plain_cfg)
    html_path, md_path = folder / "report.html", folder / "report.md"
    html_path.write_text(doc.html(title), encoding="utf-8")
    md_path.write_text(doc.markdown(), encoding="utf-8")
    return html_path, md_path


def psa_figures(tables: Mapping[str, pd.DataFrame], folder, labels: Mapping | None = None, settings=None
                ) -> dict[str, Path]:
    """CE plane, CEAC with CEAF, EVPPI bars and convergence of a PSA (``ce_plane.png``,
    ``ceac.png``, ``evppi.png``, ``convergence.png`` in ``folder``). ``settings`` (a
    :class:`~sim.economics.psa.PsaSettings`) gives the report WTPs and the comparator."""
    from sim.report import econ_figures as ef

    folder = Path(folder)
    wtp = tuple(getattr(settings, "report_wtp", (20000, 30000)))
    out = {}
    if len(tables.get("ce_plane", ())):
        out["ce_plane"] = ef.ce_plane(tables["ce_plane"], folder / "ce_plane.png", wtp, labels,
                                      getattr(settings, "comparator", None))
    if len(tables.get("ceac", ())):
        out["ceac"] = ef.ceac(tables["ceac"], folder / "ceac.png", tables.get("ceaf"), labels, wtp)
    if len(tables.get("evppi", ())):
        out["evppi"] = ef.evppi_bars(tables["evppi"], folder / "evppi.png", labels)
    if len(tables.get("convergence", ())):
        out["convergence"] = ef.convergence(tables["convergence"], folder / "convergence.png")
    return out
