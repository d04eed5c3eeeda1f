"""External validation: simulate published trials under their own designs and compare.

``pnetsim experiment=validation`` runs every trial of ``experiment.trials``
(``configs/trial/<key>.yaml``) through the model and writes, per trial arm and published
figure, the published value, the simulated value with Monte Carlo intervals and a
pass / accept / fail status against the goal tolerances (``experiment.tolerances``).
See ``docs/validation.md``.

Design of one trial (:class:`TrialDesign`): population overrides of the cohort config, the
number of patients per arm, model overrides (e.g. the scan interval) and the arms as
strategies (first line = trial drug or placebo, crossover through the strategy rule
``uptake``, then best supportive care). Published figures are evidence ids, so every
target is read from ``data/evidence/evidence.csv``.

Replicates and random numbers: the trial cohort has ``R x N`` patients (``N`` = largest arm);
replicate ``r`` is the block of patient ids ``[r N, r N + n_arm)``. Every random quantity is
keyed by (master seed, stream name, patient id) (:mod:`sim.rng`), so replicates are
independent trials, and the arms of one replicate meet the same patients and the same
uniforms (common random numbers), exactly as in :func:`sim.run.engine.simulate`.

Metrics (per replicate and arm, on the ``n_arm`` patients of the replicate):

* ``median_pfs`` / ``median_os``: Kaplan-Meier median = the ``ceil(n/2)``-th order
  statistic of ``pfs1_months`` / ``os_months`` (censoring only at the 40-year horizon);
* ``median_ttp``: Kaplan-Meier median time to progression: ``pfs1_months`` with a death
  before any progression censored at the death (:func:`km_median_censored`);
* ``pfs_rate_<N>m`` / ``os_rate_<N>m``: share with ``pfs1_months`` / ``os_months`` > N;
* ``orr``: share with an objective response on line 1;
* ``ae_g34:<type>``: share with at least one grade 3/4 AE of that type on line 1
  (``any``: of any type).

Summaries over the ``R`` replicates: ``simulated`` = mean of the replicate values with the
Monte Carlo 95 % interval ``mean +- 1.96 sd / sqrt(R)`` (precision of the model's expected
trial result), and ``trial_lo``/``trial_hi`` = 2.5th / 97.5th percentiles of the replicate
values (where a trial of the published size would fall: a prediction interval).
Status: ``pass`` if ``|simulated - published|`` is within the goal tolerance (medians
relative 5 %, landmark rates 5 points, ORR and AE rates 3 points), ``accept`` if a median is
within the wider relative 10 %, else ``fail``.

Target role (:mod:`sim.target_roles`): ``in_sample`` if the target's evidence id went into
the model (a fit specification, a config ``sources`` entry or the OS calibration),
``out_of_sample`` otherwise. The printed table, ``report.md`` and the headline figure show
the two groups apart; the headline is the out-of-sample pass rate.
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim.run import executors
from sim.config import build_cohort, build_lifetable, build_rules, check_run_settings, to_container
from sim.errors import UserError, check, is_number, mapping, probability, sequence_of_str, whole
from sim.evidence import lookup
from sim.patients import CohortSpec
from sim.runio import atomic_run_dir, run_folder_name, write_manifest
from sim.strategies import Strategy
from sim.target_roles import target_roles
from sim.therapies import build_therapies

METRIC = re.compile(r"^(median_pfs|median_os|median_ttp|orr|(pfs|os)_rate_(\d+)m|ae_g34:([a-z0-9_]+))$")
METRIC_NAMES = "median_pfs, median_os, median_ttp, orr, pfs_rate_<N>m, os_rate_<N>m or ae_g34:<type>"
DEFAULT_TOLERANCES = {"median_relative": 0.05, "median_relative_accept": 0.10, "landmark_abs": 0.05, "rate_abs": 0.03}


# ---------------------------------------------------------------- designs

@dataclass(frozen=True)
class TrialArm:
    """One arm: a strategy (``lines`` + ``rules``) given to ``n`` patients."""

    name: str
    label: str
    lines: tuple[str, ...]
    rules: Mapping
    n: int
    #: whether the arm's patients may receive the post-trial lines (:func:`with_post_trial`)
    later_lines: bool = True


@dataclass(frozen=True)
class TrialDesign:
    """A published trial as data (``configs/trial/<key>.yaml``), validated at construction.

    ``published[arm][metric]`` is an evidence id; :meth:`targets` reads the values.
    """

    key: str
    name: str
    arms: tuple[TrialArm, ...]
    population: Mapping
    model: Mapping
    published: Mapping[str, Mapping[str, str]]

    @property
    def block(self) -> int:
        """Patients per replicate block (the largest arm)."""
        return max(a.n for a in self.arms)

    @classmethod
    def from_config(cls, key: str, cfg: Mapping) -> "TrialDesign":
        k = f"trials.{key}"
        check(isinstance(cfg, Mapping), k, cfg, "must be a trial design (mapping)")
        n_default = cfg.get("n_per_arm")
        arms_cfg = mapping(f"{k}.arms", cfg.get("arms"), allow_none=True)
        check(len(arms_cfg) >= 1, f"{k}.arms", arms_cfg, "must define at least one arm")
        arms = []
        for a, spec in arms_cfg.items():
            spec = mapping(f"{k}.arms.{a}", spec)
            n = spec.get("n", n_default)
            check(isinstance(n, int) and not isinstance(n, bool) and n >= 1, f"{k}.arms.{a}.n", n,
                  "must be a whole number >= 1 (or set n_per_arm)")
            lines = sequence_of_str(f"{k}.arms.{a}.lines", spec.get("lines"))
            check(len(lines) >= 1, f"{k}.arms.{a}.lines", lines, "must list therapies")
            later = spec.get("later_lines", True)
            check(isinstance(later, bool), f"{k}.arms.{a}.later_lines", later, "must be true or false")
            arms.append(TrialArm(str(a), str(spec.get("label", a)), tuple(lines),
                                 dict(mapping(f"{k}.arms.{a}.rules", spec.get("rules"), allow_none=True)), int(n),
                                 later))
        published = {}
        for a, metrics in mapping(f"{k}.published", cfg.get("published"), allow_none=True).items():
            check(a in arms_cfg, f"{k}.published", a, f"must name an arm of the trial {list(arms_cfg)}")
            for m, e in mapping(f"{k}.published.{a}", metrics).items():
                check(METRIC.match(str(m)) is not None, f"{k}.published.{a}", m,
                      f"must be {METRIC_NAMES}")
                check(isinstance(e, str), f"{k}.published.{a}.{m}", e, "must be an evidence id")
            published[str(a)] = {str(m): e for m, e in metrics.items()}
        return cls(key=key, name=str(cfg.get("name", key)), arms=tuple(arms),
                   population=dict(mapping(f"{k}.population", cfg.get("population"), allow_none=True)),
                   model=dict(mapping(f"{k}.model", cfg.get("model"), allow_none=True)),
                   published=published)

    def strategies(self, therapies: Mapping, post_trial: "PostTrial | None" = None) -> dict:
        """``{arm: Strategy}`` (with the post-trial lines of ``post_trial``, :func:`with_post_trial`);
        a bad arm is a :class:`UserError` naming ``trials.<key>.arms.<arm>``."""
        out = {}
        for a in self.arms:
            lines, rules = list(a.lines), dict(a.rules)
            if post_trial is not None and a.later_lines:
                lines, rules = with_post_trial(lines, rules, therapies, post_trial)
            out[a.name] = Strategy.from_config(a.name, {"label": a.label, "lines": lines, "rules": rules},
                                               therapies, key=f"trials.{self.key}.arms.{a.name}")
        return out

    def targets(self) -> pd.DataFrame:
        """Published figures: ``trial, arm, metric, evidence_id, published``."""
        rows = []
        for arm, metrics in self.published.items():
            for m, eid in metrics.items():
                try:
                    value = float(lookup(eid)["value"])
                except KeyError:
                    raise UserError(f"trials.{self.key}.published.{arm}.{m} names an unknown evidence id {eid!r}") from None
                rows.append(dict(trial=self.key, arm=arm, metric=m, evidence_id=eid, published=value))
        return pd.DataFrame(rows, columns=["trial", "arm", "metric", "evidence_id", "published"])


@dataclass(frozen=True)
class PostTrial:
    """What trial patients received after the trial drug and its reported crossover
    (``experiment.post_trial``; the seeds report no post-trial therapy).

    ``sequence``: agents of the model in the order they are offered; ``uptake``: probability
    that a patient whose previous line ended alive (progression or toxicity) takes the next one
    (a patient who declines one takes none of the later ones, so the number of later lines is
    geometric). Calibrated to published OS (:mod:`sim.calibration`)."""

    uptake: float
    sequence: tuple[str, ...]

    @classmethod
    def from_config(cls, cfg, therapies: Mapping, key: str = "experiment.post_trial") -> "PostTrial | None":
        if cfg is None:
            return None
        cfg = mapping(key, cfg)
        u = cfg.get("uptake")
        probability(f"{key}.uptake", u)
        seq = tuple(sequence_of_str(f"{key}.sequence", cfg.get("sequence")))
        for t in seq:
            check(t in therapies and therapies[t].kind == "active", f"{key}.sequence", t,
                  f"must name active therapies of the model {sorted(n for n, x in therapies.items() if x.kind == 'active')}")
        return cls(float(u), seq)


def with_post_trial(lines: list, rules: dict, therapies: Mapping, post: PostTrial) -> tuple[list, dict]:
    """An arm's lines and rules with the post-trial agents inserted before its terminal line:
    each agent of ``post.sequence`` whose exposure class the arm does not give already, with
    uptake ``post.uptake`` and ``after_decline: terminal``."""
    given = {therapies[t].exposure_class for t in lines[:-1] if t in therapies}
    extra = [t for t in post.sequence if therapies[t].exposure_class not in given and t not in lines]
    if not extra:
        return lines, rules
    rules = copy.deepcopy(rules)
    uptake = dict(rules.get("uptake") or {})
    decline = rules.get("after_decline", "next_line")
    decline = {t: decline for t in lines} if isinstance(decline, str) else dict(decline)
    for t in extra:
        uptake[t] = post.uptake
        decline[t] = "terminal"
    rules["uptake"], rules["after_decline"] = uptake, decline
    return lines[:-1] + extra + lines[-1:], rules


def post_trial_of(plain: Mapping, therapies: Mapping) -> PostTrial | None:
    """The validated ``experiment.post_trial`` of a composed config (None when absent)."""
    return PostTrial.from_config(mapping("experiment", plain.get("experiment")).get("post_trial"), therapies)


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``base`` updated recursively by ``over`` (new dict; mappings merged, other values replaced)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else copy.deepcopy(v)
    return out


def set_path(plain: dict, dotted: str, value) -> dict:
    """Copy of ``plain`` with ``dotted`` (e.g. ``therapies.bsc.pfs.median``) set to ``value``."""
    out = copy.deepcopy(plain)
    node = out
    *head, last = dotted.split(".")
    for part in head:
        check(isinstance(node, Mapping) and part in node, dotted, value, "must name an existing config path")
        node = node[part]
    check(isinstance(node, Mapping) and last in node, dotted, value, "must name an existing config path")
    node[last] = value
    return out


def load_designs(plain: Mapping, keys) -> list[TrialDesign]:
    """Designs of the trials ``keys`` from the composed config's ``trials`` group."""
    trials = mapping("trials", plain.get("trials"), allow_none=True)
    keys = sequence_of_str("experiment.trials", keys)
    check(len(keys) >= 1, "experiment.trials", keys, "must name at least one trial")
    for t in keys:
        if t not in trials:
            raise UserError(f"experiment.trials names an unknown trial {t!r}; known trials: {sorted(trials)}")
    return [TrialDesign.from_config(t, trials[t]) for t in keys]


