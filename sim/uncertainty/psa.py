"""Probabilistic sensitivity analysis (PSA): parameter uncertainty propagated through the
simulation, one PSA sample at a time (experiment kind ``psa``, ``pnetsim experiment=psa``).

For sample ``s``: draw the parameter overrides (:mod:`sim.uncertainty.params`, named streams
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
2014;34:311-326; :mod:`sim.uncertainty.voi`), convergence of the mean incremental net benefit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from sim.config import build_model, to_container
from sim.uncertainty import voi  # noqa: F401  (re-exported for callers of sim.uncertainty.psa)
from sim.economics.evaluate import evaluate_arrays
from sim.economics.inputs import inputs_table
from sim.uncertainty.mc_variance import mc_variance_table
from sim.uncertainty.params import ParamSet, build_paramset, expand_groups
from sim.uncertainty.psa_analysis import (ALL_GROUP, EVPI_GROUP, analyse, ce_plane, evppi_table,  # noqa: F401
                                        format_psa, full_incremental, incremental_table, matrices, param_matrix,
                                        population_factor, summary_table)
from sim.economics.records import RunArrays
from sim.economics.spec import CONFIG_DIR, EconomicsSpec
from sim.report.voi_figures import psa_voi_figures
from sim.errors import UserError, check, is_number, mapping, number_at_least
from sim.run.executors import simulate
from sim.outcomes import summarise
from sim.overrides import Overrider
from sim.pipeline import economics_tables, simulate_model
from sim.report.figures import km_figures
from sim.report.html import psa_figures, write_report
from sim.runio import Steps, atomic_run_dir, progress_bar, run_folder_name, write_manifest

#: discounted cost categories kept per sample (``cost_<category>``, :data:`sim.economics.costs.COST_CATEGORIES`)
CATEGORY_COLUMNS = ["cost_drug", "cost_administration", "cost_monitoring", "cost_ae", "cost_bsc", "cost_end_of_life"]
SAMPLE_COLUMNS = ["sample", "strategy", "cost", "qaly", "ly", "cost_undiscounted", "qaly_undiscounted",
                  "ly_undiscounted"] + CATEGORY_COLUMNS
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
    base_case : bool
        Also simulate the deterministic base case (every parameter at its base value, the
        streams of sample 0): its costs, QALYs, incremental analysis and Kaplan-Meier figures
        go into the report next to the probabilistic results.
    evppi_all : bool
        Add the EVPPI of all parameters jointly (``psa.evppi.all_parameters``).
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
    base_case: bool = True
    evppi_all: bool = True
    noise_replicates: int = 20
    incidence: float = 1.0
    horizon_years: float = 1.0
    population_discount: float = 0.0
    patients_rule: str = "fixed"
    target_share: float = 0.05
    pilot_samples: int = 100
    max_patients: int = 20000

    @property
    def population(self) -> float:
        """Discounted number of people who benefit from the decision (:func:`population_factor`)."""
        return population_factor(self.incidence, self.horizon_years, self.population_discount)


def population_settings(plain: Mapping, spec=None) -> tuple[float, float, float]:
    """(incidence a year, decision horizon in years, discount rate) of ``psa.population``
    (labelled assumptions ``voi_incidence``, ``voi_horizon_years``; the discount rate defaults to
    the economics discount rate of costs)."""
    pop = mapping("psa.population", (plain.get("psa") or {}).get("population"), allow_none=True)
    inc = number_at_least("psa.population.incidence_per_year", pop.get("incidence_per_year", 1.0), 0.0, True)
    hor = number_at_least("psa.population.horizon_years", pop.get("horizon_years", 1.0), 0.0, True)
    disc = pop.get("discount")
    if disc is None:
        disc = spec.discount_costs if spec is not None else 0.0
    disc = number_at_least("psa.population.discount", disc)
    check(disc < 1, "psa.population.discount", disc, "must be an annual rate in [0, 1)")
    return inc, hor, float(disc)


def _int(key, v, lo):
    check(isinstance(v, int) and not isinstance(v, bool) and v >= lo, key, v, f"must be a whole number >= {lo}")
    return v


def _bool(key, v):
    check(isinstance(v, bool), key, v, "must be true or false")
    return v


def wtp_grid(key: str, g) -> np.ndarray:
    """Sorted WTP grid (per QALY) from a list or ``{start, stop, step}`` (stop included);
    an empty or negative grid is a :class:`UserError` naming ``key``."""
    if isinstance(g, Mapping):
        for f in ("start", "stop", "step"):
            check(is_number(g.get(f)), f"{key}.{f}", g.get(f), "must be a number")
        check(g["step"] > 0, f"{key}.step", g["step"], "must be > 0")
        check(g["stop"] >= g["start"] >= 0, key, dict(g), "must have 0 <= start <= stop")
        n = int(math.floor((g["stop"] - g["start"]) / g["step"] + 1e-9)) + 1
        return float(g["start"]) + float(g["step"]) * np.arange(n)
    check(isinstance(g, (list, tuple)) and len(g) > 0, key, g, "must be a non-empty list of WTP values")
    check(all(is_number(w) and math.isfinite(w) and w >= 0 for w in g),
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
        check(is_number(w) and w >= 0, "psa.report_wtp", rw, "must be numbers >= 0")
    prim = p.get("primary_wtp")
    prim = max(rw) if prim is None else prim
    check(is_number(prim) and prim >= 0, "psa.primary_wtp", prim, "must be a number >= 0")
    ev = mapping("psa.evppi", p.get("evppi"), allow_none=True)
    method = ev.get("method", "auto")
    check(isinstance(method, str) and method in ("auto", "gam", "gp"), "psa.evppi.method", method,
          "must be one of ['auto', 'gam', 'gp']")
    workers = p.get("workers", 1)
    if workers == "auto":
        workers = max(1, min(os.cpu_count() or 1, 8))
    progress = (plain.get("output") or {}).get("progress", "auto")
    inc, hor, disc = population_settings(plain, spec)
    pat = mapping("psa.patients", p.get("patients"), allow_none=True)
    rule = pat.get("rule", "fixed")
    check(rule in ("fixed", "anova"), "psa.patients.rule", rule, "must be fixed or anova")
    target = number_at_least("psa.patients.target_share", pat.get("target_share", 0.05), 0.0, True)
    check(target < 1, "psa.patients.target_share", target, "must be in (0, 1)")
    check(p.get("sampling", "random") in ("random", "sobol"), "psa.sampling", p.get("sampling"),
          "must be random or sobol")
    return PsaSettings(
        samples=_int("psa.samples", p.get("samples", 100), 2),
        first_sample=_int("psa.first_sample", p.get("first_sample", 0), 0),
        intervention=inter, comparator=comp, wtp_grid=grid, report_wtp=tuple(float(w) for w in rw),
        primary_wtp=float(prim), groups=dict(mapping("psa.evppi.groups", ev.get("groups"), allow_none=True)),
        evppi_method=method,
        n_boot=_int("psa.evppi.n_boot", ev.get("n_boot", 500), 0),
        workers=_int("psa.workers", workers, 1),
        progress=progress,
        base_case=_bool("psa.base_case", p.get("base_case", True)),
        evppi_all=_bool("psa.evppi.all_parameters", ev.get("all_parameters", True)),
        noise_replicates=_int("psa.evppi.noise_replicates", ev.get("noise_replicates", 20), 0),
        incidence=inc, horizon_years=hor, population_discount=disc,
        patients_rule=rule, target_share=target,
        pilot_samples=_int("psa.patients.pilot_samples", pat.get("pilot_samples", 100), 2),
        max_patients=_int("psa.patients.max_patients", pat.get("max_patients", 20000), 2),
    )


def with_economics(cfg):
    """The DictConfig with an ``economics`` group (``configs/economics/uk_nhs.yaml`` merged in
    when the composed config has none)."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    if "economics" in cfg and cfg.economics is not None:
        return cfg
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
    return EconomicsSpec.from_config(plain["economics"])


