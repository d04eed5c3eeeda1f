"""Expected value of sample information (EVSI) and expected net benefit of sampling (ENBS) of
the single-arm sunitinib rechallenge trial of seed 000 (``pnetsim experiment=evsi``).

The trial (:mod:`sim.emulation`): ``n`` patients whose disease progressed on sunitinib are
given sunitinib again; primary endpoint the share free of a progression event (detected
progression or death) at 6 months, ``p6``. Its data are ``X ~ Binomial(n, p6)``.

For PSA sample ``s`` (parameters ``theta_s``; :mod:`sim.uncertainty.psa`) the model gives the net
benefit ``NB[s, d]`` of every compared strategy and -- from the same simulation, the patients
of ``experiment.trial.strategy`` who reach ``experiment.trial.therapy`` -- the trial endpoint
``p6_s`` (:func:`trial_endpoint`, the definition of :func:`sim.emulation.landmark_events`).

``EVSI(n) = E_X[max_d E(NB_d | X)] - max_d E(NB_d)`` per person, by two methods:

* **regression** (Strong, Oakley, Brennan & Breeze, Med Decis Making 2015;35:570-583): simulate
  one data set per sample, ``X_s = F^-1_Binom(u_s; n, p6_s)`` (``u_s`` from the named stream
  ``evsi/trial`` at sample ``s``: the same uniform for every ``n``, so the curve over ``n`` is
  smooth), regress each incremental net benefit on the summary statistic ``T_s = X_s / n``
  (P-spline, :func:`sim.uncertainty.voi.gam_regression`), and apply the EVPPI formula to the
  fitted values;
* **importance** (importance sampling, Menzies, Med Decis Making 2016;36:308-320): the posterior
  mean of NB given data ``x`` is the likelihood-weighted mean of the PSA samples,
  ``E(NB_d | x) = sum_s L_s(x) NB[s, d] / sum_s L_s(x)``, ``L_s(x) = Binom(x; n, p6_s)``. The data
  space is finite, so the outer expectation is an exact sum over ``x = 0..n`` with the
  predictive probabilities ``P(x) = mean_s L_s(x)``:
  ``EVSI = sum_x P(x) max_d E(NB_d | x) - max_d mean_s NB[s, d]``.

Both have a Monte Carlo error from the finite number of PSA samples: the interval of each and
of their difference (:func:`evsi`) comes from the same bootstrap resamples of the samples
(with posterior draws of the regression's fitted values), so the agreement of the two methods
is judged against the Monte Carlo error of their difference.

Population values multiply by ``P = sum_{t<H} I / (1 + r)^t`` (incidence ``I`` a year, decision
horizon ``H`` years, discount rate ``r``: :func:`sim.uncertainty.psa_analysis.population_factor`),
and ``ENBS(n) = P EVSI(n) - (c_fixed + c_patient n)`` (a single-arm trial: no patient is
allocated to a comparator). The optimal size maximises ENBS over the sizes evaluated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sim.uncertainty import voi
from sim.uncertainty.params import load_assumptions
from sim.uncertainty.psa import default_evaluator, economics_spec, population_settings, prepare, run_samples, write_tables
from sim.uncertainty.psa_analysis import matrices, param_matrix, population_factor
from sim.report.voi_figures import evsi_figure
from sim.errors import UserError, check, mapping, number_at_least
from sim.rng import column
from sim.runio import atomic_run_dir, progress_bar, run_folder_name, write_manifest

Z95 = 1.959963984540054
METHODS = ("regression", "importance")


# --------------------------------------------------------------------------- the trial endpoint
def trial_endpoint(ra, strategy: str, therapy: str, landmark: float, dt: float) -> np.ndarray:
    """Per patient of ``strategy`` who reaches ``therapy`` (first such line): True when a
    progression is detected or the patient dies within ``landmark`` months of the line start.

    The definition of :func:`sim.emulation.landmark_events` on
    :class:`~sim.economics.records.RunArrays`: a line that ended at its detected progression
    counts at the detection time; a progression drawn on the line but not the reason it ended
    (a toxicity stop first) counts at the next scheduled scan after it (``ceil(t / dt) dt``,
    intention to treat); death counts at its time."""
    if strategy not in ra.strategy_names or therapy not in ra.therapy_names:
        return np.zeros(0, bool)
    s_code, t_code = ra.strategy_names.index(strategy), ra.therapy_names.index(therapy)
    rows = np.nonzero((ra.therapy == t_code) & (ra.strategy[ra.line_patient] == s_code))[0]
    rows = rows[np.unique(ra.line_patient[rows], return_index=True)[1]]      # first line per patient
    pt = ra.line_patient[rows]
    start, t = ra.start[rows], ra.pfs_true[rows]
    progressed = np.isfinite(ra.progression_true[rows])
    detected = ra.progression_detected[rows]
    ended_at_detection = np.isfinite(detected) & np.isclose(ra.end[rows], detected)
    detect = np.where(progressed, np.ceil(t / dt - 1e-12) * dt, np.inf)
    detect = np.where(ended_at_detection, detected - start, detect)
    death = np.where(ra.death[pt].astype(bool), ra.os_months[pt] - start, np.inf)
    return np.minimum(detect, death) <= landmark


@dataclass(frozen=True)
class TrialEvaluator:
    """PSA evaluator (:data:`sim.uncertainty.psa.Evaluator`) that adds the trial endpoint of the
    sample to the per-strategy means: ``trial_p6`` (share of the patients reaching the trial's
    therapy without an event at the landmark) and ``trial_m`` (their number), the same in every
    strategy row of the sample."""

    strategy: str
    therapy: str
    landmark: float

    def __call__(self, ra, spec, model) -> pd.DataFrame:
        out = default_evaluator(ra, spec, model)
        ev = trial_endpoint(ra, self.strategy, self.therapy, self.landmark, model.rules.imaging_interval_months)
        out["trial_p6"] = 1.0 - float(ev.mean()) if ev.size else math.nan
        out["trial_m"] = int(ev.size)
        return out


# --------------------------------------------------------------------------- EVSI estimators
def _check_inputs(nb, p) -> tuple[np.ndarray, np.ndarray]:
    a = voi._nb_matrix(nb)
    p = np.asarray(p, float).ravel()
    if p.shape != (a.shape[0],) or not np.all((p >= 0) & (p <= 1)):
        raise UserError(f"evsi endpoint must be one probability per sample ({a.shape[0]}), got "
                        f"shape {p.shape} and range {(np.nanmin(p), np.nanmax(p)) if p.size else ()}")
    return a, p


def simulated_data(p, n: int, u) -> np.ndarray:
    """Trial data ``X_s = F^-1_Binom(u_s; n, p_s)`` (number free of an event among ``n``)."""
    return stats.binom.ppf(np.asarray(u, float), n, np.asarray(p, float)).astype(float)


def likelihoods(p: np.ndarray, n: int) -> np.ndarray:
    """``L[s, x] = Binom(x; n, p_s)`` for every sample and every data value ``x = 0..n``."""
    return stats.binom.pmf(np.arange(n + 1)[None, :], n, np.asarray(p, float)[:, None])


def importance_value(nb: np.ndarray, p: np.ndarray, n: int, L: np.ndarray | None = None) -> float:
    """EVSI by likelihood weighting of the PSA samples, summed exactly over the data space
    ``x = 0..n`` (see the module docstring); ``L`` the :func:`likelihoods` of the samples
    (computed when not given)."""
    L = likelihoods(p, n) if L is None else L
    tot = L.sum(axis=0)
    ok = tot > 0
    post = (L[:, ok].T @ nb) / tot[ok, None]                  # E[NB | x], (n+1) x D
    px = tot[ok] / len(nb)
    return max(float(px @ post.max(axis=1) - nb.mean(axis=0).max()), 0.0)   # >= 0 (Jensen); clip rounding


def toy_evsi_exact(a: float, b: float, n: int, k: float, p_star: float) -> float:
    """Closed form of the EVSI of a binomial trial of ``n`` for ``p ~ Beta(a, b)`` and linear
    incremental net benefit ``INB = k (p - p_star)`` (two strategies):
    ``sum_x BetaBinom(x; n, a, b) max(0, k (E[p | x] - p_star)) - max(0, k (a / (a + b) - p_star))``
    with the conjugate posterior mean ``E[p | x] = (a + x) / (a + b + n)``."""
    x = np.arange(n + 1)
    post = (a + x) / (a + b + n)
    return float(stats.betabinom.pmf(x, n, a, b) @ np.maximum(0.0, k * (post - p_star))
                 - max(0.0, k * (a / (a + b) - p_star)))


def toy_evppi_exact(a: float, b: float, k: float, p_star: float) -> float:
    """EVPPI of ``p ~ Beta(a, b)`` for ``INB = k (p - p_star)``, ``k > 0`` (the limit of
    :func:`toy_evsi_exact` as ``n -> inf``): ``k E[(p - p*)^+] - max(0, k (E p - p*))`` with
    ``E[(p - p*)^+] = a / (a + b) (1 - I_{p*}(a + 1, b)) - p* (1 - I_{p*}(a, b))``."""
    m = a / (a + b)
    tail = m * stats.beta.sf(p_star, a + 1, b) - p_star * stats.beta.sf(p_star, a, b)
    return float(k * tail - max(0.0, k * (m - p_star)))


@dataclass(frozen=True)
class EvsiResult:
    """EVSI at one trial size by both methods, with bootstrap SEs, 95 % intervals and the
    Monte Carlo SE of their difference (paired: the same resamples)."""

    n: int
    regression: voi.VoiResult
    importance: voi.VoiResult
    diff_se: float


@voi._one_blas_thread
def evsi(nb, p, n: int, u, n_boot: int = 200, seed: int = 0) -> EvsiResult:
    """EVSI of a binomial trial of ``n`` patients by regression and by importance sampling.

    Parameters
    ----------
    nb : array [S x D]
        Net benefit per PSA sample and strategy.
    p : array [S]
        The trial endpoint (probability free of an event) in each sample.
    n : int
        Trial size.
    u : array [S]
        Uniforms of the simulated data sets (one per sample).
    n_boot : int
        Bootstrap resamples of the samples (with posterior draws of the regression's fitted
        values) for the SEs and intervals of both estimates and of their difference.
    """
    a, p = _check_inputs(nb, p)
    check(isinstance(n, (int, np.integer)) and n >= 1, "experiment.trial.sample_sizes", n, "must be whole numbers >= 1")
    S, D = a.shape
    zero = voi.VoiResult(0.0, 0.0, 0.0, 0.0, "dominance")
    if D == 1 or voi.dominated(a):
        return EvsiResult(int(n), zero, zero, 0.0)
    T = simulated_data(p, n, u) / n
    inb = a[:, 1:] - a[:, [0]]
    fits = [voi.regression("gam", T[:, None], inb[:, d], seed) for d in range(D - 1)]
    g = np.column_stack([np.zeros(S)] + [f.fitted for f in fits])
    reg = max(voi._evppi_of(g), 0.0)
    L = likelihoods(p, n)
    imp = importance_value(a, p, n, L)
    rng = np.random.default_rng(seed)
    draws = [f.fitted[:, None] + f.factor @ rng.standard_normal((f.factor.shape[1], max(n_boot, 1))) for f in fits]
    br, bi = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, S, S)
        br[b] = voi._evppi_of(np.column_stack([np.zeros(S)] + [d[idx, b] for d in draws]))
        bi[b] = importance_value(a[idx], p[idx], n, L[idx])
    method = "; ".join(sorted({f.method for f in fits}))

    def res(v, boots, m):
        if n_boot < 2:
            return voi.VoiResult(v, math.nan, math.nan, math.nan, m)
        lo, hi = np.quantile(boots, [0.025, 0.975])
        return voi.VoiResult(v, float(boots.std(ddof=1)), float(max(lo, 0.0)), float(max(hi, 0.0)), m)

    return EvsiResult(int(n), res(reg, br, f"regression ({method} on X/n)"), res(imp, bi, "importance sampling"),
                      float((br - bi).std(ddof=1)) if n_boot > 1 else math.nan)


def trial_uniforms(seed: int, samples) -> np.ndarray:
    """Uniform of the simulated trial data set of each PSA sample (stream ``evsi/trial``)."""
    return np.array([column(seed, "evsi/trial", 0, 0, 1, sample=int(s))[0] for s in samples])


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class EvsiSettings:
    """``experiment.trial`` and ``psa.population`` of an EVSI run (validated by :func:`evsi_settings`).

    Attributes
    ----------
    strategy, therapy : str
        The pathway bringing patients to the trial and the trial's treatment.
    landmark : float
        Primary endpoint: event-free at ``landmark`` months.
    sample_sizes : tuple of int
    methods : tuple of str
        Subset of :data:`METHODS`.
    cost_fixed, cost_per_patient : float
        Trial costs (labelled assumptions, ``data/evidence/assumptions.csv``).
    incidence, horizon_years, discount : float
        Decision population: new patients a year, decision horizon, discount rate.
    informs : tuple of str
        Parameter paths the trial informs (their EVPPI bounds the EVSI).
    n_boot : int
    at_threshold_price : bool
        Scenario: value the trial with the trial strategy priced at the price at which the
        decision changes (its expected NB shifted to tie with the best alternative at each WTP,
        ``sim.uncertainty.psa_analysis.decision_thresholds``), where the decision is most uncertain.
    """

    strategy: str
    therapy: str
    landmark: float
    sample_sizes: tuple
    methods: tuple
    cost_fixed: float
    cost_per_patient: float
    incidence: float
    horizon_years: float
    discount: float
    informs: tuple
    n_boot: int
    at_threshold_price: bool = False


def evsi_settings(plain: Mapping, strategies, model, spec, paths) -> EvsiSettings:
    """Validate ``experiment.trial`` (before any simulation)."""
    exp = mapping("experiment", plain.get("experiment"))
    tr = mapping("experiment.trial", exp.get("trial"))
    strategy = tr.get("strategy", "rechallenge")
    check(strategy in strategies, "experiment.trial.strategy", strategy,
          f"must be a compared strategy {list(strategies)}")
    therapy = tr.get("therapy", "sunitinib_rechallenge")
    lines = list(model.strategies[strategy].lines)
    check(therapy in lines, "experiment.trial.therapy", therapy, f"must be a line of {strategy} {lines}")
    landmark = number_at_least("experiment.trial.landmark_months", tr.get("landmark_months", 6), 0.0, True)
    sizes = tr.get("sample_sizes")
    check(isinstance(sizes, (list, tuple)) and len(sizes) > 0
          and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes),
          "experiment.trial.sample_sizes", sizes, "must be a list of whole numbers >= 1")
    methods = tr.get("methods", list(METHODS))
    check(isinstance(methods, (list, tuple)) and len(methods) > 0 and all(m in METHODS for m in methods),
          "experiment.trial.methods", methods, f"must be a non-empty list of {list(METHODS)}")
    costs = mapping("experiment.trial.costs", tr.get("costs"), allow_none=True)
    fixed = number_at_least("experiment.trial.costs.fixed", costs.get("fixed", 0.0))
    per = number_at_least("experiment.trial.costs.per_patient", costs.get("per_patient", 0.0))
    pats = tr.get("informs") or []
    check(isinstance(pats, (list, tuple)) and all(isinstance(x, str) for x in pats), "experiment.trial.informs", pats,
          "must be a list of parameter path patterns")
    informs = tuple(p for p in paths if any(fnmatchcase(p, q) for q in pats))
    check(len(informs) > 0 or not pats, "experiment.trial.informs", list(pats), "matches no PSA parameter")
    n_boot = tr.get("n_boot", 200)
    check(isinstance(n_boot, int) and not isinstance(n_boot, bool) and n_boot >= 0, "experiment.trial.n_boot", n_boot,
          "must be a whole number >= 0")
    inc, hor, disc = population_settings(plain, spec)
    at = tr.get("at_threshold_price", False)
    check(isinstance(at, bool), "experiment.trial.at_threshold_price", at, "must be true or false")
    return EvsiSettings(strategy, therapy, landmark, tuple(sorted(set(sizes))), tuple(methods), fixed, per, inc, hor,
                        disc, informs, n_boot, at)


# --------------------------------------------------------------------------- tables
def evsi_table(samples: pd.DataFrame, strategies: list[str], wtps, es: EvsiSettings, seed: int,
               evppi_method: str = "auto") -> pd.DataFrame:
    """``evsi.csv``: one row per (n, wtp, method) -- columns ``n, wtp, method, evsi_per_person,
    se, lo, hi, diff_se`` (MC SE of regression - importance), ``population``, ``evsi_population``,
    ``trial_cost``, ``enbs``, ``optimal`` (the n of highest ENBS for this wtp and method),
    ``evppi_endpoint`` (EVPPI of the trial endpoint itself, the limit of EVSI as n grows),
    ``evppi_informed`` (EVPPI of the parameters the trial informs), ``evpi`` and ``price_shift``
    (the change in the trial strategy's cost per patient of the threshold-price scenario, 0
    otherwise)."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    p = matrices(samples, strategies, "trial_p6")[:, 0]
    ids = np.sort(samples["sample"].unique())
    check(np.all(np.isfinite(p)), "experiment.trial", es.therapy,
          "is reached by no patient in some PSA sample; increase cohort.n")
    u = trial_uniforms(seed, ids)
    pop = population_factor(es.incidence, es.horizon_years, es.discount)
    rows = []
    k = strategies.index(es.strategy)
    for w in wtps:
        nb = w * Q - C
        shift = 0.0
        if es.at_threshold_price and len(strategies) > 1:
            m = nb.mean(axis=0)
            shift = float(m[k] - np.delete(m, k).max())
            nb[:, k] -= shift
        e = voi.evpi(nb)
        end = voi.evppi(nb, p, method="gam", n_boot=0, seed=seed).value
        inf = (voi.evppi(nb, param_matrix(samples, list(es.informs)), method=evppi_method, n_boot=0, seed=seed).value
               if es.informs else math.nan)
        for n in es.sample_sizes:
            r = evsi(nb, p, n, u, es.n_boot, seed)
            cost = es.cost_fixed + es.cost_per_patient * n
            for m in es.methods:
                v = r.regression if m == "regression" else r.importance
                rows.append({"n": n, "wtp": float(w), "method": m, "evsi_per_person": v.value, "se": v.se,
                             "lo": v.lo, "hi": v.hi, "diff_se": r.diff_se, "estimator": v.method, "population": pop,
                             "evsi_population": v.value * pop, "trial_cost": cost, "enbs": v.value * pop - cost,
                             "evppi_endpoint": end, "evppi_informed": inf, "evpi": e, "price_shift": shift})
    t = pd.DataFrame(rows)
    best = t.loc[t.groupby(["wtp", "method"])["enbs"].idxmax(), ["wtp", "method", "n", "enbs"]]
    t["optimal"] = False
    for r in best.itertuples(index=False):
        if r.enbs > 0:               # otherwise no trial (n = 0, ENBS 0) is best
            t.loc[(t["wtp"] == r.wtp) & (t["method"] == r.method) & (t["n"] == r.n), "optimal"] = True
    return t


