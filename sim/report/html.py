"""Run reports: ``report.html`` (self-contained, figures embedded as base64 PNG) and
``report.md`` (same content, figures linked relative to the run folder).

:func:`write_report` builds one list of blocks (headings, paragraphs, tables, figures,
preformatted text) and renders it twice, so the two files always say the same thing. In order:

* **Summary**: the decision problem, the answer at the primary willingness to pay, the
  cost-effectiveness table with dominance in words (``dominated by Switch``), the CE plane (of the
  paired differences in a comparison, of the samples with the CEAC after a PSA) and the key
  uncertainties.
* **Results** (below).
* **Methods** filled from the resolved configuration: decision problem, population,
  comparators, perspective, time horizon, discount rates, currency and price year, model
  structure, outcomes and their valuation, uncertainty analysis, and a CHEERS 2022 checklist
  (Husereau et al., BMJ 2022;376:e067975) stating where each item the model can fill is
  reported and which items a simulation run cannot fill; the simulated cohort's configured and
  realised characteristics; the table of economic inputs as an appendix.

Every number follows one rule (:func:`fmt`: 3 significant digits, an interval or SE at its
estimate's decimals); every table header is a readable label (:func:`sim.report.labels.column_labels`,
else :func:`humanise`); Markdown code spans become ``<code>`` in the HTML, which carries a print
stylesheet (A4, no page break inside a figure or table).
* **Results** (after the summary): the tables of the run (``docs/outputs.md``, ``docs/outputs_psa.md``) with
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
from omegaconf import OmegaConf

from sim.comparisons import icer_wording
from sim.uncertainty.voi_groups import ALL_GROUP
from sim.errors import UserError, dotted
from sim.run.executors import resolve_engine
from sim.report import econ_figures as ef
from sim.report.labels import column_labels, dominance_text, param_label, short_label
from sim.runio import MIN_PATIENTS, git_revision, versions

KINDS = ("compare", "psa", "dsa")
#: tables too long to print in a report (they are in the run folder)
LONG_TABLES = {"ce_plane", "convergence", "ceac", "ceaf", "economics_patients", "patients", "lines", "events",
               "psa_samples"}
MAX_ROWS = 40


# --------------------------------------------------------------------------- formatting

def _executor(plain: dict) -> str:
    """The executor a run used (the ``engine`` setting resolved)."""
    return resolve_engine(plain.get("engine", "auto"), bool(plain.get("resources")))

#: significant digits of every estimate in a report (its interval or SE takes the estimate's decimals)
SIG_DIGITS = 3


def decimals(v) -> int:
    """Decimal places that show ``v`` to :data:`SIG_DIGITS` significant digits (0 from 100 up, at
    most 6)."""
    a = abs(float(v))
    if a < 1e-9 or not math.isfinite(a):
        return 0
    return int(min(6, max(0, SIG_DIGITS - 1 - math.floor(math.log10(a)))))


def fmt(v, places: int | None = None) -> str:
    """A cell as text, under one rule: numbers to :data:`SIG_DIGITS` significant digits (whole
    numbers from 100 up, thousands separators), or to ``places`` decimals when given (an interval or
    SE shown with its estimate); ``-`` for missing values, ``yes`` / ``no`` for booleans."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)) and places is None:
        return f"{int(v):,}" if abs(int(v)) >= 10000 else str(int(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        x = float(v)
        if not math.isfinite(x):
            return "-"
        if abs(x) < 1e-9:                      # rounding noise of a difference of equal sums
            x = 0.0
        d = decimals(x) if places is None else places
        if places is None and abs(x) >= 100:
            x = float(f"{x:.{SIG_DIGITS}g}") if abs(x) < 10 ** SIG_DIGITS else round(x)
        text = f"{x:,.{d}f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.,") else text      # no "-0"
    return str(v)


def _missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and not math.isfinite(float(v)))


def _places(v, *bounds) -> int:
    """Decimals of an estimate and its interval: the estimate's (:func:`decimals`), or the widest
    bound's when the estimate is zero."""
    if not _missing(v) and abs(float(v)) > 1e-9:
        return decimals(v)
    return max([decimals(b) for b in bounds if not _missing(b)] or [0])


