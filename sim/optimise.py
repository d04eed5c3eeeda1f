"""The best treatment sequence: enumeration, screening, confirmation, P(optimal) (``experiment=optimise``).

``pnetsim experiment=optimise`` (``configs/experiment/optimise.yaml``, ``docs/optimise.md``).

**Sequences.** Every ordered selection of distinct agents of ``experiment.agents`` with at most
``k = experiment.max_active_lines`` active lines, followed by the terminal line
(``experiment.terminal``, best supportive care), is a candidate, the empty one (BSC alone)
included. An order is pruned when one of its lines can be received by no patient of the
cohort, by the therapies' own eligibility rules (:func:`sim.kernel.line.eligibility`):

* ``requires_prior_progression_on: X`` (sunitinib rechallenge needs a prior sunitinib line): X
  must come earlier in the sequence, unless a patient of the cohort had X before the model
  starts (``prior_therapies``);
* ``requires_sstr_positive`` / ``exclude_functional``: pruned only if no patient of the cohort
  qualifies (otherwise ineligible patients skip the line, ``rules.skip_ineligible``).

An agent appears at most once; a rechallenge is a therapy of its own. With ``m`` first-exposure
agents and one rechallenge agent ``r`` of agent ``x``, the number of sequences of length ``L`` is
``P(m, L) + C(L, 2) P(m - 1, L - 2)`` (``P(a, b) = a! / (a - b)!``): 3971 for the default ten agents
(``m = 9``) and ``k = 4`` (291 for the original six, ``m = 5``), above the default ``enumeration_limit``.

**Evaluation.** Each sequence is a strategy (data: lines plus ``experiment.rules``) simulated on
one cohort with the master seed, so every patient meets the same random numbers under every
sequence (common random numbers); sequences are simulated in batches of ``experiment.batch``
(memory only: a patient's numbers do not depend on the other strategies simulated with it).
Per patient ``i`` and sequence ``d`` at willingness to pay ``lambda``::

    NMB_i(d) = lambda * QALY_i(d) - C_i(d)                    (discounted, sim/economics/evaluate.py)
    NMB(d) = mean_i NMB_i(d),  SE = sd_i NMB_i(d) / sqrt(n)
    D(d) = mean_i [NMB_i(d) - NMB_i(d*)],  SE_D = sd_i(...) / sqrt(n)   (paired, d* the best)

**Stages.** (1) *screen*: every sequence with ``screen.patients`` patients; (2) *confirm*: the
``confirm.top`` best of the screen and the screen's best sequence of every subgroup level,
re-simulated on a fresh, larger cohort (``confirm.patients``), which removes the selection bias
of the screen (the winner's curse); (3) *P(optimal)*: the ``psa_top.top`` best confirmed
sequences over ``psa_top.samples`` samples of the probabilistic sensitivity analysis
(:func:`sim.uncertainty.psa.run_samples`, distributions of ``psa.parameters``),
``P(optimal)(d) = mean_s 1[d = argmax_e NB_s(e)]`` with binomial SE ``sqrt(p (1 - p) / S)``;
with ``psa_top.patients`` patients per sample the Monte Carlo noise inside each sample is
included, which pulls P(optimal) towards equal shares (O'Hagan, Stevenson & Madan, Health Econ
2007;16:1009-1023).

**Metamodel.** When there are more eligible sequences than ``experiment.enumeration_limit``, a
random design of ``metamodel.design`` sequences is simulated at screen size and a Gaussian
process (scikit-learn ``GaussianProcessRegressor``, anisotropic RBF plus white noise,
normalised target) is fitted to their NMB on features of the order: for each agent, whether it
is given and ``1 / position``. The ``metamodel.candidates`` best predicted sequences are then
simulated exactly; the rest keep their predicted NMB (``nmb_source = metamodel``). The
metamodel's accuracy is reported as the cross-validated (5-fold) R^2 on the design.

**Subgroups.** For each level of each ``experiment.subgroups`` cohort column, the sequence with
the highest mean NMB over that level's patients (screen stage among all simulated sequences,
then re-estimated at the confirm stage among the confirmed sequences).

Outputs: ``sequences.csv|parquet`` (one row per sequence: ``rank, sequence, n_active_lines,
stage, nmb_source, n_patients, cost_mean, qaly_mean, nmb_mean, nmb_se, diff_vs_best,
diff_vs_best_se, screen_nmb_mean, screen_nmb_se, p_optimal, p_optimal_se, psa_nmb_mean``),
``subgroups.csv|parquet``, ``optimise_stages.csv`` (what each stage did), ``sequences.png``,
``manifest.json``.
"""