#: per-sample summary column -> column of the per-patient table of :func:`sim.economics.evaluate.evaluate`
SUMMARY_SOURCES = {"cost": "cost_total_disc", "qaly": "qaly_disc", "ly": "ly_disc",
                   "cost_undiscounted": "cost_total", "qaly_undiscounted": "qaly", "ly_undiscounted": "ly",
                   **{c: f"{c}_disc" for c in CATEGORY_COLUMNS}}


def default_evaluator(ra, spec, model) -> pd.DataFrame:
    """Per-strategy means of discounted and undiscounted costs, QALYs and LYs of one sample
    (:data:`SUMMARY_SOURCES`): :func:`sim.economics.evaluate.evaluate_arrays` on the sample's
    :class:`~sim.economics.records.RunArrays` (scan costs timed on the model's imaging interval),
    averaged over each strategy's patients, and their within-sample spread
    (:func:`within_sample_moments`)."""
    per = evaluate_arrays(ra, spec, model.rules.imaging_interval_months)
    n = np.bincount(ra.strategy, minlength=len(ra.strategy_names))
    out = {"strategy": list(ra.strategy_names)}
    for k, c in SUMMARY_SOURCES.items():
        out[k] = np.bincount(ra.strategy, per[c], minlength=len(n)) / n
    out.update(within_sample_moments(ra.strategy, ra.patient_id, per["cost_total_disc"], per["qaly_disc"],
                                     list(ra.strategy_names), tuple(float(w) for w in spec.wtp)))
    return pd.DataFrame(out)


