"""Probabilistic sensitivity analysis (PSA): parameter uncertainty propagated through the
simulation, one PSA sample at a time (experiment kind ``psa``, ``pnetsim experiment=psa``).

For sample ``s``: draw the parameter overrides (:mod:`sim.economics.params`, named streams
``"psa/<path>"`` at sample ``s``), set them in the composed config *before* interpolations
are resolved, build the model, simulate every strategy with the sample's own random streams
(``simulate(..., sample=s)``: common random numbers across strategies within the sample),
evaluate costs and QALYs, and keep only the per-strategy means plus the parameter values:
one row per (sample, strategy). Memory therefore does not grow with the number of samples
beyond these rows. Sample ``s`` depends only on (master seed, ``s``), not on how many
samples are run, in which order, in which block (``psa.first_sample``) or worker.

The cohort is the base-case cohort (generated from the master seed) in every sample:
PSA varies parameters and the patients' event streams, not who the patients are.

Net monetary benefit of strategy ``d`` in sample ``s`` at willingness to pay ``lambda``:
``NB[s, d] = lambda * QALY[s, d] - cost[s, d]`` (discounted). Outputs of :func:`analyse`
(schemas: ``docs/outputs_psa.md``): per-strategy summary with 95 % percentile intervals,
incremental results against the comparator, CE-plane points, CEAC, CEAF with EVPI by WTP,
EVPPI by parameter group at the report WTPs (Strong, Oakley & Brennan, Med Decis Making
2014;34:311-326; :mod:`sim.economics.voi`), convergence of the mean incremental net benefit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim.economics import voi
from sim.economics.params import ParamSet, apply_overrides, build_paramset, expand_groups
from sim.errors import UserError, check, mapping

SAMPLE_COLUMNS = ["sample", "strategy", "cost", "qaly", "ly", "cost_undiscounted", "qaly_undiscounted",
                  "ly_undiscounted"]
#: (run arrays, economics spec, model) -> per-strategy means with the columns of SUMMARY_SOURCES
Evaluator = Callable[[object, object, object], pd.DataFrame]


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class PsaSettings:
    """The ``psa`` config group, validated by :func:`psa_settings`.

    Attributes
    ----------
    samples, first_sample : int
        Run samples ``first_sample .. first_sample + samples - 1`` (``samples >= 2``).
    intervention, comparator : str
        Contrast of the incremental table, the convergence plot and the CE plane.
    wtp_grid : ndarray
        WTPs of the CEAC / CEAF (per QALY).
    report_wtp, primary_wtp : tuple of float, float
        WTPs of the tables and EVPPI; WTP of the convergence plot.
    groups : mapping
        EVPPI groups, name -> fnmatch patterns over parameter paths.
    evppi_method : {"auto", "gam", "gp"}
    n_boot : int
        Bootstrap resamples of the EVPPI interval.
    workers : int
        Worker processes (results do not depend on them).
    progress
        Progress-bar setting (``output.progress``).
    """

    samples: int
    first_sample: int
    intervention: str
    comparator: str
    wtp_grid: np.ndarray
    report_wtp: tuple[float, ...]
    primary_wtp: float
    groups: Mapping[str, list]
    evppi_method: str
    n_boot: int
    workers: int
    progress: object


def _int(key, v, lo):
    check(isinstance(v, int) and not isinstance(v, bool) and v >= lo, key, v, f"must be a whole number >= {lo}")
    return v


def wtp_grid(key: str, g) -> np.ndarray:
    """Sorted WTP grid (per QALY) from a list or ``{start, stop, step}`` (stop included);
    an empty or negative grid is a :class:`UserError` naming ``key``."""
    if isinstance(g, Mapping):
        for f in ("start", "stop", "step"):
            check(isinstance(g.get(f), (int, float)) and not isinstance(g.get(f), bool), f"{key}.{f}", g.get(f),
                  "must be a number")
        check(g["step"] > 0, f"{key}.step", g["step"], "must be > 0")
        check(g["stop"] >= g["start"] >= 0, key, dict(g), "must have 0 <= start <= stop")
        n = int(math.floor((g["stop"] - g["start"]) / g["step"] + 1e-9)) + 1
        return float(g["start"]) + float(g["step"]) * np.arange(n)
    check(isinstance(g, (list, tuple)) and len(g) > 0, key, g, "must be a non-empty list of WTP values")
    check(all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0 for w in g),
          key, g, "must hold numbers >= 0")
    return np.unique(np.asarray(g, float))


def psa_settings(plain: Mapping, spec=None) -> PsaSettings:
    """Validate ``psa.*`` of the plain config (WTPs default to the economics spec's)."""
    p = plain.get("psa")
    check(isinstance(p, Mapping), "psa", p, "must be a config group (add `experiment=psa`)")
    exp = mapping("experiment", plain.get("experiment"), allow_none=True)
    strategies = list(exp.get("strategies") or [])
    inter = p.get("intervention", "rechallenge")
    comp = p.get("comparator", exp.get("reference"))
    check(inter in strategies, "psa.intervention", inter, f"must be one of the compared strategies {strategies}")
    check(comp in strategies, "psa.comparator", comp, f"must be one of the compared strategies {strategies}")
    check(inter != comp, "psa.intervention", inter, "must differ from psa.comparator")
    if p.get("wtp_grid") is not None:
        grid = wtp_grid("psa.wtp_grid", p["wtp_grid"])
    else:
        check(spec is not None, "psa.wtp_grid", None, "must be given when there is no economics.wtp_grid")
        grid = wtp_grid("economics.wtp_grid", list(np.asarray(spec.wtp_grid, float)))
    rw = p.get("report_wtp")
    if rw is None:
        check(spec is not None, "psa.report_wtp", None, "must be given when there is no economics.wtp")
        rw = list(spec.wtp)
    check(isinstance(rw, (list, tuple)) and len(rw) > 0, "psa.report_wtp", rw, "must be a non-empty list of numbers >= 0")
    for w in rw:
        check(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0, "psa.report_wtp", rw,
              "must be numbers >= 0")
    prim = p.get("primary_wtp")
    prim = max(rw) if prim is None else prim
    check(isinstance(prim, (int, float)) and not isinstance(prim, bool) and prim >= 0, "psa.primary_wtp", prim,
          "must be a number >= 0")
    ev = mapping("psa.evppi", p.get("evppi"), allow_none=True)
    method = ev.get("method", "auto")
    check(isinstance(method, str) and method in ("auto", "gam", "gp"), "psa.evppi.method", method,
          "must be one of ['auto', 'gam', 'gp']")
    workers = p.get("workers", 1)
    if workers == "auto":
        workers = max(1, min(os.cpu_count() or 1, 8))
    progress = (plain.get("output") or {}).get("progress", "auto")
    return PsaSettings(
        samples=_int("psa.samples", p.get("samples", 100), 2),
        first_sample=_int("psa.first_sample", p.get("first_sample", 0), 0),
        intervention=inter, comparator=comp, wtp_grid=grid, report_wtp=tuple(float(w) for w in rw),
        primary_wtp=float(prim), groups=dict(mapping("psa.evppi.groups", ev.get("groups"), allow_none=True)),
        evppi_method=method,
        n_boot=_int("psa.evppi.n_boot", ev.get("n_boot", 500), 0),
        workers=_int("psa.workers", workers, 1),
        progress=progress,
    )


def with_economics(cfg):
    """The DictConfig with an ``economics`` group (``configs/economics/uk_nhs.yaml`` merged in
    when the composed config has none)."""
    from omegaconf import DictConfig, OmegaConf, open_dict

    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    if "economics" in cfg and cfg.economics is not None:
        return cfg
    from sim.economics.spec import CONFIG_DIR
    name = OmegaConf.select(cfg, "psa.economics", default="uk_nhs") or "uk_nhs"
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"psa.economics config not found: {path}")
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(cfg):
        cfg.economics = OmegaConf.load(path)
    return cfg


