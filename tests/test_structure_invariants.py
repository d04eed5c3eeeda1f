"""Properties any clinician takes for granted, checked on the model with common random numbers.

Each test simulates the same patients (same seed, same cohort) under two strategies or two
parameter values and compares paired means; the tolerance is Z standard errors of the paired
difference (Monte Carlo error), never a tuned number.

* inserting an active line (of any efficacy) before an unchanged continuation, or appending an
  untreated line after the last active one, does not lower expected OS when its death hazard
  without progression is not above the one of the time it replaces (the disease-death hazard of
  the model is the patient's, never the drug's, and is below the refractory-disease hazard);
* lowering a line's progression hazard, all else equal, does not lower expected OS;
* the rate of death without progression on a line does not change when only that line's
  efficacy changes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.config import build_model
from sim.run.executors import simulate
from tests.conftest import compose_config

Z = 3.0
N = 3000
BASE = ["ssa", "sunitinib", "everolimus", "captem"]
#: the continuation is unchanged only without a line effect (an extra line makes later lines less effective)
NO_LINE_EFFECT = ["model.line_effect.hr_per_prior_line=1"]


def _os(overrides, strategies: dict[str, list[str]], n: int = N):
    """Per-strategy OS arrays (aligned by patient) of one run with common random numbers."""
    spec = ",".join(f"{k}:{{lines:[{','.join(v)}]}}" for k, v in strategies.items())
    names = list(strategies)
    cfg = compose_config([f"cohort.n={n}", "seed=4242", f"+strategies={{{spec}}}",
                          f"experiment.strategies=[{','.join(names)}]", f"experiment.reference={names[0]}",
                          "experiment.comparisons={}", *overrides])
    m = build_model(cfg)
    patients, lines, _ = simulate(m.cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed,
                                  engine="vectorised").frames()
    out = {s: g.sort_values("patient_id")["os_months"].to_numpy() for s, g in patients.groupby("strategy")}
    return out, lines


def _not_lower(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Paired mean difference a - b and its standard error."""
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


@pytest.mark.parametrize("inserted", ["sunitinib_rechallenge", "lu177_dotatate", "observation", "ssa"])
def test_inserting_a_line_before_an_unchanged_continuation_does_not_lower_expected_os(inserted):
    """A line inserted before CAPTEM (whatever its efficacy, even none) adds time before the same
    continuation: mean OS with it is not below mean OS without it beyond Monte Carlo error."""
    os_, _ = _os(NO_LINE_EFFECT, {"base": [*BASE, "bsc"], "plus": [*BASE[:3], inserted, BASE[3], "bsc"]})
    d, se = _not_lower(os_["plus"], os_["base"])
    assert d >= -Z * se, (inserted, d, se)


def test_an_untreated_line_appended_after_the_last_active_line_does_not_lower_expected_os():
    """Observation appended after CAPTEM, before best supportive care: mean OS not lower (default model)."""
    os_, _ = _os([], {"base": [*BASE, "bsc"], "plus": [*BASE, "observation", "bsc"]})
    d, se = _not_lower(os_["plus"], os_["base"])
    assert d >= -Z * se, (d, se)


def test_rechallenge_as_an_extra_line_does_not_lower_expected_os_in_the_default_model():
    """The default model (line effects on): rechallenge inserted before CAPTEM does not lower mean OS."""
    os_, _ = _os([], {"switch": [*BASE, "bsc"], "extra": [*BASE[:3], "sunitinib_rechallenge", BASE[3], "bsc"]})
    d, se = _not_lower(os_["extra"], os_["switch"])
    assert d >= -Z * se, (d, se)


@pytest.mark.parametrize("override", ["therapies.captem.pfs.median={m}", "therapies.everolimus.pfs.median={m}",
                                      "therapies.sunitinib_rechallenge.rechallenge.time_ratio={m}"])
def test_lowering_a_lines_progression_hazard_does_not_lower_expected_os(override):
    """Scaling one line's progression time up by 1.5 (all else equal) does not lower mean OS."""
    strategies = {"s": [*BASE[:3], "sunitinib_rechallenge", BASE[3], "bsc"]}
    base, _ = _os([], strategies)
    better, _ = _os([override.format(m=configured(override.split("=")[0]) * 1.5)], strategies)
    d, se = _not_lower(better["s"], base["s"])
    assert d >= -Z * se, (override, d, se)


def test_death_rate_without_progression_does_not_depend_on_the_lines_efficacy():
    """Deaths from disease without progression per month on CAPTEM lines: equal (within Poisson error)
    whether CAPTEM's progression time is as fitted or halved."""
    rates = []
    for scale in (1.0, 0.5):
        median = configured("therapies.captem.pfs.median") * scale
        _, lines = _os([f"therapies.captem.pfs.median={median}", "model.disease_death.rate_per_year=0.2"],
                       {"s": [*BASE, "bsc"]}, n=6000)
        cap = lines[lines["therapy"] == "captem"]
        deaths = int(((cap["reason"] == "death") & cap["progression_true"].isna()).sum())
        months = float((cap["end"] - cap["start"]).sum())
        rates.append((deaths / months, deaths))
    (r1, d1), (r2, d2) = rates
    se = math.sqrt(r1 ** 2 / d1 + r2 ** 2 / d2)
    assert abs(r1 - r2) <= Z * se, (rates, se)


def configured(path: str) -> float:
    """The default configuration's value at dotted ``path``."""
    from omegaconf import OmegaConf
    node = OmegaConf.to_container(compose_config([]), resolve=True)
    for part in path.split("."):
        node = node[part]
    return float(node)