def within_sample_moments(strategy: np.ndarray, patient_id: np.ndarray, cost: np.ndarray, qaly: np.ndarray,
                          names: list[str], wtps: tuple[float, ...] = ()) -> dict[str, np.ndarray]:
    """Spread over the patients of one sample, per strategy (one value per strategy in ``names``).

    ``n_patients``; ``cost_sd``, ``qaly_sd`` (discounted; ``ddof = 1``); ``nmb_sd_<w>``, the SD of
    the per-patient net benefit ``w q - c`` at each ``w`` of ``wtps``; and, because every strategy
    simulates the same patients with common random numbers, the covariances over patients with
    every strategy ``e``: ``cov_cost__<e> = cov(c_d, c_e)``, ``cov_qaly__<e> = cov(q_d, q_e)``,
    ``cov_cost_qaly__<e> = cov(c_d, q_e)``. The within-sample variance of the per-patient
    incremental net benefit of ``d`` vs ``e`` at any WTP ``w`` follows exactly:
    ``w^2 (Vq_dd + Vq_ee - 2 Vq_de) + (Vc_dd + Vc_ee - 2 Vc_de) - 2 w (Vcq_dd + Vcq_ee - Vcq_de - Vcq_ed)``
    (:func:`sim.uncertainty.mc_variance.inb_within_variance`). When the strategies do not hold the
    same patients the cross-strategy covariances are NaN."""
    D = len(names)
    counts = np.bincount(strategy, minlength=D)
    out: dict[str, np.ndarray] = {"n_patients": counts.astype(np.int64)}
    order = np.lexsort((patient_id, strategy))
    sd = lambda x: np.array([x[strategy == d].std(ddof=1) if counts[d] > 1 else np.nan for d in range(D)])  # noqa: E731
    out["cost_sd"], out["qaly_sd"] = sd(cost), sd(qaly)
    for w in wtps:
        out[f"nmb_sd_{w:.0f}"] = sd(w * qaly - cost)
    paired = counts.min() == counts.max() and counts[0] > 1
    if paired:
        pid = patient_id[order].reshape(D, -1)
        paired = bool(np.all(pid == pid[:1]))
    if paired:
        C, Q = cost[order].reshape(D, -1), qaly[order].reshape(D, -1)
        Cc, Qc = C - C.mean(axis=1, keepdims=True), Q - Q.mean(axis=1, keepdims=True)
        m = C.shape[1] - 1
        Vc, Vq, Vcq = Cc @ Cc.T / m, Qc @ Qc.T / m, Cc @ Qc.T / m
    else:
        Vc = Vq = Vcq = np.full((D, D), np.nan)
    for e, name in enumerate(names):
        out[f"cov_cost__{name}"] = Vc[:, e]
        out[f"cov_qaly__{name}"] = Vq[:, e]
        out[f"cov_cost_qaly__{name}"] = Vcq[:, e]
    return out