# --------------------------------------------------------------------------- evaluation
def economics_spec(plain: Mapping):
    """Validated :class:`~sim.economics.spec.EconomicsSpec` of the ``economics`` group."""
    from sim.economics.spec import EconomicsSpec
    return EconomicsSpec.from_config(plain["economics"])


#: per-sample summary column -> column of the per-patient table of :func:`sim.economics.evaluate.evaluate`
SUMMARY_SOURCES = {"cost": "cost_total_disc", "qaly": "qaly_disc", "ly": "ly_disc",
                   "cost_undiscounted": "cost_total", "qaly_undiscounted": "qaly", "ly_undiscounted": "ly"}


def default_evaluator(ra, spec, model) -> pd.DataFrame:
    """Per-strategy means of discounted and undiscounted costs, QALYs and LYs of one sample
    (:data:`SUMMARY_SOURCES`): :func:`sim.economics.evaluate.evaluate_arrays` on the sample's
    :class:`~sim.economics.records.RunArrays` (scan costs timed on the model's imaging interval),
    averaged over each strategy's patients."""
    from sim.economics.evaluate import evaluate_arrays

    per = evaluate_arrays(ra, spec, model.rules.imaging_interval_months)
    n = np.bincount(ra.strategy, minlength=len(ra.strategy_names))
    out = {"strategy": list(ra.strategy_names)}
    for k, c in SUMMARY_SOURCES.items():
        out[k] = np.bincount(ra.strategy, per[c], minlength=len(n)) / n
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- one sample
def simulate_sample(model, s: int):
    """The event records of ``model`` with the random streams of PSA sample ``s``, as
    :class:`~sim.economics.records.RunArrays` (no frames are built on the vectorised path).

    ``simulate(..., sample=s)`` keys every stream by (master seed, name, ``s``): every
    strategy meets the same streams within the sample (common random numbers), and sample
    ``s`` is the same whatever else is run. Sample 0 uses the base-case streams. The model's
    executor (``engine``, ``chunk_size``) runs it; both executors give the same pathways."""
    from sim.economics.records import RunArrays
    from sim.executors import simulate

    rec = simulate(model.cohort, model.strategies, model.therapies, model.rules, model.lifetable, model.seed,
                   engine=model.engine, chunk_size=model.chunk_size, sample=s)
    return RunArrays.from_records(rec)


