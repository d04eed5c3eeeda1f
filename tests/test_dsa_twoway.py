"""Two-way and threshold analyses of the DSA (sim/uncertainty/dsa_twoway.py): closed forms where INB is
linear in a price, reuse of the base-case simulation, the grid, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import open_dict

from sim.config import to_container
from sim.uncertainty.dsa import ArmRunner, contrast, dsa_settings
from sim.uncertainty.dsa_twoway import threshold, two_way_table, twoway_settings
from sim.uncertainty.psa import economics_spec, with_economics
from sim.errors import UserError
from tests.conftest import compose_config

CAPTEM = "economics.drugs.captem.price_per_administration"
SUN = "economics.drugs.sunitinib.pack_price"
TR = "therapies.sunitinib_rechallenge.rechallenge.time_ratio"


def _setup(*overrides, captem_high=100000.0):
    cfg = compose_config(["experiment=dsa", "cohort.n=60", "output.figures=false", "output.progress=false",
                          "experiment.scenarios=null", f"experiment.select=[{CAPTEM},{SUN},{TR}]", *overrides])
    with open_dict(cfg):        # a range wide enough for the preferred strategy to change (switch gives CAPTEM)
        cfg.experiment.parameters[CAPTEM] = {"low": 0.0, "high": captem_high, "source": "test range"}
    cfg = with_economics(cfg)
    plain = to_container(cfg)
    st = dsa_settings(plain, economics_spec(plain))
    return cfg, plain, st


def test_threshold_of_a_price_equals_the_root_of_the_linear_inb():
    """INB is exactly linear in a price: the root is low - INB(low) (high - low) / (INB(high) - INB(low))."""
    cfg, plain, st = _setup()
    runner = ArmRunner(cfg, keep=16)
    p = next(q for q in st.parameters if q.path == CAPTEM)
    row = threshold(runner, st, p, 1e-6)
    lo, hi = row["inb_low"], row["inb_high"]
    assert lo * hi < 0
    exact = p.low - lo * (p.high - p.low) / (hi - lo)
    assert row["threshold"] == pytest.approx(exact, abs=1e-5 * (p.high - p.low))
    at = contrast(runner.per_patient({CAPTEM: row["threshold"]})[0], st.intervention, st.comparator, st.primary_wtp)
    assert abs(at["inb"]) < 1e-3 * abs(hi - lo)
    assert {row["preferred_below"], row["preferred_above"]} == {st.intervention, st.comparator}
    assert runner.n_simulations == 1                     # economics-only: the base-case simulation reused


def test_threshold_without_a_sign_change_reports_the_strategy_preferred_throughout():
    cfg, plain, st = _setup(captem_high=1.0)
    p = next(q for q in st.parameters if q.path == CAPTEM)
    row = threshold(ArmRunner(cfg, keep=16), st, p, 1e-3)
    assert np.isnan(row["threshold"]) and "preferred throughout" in row["note"]


def test_two_way_grid_corner_equals_the_one_way_arm_and_simulates_each_model_value_once():
    cfg, plain, st = _setup(f"experiment.two_way={{x: {TR}, y: {SUN}, n: 3}}")
    tw = twoway_settings(plain, st)
    runner = ArmRunner(cfg, keep=16)
    runner.per_patient({})
    grid = two_way_table(runner, st, tw)
    assert len(grid) == 9
    assert runner.n_simulations == 1 + 3                 # base case + one per value of the model parameter
    corner = grid[(grid["x"] == tw.x.low) & (grid["y"] == tw.y.low)].iloc[0]
    one = contrast(runner.per_patient({TR: tw.x.low, SUN: tw.y.low})[0], st.intervention, st.comparator,
                   st.primary_wtp)
    assert corner["inb"] == pytest.approx(one["inb"], rel=1e-12)
    # INB is linear in the price along each column of the model parameter
    for _, col in grid.groupby("x"):
        d = np.diff(col.sort_values("y")["inb"].to_numpy())
        assert d[0] == pytest.approx(d[1], rel=1e-9)


def test_dsa_run_writes_two_way_and_threshold_tables(tmp_path):
    from sim.uncertainty.dsa import run_dsa

    cfg, plain, st = _setup(f"output.root={tmp_path}", f"experiment.two_way={{x: {TR}, y: {SUN}, n: 2}}",
                            f"experiment.thresholds=[{CAPTEM}]")
    folder, tables = run_dsa(cfg)
    assert (folder / "two_way.csv").is_file() and (folder / "thresholds.csv").is_file()
    assert len(tables["two_way"]) == 4 and len(tables["thresholds"]) == 1


@pytest.mark.parametrize("override,key", [
    ("experiment.two_way={x: nosuch.path, y: economics.bsc_per_month}", "experiment.two_way.x"),
    (f"experiment.two_way={{x: {SUN}, y: {SUN}}}", "experiment.two_way.y"),
    (f"experiment.two_way={{x: {SUN}, y: {TR}, n: 1}}", "experiment.two_way.n"),
    ("experiment.thresholds=[nosuch]", r"experiment.thresholds\[0\]"),
    ("experiment.threshold_xtol=2", "experiment.threshold_xtol"),
])
def test_bad_two_way_or_threshold_settings_are_user_errors(override, key):
    cfg, plain, st = _setup(override)
    with pytest.raises(UserError, match=key):
        twoway_settings(plain, st)
