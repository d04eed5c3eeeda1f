"""Deterministic sensitivity analysis (DSA): one-way ranges (tornado) and scenario analyses.

``pnetsim experiment=dsa`` (``configs/experiment/dsa.yaml``). Every *arm* is the base-case
configuration with some config paths overridden (:func:`sim.uncertainty.params.apply_overrides`,
set before interpolations are resolved, so a value other keys interpolate changes everywhere).
Each arm is simulated with the master seed (common random numbers: the same patients meet
the same random numbers in every arm and every strategy), evaluated with
:func:`sim.economics.evaluate.evaluate`, and summarised by the contrast of
``experiment.intervention`` (``I``) against ``experiment.comparator`` (``C``) at the primary
willingness to pay ``lambda``::

    dC = mean_i [C_i(I) - C_i(C)],   dE = mean_i [Q_i(I) - Q_i(C)]        (discounted)
    INB(lambda) = lambda * dE - dC,  ICER = dC / dE
    SE(INB) = sd_i(lambda * dQ_i - dC_i) / sqrt(n)                         (paired Monte Carlo SE)

Arms that change only ``economics.*`` reuse the base-case simulation (the event records do not
depend on costs or utilities), so their differences from the base case carry no Monte Carlo
noise at all; arms that change the model are re-simulated with the same seed.

One-way ranges come from (``experiment.parameters``, each entry in the syntax of
``psa.parameters``, :func:`sim.uncertainty.params.make_param`, default ``dist: uniform``):
``range: "assumption:<id>"`` (low / high of ``data/evidence/assumptions.csv``),
``range: economics`` (``economics.ranges``), ``dist: lognormal, ci: "evidence:<id>"`` (the
95 % interval of a published CI, centred on the base value), ``se_log`` (2.5 / 97.5 %
quantiles) or explicit ``low`` / ``high`` with a ``source``; with
``experiment.economics_ranges: true`` every entry of ``economics.ranges`` is added (for the
utility set in use only). ``experiment.select`` (fnmatch patterns, null = all) keeps a subset.

ICERs are reported as numbers with a ``quadrant`` (``NE``: more costly, more effective -- the
ICER is meaningful; ``SW``: cheaper, less effective; ``dominant``; ``dominated``), since a
negative ICER alone does not say which.

Outputs (``docs/outputs.md``): ``tornado.csv|parquet`` (one row per parameter, sorted by
swing), ``scenarios.csv|parquet`` (one row per scenario), ``scenario_incremental.csv|parquet``
(full incremental analysis of every scenario), the base case's ``base_summary``,
``base_economics_summary`` and ``base_incremental``, ``tornado.png``, Kaplan-Meier figures of the
base case, ``report.html`` / ``report.md``, ``manifest.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pandas as pd

from sim.config import build_model, to_container
from sim.economics.evaluate import economics_summary, evaluate, incremental_with_se
from sim.economics.incremental import incremental
from sim.economics.inputs import inputs_table
from sim.uncertainty.params import apply_overrides, get_path, load_assumptions, make_param
from sim.uncertainty.psa import with_economics
from sim.economics.spec import EconomicsSpec
from sim.errors import UserError, check, is_number, mapping
from sim.outcomes import summarise
from sim.pipeline import simulate_model, write_report_if_available
from sim.report.econ_figures import tornado
from sim.report.figures import km_figures
from sim.report.labels import short_label
from sim.runio import Steps, atomic_run_dir, progress_bar, run_folder_name, write_manifest

KEY = "experiment"


@dataclass(frozen=True)
class OneWay:
    """One parameter of the tornado: config ``path``, base value, ``low`` / ``high`` and source."""

    path: str
    base: object
    low: float
    high: float
    source: str

    def __post_init__(self):
        check(math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high,
              f"{KEY}.parameters.{self.path}", (self.low, self.high), "must have finite low <= high")


@dataclass(frozen=True)
class Scenario:
    """A named set of overrides ``{config path: value}``."""

    name: str
    description: str
    overrides: Mapping[str, object]

    def __post_init__(self):
        check(isinstance(self.overrides, Mapping) and len(self.overrides) > 0,
              f"{KEY}.scenarios.{self.name}.overrides", self.overrides, "must map config paths to values")


@dataclass(frozen=True)
class DsaSettings:
    """``experiment.*`` of a DSA run, validated."""

    intervention: str
    comparator: str
    primary_wtp: float
    parameters: tuple[OneWay, ...]
    scenarios: tuple[Scenario, ...]
    progress: object

    def __post_init__(self):
        check(self.intervention != self.comparator, f"{KEY}.intervention", self.intervention,
              "must differ from experiment.comparator")
        check(math.isfinite(self.primary_wtp) and self.primary_wtp > 0, f"{KEY}.primary_wtp", self.primary_wtp,
              "must be > 0")
        names = [p.path for p in self.parameters]
        check(len(set(names)) == len(names), f"{KEY}.parameters", names, "lists a path twice")


def _economics_ranges(plain: Mapping) -> list[OneWay]:
    """Every ``economics.ranges`` entry as a one-way parameter; entries the analysis does not use are
    skipped: other utility sets, and AE decrements of AE types the set in use values by a state
    utility (``ae_states``)."""
    econ = plain.get("economics") or {}
    in_use = (econ.get("utilities") or {}).get("set")
    states = ((((econ.get("utilities") or {}).get("sets") or {}).get(in_use) or {}).get("ae_states") or {})
    out = []
    for rel, r in (econ.get("ranges") or {}).items():
        parts = rel.split(".")
        if parts[:2] == ["utilities", "sets"] and len(parts) > 2 and parts[2] != in_use:
            continue
        if parts[:2] == ["utilities", "ae_disutility"] and len(parts) == 3 and parts[2] in states:
            continue                    # the set in use values this AE by its state utility (ae_states)
        if parts[0] == "dispensing" and econ.get("drug_costing", "continuous") != "packs":
            continue                    # pack-level inputs are unused when drugs are costed per mg
        path = f"economics.{rel}"
        base = get_path(plain, path)
        check(isinstance(r, Mapping) and "low" in r and "high" in r, f"economics.ranges.{rel}", r,
              "must give low and high")
        out.append(OneWay(path, base, float(r["low"]), float(r["high"]),
                          f"economics.ranges: {r.get('why', '')}".strip()))
    return out


def dsa_settings(plain: Mapping, spec) -> DsaSettings:
    """Validate the DSA keys of ``experiment`` (``spec``: the base-case economics spec)."""
    exp = plain.get("experiment") or {}
    strategies = list(exp.get("strategies") or [])
    inter = exp.get("intervention", "rechallenge")
    comp = exp.get("comparator", exp.get("reference"))
    check(inter in strategies, f"{KEY}.intervention", inter, f"must be one of the compared strategies {strategies}")
    check(comp in strategies, f"{KEY}.comparator", comp, f"must be one of the compared strategies {strategies}")
    wtp = exp.get("primary_wtp")
    wtp = max(spec.wtp) if wtp is None else wtp
    check(is_number(wtp), f"{KEY}.primary_wtp", wtp, "must be a number")
    params: list[OneWay] = []
    if exp.get("economics_ranges", True):
        params += _economics_ranges(plain)
    entries = exp.get("parameters") or {}
    check(isinstance(entries, Mapping), f"{KEY}.parameters", entries, "must map config paths to ranges")
    assumptions = load_assumptions()
    for path, e in entries.items():
        check(isinstance(e, Mapping), f"{KEY}.parameters.{path}", e, "must be a mapping (range, low/high, ci, ...)")
        e = {"dist": "uniform", **e}
        p = make_param(path, e, plain, assumptions)
        params = [q for q in params if q.path != path]          # an explicit entry wins over economics.ranges
        source = p.source.replace("in psa config", f"in {KEY}.parameters")   # make_param words it for the PSA
        params.append(OneWay(path, p.base, float(p.low), float(p.high), source))
    select = exp.get("select")
    if select is not None:
        pats = [select] if isinstance(select, str) else list(select)
        check(all(isinstance(x, str) for x in pats), f"{KEY}.select", select, "must be a list of path patterns")
        params = [p for p in params if any(fnmatchcase(p.path, pat) for pat in pats)]
        check(len(params) > 0, f"{KEY}.select", select, "matches no parameter")
    scen = exp.get("scenarios") or {}
    check(isinstance(scen, Mapping), f"{KEY}.scenarios", scen, "must map names to {description, overrides}")
    scenarios = []
    for name, s in scen.items():
        check(isinstance(s, Mapping), f"{KEY}.scenarios.{name}", s, "must be a mapping with overrides")
        ov = mapping(f"{KEY}.scenarios.{name}.overrides", s.get("overrides"), allow_none=True)
        scenarios.append(Scenario(str(name), str(s.get("description", "")), dict(ov)))
    return DsaSettings(inter, comp, float(wtp), tuple(params), tuple(scenarios),
                       (plain.get("output") or {}).get("progress", "auto"))


def arm_overrides(st: DsaSettings) -> list[tuple[str, dict]]:
    """``(where, overrides)`` of every arm but the base case: each one-way end, then each scenario
    (``where`` names the config key the arm comes from, for error messages)."""
    arms = [(f"{KEY}.parameters.{p.path} (low = {p.low:g})", {p.path: p.low}) for p in st.parameters]
    arms += [(f"{KEY}.parameters.{p.path} (high = {p.high:g})", {p.path: p.high}) for p in st.parameters]
    return arms + [(f"{KEY}.scenarios.{s.name}.overrides", dict(s.overrides)) for s in st.scenarios]


def check_arms(cfg, st: DsaSettings) -> None:
    """Build the model and economics spec of every arm without simulating, so that a bad override
    (unknown path, value out of range) stops the run before the first simulation; the
    :class:`UserError` names the arm's key, then the bad key and value."""
    for where, ov in arm_overrides(st):
        try:
            c = apply_overrides(cfg, ov)
            build_model(c)
            EconomicsSpec.from_config(to_container(c)["economics"])
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- arms
class ArmRunner:
    """Simulates and evaluates arms of one base configuration with common random numbers.

    The simulation of an arm is reused when its resolved configuration differs from a simulated
    one only in ``economics`` (costs, utilities, discounting, horizon, WTP). ``keep`` distinct
    simulations are kept (the base case always; 1 for one-way arms, which rarely share a model;
    more for a two-way grid, whose cells share each value of a model parameter).
    """

    def __init__(self, cfg, keep: int = 1):
        self.cfg = cfg
        self.keep = keep
        self._cache: dict[str, tuple] = {}
        self.n_simulations = 0

    @staticmethod
    def _model_key(plain: Mapping) -> str:
        return json.dumps({k: v for k, v in plain.items() if k != "economics"}, sort_keys=True, default=str)

    def per_patient(self, overrides: Mapping[str, object]) -> tuple[pd.DataFrame, object]:
        """Per-patient economics (:func:`~sim.economics.evaluate.evaluate`) of the arm and its spec."""
        cfg = apply_overrides(self.cfg, dict(overrides)) if overrides else self.cfg
        plain = to_container(cfg)
        spec = EconomicsSpec.from_config(plain["economics"])
        key = self._model_key(plain)
        hit = self._cache.get(key)
        if hit is None:
            model = build_model(cfg)
            frames = simulate_model(model, progress=False)
            self.n_simulations += 1
            hit = (model.rules.imaging_interval_months, frames)
            if len(self._cache) >= self.keep and len(self._cache) > 1:
                self._cache.pop(list(self._cache)[1])         # keep the base case (first entry)
            if len(self._cache) < self.keep:
                self._cache[key] = hit
        dt, (patients, lines, events) = hit
        return evaluate(patients, lines, events, spec, imaging_interval_months=dt), spec

    def base_frames(self) -> tuple | None:
        """(patients, lines, events) of the base case (the first arm simulated), or None."""
        return next(iter(self._cache.values()))[1] if self._cache else None