class SampleRunner:
    """Runs PSA samples of one configuration (picklable: used in worker processes).

    The config is resolved once (:class:`sim.overrides.Overrider`) and the base-case cohort is
    built once; a sample sets its parameter values in a copy of the resolved config (every node
    that interpolates a parameter follows it) and rebuilds therapies, rules and economics.
    """

    def __init__(self, cfg, paramset: ParamSet, evaluator: Evaluator | None = None):
        from sim.config import build_model
        from sim.overrides import Overrider

        self.paramset = paramset
        self.evaluator = evaluator or default_evaluator
        self._overrider = Overrider(cfg, paramset.paths)
        self._cohort = build_model(self._overrider.base).cohort

    def run(self, s: int) -> pd.DataFrame:
        """Rows (one per strategy) of sample ``s``: means and parameter values."""
        from sim.config import build_model

        ov = self.paramset.draw(s)
        plain = self._overrider.apply(ov)
        model = build_model(plain, cohort=self._cohort)
        spec = economics_spec(plain)
        m = self.evaluator(simulate_sample(model, s), spec, model)
        m = m.set_index("strategy").reindex(list(model.strategies)).reset_index()
        m.insert(0, "sample", s)
        for p, v in ov.items():
            m[p] = v
        return m


_WORKER_RUNNER: SampleRunner | None = None


def _init_worker(runner: SampleRunner) -> None:
    """Process-pool initializer: keep one runner (config, cohort, parameters) per worker."""
    global _WORKER_RUNNER
    _WORKER_RUNNER = runner


def _worker_sample(s: int) -> pd.DataFrame:
    return _WORKER_RUNNER.run(s)


def run_samples(cfg, paramset: ParamSet, samples: Iterable[int], evaluator: Evaluator | None = None,
                workers: int = 1, progress=None) -> pd.DataFrame:
    """One row per (sample, strategy) for the PSA samples ``samples`` (see module doc).

    Only the per-sample summaries are kept (``len(strategies)`` rows of
    :data:`SAMPLE_COLUMNS` plus the parameter values per sample): each sample's patient,
    line and event tables are dropped as soon as they are evaluated, so memory does not grow
    with the number of samples beyond these rows. ``workers > 1`` runs samples in worker
    processes (each sample is one task, the runner is sent once per worker); the rows are
    identical to a sequential run because sample ``s`` depends only on (seed, ``s``).
    ``progress`` is an optional callable receiving the number of samples just finished.
    """
    samples = [int(s) for s in samples]
    runner = SampleRunner(cfg, paramset, evaluator)
    out = []
    if workers <= 1 or len(samples) <= 1:
        for s in samples:
            out.append(runner.run(s))
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(samples)), initializer=_init_worker,
                                 initargs=(runner,)) as ex:
            for rows in ex.map(_worker_sample, samples):
                out.append(rows)
                if progress:
                    progress(1)
    if not out:
        return pd.DataFrame(columns=SAMPLE_COLUMNS + paramset.paths)
    df = pd.concat(out, ignore_index=True)
    return df[SAMPLE_COLUMNS + paramset.paths]