def pretty(table: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Text table: each column ``x`` with ``x_lo`` / ``x_hi`` becomes ``x (lo to hi)``, with
    ``x_se`` ``x ± se``, the bounds and SE at the estimate's decimals (:func:`fmt`); the interval and
    SE columns are dropped. ``columns`` selects (and orders) the estimate columns to keep (missing
    ones are skipped)."""
    cols = [c for c in (columns or list(table.columns)) if c in table.columns]
    extra = {f"{c}{s}" for c in cols for s in ("_lo", "_hi", "_se")}
    out = {}
    for c in cols:
        if c in extra and c not in (columns or []):
            continue
        x = table[c]
        if f"{c}_lo" in table.columns and f"{c}_hi" in table.columns:
            out[c] = [fmt(v) if _missing(v) else
                      f"{fmt(v, d)} ({fmt(lo, d)} to {fmt(hi, d)})"
                      for v, lo, hi in zip(x, table[f"{c}_lo"], table[f"{c}_hi"])
                      for d in [_places(v, lo, hi)]]
        elif f"{c}_se" in table.columns:
            out[c] = [fmt(v) if _missing(v) else f"{fmt(v, decimals(v))} ± {fmt(se, decimals(v))}"
                      for v, se in zip(x, table[f"{c}_se"])]
        else:
            out[c] = [fmt(v) for v in x]
    return pd.DataFrame(out)


def humanise(column: str) -> str:
    """A readable header for a column without a label: ``diff_mean_os_months`` -> ``difference in
    mean OS (months)``."""
    text = str(column)
    unit = ""
    for suffix, u in (("_months", "months"), ("_years", "years"), ("_disc", "discounted")):
        if text.endswith(suffix):
            text, unit = text[: -len(suffix)], u
    words = {"diff": "difference in", "os": "OS", "pfs1": "PFS1", "pfs2": "PFS2", "pfs": "PFS", "ae": "AE",
             "g34": "grade 3/4", "ly": "life-years", "qaly": "QALYs", "n": "number of", "nmb": "NMB", "inb": "INB",
             "inmb": "INMB", "evppi": "EVPPI", "evpi": "EVPI", "icer": "ICER", "se": "SE", "ci": "CI", "pf": "PF",
             "pd": "PD", "wtp": "WTP", "lo": "lower", "hi": "upper", "pct": "%"}
    text = " ".join(words.get(w, w) for w in text.split("_") if w)
    return f"{text} ({unit})" if unit else text


def _md_table(t: pd.DataFrame) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    head = "| " + " | ".join(esc(c) for c in t.columns) + " |"
    sep = "|" + "|".join("---" for _ in t.columns) + "|"
    rows = ["| " + " | ".join(esc(v) for v in r) + " |" for r in t.itertuples(index=False)]
    return "\n".join([head, sep] + rows)


def _inline(text) -> str:
    """HTML of a line of report text: escaped, Markdown code spans as ``<code>`` (no raw backticks)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:                   # an unpaired backtick: drop it
        parts = str(text).replace("`", "").split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


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
              columns: list[str] | None = None, headers: Mapping[str, str] | None = None, max_rows: int = MAX_ROWS):
        """A table (first ``max_rows`` rows); ``headers`` renames columns for display only."""
        if t is None or len(t) == 0:
            return
        n = len(t)
        shown = pretty(t.head(max_rows), columns) if prettify else t.head(max_rows).map(fmt)
        labels = {**column_labels(), **(headers or {})}
        shown = shown.rename(columns={c: labels.get(c, humanise(c)) for c in shown.columns})
        note = (f"first {max_rows} of {n} rows; " if n > max_rows else "") + \
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
        e = _inline
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
                body.append(f"<figure><img alt='{html.escape(b[1])}' src='data:image/png;base64,{data}'>"
                            f"<figcaption>{e(b[1])} <small>({e(self._rel(b[2]))})</small></figcaption></figure>")
            elif b[0] == "pre":
                body.append(f"<details><summary>{e(b[1])}</summary><pre>{html.escape(b[2])}</pre></details>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
                 "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f0f0}"
                 "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
                 "figcaption{font-size:13px;color:#444;margin:.3em 0}pre{font-size:11px;background:#f7f7f7;"
                 "padding:.5em;overflow-x:auto}code{background:#f3f3f3;padding:0 2px}"
                 ".summary{border-left:4px solid #2a6;padding:.2em 1em;background:#f6fbf8}"
                 "@media print{body{max-width:none;margin:0;font-size:10pt}h2{page-break-before:always}"
                 "h2.first,.summary h2{page-break-before:avoid}figure,table,tr{page-break-inside:avoid}"
                 "img{max-height:90vh}details>pre{display:block}a{color:inherit;text-decoration:none}}"
                 "@page{size:A4;margin:15mm}")
        return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# --------------------------------------------------------------------------- methods
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
    real = tables.get("cohort_characteristics")
    if real is not None and len(real):
        n = int(str(real["simulated"].iloc[0]).replace(",", ""))
    if cohort.get("source"):
        pop = (f"{fmt(n)} patients read from the cohort file `{cohort['source']}` (every row of the file; "
               f"characteristics in the table below)")
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
        lines = dotted(plain, f"strategies.{s}.lines", [])
        comps.append((labels.get(s, s), f"`{s}`: " + " → ".join(map(str, lines))
                      + (" (reference)" if s == exp.get("reference") else "")))
    horizon = model.get("horizon_years")
    eh = econ.get("horizon_years")
    disc = econ.get("discount") or {}
    util_set = dotted(econ, "utilities.set")
    utils = dotted(econ, f"utilities.sets.{util_set}", {}) or {}
    src = econ.get("sources") or {}
    usrc = "; ".join(f"{k.replace('_', ' ')} {v:g} ({src.get(f'utilities.sets.{util_set}.{k}', 'uncited')})"
                     for k, v in utils.items() if isinstance(v, (int, float)))
    states = utils.get("ae_states") or {}
    if states:
        usrc += "; grade 3/4 AEs with a state in the set lower the progression-free utility to that state's value " \
                "while they last: " + ", ".join(f"stable with {a.replace('_', ' ')} {u:g}" for a, u in states.items())
    dis = dotted(econ, "utilities.ae_disutility", {}) or {}
    if dis:
        usrc += ("; other grade 3/4 AEs" if states else "; grade 3/4 AEs") + " subtract a decrement over their " \
                "duration: " + ", ".join(f"{a.replace('_', ' ')} {d:g}" for a, d in dis.items()
                                        if a not in states) + " (utilities.ae_disutility)"
    doc.h(2, "Methods")
    doc.items([
        ("Decision problem", {
            "compare": "comparison of treatment sequences for metastatic pancreatic NET, in particular sunitinib "
                       "rechallenge after progression vs switching therapy",
            "psa": f"probabilistic sensitivity analysis and value of information of "
                   f"{dotted(plain, 'psa.intervention', '-')} vs {dotted(plain, 'psa.comparator', '-')}",
            "dsa": f"deterministic (one-way and scenario) sensitivity analysis of "
                   f"{exp.get('intervention', '-')} vs {exp.get('comparator', '-')}"}[kind]),
        ("Population", pop),
        ("Setting and location", f"costs in {cur}; utilities and unit costs of configs/economics "
                                 f"(the uk_nhs set is the NHS in England)"),
        ("Perspective", persp),
        ("Time horizon", (f"lifetime: {horizon}-year model horizon (patients followed to death or the horizon)"
                          if eh is None else f"{eh} years (costs and effects accrue until then; model horizon "
                                             f"{horizon} years)")),
        ("Discount rates", f"costs {_pct(disc.get('costs'))}, effects {_pct(disc.get('effects'))} "
                           f"(continuous-time discounting, docs/outputs.md)"),
        ("Currency and price year", f"{cur}, {year} prices; no currency conversion"),
        ("Outcomes", "progression-free survival per line, PFS2, overall survival, grade 3/4 adverse events, "
                     "life-years, QALYs (health-state utility x time minus AE disutilities) and costs by category"),
        ("Valuation of outcomes", f"utility set `{util_set}`: {usrc}" if utils else "no economics configured"),
        ("Costs", "drug acquisition by day (oral drugs, scaled by the dose actually received: reductions and "
                  "interruptions) or per administration (injections, CAPTEM cycles, 177Lu-dotatate; scaled by the "
                  "relative dose intensity), administration (injection visits, PRRT infusion with its admission), "
                  "monitoring (each scheduled scan and labs per month on treatment), management of each grade 3/4 "
                  "AE by type, best supportive care per month and end-of-life care at disease death; unit costs, "
                  "sources and ranges in the table of economic inputs"),
        ("Model", f"individual-level discrete-event simulation of each patient through ordered lines of "
                  f"therapy (executor: {_executor(plain)}; the SimPy engine, one process per patient, and the "
                  f"vectorised executor give identical per-patient pathways); scans every {model.get('imaging_interval_weeks', '-')} weeks detect "
                  f"progression (or earlier, when clinically apparent after a mean delay of "
                  f"{model.get('clinical_detection_months') or 'inf'} months); background mortality from national life tables; every strategy meets the same "
                  f"random numbers per patient (common random numbers); master seed {plain.get('seed')}"),
    ])
    if real is not None and len(real):
        doc.table("Simulated cohort: configured and realised characteristics (shares unless stated)", real, None,
                  prettify=False)
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
            ("14", "Measurement and valuation of resources and costs", "Costs (Methods); table of economic inputs"),
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
            ("22", "Study parameters", "table of economic inputs" + ("; table of uncertain parameters" if kind == "psa"
                                                                      else "; one-way ranges" if kind == "dsa" else "")
             + "; configs with evidence ids"),
            ("23", "Summary of main results", "Results"),
            ("24", "Effect of uncertainty", "Results" if kind in ("psa", "dsa") else "Monte Carlo intervals in Results"),
            ("25", "Effect of engagement with patients and others affected", "not filled by the model"),
            ("26", "Study findings, limitations, generalisability, and current knowledge", "not filled by the model"),
            ("27", "Source of funding", "not filled by the model"),
            ("28", "Conflicts of interest", "not filled by the model")]
    return rows