# --------------------------------------------------------------------------- one sample
def simulate_sample(model, s: int):
    """The event records of ``model`` with the random streams of PSA sample ``s``, as
    :class:`~sim.economics.records.RunArrays` (no frames are built on the vectorised path).

    ``simulate(..., sample=s)`` keys every stream by (master seed, name, ``s``): every
    strategy meets the same streams within the sample (common random numbers), and sample
    ``s`` is the same whatever else is run. Sample 0 uses the base-case streams. The model's
    executor (``engine``, ``chunk_size``) runs it; both executors give the same pathways."""
    rec = simulate(model.cohort, model.strategies, model.therapies, model.rules, model.lifetable, model.seed,
                   engine=model.engine, chunk_size=model.chunk_size, sample=s, centre=model.centre)
    return RunArrays.from_records(rec)


class SampleRunner:
    """Runs PSA samples of one configuration (picklable: used in worker processes).

    The config is resolved once (:class:`sim.overrides.Overrider`) and the base-case cohort is
    built once; a sample sets its parameter values in a copy of the resolved config (every node
    that interpolates a parameter follows it) and rebuilds therapies, rules and economics.
    """

    def __init__(self, cfg, paramset: ParamSet, evaluator: Evaluator | None = None):
        self.paramset = paramset
        self.evaluator = evaluator or default_evaluator
        self._overrider = Overrider(cfg, paramset.paths)
        self._cohort = build_model(self._overrider.base).cohort
        self._done = 0

    def run(self, s: int) -> pd.DataFrame:
        """Rows (one per strategy) of sample ``s``: means and parameter values."""
        ov = self.paramset.draw(s)
        plain = self._overrider.apply(ov)
        model = build_model(plain, cohort=self._cohort)
        spec = economics_spec(plain)
        m = self.evaluator(simulate_sample(model, s), spec, model)
        m = m.set_index("strategy").reindex(list(model.strategies)).reset_index()
        m.insert(0, "sample", s)
        for p, v in ov.items():
            m[p] = v
        self._done += 1
        if self._done % TRIM_EVERY == 0:
            _trim_heap()
        return m


#: samples between two heap trims of a runner (a trim costs about a sample's time in page faults)
TRIM_EVERY = 16


def _trim_heap() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; a no-op elsewhere). A
    sample allocates and frees tens of MB of arrays; without trims, glibc's heap grows slowly with
    fragmentation over thousands of samples (bench/psa_memory.py)."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim  # noqa: B018 -- glibc only
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None


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
    extra = [c for c in df.columns if c not in SAMPLE_COLUMNS and c not in paramset.paths]
    return df[SAMPLE_COLUMNS + extra + paramset.paths]