from __future__ import annotations

import itertools
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from sim.config import build_model, to_container
from sim.economics.evaluate import evaluate_arrays
from sim.uncertainty.params import build_paramset
from sim.uncertainty.psa import economics_spec, run_samples, simulate_sample, with_economics
from sim.errors import check, is_number, mapping, sequence_of_str, whole
from sim.patients.schema import COLUMNS
from sim.runio import atomic_run_dir, progress_bar, run_folder_name, write_manifest

KEY = "experiment"
#: strategy-name prefix of the generated sequences
PREFIX = "seq"
#: strategy rules keyed by therapy: applied to the sequences that contain the therapy
PER_LINE_RULES = ("holiday_months", "uptake")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class OptimiseSettings:
    """``experiment.*`` of an optimise run, validated by :func:`optimise_settings`."""

    agents: tuple[str, ...]
    terminal: str
    k: int
    wtp: float
    rules: Mapping
    subgroups: tuple[str, ...]
    batch: int
    enumeration_limit: int
    design: int
    candidates: int
    screen_patients: int
    confirm_top: int
    confirm_patients: int
    psa_top: int
    psa_samples: int
    psa_patients: int
    workers: int
    progress: object


def _section(exp: Mapping, name: str) -> Mapping:
    return mapping(f"{KEY}.{name}", exp.get(name), allow_none=True)


def optimise_settings(plain: Mapping, therapies: Mapping, spec) -> OptimiseSettings:
    """Validate ``experiment.*`` (every agent a known non-terminal therapy with a drug entry, the
    terminal a terminal therapy, sizes whole numbers); a :class:`UserError` names the key."""
    exp = plain.get("experiment") or {}
    agents = sequence_of_str(f"{KEY}.agents", exp.get("agents"))
    check(len(agents) >= 1, f"{KEY}.agents", agents, "must name at least one therapy")
    check(len(set(agents)) == len(agents), f"{KEY}.agents", agents, "names a therapy twice")
    for i, a in enumerate(agents):
        check(a in therapies, f"{KEY}.agents[{i}]", a, f"must be a known therapy {sorted(therapies)}")
        check(therapies[a].kind != "terminal", f"{KEY}.agents[{i}]", a, "is a terminal therapy (use experiment.terminal)")
        spec.drug_for(a)
    term = exp.get("terminal", "bsc")
    check(isinstance(term, str) and term in therapies and therapies[term].kind == "terminal", f"{KEY}.terminal", term,
          "must be a terminal therapy, e.g. bsc")
    k = whole(f"{KEY}.max_active_lines", exp.get("max_active_lines"), 1)
    wtp = exp.get("wtp")
    wtp = max(spec.wtp) if wtp is None else wtp
    check(is_number(wtp) and math.isfinite(wtp) and wtp >= 0, f"{KEY}.wtp", wtp, "must be a number >= 0 (per QALY)")
    rules = dict(mapping(f"{KEY}.rules", exp.get("rules"), allow_none=True))
    for per_line in PER_LINE_RULES:
        for t in mapping(f"{KEY}.rules.{per_line}", rules.get(per_line), allow_none=True):
            check(t in agents, f"{KEY}.rules.{per_line}", t, "must name one of experiment.agents")
    subgroups = sequence_of_str(f"{KEY}.subgroups", exp.get("subgroups"), allow_none=True)
    for i, s in enumerate(subgroups):
        check(s in COLUMNS and COLUMNS[s][0] in ("category", "bool", "int"), f"{KEY}.subgroups[{i}]", s,
              "must be a categorical cohort column (e.g. grade, hepatic_burden, sstr_positive, functional_status)")
    mm, sc, cf, ps = (_section(exp, n) for n in ("metamodel", "screen", "confirm", "psa_top"))
    workers = ps.get("workers", 1)
    if workers == "auto":
        workers = max(1, min(os.cpu_count() or 1, 8))
    return OptimiseSettings(
        agents=tuple(agents), terminal=term, k=k, wtp=float(wtp), rules=rules, subgroups=tuple(subgroups),
        batch=whole(f"{KEY}.batch", exp.get("batch", 60), 1),
        enumeration_limit=whole(f"{KEY}.enumeration_limit", exp.get("enumeration_limit", 500), 1),
        design=whole(f"{KEY}.metamodel.design", mm.get("design", 200), 10),
        candidates=whole(f"{KEY}.metamodel.candidates", mm.get("candidates", 60), 1),
        screen_patients=whole(f"{KEY}.screen.patients", sc.get("patients"), 2),
        confirm_top=whole(f"{KEY}.confirm.top", cf.get("top"), 1),
        confirm_patients=whole(f"{KEY}.confirm.patients", cf.get("patients"), 2),
        psa_top=whole(f"{KEY}.psa_top.top", ps.get("top"), 2),
        psa_samples=whole(f"{KEY}.psa_top.samples", ps.get("samples"), 2),
        psa_patients=whole(f"{KEY}.psa_top.patients", ps.get("patients"), 2),
        workers=whole(f"{KEY}.psa_top.workers", workers, 1),
        progress=(plain.get("output") or {}).get("progress", "auto"))