# --------------------------------------------------------------------------- analysis
def matrices(samples: pd.DataFrame, strategies: list[str], col: str) -> np.ndarray:
    """``[S x D]`` array of ``col`` (rows ordered by sample, columns by ``strategies``)."""
    w = samples.pivot(index="sample", columns="strategy", values=col)
    missing = [s for s in strategies if s not in w.columns]
    if missing:
        raise UserError(f"psa samples lack strategies {missing}")
    return w[strategies].sort_index().to_numpy(float)


def param_matrix(samples: pd.DataFrame, paths: list[str]) -> np.ndarray:
    return samples.drop_duplicates("sample").sort_values("sample")[paths].to_numpy(float)


def summary_table(samples: pd.DataFrame, strategies: list[str], labels: Mapping | None = None) -> pd.DataFrame:
    """Per strategy: mean cost / QALY / LY over samples with 2.5 / 97.5 % percentiles."""
    rows = []
    for s in strategies:
        d = samples[samples["strategy"] == s]
        row = {"strategy": s, "label": (labels or {}).get(s, s), "n_samples": len(d)}
        for c in ("cost", "qaly", "ly", "cost_undiscounted", "qaly_undiscounted", "ly_undiscounted"):
            x = d[c].to_numpy(float)
            row[c] = x.mean()
            row[f"{c}_lo"], row[f"{c}_hi"] = np.quantile(x, [0.025, 0.975])
        rows.append(row)
    return pd.DataFrame(rows)


def incremental_table(samples: pd.DataFrame, strategies: list[str], comparator: str,
                      wtps: Iterable[float]) -> pd.DataFrame:
    """Each strategy vs ``comparator``: mean incremental cost / QALY (95 % percentile
    intervals), ICER of the means, and at each WTP the mean incremental NMB, its interval
    and the probability that the strategy's NMB exceeds the comparator's."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    j = strategies.index(comparator)
    rows = []
    for i, s in enumerate(strategies):
        if i == j:
            continue
        dc, dq = C[:, i] - C[:, j], Q[:, i] - Q[:, j]
        mc, mq = dc.mean(), dq.mean()
        if mq > 0:
            icer = mc / mq
        elif mq < 0 and mc > 0:
            icer = math.nan  # dominated
        else:
            icer = mc / mq if mq != 0 else math.nan
        status = ("dominates" if (mc <= 0 and mq >= 0) else "dominated" if (mc >= 0 and mq <= 0) else
                  "more costly, more effective" if mq > 0 else "less costly, less effective")
        row = {"strategy": s, "comparator": comparator, "delta_cost": mc,
               "delta_cost_lo": np.quantile(dc, 0.025), "delta_cost_hi": np.quantile(dc, 0.975),
               "delta_qaly": mq, "delta_qaly_lo": np.quantile(dq, 0.025), "delta_qaly_hi": np.quantile(dq, 0.975),
               "icer": icer, "status": status}
        for w in wtps:
            inb = w * dq - dc
            se = inb.std(ddof=1) / math.sqrt(len(inb))
            row[f"inmb_{w:.0f}"] = inb.mean()
            row[f"inmb_{w:.0f}_se"] = se
            row[f"inmb_{w:.0f}_lo"], row[f"inmb_{w:.0f}_hi"] = np.quantile(inb, [0.025, 0.975])
            row[f"p_ce_{w:.0f}"] = float(np.mean(inb > 0))
        rows.append(row)
    return pd.DataFrame(rows)


def ce_plane(samples: pd.DataFrame, strategies: list[str], comparator: str) -> pd.DataFrame:
    """Long table ``sample, strategy, delta_cost, delta_qaly`` vs the comparator."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    j = strategies.index(comparator)
    ids = np.sort(samples["sample"].unique())
    parts = [pd.DataFrame({"sample": ids, "strategy": s, "delta_cost": C[:, i] - C[:, j],
                           "delta_qaly": Q[:, i] - Q[:, j]}) for i, s in enumerate(strategies) if i != j]
    return pd.concat(parts, ignore_index=True)


