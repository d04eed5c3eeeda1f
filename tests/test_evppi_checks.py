"""EVPPI checks: noise floor, group >= member, and both on the shipped PSA (sim.uncertainty.voi,
sim.uncertainty.psa_analysis.evppi_table)."""

import numpy as np
import pandas as pd
import pytest

from sim.uncertainty import psa, voi

from conftest import compose_config


def _rows(nb: np.ndarray, x: np.ndarray, names) -> pd.DataFrame:
    S = len(nb)
    rows = []
    for d in range(nb.shape[1]):
        df = pd.DataFrame({"sample": np.arange(S), "strategy": f"s{d}", "cost": -nb[:, d], "qaly": 0.0})
        for j, n in enumerate(names):
            df[n] = x[:, j]
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def test_parameter_unrelated_to_net_benefit_is_within_the_noise_floor():
    """INB depends on x0 only: the EVPPI of the unrelated x1 is positive (the regression fits noise) but within
    the noise floor of one dummy parameter, while the EVPPI of x0 is far above it."""
    rng = np.random.default_rng(21)
    S = 600
    x = rng.normal(size=(S, 2))
    nb = np.column_stack([np.zeros(S), 400 * x[:, 0] + rng.normal(0, 800, S)])
    floor, mean = voi.noise_floor(nb, k=1, method="gam", replicates=20, seed=0)
    unrelated = voi.evppi(nb, x[:, 1], method="gam", n_boot=50)
    related = voi.evppi(nb, x[:, 0], method="gam", n_boot=50)
    assert 0 <= mean <= floor
    assert unrelated.value <= floor
    assert related.value > 5 * floor


def test_group_is_not_valued_below_its_member_when_the_gp_fails():
    """Few samples, ten parameters, one of them with a weak signal: the GP does not predict held-out samples and
    used to be replaced by the mean (group EVPPI 0 below the member's); the additive P-spline fallback keeps the
    group at least at its member, within the Monte Carlo error."""
    rng = np.random.default_rng(5)
    S = 120
    x = rng.normal(size=(S, 10))
    nb = np.column_stack([np.zeros(S), 300 * x[:, 0] + rng.normal(0, 900, S)])
    names = [f"x{j}" for j in range(10)]
    ev = psa.evppi_table(_rows(nb, x, names), ["s0", "s1"], {"group": names, "x0": ["x0"]}, [1.0], "auto", 100, 0,
                         noise_replicates=5).set_index("group")
    member = ev.loc["x0", "evppi"]
    assert member > 0
    assert ev.loc["group", "max_member"] == "x0"
    assert ev.loc["group", "max_member_evppi"] == pytest.approx(member, rel=0.05)
    assert bool(ev.loc["group", "group_ge_member"])
    assert "gp" in ev.loc["group", "method"] or "gam" in ev.loc["group", "method"]


@pytest.fixture(scope="module")
def shipped_samples():
    """The shipped PSA (parameter table and EVPPI groups of configs/psa/default.yaml), switch vs rechallenge,
    150 samples of 200 patients; the rechallenge cost is shifted by its mean INB at 30,000 per QALY (the price
    at which the decision changes), so the decision is uncertain whatever today's model figures are."""
    cfg = compose_config(["experiment=psa", "cohort.n=200", "experiment.strategies=[switch,rechallenge]",
                          "experiment.reference=switch", "psa.intervention=rechallenge", "psa.comparator=switch",
                          "psa.workers=1", "psa.samples=150", "output.figures=false"])
    cfg, plain, model, st, paramset, groups = psa.prepare(cfg)
    samples = psa.run_samples(cfg, paramset, range(150))
    pair = ["switch", "rechallenge"]
    C, Q = psa.matrices(samples, pair, "cost"), psa.matrices(samples, pair, "qaly")
    premium = float((30000 * (Q[:, 1] - Q[:, 0]) - (C[:, 1] - C[:, 0])).mean())
    samples.loc[samples["strategy"] == "rechallenge", "cost"] += premium
    return samples, groups, paramset


def test_group_ge_member_and_unused_parameter_within_noise_floor_on_the_shipped_psa(shipped_samples):
    """On the shipped PSA at the price where the decision changes: every group of several parameters is worth
    at least its best member (within Monte Carlo error), and 177Lu-dotatate PFS, used by neither compared
    strategy, has an EVPPI within the noise floor."""
    samples, groups, paramset = shipped_samples
    ev = psa.evppi_table(samples, ["switch", "rechallenge"], groups, [30000.0], "auto", 50, 0,
                         noise_replicates=20).set_index("group")
    assert ev.loc[psa.EVPI_GROUP, "evppi"] > 0
    multi = ev[ev["n_parameters"] > 1]
    assert len(multi) >= 3 and multi["group_ge_member"].astype(bool).all(), multi[["evppi", "max_member_evppi"]]
    assert bool(ev.loc["pfs_lu177", "within_noise_floor"]), ev.loc["pfs_lu177", ["evppi", "noise_floor"]]
    assert (ev.drop(psa.EVPI_GROUP)["evppi"] <= ev.loc[psa.EVPI_GROUP, "evppi"] + 2 * ev.loc[psa.EVPI_GROUP, "se"]
            + 2 * ev.drop(psa.EVPI_GROUP)["se"]).all()
