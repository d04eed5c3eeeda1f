"""Emulation of the seed-000 rechallenge trial (sim/emulation.py): exact binomial design, landmark
events, parameter draws and the model-based prediction."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.config import to_container
from sim.emulation import (Emulator, critical_value, draw_parameters, landmark_events, parameter_distributions, power,
                           power_table)
from sim.errors import UserError

REPO = Path(__file__).resolve().parents[1]
Z = 4.0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 120), p0=st.floats(0.05, 0.95), alpha=st.sampled_from([0.01, 0.025, 0.05, 0.1]))
def test_critical_value_is_the_smallest_level_alpha_rejection_bound(n, p0, alpha):
    """P(X >= c | p0) <= alpha, and c - 1 would exceed alpha (exact binomial, one-sided)."""
    c = critical_value(n, p0, alpha)
    assert stats.binom.sf(c - 1, n, p0) <= alpha
    assert c == 0 or stats.binom.sf(c - 2, n, p0) > alpha


def test_power_is_at_most_alpha_at_the_null_and_increases_with_the_true_rate():
    """Size <= alpha at p = p0; power grows with p and reaches 1 at p = 1."""
    p0, a = 0.405, 0.05
    assert power(40, p0, p0, a) <= a
    values = [power(40, p, p0, a) for p in np.linspace(0.3, 1.0, 15)]
    assert all(x <= y + 1e-15 for x, y in zip(values, values[1:])) and values[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("n,p", [(40, 0.6), (60, 0.5), (25, 0.7)])
def test_exact_power_agrees_with_simulated_trials(n, p):
    """The exact power equals the rejection share of 20,000 simulated single-arm trials (binomial MC error)."""
    p0, a, sims = 0.405, 0.05, 20_000
    rng = np.random.default_rng(20261122)
    x = rng.binomial(n, p, size=sims)
    reject = np.mean(stats.binom.sf(x - 1, n, p0) <= a)        # exact one-sided p-value <= alpha
    exact = power(n, p, p0, a)
    assert abs(reject - exact) <= Z * math.sqrt(exact * (1 - exact) / sims) + 1e-12


def test_power_table_has_one_row_per_size_and_rate():
    t = power_table([20, 40], {"low": 0.3, "model": 0.55}, 0.405, 0.05)
    assert len(t) == 4 and set(t["rate_label"]) == {"low", "model"}
    assert (t["actual_alpha"] <= 0.05).all()


def test_bad_design_values_are_user_errors():
    with pytest.raises(UserError, match="experiment.design.null_rate"):
        critical_value(20, 1.2, 0.05)


def test_landmark_event_uses_the_detecting_scan_and_deaths():
    """Progression counts when its scan is within 6 months; a death within 6 months counts; ITT after toxicity."""
    dt = 12 * 7 / (365.25 / 12)                  # 12-week scans in months (2.76)
    lines = pd.DataFrame({
        "patient_id": [0, 1, 2, 3], "therapy": "x", "start": 10.0,
        "pfs_true": [5.0, 5.9, 3.0, 20.0], "progression_true": [15.0, 15.9, np.nan, 30.0],
        "progression_detected": [10 + 2 * dt, np.nan, np.nan, np.nan],
        "reason": ["progression", "toxicity", "death", "toxicity"]})
    patients = pd.DataFrame({"patient_id": [0, 1, 2, 3], "death": [True, True, True, True],
                             "os_months": [40.0, 40.0, 13.0, 15.0]})
    ev = landmark_events(lines, patients, "x", 6.0, dt).set_index("patient_id")["event"]
    # 0: detected at 5.52; 1: drawn 5.9 -> scan at 8.28 (no event); 2: death at 3; 3: death 5 months after start
    assert list(ev) == [True, False, True, True]


def test_parameter_draws_follow_their_psa_distributions_and_are_reproducible():
    """Draws of the rechallenge parameters use the PSA distributions centred on the base case: the
    uniform elasticity stays in its assumption range, the log-normal time ratio has its median at the
    base case (log mean within Z standard errors), and the same seed gives the same draws."""
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        plain = to_container(compose("config"))
    paths = ["therapies.sunitinib_rechallenge.rechallenge.beta_time_off",
             "therapies.sunitinib_rechallenge.rechallenge.time_ratio"]
    dists = parameter_distributions(paths, REPO / "configs/psa/default.yaml", plain)
    d1, d2 = draw_parameters(dists, 400, 7), draw_parameters(dists, 400, 7)
    pd.testing.assert_frame_equal(d1, d2)
    lo, hi = dists[0].a, dists[0].b
    assert d1[paths[0]].between(lo, hi).all()
    base = plain["therapies"]["sunitinib_rechallenge"]["rechallenge"]["time_ratio"]
    assert abs(np.log(d1[paths[1]]).mean() - math.log(base)) < Z * dists[1].b / math.sqrt(400)


@pytest.fixture(scope="module")
def emulator():
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=emulation", "cohort.n=400"])
    return Emulator(to_container(cfg))


def test_emulated_patients_reached_rechallenge_after_sunitinib(emulator):
    """Every emulated patient is on the rechallenge line, and a longer rechallenge PFS (time ratio 1
    instead of 0.25) cannot lower the 6-month PFS on the same patients (common random numbers)."""
    low = emulator.simulate({"therapies.sunitinib_rechallenge.rechallenge.time_ratio": 0.25})
    high = emulator.simulate({"therapies.sunitinib_rechallenge.rechallenge.time_ratio": 1.0})
    assert len(low) == len(high) > 50
    assert (1 - high["event"].mean()) > (1 - low["event"].mean())