# --------------------------------------------------------------------------- the run
def prepare(cfg):
    """(DictConfig with economics, plain config, base model, settings, parameters, groups) of a PSA;
    every input is validated here, before any simulation."""
    cfg = with_economics(cfg)
    plain = to_container(cfg)
    model = build_model(cfg)  # validates the base case
    spec = economics_spec(plain)
    st = psa_settings(plain, spec)
    for strategy in model.strategies.values():
        for therapy in strategy.therapy_names:
            spec.drug_for(therapy)              # every therapy given must have a drug entry (or null)
    paramset = build_paramset(plain, (plain["psa"] or {}).get("parameters") or {}, model.seed,
                              sampling=(plain["psa"] or {}).get("sampling", "random"))
    groups = expand_groups(st.groups, paramset.paths)
    return cfg, plain, model, st, paramset, groups


def base_case_tables(model, spec, st: PsaSettings, labels: Mapping) -> tuple[dict[str, pd.DataFrame], tuple]:
    """Deterministic base case of a PSA: every parameter at its base value, simulated with the
    streams of sample 0 (= a comparison run with the same seed and cohort). Returns the tables
    ``base_summary`` (clinical outcomes), ``base_economics_summary``, ``base_incremental`` and
    ``base_economics_differences`` (columns of ``summary``, ``economics_summary``, ``incremental``
    and ``economics_differences`` in ``docs/outputs.md``) and the (patients, lines) frames for
    the Kaplan-Meier figures."""
    patients, lines, events = simulate_model(model, progress=False)
    econ = economics_tables(patients, lines, events, spec, model, labels)
    tables = {"base_summary": summarise(patients, lines, labels),
              "base_economics_summary": econ["economics_summary"],
              "base_incremental": econ["incremental"],
              "base_economics_differences": econ["economics_differences"]}
    return tables, (patients, lines)


def run_psa(cfg, job: int | None = None, evaluator: Evaluator | None = None) -> tuple[Path, dict]:
    """The PSA experiment: sample, simulate, analyse, write the run folder (atomic) with
    ``psa_samples.parquet``, result tables (CSV + Parquet), figures, ``report.html`` /
    ``report.md`` and ``manifest.json``. Returns (folder, tables)."""
    t0 = time.perf_counter()
    cfg, plain, model, st, paramset, groups = prepare(cfg)
    pilot = None
    if st.patients_rule == "anova":
        cfg, pilot = choose_patients(cfg, plain, st, paramset, list(model.strategies), evaluator)
        cfg, plain, model, st, paramset, groups = prepare(cfg)
    strategies = list(model.strategies)
    labels = {s: v.label for s, v in model.strategies.items()}
    t1 = time.perf_counter()
    samples_ids = range(st.first_sample, st.first_sample + st.samples)
    with progress_bar(st.progress, st.samples, "PSA samples") as bar:
        bar.unit = "sample"
        samples = run_samples(cfg, paramset, samples_ids, evaluator, st.workers, bar.update)
    t2 = time.perf_counter()
    steps = Steps(st.progress, ["base case", "analysis and VOI", "writing tables", "figures", "report"])
    steps.start("base case")
    base, frames = ({}, None)
    if st.base_case:
        base, frames = base_case_tables(model, economics_spec(plain), st, labels)
    t2b = time.perf_counter()
    steps.start("analysis and VOI")
    tables = analyse(samples, strategies, st, groups, labels, model.seed,
                     paramset.paths if st.evppi_all else None)
    tables["psa_parameters"] = paramset.table().assign(
        group=lambda d: d["path"].map({p: g for g, ps in groups.items() for p in ps}).fillna(""))
    tables.update(base)
    spec = economics_spec(plain)
    tables["economics_inputs"] = inputs_table(spec.config)
    tables["psa_summary"].insert(2, "currency", spec.currency)
    tables["psa_summary"].insert(3, "price_year", spec.price_year)
    t3 = time.perf_counter()
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        steps.start("writing tables")
        samples.to_parquet(tmp / "psa_samples.parquet", index=False)
        samples.to_csv(tmp / "psa_samples.csv", index=False, float_format="%.10g")
        write_tables(tmp, tables)
        steps.start("figures")
        figs = {}
        if (plain.get("output") or {}).get("figures", True):
            figs = psa_figures(tables, tmp, labels, st, currency=spec.currency)
            figs.update(psa_voi_figures(tables, samples, strategies, groups, st, tmp, spec.currency, model.seed))
            if frames is not None:
                figs.update({Path(f).stem: Path(f) for f in km_figures(*frames, tmp, labels)})
        steps.start("report")
        write_report(tmp, "psa", plain, tables, figs, labels)
        timings = {"build": t1 - t0, "simulate": t2 - t1, "base_case": t2b - t2, "analyse": t3 - t2b,
                   "write": time.perf_counter() - t3, "total": time.perf_counter() - t0}
        extra = {"kind": "psa", "n_samples": st.samples, "first_sample": st.first_sample,
                 "n_patients": len(model.cohort), "strategies": strategies, "workers": st.workers,
                 "intervention": st.intervention, "comparator": st.comparator, "primary_wtp": st.primary_wtp,
                 "evppi_groups": groups, "samples_per_second": st.samples / max(t2 - t1, 1e-9), "report": True,
                 "patients_rule": st.patients_rule, "patients_pilot": pilot}
        write_manifest(tmp, plain, model.seed, timings, extra)
    steps.close()
    return final, tables