def optimal_sizes(t: pd.DataFrame) -> pd.DataFrame:
    """Per (wtp, method): the optimal trial size (0 = no trial: every size has ENBS <= 0) and its ENBS."""
    rows = []
    for (w, m), g in t.groupby(["wtp", "method"]):
        o = g[g["optimal"]]
        rows.append({"wtp": w, "method": m, "optimal_n": int(o["n"].iloc[0]) if len(o) else 0,
                     "enbs": float(o["enbs"].iloc[0]) if len(o) else 0.0,
                     "best_size_evaluated": int(g.loc[g["enbs"].idxmax(), "n"]),
                     "enbs_of_best_size": float(g["enbs"].max())})
    return pd.DataFrame(rows)


def agreement_table(t: pd.DataFrame) -> pd.DataFrame:
    """Regression vs importance sampling per (n, wtp): the difference, its Monte Carlo SE and
    whether ``|difference| <= 1.96 SE``."""
    w = t.pivot_table(index=["n", "wtp"], columns="method", values="evsi_per_person").reset_index()
    if not set(METHODS) <= set(w.columns):
        return pd.DataFrame(columns=["n", "wtp", "regression", "importance", "difference", "diff_se", "agree"])
    se = t.drop_duplicates(["n", "wtp"]).set_index(["n", "wtp"])["diff_se"]
    w["difference"] = w["regression"] - w["importance"]
    w["diff_se"] = se.reindex(pd.MultiIndex.from_frame(w[["n", "wtp"]])).to_numpy()
    w["agree"] = np.abs(w["difference"]) <= Z95 * w["diff_se"]
    return w[["n", "wtp", "regression", "importance", "difference", "diff_se", "agree"]]