def contrast(per: pd.DataFrame, intervention: str, comparator: str, wtp: float,
             cost: str = "cost_total_disc", effect: str = "qaly_disc") -> dict[str, float]:
    """Paired contrast of two strategies (module docstring): ``delta_cost, delta_qaly, icer, inb``
    and the Monte Carlo SEs ``delta_cost_se, delta_qaly_se, inb_se``."""
    wc = per.pivot(index="patient_id", columns="strategy", values=cost)
    we = per.pivot(index="patient_id", columns="strategy", values=effect)
    dc = (wc[intervention] - wc[comparator]).to_numpy(float)
    de = (we[intervention] - we[comparator]).to_numpy(float)
    inb = wtp * de - dc
    n = math.sqrt(len(dc))
    mc, me = float(dc.mean()), float(de.mean())
    return {"delta_cost": mc, "delta_cost_se": float(dc.std(ddof=1) / n),
            "delta_qaly": me, "delta_qaly_se": float(de.std(ddof=1) / n),
            "icer": mc / me if me != 0 else math.nan, "quadrant": quadrant(mc, me),
            "inb": float(inb.mean()), "inb_se": float(inb.std(ddof=1) / n)}


def quadrant(dc: float, de: float) -> str:
    """Cost-effectiveness plane quadrant of ``(dE, dC)``: ``dominant`` (``dC <= 0 <= dE``, not both 0),
    ``dominated`` (``dC >= 0 >= dE``), ``NE`` (more costly, more effective) or ``SW``."""
    if dc <= 0 <= de and (dc < 0 or de > 0):
        return "dominant"
    if dc >= 0 >= de:
        return "dominated"
    return "NE" if de > 0 else "SW"


