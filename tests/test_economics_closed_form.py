"""Acceptance test of issue 4: simulated discounted costs, life-years and QALYs through the real
engine agree with their closed form.

Model: lines ``a1 -> a2 -> bsc``, exponential true PFS on each active line (rates ``l1``, ``l2``),
exponential time to disease death on BSC (``l3``); no AEs, no responses that matter, frailty 0,
no disease death without progression, no background mortality (a life table stub that never kills),
a horizon far beyond every death. Costs: a drug cost per month on each active line, labs per
month on treatment, a scan cost per scheduled scan, BSC per month, end-of-life one-off.

Scan grid. Progression is detected at the first scan after the true progression ``T ~ Exp(l)``:
``D = dt * N`` with ``N = ceil(T / dt)`` geometric, ``P(N = n) = (1 - q) q^(n-1)``, ``q = exp(-l dt)``.
Rather than shrink ``dt`` and bound the error, the expectation below includes the grid exactly
(``dt`` = 12 weeks, the model default). With ``rho = exp(-r dt)`` and ``r = ln(1 + d) / 12``:

* ``g = E[exp(-r D)] = (1 - q) rho / (1 - q rho)`` (start of the next line is discounted by ``g``;
  line 2 starts at ``D1``, BSC at ``D1 + D2``, independent, so factors multiply);
* ``E[int_0^D exp(-r t) dt] = (1 - g) / r`` (``E[D] = dt / (1 - q)`` if ``r = 0``): time on the line;
* ``E[int_0^T exp(-r t) dt] = 1 / (l + r)``: progression-free part; the rest of the line (detection
  lag) is progressed (convention of :mod:`sim.economics.qalys`);
* scans at ``dt, 2 dt, ..., N dt``: ``E[sum_{k<=N} rho^k] = rho / (1 - q rho)``;
* BSC: ``E[int_0^T3 exp(-r t) dt] = 1 / (l3 + r)``, death at its end ``E[exp(-r T3)] = l3 / (l3 + r)``.

Each simulated mean must lie within 3 Monte Carlo standard errors (``sd / sqrt(n)``) of the closed
form, for annual discount rates 0 % and 3.5 %.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from sim.economics import EconomicsSpec, evaluate, load_spec, summarise
from sim.run.engine import simulate
from sim.patients import CohortSpec, generate_cohort
from sim.strategies import Strategy
from sim.kernel.line import ModelRules
from sim.therapies import Therapy
from sim.units import weeks

ROOT = Path(__file__).resolve().parents[1]
MEDIANS = {"a1": 10.0, "a2": 6.0, "bsc": 8.0}
DT = weeks(12)
PRICE = {"a1": 3000.0, "a2": 1500.0}     # per month on treatment
LABS, SCAN, BSC, EOL = 40.0, 300.0, 700.0, 5000.0
U_PF, U_PD = 0.8, 0.55
N = 4000


class NoBackgroundDeath:
    """Life-table stub: other-cause death never happens."""

    def death_time_months(self, age, sex, u):
        return np.full(len(np.asarray(age)), np.inf)


def _spec(rate: float) -> EconomicsSpec:
    base = load_spec("uk_nhs").config
    cfg = dict(base)
    cfg.update(
        drugs={n: {"schedule": "daily", "price_per_day": p / (365.25 / 12)} for n, p in PRICE.items()},
        therapy_drugs={"a1": "a1", "a2": "a2", "bsc": None},
        monitoring={"scan": SCAN, "labs_per_month": LABS},
        adverse_events={"default": 0.0},
        bsc_per_month=BSC,
        end_of_life=EOL,
        utilities={"set": "test", "sets": {"test": {"progression_free": U_PF, "progressed": U_PD}},
                   "ae_disutility": {"default": 0.0}},
        discount={"costs": rate, "effects": rate},
        ranges={},
    )
    return EconomicsSpec.from_config(cfg)


@pytest.fixture(scope="module")
def run():
    therapies = {
        "a1": Therapy.from_config("a1", {"kind": "active", "pfs": {"family": "exponential", "median": MEDIANS["a1"]}}),
        "a2": Therapy.from_config("a2", {"kind": "active", "pfs": {"family": "exponential", "median": MEDIANS["a2"]}}),
        "bsc": Therapy.from_config("bsc", {"kind": "terminal", "pfs": {"family": "exponential", "median": MEDIANS["bsc"]}}),
    }
    strategy = Strategy.from_config("seq", {"lines": ["a1", "a2", "bsc"]}, therapies)
    rules = ModelRules(imaging_interval_months=DT, frailty_rho=0.0,
                       covariate_reference={}, horizon_months=1e7)
    ccfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "cohort" / "default.yaml"), resolve=True)
    ccfg["n"] = N
    cohort = generate_cohort(CohortSpec.from_config(ccfg), 11)
    rec = simulate(cohort, {"seq": strategy}, therapies, rules, NoBackgroundDeath(), seed=11)
    return rec.frames()


def closed_form(rate: float) -> dict[str, float]:
    """Expected discounted outcomes per patient (years for effects)."""
    r = math.log1p(rate) / 12
    lam = {k: math.log(2) / m for k, m in MEDIANS.items()}
    rho = math.exp(-r * DT)
    q = {k: math.exp(-lam[k] * DT) for k in ("a1", "a2")}
    g = {k: (1 - q[k]) * rho / (1 - q[k] * rho) for k in q}
    on = {k: (DT / (1 - q[k]) if r == 0 else (1 - g[k]) / r) for k in q}     # E int_0^D e^{-rt}
    pf = {k: 1 / (lam[k] + r) for k in q}
    scans = {k: rho / (1 - q[k] * rho) for k in q}
    bsc_t = 1 / (lam["bsc"] + r)
    w2, w3 = g["a1"], g["a1"] * g["a2"]                                       # discount at line starts
    ly = on["a1"] + w2 * on["a2"] + w3 * bsc_t
    pf_t = pf["a1"] + w2 * pf["a2"]
    pd_t = ly - pf_t
    return {
        "ly": ly / 12,
        "pf_ly": pf_t / 12,
        "qaly": (U_PF * pf_t + U_PD * pd_t) / 12,
        "cost_drug": PRICE["a1"] * on["a1"] + w2 * PRICE["a2"] * on["a2"],
        "cost_monitoring": LABS * (on["a1"] + w2 * on["a2"]) + SCAN * (scans["a1"] + w2 * scans["a2"]),
        "cost_bsc": BSC * w3 * bsc_t,
        "cost_end_of_life": EOL * w3 * lam["bsc"] / (lam["bsc"] + r),
        "cost_total": (PRICE["a1"] * on["a1"] + w2 * PRICE["a2"] * on["a2"]
                       + LABS * (on["a1"] + w2 * on["a2"]) + SCAN * (scans["a1"] + w2 * scans["a2"])
                       + BSC * w3 * bsc_t + EOL * w3 * lam["bsc"] / (lam["bsc"] + r)),
    }


@pytest.mark.parametrize("rate", [0.0, 0.035])
def test_discounted_outcomes_match_closed_form(run, rate):
    """Mean (discounted) LYs, QALYs and costs by category are within 3 MC SEs of the closed form."""
    patients, lines, events = run
    per = evaluate(patients, lines, events, _spec(rate), imaging_interval_months=DT)
    s = summarise(per).iloc[0]
    expected = closed_form(rate)
    suffix = "_disc"
    for m, want in expected.items():
        got, se = s[m + suffix], s[m + suffix + "_se"]
        # se = 0 only for a constant outcome (undiscounted end-of-life cost: every patient dies)
        assert abs(got - want) <= max(3 * se, 1e-9 * abs(want)), f"{m} at {rate:.1%}: simulated {got:.6g} (SE {se:.3g}) vs closed form {want:.6g}"


def test_inferred_imaging_interval_gives_same_costs(run):
    """Scan timing inferred from the lines table equals the configured interval (same discounted costs)."""
    patients, lines, events = run
    spec = _spec(0.035)
    a = evaluate(patients, lines, events, spec, imaging_interval_months=DT)
    b = evaluate(patients, lines, events, spec)
    np.testing.assert_allclose(a["cost_monitoring_disc"], b["cost_monitoring_disc"], rtol=1e-12)


def test_discounting_lowers_every_outcome(run):
    """At 3.5 % every discounted outcome is below its undiscounted value (all accrue after time 0)."""
    patients, lines, events = run
    s = summarise(evaluate(patients, lines, events, _spec(0.035), imaging_interval_months=DT)).iloc[0]
    for m in ("ly", "qaly", "cost_total", "cost_drug", "cost_end_of_life"):
        assert s[m + "_disc"] < s[m]