# --------------------------------------------------------------------------- enumeration
def cohort_can_receive(therapy, cohort: pd.DataFrame) -> bool:
    """Whether any patient of ``cohort`` meets the patient-level rules of ``therapy``
    (SSTR positivity, functional-status exclusions)."""
    ok = np.ones(len(cohort), bool)
    if therapy.requires_sstr_positive:
        ok &= cohort["sstr_positive"].to_numpy(bool)
    for f in therapy.exclude_functional:
        ok &= cohort["functional_status"].astype(str).to_numpy() != f
    return bool(ok.any())


def eligible_sequences(agents: Sequence[str], therapies: Mapping, k: int, cohort: pd.DataFrame | None = None
                       ) -> list[tuple[str, ...]]:
    """Every order of distinct ``agents`` of length 0..k that the eligibility rules allow (module
    docstring), shortest first, then in the order of ``agents``. The terminal line is not included."""
    prior = set()
    if cohort is not None and "prior_therapies" in cohort:
        for v in cohort["prior_therapies"].astype(str):
            prior.update(x for x in v.split(";") if x)
    usable = [a for a in agents if cohort is None or cohort_can_receive(therapies[a], cohort)]
    out = [()]
    for L in range(1, k + 1):
        for seq in itertools.permutations(usable, L):
            ok = True
            for i, a in enumerate(seq):
                need = therapies[a].requires_prior_progression_on
                if need and need not in seq[:i] and need not in prior:
                    ok = False
                    break
            if ok:
                out.append(seq)
    return out


def sequence_text(seq: Sequence[str], terminal: str) -> str:
    """``"ssa > sunitinib > bsc"``: the lines of a sequence, terminal line included."""
    return " > ".join([*seq, terminal])


def with_sequences(cfg, seqs: Sequence[tuple[str, ...]], st: OptimiseSettings, n_patients: int, names=None):
    """A copy of ``cfg`` whose compared strategies are ``seqs`` (names ``seq<i>`` unless given),
    each with lines ``seq + [terminal]`` and ``experiment.rules``, and ``cohort.n = n_patients``."""
    names = [f"{PREFIX}{i}" for i in range(len(seqs))] if names is None else list(names)
    c = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False)) if isinstance(cfg, DictConfig) else \
        OmegaConf.create(dict(cfg))
    base_rules = {k: v for k, v in st.rules.items() if k not in PER_LINE_RULES}

    def rules(seq):
        return {**base_rules, **{r: {t: v for t, v in (st.rules.get(r) or {}).items() if t in seq}
                                 for r in PER_LINE_RULES}}

    with open_dict(c):
        c.strategies = {n: {"label": sequence_text(s, st.terminal), "lines": [*s, st.terminal], "rules": rules(s)}
                        for n, s in zip(names, seqs)}
        c.experiment.strategies = list(names)
        c.experiment.reference = names[0]
        c.cohort.n = int(n_patients)
    return c