def _icer_text(icer: float, quad: str) -> str:
    if quad in ("dominant", "dominated"):
        return quad
    return "-" if pd.isna(icer) else f"{icer:,.0f}" + (" (SW)" if quad == "SW" else "")


def tornado_table(base: dict, rows: list[dict]) -> pd.DataFrame:
    """Tornado rows sorted by swing ``|INB(high) - INB(low)|`` (largest first)."""
    t = pd.DataFrame(rows)
    t["swing"] = (t["inb_high"] - t["inb_low"]).abs()
    t["inb_base"] = base["inb"]
    t["icer_base"] = base["icer"]
    t["quadrant_base"] = base["quadrant"]
    return t.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def tornado_figure(table: pd.DataFrame, path: Path, wtp: float, title: str = "", currency: str = "") -> Path:
    """:func:`sim.report.econ_figures.tornado` of the one-way ``table``, written to ``path``."""
    out = tornado(table, path, wtp=wtp, currency=currency, title=title)
    return Path(out) if out is not None else Path(path)


def run_dsa(cfg, job: int | None = None) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The DSA experiment (module docstring): simulate every arm, write the run folder atomically.

    Returns (folder, tables) with tables ``tornado``, ``scenarios``, ``scenario_incremental`` and the
    base case's ``base_summary``, ``base_economics_summary``, ``base_incremental`` (columns of
    ``summary``, ``economics_summary`` and ``incremental``, ``docs/outputs.md``).
    """
    t0 = time.perf_counter()
    cfg = with_economics(cfg)
    plain = to_container(cfg)
    model = build_model(cfg)                         # validates the base case
    spec0 = EconomicsSpec.from_config(plain["economics"])
    st = dsa_settings(plain, spec0)
    check_arms(cfg, st)                              # every arm validated before the first simulation
    # imported here: sim.uncertainty.dsa_twoway imports this module (its analyses build on the one-way ones)
    from sim.uncertainty.dsa_twoway import run_extra, two_way_figure, twoway_settings
    tw = twoway_settings(plain, st)                  # two-way grid and thresholds (sim/uncertainty/dsa_twoway.py)
    labels = {s: v.label for s, v in model.strategies.items()}
    runner = ArmRunner(cfg, keep=16 if (tw.x is not None or tw.thresholds) else 1)
    n_arms = 1 + 2 * len(st.parameters) + len(st.scenarios)           # base case, low / high, scenarios
    rows, scen_rows, scen_inc = [], [], []
    with progress_bar(st.progress, n_arms, "DSA arms") as bar:
        bar.unit = "arm"

        def arm(overrides):
            per, spec = runner.per_patient(overrides)
            bar.update(1)
            return per, spec

        per0, _ = arm({})
        base = contrast(per0, st.intervention, st.comparator, st.primary_wtp)
        for p in st.parameters:
            row = {"parameter": p.path, "base_value": p.base, "low": p.low, "high": p.high, "source": p.source}
            for end, v in (("low", p.low), ("high", p.high)):
                c = contrast(arm({p.path: v})[0], st.intervention, st.comparator, st.primary_wtp)
                row |= {f"{k}_{end}": x for k, x in c.items()}
            rows.append(row)
        for name, desc, ov in [("base_case", "base case", {})] + [(s.name, s.description, s.overrides)
                                                                   for s in st.scenarios]:
            per, spec = arm(ov) if ov else (per0, spec0)
            c = contrast(per, st.intervention, st.comparator, st.primary_wtp)
            scen_rows.append({"scenario": name, "description": desc, "overrides": json.dumps(dict(ov), default=str),
                              "intervention": st.intervention, "comparator": st.comparator,
                              "wtp": st.primary_wtp} | c)
            means = per.groupby("strategy", sort=False)[["cost_total_disc", "qaly_disc", "ly_disc"]].mean()
            inc = incremental(means.reset_index(), spec.wtp)
            inc.insert(0, "scenario", name)
            inc.insert(4, "ly", inc["strategy"].map(means["ly_disc"]))
            scen_inc.append(inc)
    steps = Steps(st.progress, ["two-way and thresholds", "tables", "figures", "report"])
    steps.start("two-way and thresholds")
    extra = run_extra(runner, st, tw)
    t1 = time.perf_counter()
    steps.start("tables")

    frames = runner.base_frames()
    tables = {"tornado": tornado_table(base, rows) if rows else pd.DataFrame(),
              "scenarios": pd.DataFrame(scen_rows),
              "scenario_incremental": pd.concat(scen_inc, ignore_index=True).rename(
                  columns={"cost": "cost_total_disc", "effect": "qaly_disc"}),
              "base_summary": summarise(frames[0], frames[1], labels),
              "base_economics_summary": economics_summary(per0, spec0, labels),
              "base_incremental": incremental_with_se(per0, spec0.wtp),
              "economics_inputs": inputs_table(spec0.config)} | extra
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        for name, t in tables.items():
            t.to_csv(tmp / f"{name}.csv", index=False, float_format="%.10g")
            t.to_parquet(tmp / f"{name}.parquet", index=False)
        steps.start("figures")
        figures = {}
        if (plain.get("output") or {}).get("figures", True):
            if rows:
                figures["tornado"] = tornado_figure(
                    tables["tornado"], tmp / "tornado.png", st.primary_wtp,
                    f"One-way sensitivity analysis: {short_label(st.intervention, labels)} vs "
                    f"{short_label(st.comparator, labels)}", currency=spec0.currency)
            if "two_way" in extra:
                figures["two_way"] = two_way_figure(extra["two_way"], tmp / "two_way.png", st,
                                                    tw.x.base, tw.y.base, spec0.currency)
            figures.update({Path(f).stem: Path(f) for f in km_figures(frames[0], frames[1], tmp, labels)})
        steps.start("report")
        report = write_report_if_available(tmp, "dsa", plain, tables, figures, labels)
        write_manifest(tmp, plain, model.seed, {"arms": t1 - t0, "total": time.perf_counter() - t0},
                       {"kind": "dsa", "n_patients": len(model.cohort), "strategies": list(model.strategies),
                        "intervention": st.intervention, "comparator": st.comparator, "primary_wtp": st.primary_wtp,
                        "n_arms": n_arms, "n_simulations": runner.n_simulations, "report": report})
    steps.close()
    return final, tables


def format_dsa(tables: Mapping[str, pd.DataFrame], top: int = 15) -> str:
    """Console text: the scenarios and the top of the tornado (INB and ICER at each end)."""
    sc = tables["scenarios"]
    wtp = float(sc["wtp"].iloc[0])
    out = []
    money = lambda v: "-" if pd.isna(v) else f"{v:,.0f}"          # noqa: E731
    s = pd.DataFrame({"scenario": sc["scenario"],
                      "dCost": [f"{m:,.0f} ± {e:,.0f}" for m, e in zip(sc["delta_cost"], sc["delta_cost_se"])],
                      "dQALY": [f"{m:.3f} ± {e:.3f}" for m, e in zip(sc["delta_qaly"], sc["delta_qaly_se"])],
                      "ICER": [_icer_text(v, q) for v, q in zip(sc["icer"], sc["quadrant"])],
                      "INB": [f"{m:,.0f} ± {e:,.0f}" for m, e in zip(sc["inb"], sc["inb_se"])]})
    out.append(f"Scenario analyses ({sc['intervention'].iloc[0]} - {sc['comparator'].iloc[0]}, discounted; "
               f"± Monte Carlo SE; INB at {wtp:,.0f} per QALY):\n" + s.to_string(index=False))
    t = tables.get("tornado")
    if t is not None and len(t):
        tt = pd.DataFrame({"parameter": t["parameter"].head(top),
                           "range": [f"{lo:.4g} .. {hi:.4g}" for lo, hi in zip(t["low"].head(top), t["high"].head(top))],
                           "INB low": [money(v) for v in t["inb_low"].head(top)],
                           "INB high": [money(v) for v in t["inb_high"].head(top)],
                           "ICER low": [_icer_text(v, q) for v, q in zip(t["icer_low"], t["quadrant_low"])][:top],
                           "ICER high": [_icer_text(v, q) for v, q in zip(t["icer_high"], t["quadrant_high"])][:top]})
        b = sc.iloc[0]
        out.append(f"\nOne-way sensitivity (tornado, top {min(top, len(t))} of {len(t)} by swing; base INB "
                   f"{money(t['inb_base'].iloc[0])}, ICER {_icer_text(b['icer'], b['quadrant'])}):\n"
                   + tt.to_string(index=False))
    return "\n".join(out)


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=dsa`` (``experiments/run.py``): run folder and printed text."""
    from sim.uncertainty.dsa_twoway import format_extra  # imported here: sim.uncertainty.dsa_twoway imports this module

    folder, tables = run_dsa(cfg, job)
    return folder, format_dsa(tables) + format_extra(tables)