def _joint_text(params: pd.DataFrame | None) -> str:
    """`` (here: <joint names>)`` from the psa_parameters table, or an empty string."""
    if params is None or "distribution" not in params:
        return ""
    names = sorted({d.split("[", 1)[1].split("]", 1)[0] for d in params["distribution"].astype(str)
                    if d.startswith("MvNormal[")})
    return f" (here: {', '.join(names)})" if names else " (none in this run)"


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
              f"rechallenge efficacy, log-normal for hazard ratios (SE of the log from the published 95 % CI), "
              f"a multivariate normal on the fitted survival parameters where the fit has a covariance"
              f"{_joint_text(tables.get('psa_parameters'))}, and log-normal PFS medians with a stated SE of the log "
              f"median (labelled assumption) where the trial reports no CI.")
        n = int(p.get("samples") or 0)
        doc.p(f"EVPI = E[max_d NB_d] - max_d E[NB_d] per person. EVPPI by regression (Strong, Oakley & Brennan, "
              f"Med Decis Making 2014;34:311-326): the incremental net benefit of each strategy is regressed on "
              f"the group's parameters (method '{ev.get('method', 'auto')}': penalised regression spline with "
              f"GCV smoothing for 1-2 parameters, Gaussian process above, kept only when it predicts held-out samples "
              f"better than their mean in 5-fold cross-validation) and EVPPI = mean of the row maxima of the fitted "
              f"values minus the maximum of their means; intervals from {ev.get('n_boot', 500)} bootstrap resamples "
              f"of the fitted values (Monte Carlo error of the outer expectation only)."
              + (f" With {n} samples the regression estimates are rough (Strong et al. used 1,000 and more): "
                 f"treat EVPPI values as indicative." if n < 1000 else ""))
        doc.table("Uncertain parameters and their distributions", tables.get("psa_parameters"), "psa_parameters",
                  prettify=False)
    elif kind == "dsa":
        doc.h(3, "Uncertainty analysis")
        doc.p("One-way sensitivity analysis: each parameter set to the low and the high end of its range, all others "
              "at base case, with common random numbers (the master seed) so that differences come from the "
              "parameter; incremental net monetary benefit (INB) at the primary WTP. Scenario analyses as listed.")


# --------------------------------------------------------------------------- executive summary
def _primary_wtp(plain: Mapping, kind: str):
    if kind == "psa" and dotted(plain, "psa.primary_wtp") is not None:
        return float(dotted(plain, "psa.primary_wtp"))
    if kind == "dsa" and dotted(plain, "experiment.primary_wtp") is not None:
        return float(dotted(plain, "experiment.primary_wtp"))
    wtp = dotted(plain, "economics.wtp") or []
    return float(wtp[-1]) if wtp else None