# --------------------------------------------------------------------------- evaluation
@dataclass
class StageResult:
    """Per-patient discounted NMB, cost and QALY (patients x sequences) of one stage, and its cohort."""

    seqs: list
    nmb: np.ndarray
    cost: np.ndarray
    qaly: np.ndarray
    cohort: pd.DataFrame

    def table(self, terminal: str) -> pd.DataFrame:
        """``sequence, n_active_lines, n_patients, cost_mean, qaly_mean, nmb_mean, nmb_se`` per sequence."""
        n = self.nmb.shape[0]
        return pd.DataFrame({"sequence": [sequence_text(s, terminal) for s in self.seqs],
                             "n_active_lines": [len(s) for s in self.seqs], "n_patients": n,
                             "cost_mean": self.cost.mean(0), "qaly_mean": self.qaly.mean(0),
                             "nmb_mean": self.nmb.mean(0), "nmb_se": self.nmb.std(0, ddof=1) / math.sqrt(n)})


def evaluate_sequences(cfg, seqs: Sequence[tuple[str, ...]], st: OptimiseSettings, n_patients: int, seed: int,
                       bar=None) -> StageResult:
    """Simulate ``seqs`` on one cohort of ``n_patients`` generated from ``seed`` (common random numbers)
    and return the per-patient discounted NMB at ``st.wtp``, costs and QALYs."""

    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    cfg.seed = int(seed)
    cohort = None
    nmb, cost, qaly = [], [], []
    for b in range(0, len(seqs), st.batch):
        part = list(seqs[b:b + st.batch])
        c = with_sequences(cfg, part, st, n_patients)
        model = build_model(c, cohort=cohort)
        cohort = model.cohort
        spec = economics_spec(to_container(c))
        ra = simulate_sample(model, 0)
        per = evaluate_arrays(ra, spec, model.rules.imaging_interval_months)
        col = np.array([list(model.strategies).index(n) for n in ra.strategy_names])[ra.strategy]
        row = np.searchsorted(np.sort(cohort["patient_id"].to_numpy()), ra.patient_id)
        cst, q = np.zeros((len(cohort), len(part))), np.zeros((len(cohort), len(part)))
        cst[row, col] = per["cost_total_disc"]
        q[row, col] = per["qaly_disc"]
        cost.append(cst)
        qaly.append(q)
        nmb.append(st.wtp * q - cst)
        if bar is not None:
            bar.update(len(part))
    return StageResult(list(seqs), np.hstack(nmb), np.hstack(cost), np.hstack(qaly),
                       cohort.sort_values("patient_id").reset_index(drop=True))


def sequence_features(seqs: Sequence[tuple[str, ...]], agents: Sequence[str]) -> np.ndarray:
    """Metamodel features of each sequence: per agent, ``1[given]`` and ``1 / position`` (0 if absent)."""
    idx = {a: j for j, a in enumerate(agents)}
    X = np.zeros((len(seqs), 2 * len(agents)))
    for i, s in enumerate(seqs):
        for p, a in enumerate(s):
            X[i, idx[a]] = 1.0
            X[i, len(agents) + idx[a]] = 1.0 / (p + 1)
    return X


