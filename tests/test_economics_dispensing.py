"""Pack-level drug costs (sim/economics/dispensing.py): closed-form packs, costs and waste for constructed
courses with a dose change, an interruption, and the bound by the continuous cost on a simulated run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.config import build_model, to_container
from sim.economics.dispensing import parse_dispensing, simulate_dispensing
from sim.economics.evaluate import evaluate
from sim.uncertainty.params import apply_overrides
from sim.uncertainty.psa import economics_spec
from sim.economics.spec import load_spec
from sim.errors import UserError
from sim.pipeline import simulate_model
from sim.units import DAYS_PER_MONTH as DAYS
from tests.conftest import compose_config

SUN_PACK, EVE_10, EVE_5 = 784.70, 2673.0, 2250.0        # NICE TA449 list prices; 5 mg: labelled assumption


def _plans(**values):
    return parse_dispensing(load_spec("uk_nhs", values or None).config)[1]


def _course(plan, end_days, changes):
    """One course from day 0 to ``end_days``; ``changes``: [(day, level)] after the start (level 1)."""
    days = [0.0] + [d for d, _ in changes]
    levels = [1.0] + [lv for _, lv in changes]
    return simulate_dispensing(plan, np.array([0.0]), np.array([end_days / DAYS]), np.zeros(len(days), np.int64),
                               np.array(days) / DAYS, np.array(levels))


def test_sunitinib_reduction_to_25_mg_costs_the_closed_form_packs_and_waste():
    """37.5 mg = 3 x 12.5 mg capsules a day, packs of 28, dispensed every 28 days; reduction to 25 mg
    (2 capsules a day, same packs) on day 40; treatment ends on day 91.3125 (3 months).
    Day 0: 84 needed -> 3 packs. Day 28: stock 0 -> 3 packs. Day 40: stock 84 - 36 = 48 covers
    2 x 16 = 32 to day 56. Day 56: stock 16, need 56 -> 2 packs (72). Day 84: 72 - 56 = 16, need 56
    -> 2 packs (72). End: 72 - 2 x 7.3125 = 57.375 capsules wasted. 10 packs."""
    end = 3 * DAYS
    d = _course(_plans()["sunitinib"], end, [(40.0, 0.667)])
    assert d.packs[0, 0] == 10
    assert d.cost[0] == pytest.approx(10 * SUN_PACK, rel=1e-12)
    np.testing.assert_allclose(d.purchase_time * DAYS, [0, 28, 56, 84])
    np.testing.assert_allclose(d.purchase_cost, np.array([3, 3, 2, 2]) * SUN_PACK)
    assert d.waste_units[0, 0] == pytest.approx(72 - 2 * (end - 84))
    assert d.waste_cost[0] == pytest.approx(d.waste_units[0, 0] * SUN_PACK / 28)
    # units bought = units taken + units wasted
    taken = 3 * 40 + 2 * (end - 40)
    assert d.packs[0, 0] * 28 == pytest.approx(taken + d.waste_units[0, 0])


def test_everolimus_reduction_to_5_mg_wastes_the_rest_of_the_10_mg_pack():
    """10 mg a day from a 30-tablet pack; on day 10 a reduction to 5 mg needs 5 mg tablets: the 20 tablets of
    10 mg left are wasted, 5 mg packs are bought on days 10, 30 and 60; 39.125 tablets of 5 mg are left
    at the end (day 60.875 = 2 months)."""
    end = 2 * DAYS
    d = _course(_plans()["everolimus"], end, [(10.0, 0.5)])
    np.testing.assert_array_equal(d.packs[0], [1, 3])                    # products: tabs_10mg, tabs_5mg
    assert d.cost[0] == pytest.approx(EVE_10 + 3 * EVE_5)
    np.testing.assert_allclose(d.waste_units[0], [20, 90 - (end - 10)])          # 3 packs of 5 mg, taken from day 10
    assert d.waste_cost[0] == pytest.approx(20 * EVE_10 / 30 + (90 - (end - 10)) * EVE_5 / 30)


def _one_sunitinib_line(months: float, change_day: float, level: float):
    """Hand-built event log: one patient, sunitinib on [0, months), a dose change at ``change_day``, then BSC
    to disease death 6 months later."""
    nan, end = math.nan, months
    patients = pd.DataFrame([dict(patient_id=0, strategy="s", os_months=end + 6, death=True, death_cause="disease")])
    lines = pd.DataFrame([
        dict(line=1, therapy="sunitinib", start=0.0, end=end, reason="progression", pfs_true=end,
             progression_true=end, progression_detected=end, on_treatment_months=end, dose_intensity=1.0, n_scans=0),
        dict(line=2, therapy="bsc", start=end, end=end + 6, reason="death", pfs_true=nan, progression_true=nan,
             progression_detected=nan, on_treatment_months=0.0, dose_intensity=nan, n_scans=0),
    ]).assign(patient_id=0, strategy="s")
    ev = [(0.0, 1, "line_start", "sunitinib", 1.0), (change_day / DAYS, 1, "dose_change", "hypertension", level),
          (end, 1, "progression", "true", end), (end, 2, "line_start", "bsc", 2.0), (end + 6, 2, "death", "disease", nan)]
    events = pd.DataFrame(ev, columns=["time", "line", "event", "detail", "value"]).assign(patient_id=0, strategy="s")
    return patients, lines, events


@pytest.mark.parametrize("rate", [0.0, 0.035])
def test_evaluated_drug_cost_of_a_constructed_patient_is_the_discounted_sum_of_pack_purchases(rate):
    """Through the whole cost pipeline: 3 + 3 + 2 + 2 packs bought on days 0, 28, 56, 84 (reduction to 25 mg on
    day 40), each discounted at its day: cost = 784.70 x sum_k n_k exp(-r t_k), r = ln(1 + 3.5 %) / 12 per month."""
    spec = load_spec("uk_nhs", {"drug_costing": "packs", "discount.costs": rate})
    per = evaluate(*_one_sunitinib_line(3.0, 40.0, 0.667), spec, imaging_interval_months=3.0)
    r = math.log(1 + rate) / 12
    want = SUN_PACK * sum(n * math.exp(-r * d / DAYS) for n, d in ((3, 0), (3, 28), (2, 56), (2, 84)))
    assert per["cost_drug_disc"].iloc[0] == pytest.approx(want, rel=1e-12)
    assert per["cost_drug"].iloc[0] == pytest.approx(10 * SUN_PACK, rel=1e-12)
    cont = evaluate(*_one_sunitinib_line(3.0, 40.0, 0.667), load_spec("uk_nhs", {"discount.costs": rate}),
                    imaging_interval_months=3.0)
    assert per["cost_drug"].iloc[0] > cont["cost_drug"].iloc[0]          # waste of the last dispensing
    other = [c for c in per.columns if c.startswith("cost_") and "drug" not in c and "total" not in c]
    np.testing.assert_array_equal(per[other].to_numpy(), cont[other].to_numpy())


def test_an_interruption_keeps_the_stock_and_buys_nothing_while_off():
    """Interrupted on days 7-21: nothing taken, nothing wasted; the day-28 dispensing tops up the 42 capsules
    left (2 packs)."""
    d = _course(_plans()["sunitinib"], 35.0, [(7.0, 0.0), (21.0, 1.0)])
    np.testing.assert_allclose(d.purchase_cost, np.array([3, 2]) * SUN_PACK)
    assert d.waste_units[0, 0] == pytest.approx(98 - 21)


def test_without_dose_changes_whole_packs_per_interval_cost_the_continuous_price_up_to_the_last_dispensing():
    d = _course(_plans()["sunitinib"], 56.0, [])
    assert d.cost[0] == pytest.approx(6 * SUN_PACK) and d.waste_units[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_pack_costs_are_never_below_the_continuous_cost_of_the_doses_received():
    """Every unit taken was bought before it was taken, at the same price per unit (the 5 mg everolimus
    tablet costs more per mg than half a 10 mg one): per patient, pack-level drug cost >= continuous
    (relative 1e-3: level 0.667 of 37.5 mg is 25.01 mg per mg, dispensed as 25 mg), for the patients whose
    sunitinib doses are dose levels (a second reduction, 0.667^2 x 37.5 = 16.7 mg, is dispensed as 12.5 mg)."""
    cfg = compose_config(["cohort.n=150", "experiment.strategies=[rechallenge,switch]", "experiment.reference=switch",
                          "output.progress=false"])
    model = build_model(cfg)
    patients, lines, events = simulate_model(model, progress=False)
    dt = model.rules.imaging_interval_months
    cont = evaluate(patients, lines, events, economics_spec(to_container(cfg)), dt)
    packs = evaluate(patients, lines, events,
                     economics_spec(to_container(apply_overrides(cfg, {"economics.drug_costing": "packs"}))), dt)
    ev = events.merge(lines[["patient_id", "strategy", "line", "therapy"]], on=["patient_id", "strategy", "line"])
    second = ev[(ev["event"] == "dose_change") & ev["therapy"].str.startswith("sunitinib") & (ev["value"] < 0.6)]
    keep = ~cont.set_index(["patient_id", "strategy"]).index.isin(second.set_index(["patient_id", "strategy"]).index)
    assert keep.mean() > 0.8
    for col in ("cost_drug", "cost_drug_disc"):
        assert (packs[col][keep] >= cont[col][keep] * (1 - 1e-3)).all()
        assert (packs[col] > cont[col] + 1.0).mean() > 0.5              # waste at the end of nearly every course
    other = [c for c in cont.columns if c.startswith("cost_") and not c.startswith(("cost_drug", "cost_total"))]
    np.testing.assert_array_equal(packs[other].to_numpy(), cont[other].to_numpy())


@pytest.mark.parametrize("values,key", [
    ({"drug_costing": "bogus"}, "economics.drug_costing"),
    ({"dispensing.sunitinib.doses": [{"mg": 30.0, "product": "caps_12_5mg"}, {"mg": 37.5, "product": "caps_12_5mg"}]},
     r"economics.dispensing.sunitinib.doses\[0\].mg"),
    ({"dispensing.sunitinib.doses": [{"mg": 25.0, "product": "caps_12_5mg"}]}, "economics.dispensing.sunitinib.doses"),
    ({"dispensing.sunitinib.doses": [{"mg": 37.5, "product": "nosuch"}]},
     r"economics.dispensing.sunitinib.doses\[0\].product"),
    ({"dispensing.everolimus.products.tabs_5mg.pack_price": None},
     "economics.dispensing.everolimus.products.tabs_5mg.pack_price"),
    ({"dispensing.everolimus.products.tabs_5mg.pack_price": -1.0},
     "economics.dispensing.everolimus.products.tabs_5mg.pack_price"),
    ({"dispensing.sunitinib.interval_days": 0}, "economics.dispensing.sunitinib.interval_days"),
    ({"dispensing.sunitinib.products.caps_12_5mg.pack_size": 2.5},
     "economics.dispensing.sunitinib.products.caps_12_5mg.pack_size"),
])
def test_bad_dispensing_input_is_a_user_error_naming_the_key(values, key):
    with pytest.raises(UserError, match=key):
        load_spec("uk_nhs", values)


def test_pack_inputs_are_in_the_economic_inputs_table_with_sources():
    from sim.economics.inputs import inputs_table

    t = inputs_table(load_spec("uk_nhs").config).set_index("parameter")
    row = t.loc["dispensing.everolimus.products.tabs_5mg.pack_price"]
    assert row["source"].startswith("assumption:") and row["low"] <= row["value"] <= row["high"]
    assert t.loc["dispensing.sunitinib.products.caps_12_5mg.pack_size", "source"].startswith("evidence:nice_ta449")
    assert math.isclose(t.loc["drugs.sunitinib.pack_price", "value"], SUN_PACK)