def enbs_sensitivity(t: pd.DataFrame, es: EvsiSettings, ranges: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """Optimal trial size (0: no trial) and its ENBS when one labelled assumption (trial costs,
    incidence, horizon) is at the low or high end of its range, the others at their values: one
    row per (assumption, end, wtp, method)."""
    rows = []
    base = {"cost_fixed": es.cost_fixed, "cost_per_patient": es.cost_per_patient, "incidence": es.incidence,
            "horizon_years": es.horizon_years}
    for name, (lo, hi) in ranges.items():
        for end, v in (("low", lo), ("base", base[name]), ("high", hi)):
            s = dict(base, **{name: v})
            pop = population_factor(s["incidence"], s["horizon_years"], es.discount)
            for (w, m), g in t.groupby(["wtp", "method"]):
                cost = s["cost_fixed"] + s["cost_per_patient"] * g["n"].to_numpy()
                enbs = g["evsi_per_person"].to_numpy() * pop - cost
                i = int(np.argmax(enbs))
                worth = bool(enbs[i] > 0)
                rows.append({"assumption": name, "end": end, "value": v, "wtp": w, "method": m,
                             "optimal_n": int(g["n"].iloc[i]) if worth else 0, "enbs": float(enbs[i]) if worth else 0.0,
                             "worth_doing": worth})
    return pd.DataFrame(rows)


def _assumption_ranges() -> dict[str, tuple[float, float]]:
    """Ranges of the labelled assumptions behind the trial costs and the decision population."""
    t = load_assumptions()
    ids = {"cost_fixed": "evsi_trial_cost_fixed", "cost_per_patient": "evsi_trial_cost_per_patient",
           "incidence": "voi_incidence", "horizon_years": "voi_horizon_years"}
    if t is None:
        return {}
    return {k: (float(t.loc[i, "low"]), float(t.loc[i, "high"])) for k, i in ids.items() if i in t.index}


# --------------------------------------------------------------------------- the run
def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=evsi`` (``experiments/run.py``): PSA samples with the trial
    endpoint, EVSI and ENBS by trial size; run folder and printed text."""
    t0 = time.perf_counter()
    cfg, plain, model, st, paramset, groups = prepare(cfg)
    strategies = list(model.strategies)
    spec = economics_spec(plain)
    es = evsi_settings(plain, strategies, model, spec, paramset.paths)
    evaluator = TrialEvaluator(es.strategy, es.therapy, es.landmark)
    ids = range(st.first_sample, st.first_sample + st.samples)
    with progress_bar(st.progress, st.samples, "PSA samples (EVSI)") as bar:
        samples = run_samples(cfg, paramset, ids, evaluator, st.workers, bar.update)
    t1 = time.perf_counter()
    table = evsi_table(samples, strategies, st.report_wtp, es, model.seed, st.evppi_method)
    agree = agreement_table(table)
    sens = enbs_sensitivity(table, es, _assumption_ranges())
    t2 = time.perf_counter()
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        samples.to_parquet(tmp / "psa_samples.parquet", index=False)
        table.to_csv(tmp / "evsi.csv", index=False, float_format="%.10g")
        table.to_parquet(tmp / "evsi.parquet", index=False)
        write_tables(tmp, {"evsi_agreement": agree, "enbs_sensitivity": sens, "evsi_optimal": optimal_sizes(table)})
        if (plain.get("output") or {}).get("figures", True):
            w = st.primary_wtp if st.primary_wtp in st.report_wtp else st.report_wtp[-1]
            evsi_figure(table, tmp / "evsi.png", w, spec.currency)
        write_manifest(tmp, plain, model.seed, {"simulate": t1 - t0, "analyse": t2 - t1,
                                                "total": time.perf_counter() - t0},
                       {"kind": "evsi", "n_samples": st.samples, "n_patients": len(model.cohort),
                        "strategies": strategies, "trial_strategy": es.strategy, "trial_therapy": es.therapy,
                        "sample_sizes": list(es.sample_sizes), "population": float(table["population"].iloc[0])})
    return final, format_evsi(table, agree, spec.currency)


def format_evsi(t: pd.DataFrame, agree: pd.DataFrame, currency: str = "") -> str:
    """Console summary: EVSI by n and method, ENBS, the optimal size, the two methods' agreement."""
    out = []
    for w, d in t.groupby("wtp"):
        wide = d.pivot_table(index="n", columns="method", values=["evsi_per_person", "enbs"])
        wide.columns = [f"{a} ({b})" for a, b in wide.columns]
        out.append(f"WTP {w:,.0f} {currency}/QALY: EVPI {d['evpi'].iloc[0]:,.1f}, EVPPI of the trial endpoint "
                   f"{d['evppi_endpoint'].iloc[0]:,.1f}, EVPPI of the parameters it informs "
                   f"{d['evppi_informed'].iloc[0]:,.1f} per person; population {d['population'].iloc[0]:,.1f}\n"
                   + wide.to_string(float_format=lambda v: f"{v:,.1f}"))
        for r in optimal_sizes(d).itertuples(index=False):
            best = (f"{r.optimal_n}, ENBS {r.enbs:,.0f} {currency}" if r.optimal_n else
                    f"no trial (best size evaluated, n = {r.best_size_evaluated}, has ENBS "
                    f"{r.enbs_of_best_size:,.0f} {currency})")
            out.append(f"  optimal n ({r.method}): {best}")
    if len(agree):
        out.append(f"regression vs importance sampling agree within 1.96 MC SE in {int(agree['agree'].sum())} of "
                   f"{len(agree)} (n, WTP) cells")
    return "\n".join(out)
