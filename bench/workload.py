"""Benchmark: the canonical benchmark workload run by this project.

The workload (model-independent, for comparing implementations on the same machine): each patient
passes ``line1 -> line2 -> line3 -> BSC -> death``; sojourns (months) Weibull
``S(t) = exp(-(t/lam)^k)``, ``lam = median / ln(2)^(1/k)``, with

=========  =====================  =========  =========  ============  =======
state      distribution           A median   B median   cost / month  utility
=========  =====================  =========  =========  ============  =======
line1      Weibull k = 1.2        18         18         1000          0.77
line2      Weibull k = 1.1        11         9          3000          0.77
line3      exponential            6          8          2500          0.77
BSC        exponential (death)    5          5          500           0.61
=========  =====================  =========  =========  ============  =======

other-cause death at constant hazard ``MU = 0.004`` per month throughout, horizon 600 months,
continuous discounting ``exp(-r t)``, ``r = ln(1.035) / 12`` per month, exact over each interval.

How it is expressed with the project's own configuration (plain config dict, the format of
``configs/``, validated and built by :mod:`sim.config` / :mod:`sim.therapies` / :mod:`sim.strategies`):

* each state is a therapy (``kind: active`` for the lines, ``terminal`` for BSC) whose ``pfs`` is
  the sojourn; no response, adverse events, covariates or eligibility rules;
* strategies ``A = [line1, line2_a, line3_a, bsc]`` and ``B = [line1, line2_b, line3_b, bsc]``;
* ``model.disease_death.rate_per_year = 0`` (a line's PFS event is a progression),
  ``frailty_rho = 0``, ``horizon_years = 50`` (600 months);
* detection at scans: the project detects progression at the first scan after it, the workload
  has no detection lag, so ``imaging_interval_weeks = 1e-5`` (a scan every 2.3e-6 months: the
  mean lag, 1.1e-6 months, is 1e-7 of a median sojourn);
* constant other-cause hazard: a life table (written to a temporary folder) with
  ``q_x = 1 - exp(-12 MU)`` at every age up to ``max_age = 130``, and every patient aged 18: the
  project's piecewise-constant life-table hazard is then exactly ``MU`` per month for 112 years,
  beyond the horizon.

Costs and QALYs are computed here from the ``lines`` frame (state rate x the exact discounted
length of each line, :func:`sim.economics.discount.interval_factor`), not with
:mod:`sim.economics.evaluate`: its cost categories (drug price per day or per administration,
monitoring, BSC per month) would need a drug table per state to express a flat cost per month.

Reports (Markdown): pathways/s of each executor on the single run (N per strategy), and of the
vectorised executor on the PSA (S samples x N x 2; medians times ``exp(0.1 Z)``,
``Z = default_rng(20261122).standard_normal((S, 6))`` in the column order
``(m1, m2_A, m2_B, m3_A, m3_B, m_bsc)``); the means against the analytic values of WORKLOAD.md
(z = difference / Monte Carlo SE); and the PSA means against the average of the per-sample
analytic values (:func:`analytic`, quadrature), with z from the per-sample Monte Carlo SEs.

Usage::

    python bench/workload.py            # N = 10,000, S = 100, both executors on the single run
    python bench/workload.py --quick    # N = 2,000 (SimPy: 500), S = 10
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from sim.config import build_rules
from sim.economics.discount import interval_factor, monthly_rate
from sim.run.executors import simulate
from sim.lifetable import LifeTable
from sim.patients import validate_cohort
from sim.strategies import build_strategies
from sim.therapies import build_therapies

# ---------------------------------------------------------------- the workload (WORKLOAD.md)
MU = 0.004                      # other-cause death hazard per month
HORIZON = 600.0                 # months
ANNUAL_DISCOUNT = 0.035         # r = ln(1.035) / 12 per month
SHAPES = {"line1": 1.2, "line2": 1.1, "line3": 1.0, "bsc": 1.0}
COST = {"line1": 1000.0, "line2": 3000.0, "line3": 2500.0, "bsc": 500.0}          # per month
UTILITY = {"line1": 0.77, "line2": 0.77, "line3": 0.77, "bsc": 0.61}
#: base-case medians in the PSA column order (m1, m2_A, m2_B, m3_A, m3_B, m_bsc)
MEDIANS = np.array([18.0, 11.0, 9.0, 6.0, 8.0, 5.0])
PSA_SEED, PSA_SD = 20261122, 0.1
#: analytic means of WORKLOAD.md (cost and QALYs discounted, life-years undiscounted)
EXPECTED = {"A": {"cost": 73714.42, "qaly": 2.713987, "ly": 3.935854},
            "B": {"cost": 73090.03, "qaly": 2.722978, "ly": 3.949077}}
STRATEGY_STATES = {"A": ("line1", "line2_a", "line3_a", "bsc"), "B": ("line1", "line2_b", "line3_b", "bsc")}
COHORT_AGE = 18.0
MAX_AGE = 130
SEED = 20261122


def state_of(therapy: str) -> str:
    """Workload state of a therapy name (``line2_a`` -> ``line2``)."""
    return therapy.split("_")[0]


def medians_of(m: np.ndarray) -> dict[str, float]:
    """Therapy medians from the six PSA medians ``(m1, m2_A, m2_B, m3_A, m3_B, m_bsc)``."""
    return {"line1": m[0], "line2_a": m[1], "line2_b": m[2], "line3_a": m[3], "line3_b": m[4], "bsc": m[5]}


def plain_config(medians: np.ndarray, lifetable_path: str) -> dict:
    """The workload as a plain config (groups ``therapies``, ``strategies``, ``model``)."""
    therapies = {}
    for name, med in medians_of(medians).items():
        k = SHAPES[state_of(name)]
        pfs = {"family": "exponential", "median": float(med)} if k == 1.0 else \
              {"family": "weibull", "median": float(med), "shape": k}
        therapies[name] = {"label": name, "kind": "terminal" if name == "bsc" else "active", "pfs": pfs}
    strategies = {s: {"label": f"workload {s}", "lines": list(lines),
                      "rules": {"skip_ineligible": True, "after_toxicity": "next_line", "max_active_lines": None,
                                "holiday_months": {}}}
                  for s, lines in STRATEGY_STATES.items()}
    model = {"imaging_interval_weeks": 1e-5, "frailty_rho": 0.0, "disease_death": {"rate_per_year": 0.0},
             "horizon_years": HORIZON / 12.0, "covariate_reference": {},
             "background_mortality": {"table": lifetable_path, "max_age": MAX_AGE}}
    return {"therapies": therapies, "strategies": strategies, "model": model}


def write_constant_lifetable(folder: Path) -> Path:
    """Life table with ``q_x = 1 - exp(-12 MU)`` at ages 0..99 for both sexes (held to MAX_AGE)."""
    q = -math.expm1(-12.0 * MU)
    rows = [(age, sex, q) for sex in ("female", "male") for age in range(100)]
    path = folder / "constant_mu.csv"
    pd.DataFrame(rows, columns=["age", "sex", "qx"]).to_csv(path, index=False)
    return path


def build(medians: np.ndarray, lifetable_path: str):
    """(therapies, strategies, rules, lifetable) of the workload, through the project's builders."""
    plain = plain_config(medians, lifetable_path)
    therapies = build_therapies(plain["therapies"])
    strategies = build_strategies(plain["strategies"], therapies)
    rules = build_rules(plain["model"])
    lifetable = LifeTable.load(lifetable_path, MAX_AGE)
    return therapies, strategies, rules, lifetable