def _answer(inc: pd.DataFrame | None, wtp, cur: str, labels: Mapping) -> str:
    """One paragraph: the strategy with the highest NMB at ``wtp`` and where each other one stands."""
    if inc is None or not len(inc) or wtp is None:
        return "No economic evaluation was configured, so no strategy is recommended on cost-effectiveness."
    col = f"nmb_{wtp:g}" if f"nmb_{wtp:g}" in inc else next((c for c in inc.columns if c.startswith("nmb_")
                                                             and not c.endswith("_se")), None)
    status = dict(zip(inc["strategy"], dominance_text(inc, labels)))
    if col is None:
        return ""
    best = inc.loc[inc[col].idxmax(), "strategy"]
    w = float(col[4:])
    c = f" {cur}" if cur else ""
    text = (f"At a willingness to pay of {w:,.0f}{c} per QALY, {short_label(best, labels)} has the highest "
            f"expected net monetary benefit ({fmt(float(inc[col].max()))}{c} per patient).")
    others = []
    for _, r in inc.iterrows():
        s = r["strategy"]
        if s == best:
            continue
        st = status[s]
        if st.startswith(("dominated", "extendedly")):
            others.append(f"{short_label(s, labels)} is {st}")
        elif not _missing(r.get("icer")):
            others.append(f"{short_label(s, labels)} costs {fmt(float(r['icer']))}{c} per QALY gained vs "
                          f"{short_label(r['comparator'], labels)}")
    return text + (" " + "; ".join(others) + "." if others else "")


def _summary(doc: "Doc", kind: str, plain: Mapping, tables: Mapping, figures: Mapping, labels: Mapping) -> set:
    """Executive summary: decision problem, answer, ICER table, CE plane (and CEAC after a PSA), and the
    key uncertainties. Returns the figure names shown."""
    cur = _currency(tables)
    prefix = "base_" if kind == "psa" else ""
    inc = tables.get("psa_full_incremental") if kind == "psa" else tables.get(f"{prefix}incremental")
    if inc is None and kind == "psa":
        inc = tables.get("base_incremental")
    names = [short_label(s, labels) for s in (dotted(plain, "experiment.strategies") or [])]
    ref = dotted(plain, "experiment.reference")
    doc.h(2, "Summary")
    doc.p(f"Decision problem: which treatment pathway for adults with metastatic pancreatic neuroendocrine "
          f"tumour, among {', '.join(names) or 'the configured strategies'}"
          + (f" (reference {short_label(ref, labels)})" if ref else "")
          + f", gives the best value to the health service, over a lifetime and with costs in {cur or 'the configured currency'}?")
    doc.p("Answer: " + _answer(inc, _primary_wtp(plain, kind), cur, labels))
    comp = tables.get("comparisons")
    if kind == "compare" and comp is not None and len(comp):
        rows = []
        for r in comp.to_dict("records"):
            text = (f"{r['isolates']} Mean OS {r['delta_os_months']:+.1f} months "
                    f"({r['delta_os_months_lo']:+.1f} to {r['delta_os_months_hi']:+.1f})")
            if "delta_qaly" in r:
                text += (f", QALYs {r['delta_qaly']:+.3f}, costs {cur} {r['delta_cost']:+,.0f}: "
                         f"{icer_wording(r).replace('_', ' ')}")
            rows.append((f"{short_label(r['intervention'], labels)} vs {short_label(r['comparator'], labels)}",
                         text + "."))
        doc.h(3, "What each comparison isolates")
        doc.items(rows)
    shown = set()
    if inc is not None and len(inc):
        t = icer_text(inc).assign(status=dominance_text(inc, labels),
                                  comparator=[("" if _missing(c) or c is None else short_label(c, labels))
                                              for c in inc["comparator"]])
        doc.table("Cost-effectiveness (discounted, per patient; ICER vs the previous strategy on the frontier)", t,
                  None, headers=column_labels(cur),
                  columns=["strategy", "cost", "effect", "status", "comparator", "icer"])
    diff = tables.get("economics_differences")
    if kind == "compare" and diff is not None and len(diff):
        doc.table(f"Incremental costs and QALYs vs the reference (paired per patient; mean ± SE)", diff, None,
                  headers=column_labels(cur), columns=["strategy", "reference", "cost_total_disc", "qaly_disc"])
    for name, caption in (("ce_plane_paired", "Cost-effectiveness plane of the paired differences vs the reference "
                                              "(each dot a bootstrap mean: Monte Carlo uncertainty of this cohort)"),
                          ("ce_plane", "Cost-effectiveness plane of the PSA samples"),
                          ("ceac", "Cost-effectiveness acceptability curves and frontier")):
        if name in figures:
            doc.figure(caption, figures[name])
            shown.add(name)
    unc = []
    n = dotted(plain, "cohort.n")
    if isinstance(n, int):
        unc.append(("Monte Carlo error", f"{n:,} simulated patients per strategy; 95 % intervals and SEs in the "
                                          f"tables reflect it" + (f" (below {MIN_PATIENTS} patients: intervals and "
                                                                  f"ICERs are unreliable)" if n < MIN_PATIENTS else "")))
    unc.append(("Rechallenge efficacy", "no randomised evidence in pancreatic NET: the time and response ratios of "
                                        "sunitinib given again rest on renal cell carcinoma data (Oudard et al. 2016, "
                                        "RESUME) and labelled assumptions (data/evidence/assumptions.csv)"))
    if kind == "compare":
        unc.append(("Parameter uncertainty", "not varied in this run: the probabilistic (experiment=psa) and "
                                             "deterministic (experiment=dsa) analyses vary every uncertain input"))
    ev = tables.get("evppi")
    if kind == "psa" and ev is not None and len(ev) and "group" in ev:
        top = ev.sort_values("evppi", ascending=False).drop_duplicates("group").head(3)
        unc.append(("Value of information", "largest EVPPI per person: " + ", ".join(
            f"{str(g).replace('_', ' ')} {fmt(float(v))} {cur}" for g, v in zip(top["group"], top["evppi"]))))
    tor = tables.get("tornado")
    if kind == "dsa" and tor is not None and len(tor) and "swing" in tor:
        top = tor.sort_values("swing", ascending=False).head(3)
        unc.append(("Most influential inputs", ", ".join(param_label(x) for x in top["parameter"])))
    doc.h(3, "Key uncertainties")
    doc.items(unc)
    return shown