# ---------------------------------------------------------------- simulation

@dataclass(frozen=True)
class PreparedTrial:
    """A trial's cohort (``replicates x block`` patients) and arms, ready to simulate.

    The cohort does not depend on model or therapy parameters, so calibration builds it once
    and re-simulates with new parameters on the same patients and uniforms.
    """

    design: TrialDesign
    replicates: int
    seed: int
    cohort: pd.DataFrame


def prepare_trial(plain: Mapping, design: TrialDesign, replicates: int) -> PreparedTrial:
    """Generate the trial cohort: ``cohort`` config merged with the trial's ``population``."""
    cohort = build_cohort(trial_cohort_config(plain, design, replicates), plain["seed"])
    return PreparedTrial(design, replicates, int(plain["seed"]), cohort)


def trial_cohort_config(plain: Mapping, design: TrialDesign, replicates: int) -> dict:
    """``cohort`` config of a trial: the run's cohort merged with the trial's ``population``,
    generated (``source`` ignored) with ``replicates x block`` patients (``cohort.n`` ignored)."""
    whole("experiment.replicates", replicates, 1)
    cohort_cfg = deep_merge(mapping("cohort", plain.get("cohort")), design.population)
    cohort_cfg["source"] = None
    cohort_cfg["n"] = replicates * design.block
    return cohort_cfg


