"""Deterministic sensitivity analysis: a small run through :func:`sim.uncertainty.dsa.run_dsa`
(the smoke overrides of ``configs/experiment/dsa.yaml`` plus a few parameters) and the
identities that common random numbers make exact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.uncertainty.dsa import ArmRunner, contrast, dsa_settings, quadrant, run_dsa
from sim.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SELECT = ("experiment.select=[economics.drugs.sunitinib.pack_price,economics.drugs.lu177_dotatate.*,"
          "therapies.sunitinib_rechallenge.rechallenge.time_ratio]")


@pytest.fixture(scope="module")
def dsa(tmp_path_factory):
    from hydra import compose, initialize_config_dir

    root = tmp_path_factory.mktemp("dsa")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=dsa", "cohort.n=40", "output.figures=true", f"output.root={root}",
                                           "output.progress=false", SELECT])
    folder, tables = run_dsa(cfg)
    return cfg, folder, tables


def test_dsa_run_writes_tornado_scenarios_and_manifest(dsa):
    """The run folder holds the tornado and scenario tables (CSV + Parquet), the figure and the manifest."""
    _, folder, tables = dsa
    for name in ("tornado", "scenarios", "scenario_incremental"):
        assert (folder / f"{name}.csv").is_file() and (folder / f"{name}.parquet").is_file()
    assert (folder / "tornado.png").is_file() and (folder / "manifest.json").is_file()
    t = tables["tornado"]
    assert set(t["parameter"]) == {"economics.drugs.sunitinib.pack_price",
                                   "economics.drugs.lu177_dotatate.price_per_administration",
                                   "economics.drugs.lu177_dotatate.administration_cost",
                                   "therapies.sunitinib_rechallenge.rechallenge.time_ratio"}
    assert list(t["swing"]) == sorted(t["swing"], reverse=True)
    assert list(tables["scenarios"]["scenario"]) == ["base_case", "discount_0", "discount_3", "discount_6",
                                                     "horizon_10y", "utilities_meng2017", "imaging_8w", "imaging_16w",
                                                     "drug_costing_packs"]
    inc = tables["scenario_incremental"]
    assert set(inc["scenario"]) == set(tables["scenarios"]["scenario"])


def test_dsa_run_writes_base_case_tables_figures_and_report(dsa):
    """The DSA folder also holds the base case's costs by category, incremental analysis, economic inputs,
    Kaplan-Meier figures and a report with the tornado, the scenarios and the base case."""
    _, folder, tables = dsa
    for name in ("base_economics_summary", "base_incremental", "base_summary", "economics_inputs"):
        assert (folder / f"{name}.csv").is_file() and (folder / f"{name}.parquet").is_file() and len(tables[name])
    assert (folder / "km_overview.png").is_file()
    md = (folder / "report.md").read_text()
    for needle in ("Base case: discounted costs by category", "Scenario analyses", "](tornado.png)",
                   "](km_overview.png)", "Economic inputs", "sunitinib pack price"):
        assert needle in md, needle
    base = tables["scenarios"].set_index("scenario").loc["base_case"]
    s = tables["base_economics_summary"].set_index("strategy")
    assert base["delta_cost"] == pytest.approx(s.loc["rechallenge_then_captem", "cost_total_disc"]
                                                 - s.loc["captem_then_rechallenge", "cost_total_disc"])


def test_one_way_ranges_skip_inputs_the_analysis_does_not_use(compose_cfg):
    """economics.ranges of another utility set, and AE decrements of AE types the set in use values by a state
    utility (Swinburn: hand-foot syndrome, stomatitis), are not tornado rows; the state utilities are."""
    from sim.config import to_container
    from sim.economics.spec import EconomicsSpec

    plain = to_container(compose_cfg(["experiment=dsa"]))
    paths = {p.path for p in dsa_settings(plain, EconomicsSpec.from_config(plain["economics"])).parameters}
    assert "economics.utilities.sets.swinburn2012.ae_states.stomatitis" in paths
    assert "economics.utilities.ae_disutility.default" in paths
    assert not {"economics.utilities.ae_disutility.stomatitis", "economics.utilities.ae_disutility.hand_foot_syndrome",
                "economics.utilities.sets.meng2017.progression_free"} & paths


def test_parameters_of_an_absent_strategy_have_no_effect(dsa):
    """PRRT is not compared: its prices move neither strategy (swing exactly 0, CRN and reused simulation)."""
    t = dsa[2]["tornado"].set_index("parameter")
    for p in ("economics.drugs.lu177_dotatate.price_per_administration",
              "economics.drugs.lu177_dotatate.administration_cost"):
        assert t.loc[p, "swing"] == 0.0
        assert t.loc[p, "inb_low"] == t.loc[p, "inb_base"]


def test_range_end_at_base_value_reproduces_the_base_case(dsa):
    """The sunitinib list price is the top of its range: that arm equals the base case exactly."""
    t = dsa[2]["tornado"].set_index("parameter")
    row = t.loc["economics.drugs.sunitinib.pack_price"]
    assert row["high"] == row["base_value"]
    assert row["inb_high"] == row["inb_base"]


def test_resimulated_arm_with_irrelevant_change_equals_base_case(dsa):
    """Changing a model parameter no compared strategy uses forces a new simulation with the same seed:
    the results are identical to the base case (common random numbers)."""
    cfg = dsa[0]
    runner = ArmRunner(cfg)
    base, _ = runner.per_patient({})
    other, _ = runner.per_patient({"therapies.lu177_dotatate.pfs.median": 50.0})
    assert runner.n_simulations == 2
    pd.testing.assert_frame_equal(base, other)


def test_undiscounted_scenario_equals_base_case_undiscounted_outcomes(dsa):
    """The 0 % discount scenario gives the base case's undiscounted incremental costs and QALYs."""
    cfg, _, tables = dsa
    per, _ = ArmRunner(cfg).per_patient({})
    want = contrast(per, "rechallenge_then_captem", "captem_then_rechallenge", 30000.0, cost="cost_total", effect="qaly")
    got = tables["scenarios"].set_index("scenario").loc["discount_0"]
    assert got["delta_cost"] == pytest.approx(want["delta_cost"], rel=1e-12)
    assert got["delta_qaly"] == pytest.approx(want["delta_qaly"], rel=1e-12)
    assert got["inb"] == pytest.approx(want["inb"], rel=1e-12)