def cohort_characteristics(cohort: pd.DataFrame, c: Mapping) -> pd.DataFrame:
    """The realised marginals of the simulated cohort beside the configured ones (a generated cohort;
    ``configured`` is ``-`` for a cohort file)."""
    gen = not c.get("source")
    age = c.get("age") or {}
    rows = [("patients", f"{int(c['n']):,}" if gen and isinstance(c.get("n"), int) else "-", f"{len(cohort):,}"),
            ("age, mean (years)", fmt(age.get("mean")) if gen else "-", fmt(float(cohort["age"].mean()))),
            ("age, SD (years)", fmt(age.get("sd")) if gen else "-", fmt(float(cohort["age"].std())))]

    def share(label, realised, configured):
        rows.append((label, fmt(configured) if gen and configured is not None else "-", fmt(float(realised))))
    share("male", (cohort["sex"] == "male").mean(), c.get("male"))
    for i in range(3):
        share(f"ECOG {i}", (cohort["ecog"] == i).mean(), (c.get("ecog") or [None] * 3)[i]
              if len(c.get("ecog") or []) > i else None)
    for g in ("G1", "G2", "G3"):
        share(f"grade {g}", (cohort["grade"] == g).mean(), (c.get("grade") or {}).get(g))
    share("non-functioning", (cohort["functional_status"] == "non_functioning").mean(), c.get("non_functioning"))
    for h, lab in (("le25", "hepatic burden <= 25 %"), ("25to50", "hepatic burden 25-50 %"),
                   ("gt50", "hepatic burden > 50 %")):
        share(lab, (cohort["hepatic_burden"] == h).mean(), (c.get("hepatic_burden") or {}).get(h))
    share("rapid tempo", (cohort["tempo"] == "rapid").mean(), c.get("rapid_tempo"))
    share("symptomatic bulk", cohort["symptomatic_bulk"].mean(), c.get("symptomatic_bulk"))
    share("diabetes", cohort["diabetes"].mean(), c.get("diabetes"))
    share("MGMT low", cohort["mgmt_low"].mean(), c.get("mgmt_low"))
    share("SSTR positive", cohort["sstr_positive"].mean(), None)
    return pd.DataFrame(rows, columns=["characteristic", "configured", "simulated"])


# --------------------------------------------------------------------------- results
CATEGORIES = ("drug", "administration", "monitoring", "ae", "bsc", "end_of_life")
_CLINICAL = ["strategy", "n_patients", "median_pfs1_months", "median_pfs2_months", "median_os_months", "mean_os_months",
             "mean_time_on_treatment_months", "g34_ae_per_patient", "share_any_g34_ae",
             "share_toxicity_discontinuation", "mean_active_lines", "share_alive_at_horizon"]
_ICER_TEXT = {"dominated": "dominated", "extendedly dominated": "extendedly dominated", "dominates": "dominant",
              "dominant": "dominant"}


def icer_text(table: pd.DataFrame, icer: str = "icer", status: str = "status") -> pd.DataFrame:
    """A copy with ``icer`` as display text: the status word where the strategy is dominated,
    extendedly dominated or dominant (a bare negative ICER does not say which), ``x (SW)`` for a
    cheaper, less effective strategy (the ICER is then savings per QALY lost)."""
    if table is None or icer not in table or status not in table:
        return table
    out = table.copy()
    txt = []
    for v, st in zip(table[icer], table[status]):
        st = str(st)
        if st in _ICER_TEXT:
            txt.append(_ICER_TEXT[st])
        elif st in ("SW", "less costly, less effective") and not _missing(v):
            txt.append(f"{fmt(v)} (SW)")
        else:
            txt.append(fmt(v))
    out[icer] = txt
    return out


def _currency(tables: Mapping) -> str:
    for name in ("economics_summary", "base_economics_summary", "psa_summary"):
        t = tables.get(name)
        if t is not None and "currency" in t and len(t):
            return str(t["currency"].iloc[0])
    return ""


def _economics_blocks(doc: Doc, tables: Mapping, prefix: str, what: str, cur: str, labels: Mapping) -> set:
    """Per-strategy costs (total and by category), LYs and QALYs and the full incremental analysis
    of one simulated cohort (``<prefix>economics_summary``, ``<prefix>incremental``)."""
    H = column_labels(cur)
    summ = tables.get(f"{prefix}economics_summary")
    doc.table(f"{what}: discounted costs, life-years and QALYs per strategy (mean ± Monte Carlo SE; "
              f"undiscounted totals alongside)", summ, f"{prefix}economics_summary", headers=H,
              columns=["strategy", "n_patients", "cost_total_disc", "ly_disc", "qaly_disc", "cost_total", "ly", "qaly",
                       "n_ae"])
    doc.table(f"{what}: discounted costs by category (mean ± Monte Carlo SE)", summ, f"{prefix}economics_summary",
              headers=H, columns=["strategy"] + [f"cost_{c}_disc" for c in CATEGORIES] + ["cost_total_disc"])
    inc = tables.get(f"{prefix}incremental")
    if inc is not None and len(inc):
        w = [c for c in inc.columns if c.startswith(("nmb_", "nhb_", "best_")) and not c.endswith("_se")]
        hw = {c: (f"NMB at {float(c[4:]):,.0f}" + (f" ({cur})" if cur else "") if c.startswith("nmb_") else
                  f"NHB at {float(c[4:]):,.0f} (QALYs)" if c.startswith("nhb_") else
                  f"highest NMB at {float(c[5:]):,.0f}") for c in w}
        doc.table(f"{what}: full incremental analysis (discounted; strategies ordered by cost; ICER vs the previous "
                  f"frontier strategy; ± Monte Carlo SE, paired for increments)", icer_text(inc), f"{prefix}incremental",
                  columns=["strategy", "cost", "effect", "status", "comparator", "inc_cost", "inc_effect", "icer"] + w,
                  headers={**H, **hw})
    return {f"{prefix}economics_summary", f"{prefix}incremental", f"{prefix}economics_differences",
            f"{prefix}summary"}