def evppi_table(samples: pd.DataFrame, strategies: list[str], groups: Mapping[str, list[str]],
                wtps: Iterable[float], method: str = "auto", n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """EVPPI per parameter group and WTP (per person; NB units), with EVPI alongside."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    rows = []
    for w in wtps:
        nb = w * Q - C
        e = voi.evpi_se(nb)
        rows.append({"wtp": w, "group": "ALL (EVPI)", "parameters": "", "n_parameters": np.nan,
                     "evppi": e.value, "se": e.se, "lo": e.lo, "hi": e.hi, "method": "definition"})
        for g, paths in groups.items():
            x = param_matrix(samples, paths)
            r = voi.evppi(nb, x, method=method, n_boot=n_boot, seed=seed)
            rows.append({"wtp": w, "group": g, "parameters": ";".join(paths), "n_parameters": len(paths),
                         "evppi": r.value, "se": r.se, "lo": r.lo, "hi": r.hi, "method": r.method})
    return pd.DataFrame(rows)


def analyse(samples: pd.DataFrame, strategies: list[str], st: PsaSettings, groups: Mapping[str, list[str]],
            labels: Mapping | None = None, seed: int = 0) -> dict[str, pd.DataFrame]:
    """All PSA result tables from the per-(sample, strategy) rows (schemas: ``docs/outputs_psa.md``).

    ``psa_summary``, ``psa_incremental`` (vs ``st.comparator``), ``ce_plane``, ``ceac`` and
    ``ceaf`` (on the WTP grid plus the report WTPs), ``evppi`` (EVPI and EVPPI per group at the
    report WTPs) and ``convergence`` (running mean INB of ``st.intervention`` vs
    ``st.comparator`` at ``st.primary_wtp``).
    """
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    i, j = strategies.index(st.intervention), strategies.index(st.comparator)
    inb = st.primary_wtp * (Q[:, i] - Q[:, j]) - (C[:, i] - C[:, j])
    conv = voi.convergence(inb)
    conv.insert(0, "wtp", st.primary_wtp)
    conv.insert(0, "comparison", f"{st.intervention} vs {st.comparator}")
    grid = np.union1d(st.wtp_grid, np.asarray(st.report_wtp + (st.primary_wtp,), float))
    return {
        "psa_summary": summary_table(samples, strategies, labels),
        "psa_incremental": incremental_table(samples, strategies, st.comparator, st.report_wtp),
        "ce_plane": ce_plane(samples, strategies, st.comparator),
        "ceac": voi.ceac(C, Q, grid, strategies),
        "ceaf": voi.ce_frontier(C, Q, grid, strategies),
        "evppi": evppi_table(samples, strategies, groups, st.report_wtp, st.evppi_method, st.n_boot, seed),
        "convergence": conv,
    }


# --------------------------------------------------------------------------- the run
def prepare(cfg):
    """(DictConfig with economics, plain config, base model, settings, parameters, groups) of a PSA;
    every input is validated here, before any simulation."""
    from sim.config import build_model, to_container

    cfg = with_economics(cfg)
    plain = to_container(cfg)
    model = build_model(cfg)  # validates the base case
    spec = economics_spec(plain)
    st = psa_settings(plain, spec)
    paramset = build_paramset(plain, (plain["psa"] or {}).get("parameters") or {}, model.seed)
    groups = expand_groups(st.groups, paramset.paths)
    return cfg, plain, model, st, paramset, groups


def run_psa(cfg, job: int | None = None, evaluator: Evaluator | None = None) -> tuple[Path, dict]:
    """The PSA experiment: sample, simulate, analyse, write the run folder (atomic) with
    ``psa_samples.parquet``, result tables (CSV + Parquet), figures, ``report.html`` /
    ``report.md`` and ``manifest.json``. Returns (folder, tables)."""
    from sim.runio import atomic_run_dir, progress_bar, run_folder_name, write_manifest

    t0 = time.perf_counter()
    cfg, plain, model, st, paramset, groups = prepare(cfg)
    strategies = list(model.strategies)
    labels = {s: v.label for s, v in model.strategies.items()}
    t1 = time.perf_counter()
    samples_ids = range(st.first_sample, st.first_sample + st.samples)
    with progress_bar(st.progress, st.samples, "PSA samples") as bar:
        bar.unit = "sample"
        samples = run_samples(cfg, paramset, samples_ids, evaluator, st.workers, bar.update)
    t2 = time.perf_counter()
    tables = analyse(samples, strategies, st, groups, labels, model.seed)
    tables["psa_parameters"] = paramset.table().assign(
        group=lambda d: d["path"].map({p: g for g, ps in groups.items() for p in ps}).fillna(""))
    t3 = time.perf_counter()
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        samples.to_parquet(tmp / "psa_samples.parquet", index=False)
        samples.to_csv(tmp / "psa_samples.csv", index=False, float_format="%.10g")
        write_tables(tmp, tables)
        figs = {}
        if (plain.get("output") or {}).get("figures", True):
            from sim.report.html import psa_figures
            figs = psa_figures(tables, tmp, labels, st)
        from sim.report.html import write_report
        write_report(tmp, "psa", plain, tables, figs, labels)
        timings = {"build": t1 - t0, "simulate": t2 - t1, "analyse": t3 - t2, "write": time.perf_counter() - t3,
                   "total": time.perf_counter() - t0}
        extra = {"kind": "psa", "n_samples": st.samples, "first_sample": st.first_sample,
                 "n_patients": len(model.cohort), "strategies": strategies, "workers": st.workers,
                 "intervention": st.intervention, "comparator": st.comparator, "primary_wtp": st.primary_wtp,
                 "evppi_groups": groups, "samples_per_second": st.samples / max(t2 - t1, 1e-9), "report": True}
        write_manifest(tmp, plain, model.seed, timings, extra)
    return final, tables


def write_tables(folder: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """Every table as ``<name>.csv`` and ``<name>.parquet``."""
    for name, t in tables.items():
        t.to_csv(Path(folder) / f"{name}.csv", index=False, float_format="%.10g")
        t.to_parquet(Path(folder) / f"{name}.parquet", index=False)


def format_psa(tables: Mapping[str, pd.DataFrame], wtps: Iterable[float] | None = None) -> str:
    """Console summary: incremental table, CEAC and CEAF at the report WTPs (those of the
    ``evppi`` table unless ``wtps`` is given), EVPI / EVPPI per person."""
    ev = tables["evppi"]
    wtps = sorted(set(ev["wtp"])) if wtps is None else list(wtps)
    inc = tables["psa_incremental"]
    cols = ["strategy", "comparator", "delta_cost", "delta_qaly", "icer", "status"] + \
        [c for c in inc.columns if c.startswith(("inmb_", "p_ce_")) and not c.endswith(("_lo", "_hi", "_se"))]
    out = ["Incremental results vs the comparator (discounted; means over PSA samples):\n"
           + inc[cols].to_string(index=False, float_format=lambda v: f"{v:,.4g}")]
    ce = tables["ceac"]
    ce = ce[ce["wtp"].isin(wtps)].pivot(index="wtp", columns="strategy", values="probability")
    out.append("\nCEAC (probability that each strategy has the highest net monetary benefit):\n"
               + ce.to_string(float_format=lambda v: f"{v:.3f}"))
    f = tables["ceaf"]
    f = f[f["wtp"].isin(wtps)][["wtp", "optimal_strategy", "expected_nmb", "probability_cost_effective"]]
    out.append("\nCEAF (strategy with the highest expected NMB):\n"
               + f.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    out.append("\nEVPI / EVPPI per person (NMB units; SE: Monte Carlo / bootstrap):\n" + ev[
        ["wtp", "group", "evppi", "se", "method"]].to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    return "\n".join(out)


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=psa`` (``experiments/run.py``): run folder and printed text."""
    folder, tables = run_psa(cfg, job)
    return folder, format_psa(tables)