def cohort(n: int) -> pd.DataFrame:
    """``n`` identical patients aged 18 (the workload has no covariates)."""
    return validate_cohort(pd.DataFrame({
        "patient_id": np.arange(n), "age": COHORT_AGE, "sex": "male", "ecog": 0, "grade": "G1", "ki67": 2.0,
        "functional_status": "non_functioning", "sstr_positive": True, "hepatic_burden": "le25",
        "tempo": "indolent", "symptomatic_bulk": False, "diabetes": False, "mgmt_low": False,
        "prior_therapies": ""}))


# ---------------------------------------------------------------- outcomes from the frames
def per_patient(patients: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, patient): discounted cost and QALYs (years), undiscounted life-years.

    ``cost = sum_lines c_state * I(start, min(end, H))``, ``qaly = sum_lines u_state / 12 * I(...)``
    with ``I(a, b) = (e^{-ra} - e^{-rb}) / r`` (:func:`interval_factor`); ``ly = os_months / 12``
    (OS is censored at the horizon).
    """
    st = lines["therapy"].map(state_of)
    f = interval_factor(lines["start"].to_numpy(float), np.minimum(lines["end"].to_numpy(float), HORIZON),
                        ANNUAL_DISCOUNT)
    df = pd.DataFrame({"strategy": lines["strategy"].to_numpy(), "patient_id": lines["patient_id"].to_numpy(),
                       "cost": st.map(COST).to_numpy(float) * f,
                       "qaly": st.map(UTILITY).to_numpy(float) / 12.0 * f})
    out = df.groupby(["strategy", "patient_id"], sort=False).sum()
    ly = patients.set_index(["strategy", "patient_id"])["os_months"] / 12.0
    return out.join(ly.rename("ly")).reset_index()


def means_and_se(per: pd.DataFrame) -> pd.DataFrame:
    """Means, Monte Carlo SEs (sd / sqrt(n)) per strategy, and the paired B - A difference."""
    rows = {}
    for s, g in per.groupby("strategy", sort=False):
        rows[s] = {**{m: g[m].mean() for m in ("cost", "qaly", "ly")},
                   **{f"{m}_se": g[m].std(ddof=1) / math.sqrt(len(g)) for m in ("cost", "qaly", "ly")}}
    w = per.pivot(index="patient_id", columns="strategy")
    d = {m: (w[m]["B"] - w[m]["A"]) for m in ("cost", "qaly", "ly")}
    rows["B - A"] = {**{m: v.mean() for m, v in d.items()},
                     **{f"{m}_se": v.std(ddof=1) / math.sqrt(len(v)) for m, v in d.items()}}
    return pd.DataFrame(rows).T


# ---------------------------------------------------------------- analytic values (quadrature)
def analytic(medians: np.ndarray, dt: float = 0.01) -> dict[str, dict[str, float]]:
    """Expected discounted cost, QALYs and undiscounted LYs per strategy, by quadrature.

    With ``T_j`` the sum of the first ``j`` sojourns (``F_j`` its CDF, ``F_0 = 1``) and independent
    other-cause death ``D ~ Exp(MU)``, the patient is alive in state ``j`` at ``t`` with probability
    ``e^{-MU t} (F_{j-1}(t) - F_j(t))``, so

    ``E[cost] = sum_j c_j int_0^H e^{-(r + MU) t} (F_{j-1}(t) - F_j(t)) dt`` (QALYs: ``u_j / 12``),
    ``E[LY] = int_0^H e^{-MU t} (1 - F_4(t)) dt / 12``.

    ``F_j`` by convolution of the sojourns' exact cell masses on a grid of step ``dt`` (each cell's
    mass spread over its cell), integrals by the trapezoidal rule. With ``dt = 0.01`` this reproduces
    the WORKLOAD.md values to < 2e-7 relative (their rounding).
    """
    r = monthly_rate(ANNUAL_DISCOUNT)
    n = int(round(HORIZON / dt))
    edges = np.arange(n + 1) * dt
    med = medians_of(medians)
    out = {}
    for s, states in STRATEGY_STATES.items():
        pmf_sum = None                        # mass of T_j at cell midpoints shifted: T_j ~ (i + j/2) dt
        cdfs = []
        for name in states:
            k = SHAPES[state_of(name)]
            lam = med[name] / math.log(2) ** (1 / k)
            cdf_edges = -np.expm1(-(edges / lam) ** k)
            pmf = np.diff(cdf_edges)
            pmf_sum = pmf if pmf_sum is None else fftconvolve(pmf_sum, pmf)[:n]
            pmf_sum = np.clip(pmf_sum, 0.0, None)
            j = len(cdfs) + 1
            # CDF of T_j at the grid times t_i = i dt: mass m sits at (m + j/2) dt, spread uniformly
            # over the cell around it, so the CDF reaches cumsum[m] at (m + j/2 + 1/2) dt
            pos = (np.arange(n) + j / 2 + 0.5) * dt
            cdfs.append(np.interp(edges, pos, np.cumsum(pmf_sum), left=0.0))
        t = edges
        cost = qaly = 0.0
        prev = np.ones_like(t)
        for name, cdf in zip(states, cdfs):
            occ = np.exp(-(r + MU) * t) * (prev - cdf)
            integral = np.trapezoid(occ, t)
            cost += COST[state_of(name)] * integral
            qaly += UTILITY[state_of(name)] / 12.0 * integral
            prev = cdf
        ly = np.trapezoid(np.exp(-MU * t) * (1.0 - cdfs[-1]), t) / 12.0
        out[s] = {"cost": cost, "qaly": qaly, "ly": ly}
    return out


# ---------------------------------------------------------------- runs
def run_single(n: int, engine: str, lt: str, sample: int = 0, medians=MEDIANS):
    therapies, strategies, rules, lifetable = build(medians, lt)
    t = time.perf_counter()
    rec = simulate(cohort(n), strategies, therapies, rules, lifetable, SEED, engine=engine, sample=sample)
    patients, lines, _ = rec.frames()
    secs = time.perf_counter() - t
    return per_patient(patients, lines), secs


def table(rows, header) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="canonical workload (WORKLOAD.md)")
    ap.add_argument("--quick", action="store_true", help="N = 2,000 (SimPy 500), S = 10")
    ap.add_argument("--n", type=int, default=None, help="patients per strategy (default 10,000)")
    ap.add_argument("--simpy-n", type=int, default=None, help="patients per strategy for SimPy (default N)")
    ap.add_argument("--samples", type=int, default=None, help="PSA samples S (default 100)")
    ap.add_argument("--skip-simpy", action="store_true", help="time only the vectorised executor")
    a = ap.parse_args(argv)
    n = a.n or (2_000 if a.quick else 10_000)
    n_simpy = a.simpy_n or (500 if a.quick else n)
    S = a.samples or (10 if a.quick else 100)

    print(f"# Canonical workload ({'quick mode' if a.quick else 'full size'})\n")
    print(f"{datetime.date.today()}, {platform.machine()}, Python {platform.python_version()}, one process\n")
    with tempfile.TemporaryDirectory() as tmp:
        lt = str(write_constant_lifetable(Path(tmp)))
        run_single(20, "vectorised", lt)                                   # warm-up
        per, t_vec = run_single(n, "vectorised", lt)
        speed = [("vectorised", f"{2 * n:,}", f"{t_vec:.2f}", f"{2 * n / t_vec:,.0f}")]
        if not a.skip_simpy:
            per_s, t_spy = run_single(n_simpy, "simpy", lt)
            same = per_s.equals(per[per["patient_id"] < n_simpy].reset_index(drop=True))
            speed.append(("simpy", f"{2 * n_simpy:,}", f"{t_spy:.2f}",
                          f"{2 * n_simpy / t_spy:,.0f}" + ("" if same else " (results differ!)")))
        print("## Single run (base case)\n")
        print(table(speed, ["executor", "pathways", "seconds", "pathways/s"]))

        ms = means_and_se(per)
        print(f"\nMeans (vectorised, N = {n:,} per strategy) vs the analytic values of WORKLOAD.md, "
              "z = (mean - analytic) / MC SE:\n")
        rows = []
        exp = {**EXPECTED, "B - A": {m: EXPECTED["B"][m] - EXPECTED["A"][m] for m in ("cost", "qaly", "ly")}}
        for s in ("A", "B", "B - A"):
            for m in ("cost", "qaly", "ly"):
                z = (ms.loc[s, m] - exp[s][m]) / ms.loc[s, f"{m}_se"]
                rows.append((s, m, f"{ms.loc[s, m]:,.4f}", f"{ms.loc[s, f'{m}_se']:,.4f}", f"{exp[s][m]:,.4f}",
                             f"{z:+.2f}"))
        print(table(rows, ["strategy", "outcome", "mean", "MC SE", "analytic", "z"]))
        q = analytic(MEDIANS)
        print("\nQuadrature of this script at the base case (check of `analytic`): "
              + "; ".join(f"{s}: cost {q[s]['cost']:,.2f}, QALYs {q[s]['qaly']:.6f}, LYs {q[s]['ly']:.6f}"
                          for s in ("A", "B")))

        # ---------------- PSA
        z = np.random.default_rng(PSA_SEED).standard_normal((S, 6))
        per_sample, expected = [], []
        t = time.perf_counter()
        t_sim = 0.0
        for s in range(S):
            med = MEDIANS * np.exp(PSA_SD * z[s])
            p, secs = run_single(n, "vectorised", lt, sample=s, medians=med)
            t_sim += secs
            m = means_and_se(p)
            m["sample"] = s
            per_sample.append(m)
            expected.append(analytic(med))
        t_psa = time.perf_counter() - t
        print(f"\n## PSA: S = {S} x N = {n:,} x 2 strategies (vectorised)\n")
        print(table([(f"{S * 2 * n:,}", f"{t_psa:.1f}", f"{t_sim:.1f}", f"{S * 2 * n / t_sim:,.0f}")],
                    ["pathways", "seconds (total)", "seconds (simulate + frames)", "pathways/s"]))
        print("\nPSA means (average over samples of the per-sample means) vs the average of the per-sample "
              "analytic values; z from the per-sample MC SEs, sqrt(sum SE_s^2) / S:\n")
        rows = []
        for s in ("A", "B", "B - A"):
            for m in ("cost", "qaly", "ly"):
                means = np.array([x.loc[s, m] for x in per_sample])
                ses = np.array([x.loc[s, f"{m}_se"] for x in per_sample])
                ex = np.array([e[s][m] if s != "B - A" else e["B"][m] - e["A"][m] for e in expected])
                se = math.sqrt(float(np.sum(ses ** 2))) / S
                rows.append((s, m, f"{means.mean():,.4f}", f"{ex.mean():,.4f}", f"{se:,.4f}",
                             f"{(means.mean() - ex.mean()) / se:+.2f}"))
        print(table(rows, ["strategy", "outcome", "PSA mean", "analytic mean", "MC SE", "z"]))


if __name__ == "__main__":
    main()