def _km(doc: Doc, figures: Mapping, what: str = "") -> None:
    for name in sorted(figures, key=lambda k: (k != "km_overview", k)):
        if str(name).startswith("km_"):
            doc.figure(f"{what}Kaplan-Meier curves: " + ("OS, PFS1 and PFS2 by strategy" if name == "km_overview"
                                                         else f"strategy {name[3:]}"), figures[name])


def _results_compare(doc: Doc, tables: Mapping, figures: Mapping, labels: Mapping) -> set:
    cur = _currency(tables)
    doc.h(2, "Results")
    doc.table("Clinical outcomes per strategy (95 % CI)", tables.get("summary"), "summary",
              headers=column_labels(cur), columns=_CLINICAL)
    doc.table("Paired differences vs the reference strategy (95 % CI)", tables.get("differences"), "differences")
    shown = _economics_blocks(doc, tables, "", "Base case", cur, labels)
    doc.table("Paired differences in costs, life-years and QALYs vs the reference (discounted; mean ± paired SE)",
              tables.get("economics_differences"), "economics_differences", headers=column_labels(cur),
              columns=["strategy", "reference", "n_pairs", "cost_total_disc", "ly_disc", "qaly_disc"])
    phases = tables.get("phases")
    if phases is not None and len(phases):
        for name, g in phases.groupby("comparison", sort=False):
            doc.table(f"Where the difference comes from ({str(name).replace('_', ' ')}): months and discounted "
                      f"QALYs per patient on each therapy's line and after the last active line, and their paired "
                      f"differences (95 % CI); the phases add up to the totals", g, "phases",
                      columns=["phase", "intervention_months", "comparator_months", "delta_months",
                               "intervention_qaly_disc", "comparator_qaly_disc", "delta_qaly_disc"])
    flow = tables.get("treatment_flow")
    if flow is not None and len(flow):
        doc.table("Treatment flow: the therapy patients actually receive at each line (share of the strategy's "
                  "patients) and the lines skipped before it", flow, "treatment_flow",
                  columns=["strategy", "line", "therapy", "n_patients", "share", "skipped_before"])
        if "treatment_flow" in figures:
            doc.figure("Treatment flow by strategy", figures["treatment_flow"])
    subgroups = tables.get("subgroups")
    if subgroups is not None and len(subgroups):
        doc.table("Subgroups: mean OS, costs, QALYs and net monetary benefit by subgroup, with the best strategy",
                  subgroups, "subgroups", max_rows=200)
    res = tables.get("resources")
    if res is not None and len(res):
        doc.table("Shared capacity: utilisation over the middle 80 % of referrals, waits for a first "
                  "administration (months) and how waits ended (sim/resources.py)", res, "resources")
        if "resource_queue" in figures:
            doc.figure("Patients waiting for a first administration over time", figures["resource_queue"])
    _km(doc, figures)
    return shown | {"summary", "differences", "economics_differences", "economics_inputs", "phases",
                    "treatment_flow", "subgroups", "comparisons", "resources"}