def fit_metamodel(X: np.ndarray, y: np.ndarray, seed: int):
    """Gaussian process of ``y`` on ``X`` (anisotropic RBF + white noise, normalised ``y``; kernel
    hyperparameters by maximum marginal likelihood, 3 optimiser starts) and its 5-fold cross-validated
    R^2 (``1 - SS_res / SS_tot`` of the out-of-fold predictions; one start per fold)."""

    def gp(restarts):
        kern = ConstantKernel(1.0) * RBF(length_scale=np.ones(X.shape[1]), length_scale_bounds=(1e-2, 1e3)) \
            + WhiteKernel(0.1, (1e-6, 1.0))
        return GaussianProcessRegressor(kern, normalize_y=True, n_restarts_optimizer=restarts, random_state=seed)

    pred = np.zeros_like(y)
    # small matrices: one BLAS thread is ~10x faster than several competing for 2 cores
    with warnings.catch_warnings(), threadpool_limits(1):   # length scales at a bound: a feature without effect
        warnings.simplefilter("ignore", ConvergenceWarning)
        for tr, te in KFold(5, shuffle=True, random_state=seed).split(X):
            pred[te] = gp(0).fit(X[tr], y[tr]).predict(X[te])        # the diagnostic: one optimiser start
        model = gp(2).fit(X, y)
    r2 = 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    return model, r2


def subgroup_best(res: StageResult, columns: Sequence[str], terminal: str, stage: str) -> pd.DataFrame:
    """Best sequence by mean NMB within each level of each cohort column: ``subgroup, level,
    n_patients, best_sequence, nmb_mean, n_tied`` (sequences with the same per-patient NMB as the best, e.g.
    with a line these patients skip; the one with fewest lines is shown), ``runner_up`` (the best sequence
    with different outcomes), ``diff_vs_runner_up, diff_se, stage``."""
    rows = []
    for col in columns:
        vals = res.cohort[col].astype(str).to_numpy()
        for lev in sorted(set(vals)):
            m = vals == lev
            sub = res.nmb[m]
            mean = sub.mean(0)
            o = np.lexsort((np.array([len(s) for s in res.seqs]), -mean))    # exact ties: fewer lines first
            tied = [j for j in o[1:] if np.array_equal(sub[:, j], sub[:, o[0]])]
            rest = [j for j in o[1:] if j not in set(tied)]
            d = sub[:, o[0]] - sub[:, rest[0]] if rest else np.zeros(int(m.sum()))
            rows.append({"subgroup": col, "level": lev, "n_patients": int(m.sum()),
                         "best_sequence": sequence_text(res.seqs[o[0]], terminal), "nmb_mean": float(mean[o[0]]),
                         "n_tied": len(tied),
                         "runner_up": sequence_text(res.seqs[rest[0]], terminal) if rest else "",
                         "diff_vs_runner_up": float(d.mean()),
                         "diff_se": float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.nan,
                         "stage": stage})
    return pd.DataFrame(rows)


def p_optimal(cfg, plain: Mapping, seqs: Sequence[tuple[str, ...]], st: OptimiseSettings, seed: int, bar=None
              ) -> pd.DataFrame:
    """P(optimal) of ``seqs`` over ``st.psa_samples`` PSA samples (:func:`sim.uncertainty.psa.run_samples`
    with the ``psa.parameters`` distributions; ``st.psa_patients`` patients per sample): columns
    ``sequence, p_optimal, p_optimal_se, psa_nmb_mean, psa_nmb_sd``."""

    names = [f"{PREFIX}{i}" for i in range(len(seqs))]
    c = with_sequences(cfg, seqs, st, st.psa_patients, names)
    paramset = build_paramset(plain, (plain.get("psa") or {}).get("parameters") or {}, seed)
    rows = run_samples(c, paramset, range(st.psa_samples), workers=st.workers,
                       progress=(bar.update if bar is not None else None))
    nb = (st.wtp * rows.pivot(index="sample", columns="strategy", values="qaly")
          - rows.pivot(index="sample", columns="strategy", values="cost"))[names].to_numpy()
    best = np.argmax(nb, axis=1)
    p = np.bincount(best, minlength=len(names)) / nb.shape[0]
    return pd.DataFrame({"sequence": [sequence_text(s, st.terminal) for s in seqs], "p_optimal": p,
                         "p_optimal_se": np.sqrt(p * (1 - p) / nb.shape[0]), "psa_nmb_mean": nb.mean(0),
                         "psa_nmb_sd": nb.std(0, ddof=1)})