def choose_patients(cfg, plain: Mapping, st: PsaSettings, paramset: ParamSet, strategies: list[str],
                    evaluator: Evaluator | None = None) -> tuple[object, dict]:
    """Patients per PSA sample by the ANOVA method (``psa.patients.rule: anova``).

    A pilot of ``psa.patients.pilot_samples`` samples at ``cohort.n`` patients estimates the
    within- and between-sample variance of the INB of ``psa.intervention`` vs ``psa.comparator``
    at ``psa.primary_wtp`` (:func:`sim.uncertainty.mc_variance.anova`); the run then uses
    ``n = min(max(cohort.n, n_target), psa.patients.max_patients)`` patients, ``n_target`` the
    size at which the Monte Carlo share of the variance is below ``psa.patients.target_share``
    with 90 % confidence (``n_for_target_upper`` of :func:`sim.uncertainty.mc_variance.anova`:
    the pilot's between-sample variance at its lower confidence bound). Returns
    the config with ``cohort.n`` set and the pilot's figures (recorded in the manifest)."""
    check(not (plain.get("cohort") or {}).get("source"), "psa.patients.rule", "anova",
          "needs a generated cohort (cohort.source is a fixed file)")
    n0 = int(plain["cohort"]["n"])
    ids = range(st.first_sample, st.first_sample + min(st.pilot_samples, st.samples))
    rows = run_samples(cfg, paramset, ids, evaluator, st.workers)
    r = mc_variance_table(rows, strategies, st.comparator, [st.primary_wtp], st.target_share)
    r = r[r["strategy"] == st.intervention].iloc[0]
    need = r["n_for_target_upper"]
    n = int(min(max(n0, need if math.isfinite(need) else st.max_patients), st.max_patients))
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    OmegaConf.update(cfg, "cohort.n", n, merge=False)
    return cfg, {"pilot_samples": len(ids), "pilot_patients": n0, "pilot_mc_share": float(r["mc_share"]),
                 "n_for_target_point": float(r["n_for_target"]), "n_for_target": float(need),
                 "target_share": st.target_share, "patients": n,
                 "capped": bool(math.isfinite(need) and need > st.max_patients) or not math.isfinite(need)}


def write_tables(folder: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """Every table as ``<name>.csv`` and ``<name>.parquet``."""
    for name, t in tables.items():
        t.to_csv(Path(folder) / f"{name}.csv", index=False, float_format="%.10g")
        t.to_parquet(Path(folder) / f"{name}.parquet", index=False)


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=psa`` (``experiments/run.py``): run folder and printed text."""
    folder, tables = run_psa(cfg, job)
    return folder, format_psa(tables)