def _results_psa(doc: Doc, tables: Mapping, figures: Mapping, labels: Mapping) -> set:
    cur = _currency(tables)
    H = {**column_labels(cur), "ly": "life-years", "qaly": "QALYs"}      # PSA tables: ly, qaly are discounted
    doc.h(2, "Results")
    shown = set()
    if tables.get("base_economics_summary") is not None:
        doc.h(3, "Deterministic base case")
        doc.p("Every parameter at its base value; the same cohort and random streams as PSA sample 0.")
        shown |= _economics_blocks(doc, tables, "base_", "Deterministic base case", cur, labels)
        doc.table("Deterministic base case: clinical outcomes per strategy (95 % CI)", tables.get("base_summary"),
                  "base_summary", headers=H, columns=_CLINICAL)
        _km(doc, figures, "Deterministic base case: ")
    doc.h(3, "Probabilistic results")
    summ = tables.get("psa_summary")
    doc.table("Expected discounted costs, life-years and QALYs over PSA samples (mean, 2.5-97.5 % percentiles)", summ,
              "psa_summary", headers=H,
              columns=["strategy", "n_samples", "cost", "ly", "qaly", "cost_undiscounted", "ly_undiscounted",
                       "qaly_undiscounted"])
    if summ is not None and "cost_drug" in summ:
        doc.table("Expected discounted costs by category over PSA samples (mean ± Monte Carlo SE)",
                  summ.drop(columns=[c for c in summ.columns if c.endswith(("_lo", "_hi"))]), "psa_summary",
                  headers={**H, **{f"cost_{c}": H[f"cost_{c}_disc"] for c in CATEGORIES}},
                  columns=["strategy"] + [f"cost_{c}" for c in CATEGORIES] + ["cost"])
    full = tables.get("psa_full_incremental")
    if full is not None and len(full):
        w = [c for c in full.columns if c.startswith(("nmb_", "best_")) and not c.endswith("_se")]
        hw = {c: (f"expected NMB at {float(c[4:]):,.0f}" + (f" ({cur})" if cur else "") if c.startswith("nmb_")
                  else f"highest expected NMB at {float(c[5:]):,.0f}") for c in w}
        doc.table("Full incremental analysis of the expected costs and QALYs (probabilistic; ordered by cost; ICER "
                  "vs the previous frontier strategy; ± Monte Carlo SE over samples)", icer_text(full),
                  "psa_full_incremental", headers={**H, **hw},
                  columns=["strategy", "cost", "effect", "status", "comparator", "inc_cost", "inc_effect", "icer"] + w)
    inc = tables.get("psa_incremental")
    if inc is not None and len(inc):
        cols = ["strategy", "comparator", "delta_cost", "delta_qaly", "icer", "status"] + \
            [c for c in inc.columns if c.startswith(("inmb_", "p_ce_")) and not c.endswith(("_lo", "_hi", "_se"))]
        hw = {c: (f"INMB at {float(c[5:]):,.0f}" + (f" ({cur})" if cur else "") if c.startswith("inmb_")
                  else f"P(higher NMB) at {float(c[5:]):,.0f}") for c in cols if c.startswith(("inmb_", "p_ce_"))}
        doc.table("Each strategy vs the comparator (means over samples, 2.5-97.5 % percentiles; INMB = incremental "
                  "net monetary benefit; P(higher NMB) = share of samples with a positive INMB)", icer_text(inc),
                  "psa_incremental", columns=cols, headers={**H, **hw})
    ev = tables.get("evppi")
    wtps = sorted(set(ev["wtp"])) if ev is not None and len(ev) else []
    ce = tables.get("ceac")
    if ce is not None and len(ce) and wtps:
        order = list(dict.fromkeys(ce["strategy"]))
        t = ce[ce["wtp"].isin(wtps)].pivot(index="wtp", columns="strategy", values="probability")[order].reset_index()
        t.columns = [H["wtp"]] + [short_label(c, labels) for c in t.columns[1:]]
        doc.table("Probability that each strategy is cost-effective (CEAC) at the report thresholds", t, "ceac",
                  prettify=False)
    f = tables.get("ceaf")
    if f is not None and len(f) and wtps:
        doc.table("Acceptability frontier (strategy with the highest expected NMB) and EVPI per person",
                  f[f["wtp"].isin(wtps)], "ceaf", headers=H,
                  columns=["wtp", "optimal_strategy", "expected_nmb", "probability_cost_effective", "evpi"])
    if ev is not None and len(ev):
        doc.table("EVPI and EVPPI per person by parameter group (95 % interval: Monte Carlo for EVPI, bootstrap for "
                  "EVPPI)", ev.assign(evppi_lo=ev["lo"], evppi_hi=ev["hi"]), "evppi", headers=H,
                  columns=["wtp", "group", "n_parameters", "evppi", "method"])
        if np.allclose(ev["evppi"].to_numpy(float), 0.0):
            best = f["optimal_strategy"].iloc[0] if f is not None and len(f) else "one strategy"
            doc.p(f"EVPI is 0 at every report threshold: {short_label(best, labels)} has the highest net monetary "
                  f"benefit in every PSA sample, so perfect information on any parameter could not change the "
                  f"decision and every EVPPI is 0 as well (method 'dominance': no regression is needed).")
        elif (ev["group"] == ALL_GROUP).any():
            doc.p("The EVPPI of all parameters jointly is below the EVPI by the decision uncertainty that comes from "
                  "the finite simulated cohort of each sample (Monte Carlo noise), which parameter information cannot "
                  "remove; a larger cohort brings the two together.")
    for name, cap in (("ce_plane", "Cost-effectiveness plane (each point one PSA sample; crosses: means)"),
                      ("ceac", "Cost-effectiveness acceptability curves and frontier"),
                      ("evppi", "EVPI and EVPPI by parameter group"),
                      ("convergence", "Convergence of the mean incremental net benefit with the number of samples"),
                      ("convergence_voi", "Convergence of the mean INB, the CEAC and the EVPI with the number of samples"),
                      ("evpi_curve", "EVPI per person and for the population over willingness to pay"),
                      ("evppi_diagnostics", "EVPPI regressions: residuals against fitted values")):
        if name in figures:
            doc.figure(cap, figures[name])
    return shown | {"psa_summary", "psa_full_incremental", "psa_incremental", "ceac", "ceaf", "evppi",
                    "psa_parameters", "ce_plane", "convergence", "economics_inputs"}


def _dsa_icers(t: pd.DataFrame) -> pd.DataFrame:
    """ICER columns of a DSA table as text with their quadrant (``dominated``, ``x (SW)``)."""
    out = t.copy()
    for icer, quad in (("icer", "quadrant"), ("icer_low", "quadrant_low"), ("icer_high", "quadrant_high")):
        if icer in out and quad in out:
            out[icer] = icer_text(t.assign(_q=t[quad]), icer, "_q")[icer]
    return out