# --------------------------------------------------------------------------- the run
def prepare(cfg):
    """(cfg with economics, plain, base model, spec, settings, paramset): everything validated before
    any simulation (settings, the PSA distributions, and one generated strategy per agent)."""

    cfg = with_economics(cfg)
    plain = to_container(cfg)
    model = build_model(cfg)
    spec = economics_spec(plain)
    st = optimise_settings(plain, model.therapies, spec)
    paramset = build_paramset(plain, (plain.get("psa") or {}).get("parameters") or {}, model.seed)
    probe = with_sequences(cfg, [(a,) for a in st.agents], st, 2)       # the rules on every agent
    build_model(probe, cohort=model.cohort.head(2))
    return cfg, plain, model, spec, st, paramset


def run_optimise(cfg, job: int | None = None) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The optimise experiment (module docstring); returns (run folder, tables)."""

    t0 = time.perf_counter()
    cfg, plain, model, spec, st, paramset = prepare(cfg)
    seed = model.seed
    seqs = eligible_sequences(st.agents, model.therapies, st.k, model.cohort)
    stages, timings = [], {}
    text = {s: sequence_text(s, st.terminal) for s in seqs}
    screen_tab = pd.DataFrame({"sequence": [text[s] for s in seqs], "n_active_lines": [len(s) for s in seqs]})
    meta_r2 = math.nan
    with progress_bar(st.progress, len(seqs), "screening sequences") as bar:
        bar.unit = "sequence"
        if len(seqs) <= st.enumeration_limit:
            screen = evaluate_sequences(cfg, seqs, st, st.screen_patients, seed, bar)
            stages.append({"stage": "screen", "n_sequences": len(seqs), "n_patients": st.screen_patients,
                           "what": f"all {len(seqs)} eligible sequences simulated (common random numbers)"})
        else:
            rng = np.random.default_rng(seed)
            design = sorted(rng.choice(len(seqs), size=min(st.design, len(seqs)), replace=False))
            dres = evaluate_sequences(cfg, [seqs[i] for i in design], st, st.screen_patients, seed, bar)
            X = sequence_features(seqs, st.agents)
            gp, meta_r2 = fit_metamodel(X[design], dres.nmb.mean(0), seed)
            mu, sd = gp.predict(X, return_std=True)
            pick = [i for i in np.argsort(-mu, kind="stable") if i not in set(design)][:st.candidates]
            cres = evaluate_sequences(cfg, [seqs[i] for i in pick], st, st.screen_patients, seed, bar)
            sim_idx = list(design) + pick
            screen = StageResult([seqs[i] for i in sim_idx], np.hstack([dres.nmb, cres.nmb]),
                                 np.hstack([dres.cost, cres.cost]), np.hstack([dres.qaly, cres.qaly]), dres.cohort)
            screen_tab["metamodel_nmb"] = mu
            screen_tab["metamodel_sd"] = sd
            stages.append({"stage": "screen", "n_sequences": len(sim_idx), "n_patients": st.screen_patients,
                           "what": f"{len(seqs)} eligible sequences > enumeration limit {st.enumeration_limit}: "
                                   f"Gaussian-process metamodel fitted to {len(design)} simulated sequences "
                                   f"(5-fold CV R^2 = {meta_r2:.3f}), its {len(pick)} best predictions simulated"})
    timings["screen"] = time.perf_counter() - t0
    st_tab = screen.table(st.terminal).rename(columns={"nmb_mean": "screen_nmb_mean", "nmb_se": "screen_nmb_se"})
    screen_tab = screen_tab.merge(st_tab[["sequence", "screen_nmb_mean", "screen_nmb_se"]], on="sequence", how="left")
    screen_sub = subgroup_best(screen, st.subgroups, st.terminal, "screen")

    # confirm: top of the screen + each subgroup's best, on a fresh, larger cohort (another seed)
    order = np.argsort(-screen.nmb.mean(0), kind="stable")
    by_text = {text[s]: s for s in seqs}
    conf = [screen.seqs[i] for i in order[:st.confirm_top]]
    for b in screen_sub["best_sequence"] if len(screen_sub) else []:
        if by_text[b] not in conf:
            conf.append(by_text[b])
    t1 = time.perf_counter()
    confirm_seed = seed + 1
    with progress_bar(st.progress, len(conf), "confirming") as bar:
        bar.unit = "sequence"
        confirm = evaluate_sequences(cfg, conf, st, st.confirm_patients, confirm_seed, bar)
    stages.append({"stage": "confirm", "n_sequences": len(conf), "n_patients": st.confirm_patients,
                   "what": f"the {min(st.confirm_top, len(seqs))} best screened sequences and each subgroup's best "
                           f"re-simulated on a new cohort (seed {confirm_seed})"})
    timings["confirm"] = time.perf_counter() - t1
    ctab = confirm.table(st.terminal)
    best = int(np.argmax(ctab["nmb_mean"].to_numpy()))
    d = confirm.nmb - confirm.nmb[:, [best]]
    ctab["diff_vs_best"] = d.mean(0)
    ctab["diff_vs_best_se"] = d.std(0, ddof=1) / math.sqrt(d.shape[0])
    conf_sub = subgroup_best(confirm, st.subgroups, st.terminal, "confirm")

    # P(optimal) of the leading confirmed sequences under the PSA
    t2 = time.perf_counter()
    lead = [conf[i] for i in np.argsort(-ctab["nmb_mean"].to_numpy(), kind="stable")[:min(st.psa_top, len(conf))]]
    popt = pd.DataFrame(columns=["sequence", "p_optimal", "p_optimal_se", "psa_nmb_mean", "psa_nmb_sd"])
    if len(lead) >= 2:
        with progress_bar(st.progress, st.psa_samples, "PSA of the leading sequences") as bar:
            bar.unit = "sample"
            popt = p_optimal(cfg, plain, lead, st, seed, bar)
        stages.append({"stage": "psa", "n_sequences": len(lead), "n_patients": st.psa_patients,
                       "what": f"P(optimal) of the {len(lead)} best confirmed sequences over {st.psa_samples} PSA "
                               f"samples (psa.parameters; patient-level noise included)"})
    timings["psa"] = time.perf_counter() - t2

    # one row per sequence: confirmed first (by confirmed NMB), then screened, then metamodel-only
    tab = screen_tab.merge(ctab.drop(columns=["n_active_lines"]), on="sequence", how="left")
    tab["stage"] = np.where(tab["nmb_mean"].notna(), "confirm", np.where(tab["screen_nmb_mean"].notna(), "screen",
                                                                         "metamodel"))
    tab["nmb_source"] = np.where(tab["stage"] == "metamodel", "metamodel", "simulated")
    for col, src in (("nmb_mean", "screen_nmb_mean"), ("nmb_se", "screen_nmb_se")):
        tab[col] = tab[col].fillna(tab[src])
    tab["n_patients"] = tab["n_patients"].fillna(
        pd.Series(np.where(tab["stage"] == "screen", st.screen_patients, 0), index=tab.index))
    if "metamodel_nmb" in tab:
        tab["nmb_mean"] = tab["nmb_mean"].fillna(tab["metamodel_nmb"])
        tab["nmb_se"] = tab["nmb_se"].fillna(tab["metamodel_sd"])
    tab = tab.merge(popt, on="sequence", how="left")
    tab["_stage"] = tab["stage"].map({"confirm": 0, "screen": 1, "metamodel": 2})
    tab = tab.sort_values(["_stage", "nmb_mean"], ascending=[True, False], kind="stable").drop(columns="_stage")
    tab.insert(0, "rank", np.arange(1, len(tab) + 1))
    tab["n_patients"] = tab["n_patients"].astype(int)
    tab["wtp"] = st.wtp
    cols = ["rank", "sequence", "n_active_lines", "stage", "nmb_source", "n_patients", "cost_mean", "qaly_mean",
            "nmb_mean", "nmb_se", "diff_vs_best", "diff_vs_best_se", "screen_nmb_mean", "screen_nmb_se",
            "p_optimal", "p_optimal_se", "psa_nmb_mean", "psa_nmb_sd", "wtp"]
    tab = tab[cols + [c for c in tab.columns if c not in cols]].reset_index(drop=True)
    tables = {"sequences": tab, "subgroups": pd.concat([conf_sub, screen_sub], ignore_index=True),
              "optimise_stages": pd.DataFrame(stages)}
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        for name, t in tables.items():
            t.to_csv(tmp / f"{name}.csv", index=False, float_format="%.10g")
            t.to_parquet(tmp / f"{name}.parquet", index=False)
        if (plain.get("output") or {}).get("figures", True):
            sequences_figure(tab, tmp / "sequences.png", st.wtp, spec.currency)
        timings["total"] = time.perf_counter() - t0
        write_manifest(tmp, plain, seed, timings,
                       {"kind": "optimise", "n_sequences": len(seqs), "agents": list(st.agents), "k": st.k,
                        "wtp": st.wtp, "screen_patients": st.screen_patients, "confirm_patients": st.confirm_patients,
                        "confirm_seed": confirm_seed, "psa_samples": st.psa_samples, "psa_patients": st.psa_patients,
                        "metamodel_cv_r2": meta_r2, "report": False})
    return final, tables


def sequences_figure(tab: pd.DataFrame, path: Path, wtp: float, currency: str = "", top: int = 20) -> Path:
    """Horizontal bars of the mean NMB (+- 1.96 SE) of the ``top`` ranked sequences."""
    matplotlib.use("Agg")

    t = tab.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(t) + 1.5))
    y = np.arange(len(t))
    colours = t["stage"].map({"confirm": "tab:blue", "screen": "tab:grey", "metamodel": "tab:orange"})
    ax.barh(y, t["nmb_mean"], xerr=1.96 * t["nmb_se"], color=colours)
    labels = [f"{s}  (P opt {p:.2f})" if pd.notna(p) else s for s, p in zip(t["sequence"], t["p_optimal"])]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel(f"expected net monetary benefit at {wtp:,.0f} {currency} per QALY (discounted)")
    ax.set_title("Treatment sequences ranked (blue: confirmed, grey: screen only)", fontsize=9)
    lo = float((t["nmb_mean"] - 2 * t["nmb_se"]).min())
    ax.set_xlim(left=lo - 0.02 * abs(lo))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def format_optimise(tables: Mapping[str, pd.DataFrame], top: int = 10) -> str:
    """Console text: what each stage did, the top sequences with P(optimal), the best per subgroup."""
    tab, sub, stages = tables["sequences"], tables["subgroups"], tables["optimise_stages"]
    wtp = float(tab["wtp"].iloc[0])
    lines = ["Stages:"] + [f"  {r.stage}: {r.what}; {r.n_patients} patients each" for r in stages.itertuples()]
    t = tab.head(top)
    show = pd.DataFrame({"rank": t["rank"], "sequence": t["sequence"], "stage": t["stage"],
                         "NMB": [f"{m:,.0f} ± {s:,.0f}" for m, s in zip(t["nmb_mean"], t["nmb_se"])],
                         "vs best": ["-" if pd.isna(m) else f"{m:,.0f} ± {s:,.0f}"
                                     for m, s in zip(t["diff_vs_best"], t["diff_vs_best_se"])],
                         "P(optimal)": ["-" if pd.isna(p) else f"{p:.2f} ± {s:.2f}"
                                        for p, s in zip(t["p_optimal"], t["p_optimal_se"])]})
    lines.append(f"\nBest sequences by expected NMB at {wtp:,.0f} per QALY (discounted; ± Monte Carlo SE; "
                 f"P(optimal) under the PSA among the leading sequences):\n" + show.to_string(index=False))
    if len(sub):
        s = sub[sub["stage"] == "confirm"]
        ss = pd.DataFrame({"subgroup": s["subgroup"] + "=" + s["level"], "n": s["n_patients"],
                           "best sequence": s["best_sequence"],
                           "vs runner-up": [f"{m:,.0f} ± {e:,.0f}" for m, e in zip(s["diff_vs_runner_up"],
                                                                                    s["diff_se"])]})
        lines.append("\nBest confirmed sequence per subgroup:\n" + ss.to_string(index=False))
    return "\n".join(lines)


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=optimise`` (``experiments/run.py``): run folder and printed text."""
    folder, tables = run_optimise(cfg, job)
    return folder, format_optimise(tables)