def run_engine(plain: Mapping, *args, **kw):
    """:func:`sim.run.executors.simulate` with the validated run settings ``engine`` and ``chunk_size`` of ``plain``."""
    engine, chunk_size = check_run_settings(plain)
    return executors.simulate(*args, engine=engine, chunk_size=chunk_size, **kw)


def simulate_trial(plain: Mapping, prep: PreparedTrial) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(patients, lines)`` of every arm, with columns ``replicate`` and ``arm``; patients
    beyond an arm's ``n`` in a replicate block are dropped."""
    check_run_settings(plain)
    therapies = build_therapies(mapping("therapies", plain.get("therapies")))
    d = prep.design
    strategies = d.strategies(therapies, post_trial_of(plain, therapies))
    model_cfg = deep_merge(mapping("model", plain.get("model")), d.model)
    rules = build_rules(model_cfg)
    lifetable = build_lifetable(model_cfg)
    rec = run_engine(plain, prep.cohort, strategies, therapies, rules, lifetable, prep.seed)
    patients, lines, _ = rec.frames()
    n_arm = {a.name: a.n for a in d.arms}
    out = []
    for df in (patients, lines):
        df = df.rename(columns={"strategy": "arm"})
        df["replicate"] = (df["patient_id"] // d.block).astype(int)
        keep = (df["patient_id"] % d.block) < df["arm"].map(n_arm)
        out.append(df[keep].reset_index(drop=True))
    return out[0], out[1]


def km_median(x: np.ndarray) -> float:
    """Kaplan-Meier median of uncensored times: the ``ceil(n/2)``-th order statistic."""
    return float(np.quantile(np.asarray(x, float), 0.5, method="inverted_cdf"))


def km_median_censored(times, events) -> float:
    """Kaplan-Meier median of right-censored times (``events`` false = censored).

    Parameters
    ----------
    times : array-like of float
        Event or censoring times.
    events : array-like of bool
        True for an event, false for a censoring; at tied times events come first.

    Returns
    -------
    float
        The smallest time at which the Kaplan-Meier survival is at most 0.5 (``inf`` if the
        curve stays above 0.5). Without censoring it equals :func:`km_median`.
    """
    t = np.asarray(times, float)
    e = np.asarray(events, bool)
    order = np.lexsort((~e, t))
    t, e = t[order], e[order]
    at_risk = len(t) - np.arange(len(t))
    surv = np.cumprod(np.where(e, 1.0 - 1.0 / at_risk, 1.0))
    hit = np.flatnonzero(surv <= 0.5 + 1e-12)
    return float(t[hit[0]]) if hit.size else math.inf


def progression_events(patients: pd.DataFrame) -> np.ndarray:
    """Which first PFS events are progressions (not deaths before progression, not censorings).

    Parameters
    ----------
    patients : pandas.DataFrame
        Patient records with ``pfs1_months``, ``pfs1_event``, ``os_months`` and ``death``.

    Returns
    -------
    numpy.ndarray of bool
        True where PFS1 ended with a progression; a PFS1 that ends at the patient's death is a
        death before progression.
    """
    death_first = patients["death"].to_numpy(bool) & np.isclose(patients["os_months"].to_numpy(float),
                                                                 patients["pfs1_months"].to_numpy(float))
    return patients["pfs1_event"].to_numpy(bool) & ~death_first


def replicate_metrics(patients: pd.DataFrame, lines: pd.DataFrame, metrics: Mapping[str, list[str]]) -> pd.DataFrame:
    """Long table ``arm, replicate, metric, value`` for the requested ``{arm: [metric, ...]}``."""
    first = lines[lines["line"] == 1]
    rows = []
    for arm, mlist in metrics.items():
        p = patients[patients["arm"] == arm]
        f = first[first["arm"] == arm]
        f_by_rep = dict(tuple(f.groupby("replicate")))
        for r, g in p.groupby("replicate"):
            fl = f_by_rep.get(r, f.iloc[0:0])
            n = len(g)
            for m in mlist:
                mm = METRIC.match(m)
                if m == "median_pfs":
                    v = km_median(g["pfs1_months"])
                elif m == "median_os":
                    v = km_median(g["os_months"])
                elif m == "median_ttp":
                    v = km_median_censored(g["pfs1_months"], progression_events(g))
                elif mm.group(2):
                    col = "pfs1_months" if mm.group(2) == "pfs" else "os_months"
                    v = float((g[col] > float(mm.group(3))).mean())
                elif m == "orr":
                    v = float(fl["response"].sum()) / n
                elif mm.group(4) == "any":
                    v = float((fl["n_ae"] > 0).sum()) / n
                else:
                    ae = mm.group(4)
                    v = float(sum(ae in str(s).split(";") for s in fl["ae_types"])) / n
                rows.append((arm, int(r), m, v))
    return pd.DataFrame(rows, columns=["arm", "replicate", "metric", "value"])


def tolerance(metric: str, tol: Mapping) -> tuple[str, float, float]:
    """``(kind, goal, accept)``: ``relative`` for medians, ``absolute`` otherwise."""
    if metric.startswith("median_"):
        return "relative", tol["median_relative"], tol["median_relative_accept"]
    if "_rate_" in metric:
        return "absolute", tol["landmark_abs"], tol["landmark_abs"]
    return "absolute", tol["rate_abs"], tol["rate_abs"]


def compare(targets: pd.DataFrame, reps: pd.DataFrame, tol: Mapping) -> pd.DataFrame:
    """Published vs simulated per target (see the module docstring for the columns)."""
    rows = []
    for t in targets.itertuples():
        v = reps.loc[(reps["arm"] == t.arm) & (reps["metric"] == t.metric), "value"].to_numpy(float)
        R = len(v)
        mean = float(v.mean())
        se = float(v.std(ddof=1) / math.sqrt(R)) if R > 1 else math.nan
        kind, goal, accept = tolerance(t.metric, tol)
        err = (mean - t.published) / t.published if kind == "relative" else mean - t.published
        if kind == "relative" and t.published == 0:
            err = math.inf
        status = "pass" if abs(err) <= goal + 1e-12 else ("accept" if abs(err) <= accept + 1e-12 else "fail")
        lo, hi = (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if R > 1 else (mean, mean)
        rows.append(dict(trial=t.trial, arm=t.arm, metric=t.metric, evidence_id=t.evidence_id, published=t.published,
                         simulated=mean, mc_lo=mean - 1.96 * se, mc_hi=mean + 1.96 * se, trial_lo=lo, trial_hi=hi,
                         published_in_trial_interval=bool(lo <= t.published <= hi), error=err, error_kind=kind,
                         tolerance=goal, status=status, replicates=R))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- figures

def km_figure(patients: pd.DataFrame, design: TrialDesign, arm: TrialArm, targets: pd.DataFrame, path: Path) -> Path:
    """PFS and OS of one simulated arm: pooled survival curve, pointwise 95 % band of the
    replicate trials' curves, and the published points (medians at S = 0.5, landmark rates)."""
    matplotlib.use("Agg")

    p = patients[patients["arm"] == arm.name]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, col, what in ((axes[0], "pfs1_months", "pfs"), (axes[1], "os_months", "os")):
        tmax = float(np.quantile(p[col], 0.97))
        grid = np.linspace(0.0, tmax, 200)
        curves = np.array([(g[col].to_numpy()[:, None] > grid[None, :]).mean(axis=0) for _, g in p.groupby("replicate")])
        pooled = (p[col].to_numpy()[:, None] > grid[None, :]).mean(axis=0)
        if len(curves) > 1:
            ax.fill_between(grid, np.percentile(curves, 2.5, axis=0), np.percentile(curves, 97.5, axis=0),
                            step="post", alpha=0.25, label="95 % of simulated trials")
        ax.step(grid, pooled, where="post", label="simulated (pooled)")
        tg = targets[targets["arm"] == arm.name]
        for t in tg.itertuples():
            if t.metric == f"median_{what}":
                ax.plot([t.published], [0.5], "kD", label=f"published median {t.published:g}")
            m = METRIC.match(t.metric)
            if m and m.group(2) == what:
                ax.plot([float(m.group(3))], [t.published], "rs", label=f"published {t.metric} {t.published:g}")
        ax.set_xlabel("months")
        ax.set_title(f"{'PFS' if what == 'pfs' else 'OS'}")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("survival")
    fig.suptitle(f"{design.name}: {arm.label} (n = {arm.n} per trial)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- entry point

def tolerances(exp: Mapping) -> dict:
    """Goal tolerances: :data:`DEFAULT_TOLERANCES` updated by ``experiment.tolerances``."""
    tol = dict(DEFAULT_TOLERANCES) | dict(mapping("experiment.tolerances", exp.get("tolerances"), allow_none=True))
    for k, v in tol.items():
        check(is_number(v) and v >= 0, f"experiment.tolerances.{k}", v, "must be a number >= 0")
    return tol


def validate(plain: Mapping, keys, replicates: int, tol: Mapping):
    """Run the trials ``keys``: ``(table, replicate metrics, {trial: (design, patients)})``.

    Every trial's design, targets, arms, model and cohort overrides are validated before the
    first trial is simulated (:func:`check_designs`)."""
    designs = load_designs(plain, keys)
    all_targets = check_designs(plain, designs, replicates)
    tables, reps_all, sims = [], [], {}
    for design, targets in zip(designs, all_targets):
        prep = prepare_trial(plain, design, replicates)
        patients, lines = simulate_trial(plain, prep)
        wanted = {a: list(targets.loc[targets["arm"] == a, "metric"]) for a in targets["arm"].unique()}
        reps = replicate_metrics(patients, lines, wanted)
        tables.append(compare(targets, reps, tol))
        reps_all.append(reps.assign(trial=design.key))
        sims[design.key] = (design, patients, targets)
    return pd.concat(tables, ignore_index=True), pd.concat(reps_all, ignore_index=True), sims


def check_designs(plain: Mapping, designs: list[TrialDesign], replicates: int) -> list[pd.DataFrame]:
    """Validate every design against the run's config without simulating (a :class:`UserError`
    names the first bad key); returns each design's published targets."""
    check_run_settings(plain)
    therapies = build_therapies(mapping("therapies", plain.get("therapies")))
    out = []
    for d in designs:
        out.append(d.targets())
        d.strategies(therapies, post_trial_of(plain, therapies))
        model_cfg = deep_merge(mapping("model", plain.get("model")), d.model)
        build_rules(model_cfg)
        build_lifetable(model_cfg)
        CohortSpec.from_config(trial_cohort_config(plain, d, replicates))
    return out


ROLE_ORDER = ("out_of_sample", "in_sample")
ROLE_TITLES = {
    "out_of_sample": "Out of sample (no fit, config source or calibration uses the figure)",
    "in_sample": "In sample (fitted, a config input or an OS calibration target)",
}
STATUSES = ("pass", "accept", "fail")


def role_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{role: {"targets": n, "pass": .., "accept": .., "fail": ..}}`` for both roles.

    Parameters
    ----------
    table : pandas.DataFrame
        The validation table with columns ``target_role`` and ``status``.

    Returns
    -------
    dict
    """
    out = {}
    for role in ROLE_ORDER:
        g = table[table["target_role"] == role]
        counts = g["status"].value_counts().to_dict()
        out[role] = {"targets": len(g)} | {k: int(counts.get(k, 0)) for k in STATUSES}
    return out


def headline(table: pd.DataFrame) -> str:
    """One sentence: the out-of-sample pass rate (the headline figure), then the in-sample one.

    Parameters
    ----------
    table : pandas.DataFrame
        The validation table with columns ``target_role`` and ``status``.

    Returns
    -------
    str
    """
    c = role_counts(table)
    o, i = c["out_of_sample"], c["in_sample"]
    rate = f"{100 * o['pass'] / o['targets']:.0f} %" if o["targets"] else "n/a"
    return (f"Out-of-sample pass rate: {rate} ({o['pass']} of {o['targets']} targets within the goal tolerance; "
            f"accept {o['accept']}, fail {o['fail']}). In sample: {i['pass']} of {i['targets']} pass "
            f"(accept {i['accept']}, fail {i['fail']}).")


def _display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "trial": table["trial"], "arm": table["arm"], "metric": table["metric"],
        "published": table["published"].map(lambda v: f"{v:.3g}"),
        "simulated (MC 95% CI)": [f"{m:.3g} ({lo:.3g}-{hi:.3g})" for m, lo, hi in
                                  zip(table["simulated"], table["mc_lo"], table["mc_hi"])],
        "trial 95% range": [f"{lo:.3g}-{hi:.3g}" for lo, hi in zip(table["trial_lo"], table["trial_hi"])],
        "status": table["status"],
    })


def format_table(table: pd.DataFrame) -> str:
    """Printed result: the headline, then the out-of-sample and the in-sample targets apart.

    Parameters
    ----------
    table : pandas.DataFrame
        The validation table (:func:`compare` plus ``target_role``).

    Returns
    -------
    str
    """
    parts = [headline(table)]
    counts = role_counts(table)
    for role in ROLE_ORDER:
        g = table[table["target_role"] == role]
        c = counts[role]
        parts.append(f"\n{ROLE_TITLES[role]}: {c['targets']} targets; "
                     + ", ".join(f"{k}: {c[k]}" for k in STATUSES))
        if len(g):
            parts.append(_display(g).to_string(index=False))
    return "\n".join(parts)


def format_markdown(table: pd.DataFrame, replicates: int, seed: int) -> str:
    """``report.md`` of a validation run: headline, then one table per target role.

    Parameters
    ----------
    table : pandas.DataFrame
        The validation table (:func:`compare` plus ``target_role``, ``role_basis``).
    replicates : int
        Replicate trials per arm.
    seed : int
        Master seed of the run.

    Returns
    -------
    str
    """
    lines = ["# External validation", "",
             f"{replicates} replicate trials of the published size per arm, seed {seed}. "
             "A target is in sample when its figure went into the model (a fit specification, a config "
             "source or the OS calibration), out of sample otherwise (docs/validation.md).", "",
             f"**{headline(table)}**"]
    counts = role_counts(table)
    for role in ROLE_ORDER:
        g = table[table["target_role"] == role]
        c = counts[role]
        lines += ["", f"## {ROLE_TITLES[role]}", "",
                  f"{c['targets']} targets; " + ", ".join(f"{k} {c[k]}" for k in STATUSES), ""]
        if not len(g):
            continue
        d = _display(g)
        d["evidence id"] = g["evidence_id"].to_numpy()
        if role == "in_sample":
            d["used by"] = g["role_basis"].to_numpy()
        lines.append("| " + " | ".join(d.columns) + " |")
        lines.append("|" + "---|" * len(d.columns))
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=validation``: run folder and printed table."""
    t0 = time.perf_counter()
    plain = to_container(cfg)
    seed = whole("seed", plain.get("seed"), 0)
    exp = mapping("experiment", plain.get("experiment"))
    replicates = whole("experiment.replicates", exp.get("replicates", 200), 1)
    tol = tolerances(exp)
    table, reps, sims = validate(plain, exp.get("trials") or [], replicates, tol)
    roles = target_roles(table["evidence_id"])
    table = pd.concat([table, roles], axis=1)
    t1 = time.perf_counter()
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        table.to_csv(tmp / "validation.csv", index=False, float_format="%.6g")
        table.to_parquet(tmp / "validation.parquet", index=False)
        reps.to_parquet(tmp / "replicates.parquet", index=False)
        (tmp / "report.md").write_text(format_markdown(table, replicates, seed), encoding="utf-8")
        if plain.get("output", {}).get("figures", True):
            for key, (design, patients, targets) in sims.items():
                for arm in design.arms:
                    km_figure(patients, design, arm, targets, tmp / f"km_{key}_{arm.name}.png")
        t2 = time.perf_counter()
        write_manifest(tmp, plain, seed, {"simulate": t1 - t0, "write": t2 - t1, "total": t2 - t0},
                       {"replicates": replicates, "trials": list(sims), "tolerances": tol,
                        "status_counts": table["status"].value_counts().to_dict(),
                        "role_counts": role_counts(table)})
    return final, format_table(table)