def _results_dsa(doc: Doc, tables: Mapping, figures: Mapping, labels: Mapping) -> set:
    cur = _currency(tables)
    H = column_labels(cur)
    doc.h(2, "Results")
    shown = set()
    if tables.get("base_economics_summary") is not None:
        doc.h(3, "Base case")
        shown |= _economics_blocks(doc, tables, "base_", "Base case", cur, labels)
        doc.table("Base case: clinical outcomes per strategy (95 % CI)", tables.get("base_summary"), "base_summary",
                  headers=H, columns=_CLINICAL)
    doc.h(3, "Scenario analyses")
    sc = tables.get("scenarios")
    doc.table("Scenario analyses: intervention minus comparator (discounted; ± Monte Carlo SE; INB = incremental "
              "net monetary benefit at the WTP)", None if sc is None else _dsa_icers(sc), "scenarios", headers=H,
              columns=["scenario", "description", "intervention", "comparator", "wtp", "delta_cost", "delta_qaly",
                       "icer", "inb"])
    doc.h(3, "One-way sensitivity analysis")
    tor = tables.get("tornado")
    if tor is not None and len(tor):
        tor = _dsa_icers(tor).assign(
            parameter=[f"{param_label(x)} ({x})" for x in tor["parameter"]],
            base_value=["lifetime" if str(x).endswith("horizon_years") and _missing(b) else b
                        for x, b in zip(tor["parameter"], tor["base_value"])])
    doc.table("One-way sensitivity analysis, widest swing first (INB of the intervention vs the comparator with the "
              "parameter at each end of its range)", tor, "tornado", headers=H,
              columns=["parameter", "base_value", "low", "high", "inb_low", "inb_high", "swing", "icer_low",
                       "icer_high", "source"])
    if "tornado" in figures:
        doc.figure("Tornado diagram: INB at the low and high end of each range (20 widest swings)", figures["tornado"])
    si = tables.get("scenario_incremental")
    doc.table("Full incremental analysis per scenario (discounted)", None if si is None else icer_text(si),
              "scenario_incremental", headers={**H, "ly": "life-years"},
              columns=["scenario", "strategy", "cost_total_disc", "qaly_disc", "ly", "status", "comparator", "icer"])
    _km(doc, figures, "Base case: ")
    return shown | {"scenarios", "tornado", "scenario_incremental", "economics_inputs"}


# --------------------------------------------------------------------------- provenance
def _provenance(doc: Doc, folder: Path, plain: Mapping) -> None:
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
    name = dotted(plain_cfg, "experiment.name", kind)
    title = {"compare": "Treatment pathways in metastatic pancreatic NET: cost-effectiveness of the strategies",
             "psa": "Treatment pathways in metastatic pancreatic NET: probabilistic sensitivity analysis",
             "dsa": "Treatment pathways in metastatic pancreatic NET: deterministic sensitivity analysis"}[kind]
    doc = Doc(folder)
    doc.h(1, title)
    cur = _currency(tables)
    doc.p(f"pnetsim run {name}, seed {plain_cfg.get('seed')}; strategies "
          + ", ".join(labels.get(s, s) for s in (dotted(plain_cfg, "experiment.strategies") or [])) + ".")
    summary_figures = _summary(doc, kind, plain_cfg, tables, figures, labels)
    figures_left = {k: v for k, v in figures.items() if k not in summary_figures}
    shown = {"compare": lambda: _results_compare(doc, tables, figures_left, labels),
             "psa": lambda: _results_psa(doc, tables, figures_left, labels),
             "dsa": lambda: _results_dsa(doc, tables, figures_left, labels)}[kind]()
    rest = [k for k in tables if k not in shown and k not in LONG_TABLES and k != "cohort_characteristics"]
    if rest:
        doc.h(3, "Other tables")
        for k in rest:
            doc.table(humanise(k), tables[k], k)
    cheers = _methods(doc, kind, plain_cfg, tables, labels)
    _uncertainty_methods(doc, kind, plain_cfg, tables)
    doc.h(2, "Appendix: economic inputs")
    doc.table(f"Economic inputs ({cur or dotted(plain_cfg, 'economics.currency', '')} at "
              f"{dotted(plain_cfg, 'economics.price_year', '-')} prices; range = low / high used by the sensitivity "
              f"analyses)", tables.get("economics_inputs"), "economics_inputs", prettify=False, max_rows=500)
    doc.h(2, "CHEERS 2022 checklist")
    doc.table("Where each CHEERS 2022 item is reported (Husereau et al., BMJ 2022;376:e067975)",
              pd.DataFrame(cheers, columns=["item", "topic", "reported in"]), prettify=False)
    _provenance(doc, folder, plain_cfg)
    html_path, md_path = folder / "report.html", folder / "report.md"
    html_path.write_text(doc.html(title), encoding="utf-8")
    md_path.write_text(doc.markdown(), encoding="utf-8")
    return html_path, md_path


def psa_figures(tables: Mapping[str, pd.DataFrame], folder, labels: Mapping | None = None, settings=None,
                currency: str = "") -> dict[str, Path]:
    """CE plane, CEAC with CEAF, EVPPI bars and convergence of a PSA (``ce_plane.png``,
    ``ceac.png``, ``evppi.png``, ``convergence.png`` in ``folder``). ``settings`` (a
    :class:`~sim.uncertainty.psa.PsaSettings`) gives the report WTPs and the comparator."""
    folder = Path(folder)
    wtp = tuple(getattr(settings, "report_wtp", (20000, 30000)))
    out = {}
    if len(tables.get("ce_plane", ())):
        out["ce_plane"] = ef.ce_plane(tables["ce_plane"], folder / "ce_plane.png", wtp, labels,
                                      getattr(settings, "comparator", None), currency=currency)
    if len(tables.get("ceac", ())):
        out["ceac"] = ef.ceac(tables["ceac"], folder / "ceac.png", tables.get("ceaf"), labels, wtp, currency=currency)
    if len(tables.get("evppi", ())):
        out["evppi"] = ef.evppi_bars(tables["evppi"], folder / "evppi.png", labels, currency=currency)
    if len(tables.get("convergence", ())):
        out["convergence"] = ef.convergence(tables["convergence"], folder / "convergence.png", currency=currency)
    return out