def test_quadrants_of_the_cost_effectiveness_plane():
    """dC <= 0 <= dE is dominant, dC >= 0 >= dE dominated, else NE or SW."""
    assert quadrant(-1.0, 0.1) == "dominant"
    assert quadrant(1.0, -0.1) == "dominated"
    assert quadrant(1.0, 0.1) == "NE"
    assert quadrant(-1.0, -0.1) == "SW"


def test_bad_dsa_settings_are_user_errors(compose_cfg):
    """An intervention outside the compared strategies or a non-positive WTP names the key."""
    from sim.config import to_container
    from sim.economics.spec import EconomicsSpec

    plain = to_container(compose_cfg(["experiment=dsa"]))
    spec = EconomicsSpec.from_config(plain["economics"])
    bad = {**plain, "experiment": {**plain["experiment"], "intervention": "prrt"}}
    with pytest.raises(UserError, match=r"experiment.intervention .*'prrt'"):
        dsa_settings(bad, spec)
    bad = {**plain, "experiment": {**plain["experiment"], "primary_wtp": -1}}
    with pytest.raises(UserError, match=r"experiment.primary_wtp"):
        dsa_settings(bad, spec)
    bad = {**plain, "experiment": {**plain["experiment"], "select": ["nothing.*"]}}
    with pytest.raises(UserError, match=r"experiment.select"):
        dsa_settings(bad, spec)
