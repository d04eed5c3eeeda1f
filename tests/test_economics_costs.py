"""Costs, life-years and QALYs of a hand-built event log against hand-computed totals.

One patient, three lines (times in months):

* line 1, daily oral ``drug_a`` (1,000 per month at full dose), ``[0, 6)``: true progression at 5,
  detected at the second 3-monthly scan (6). Stomatitis at 2 -> dose reduced to 0.5; neutropenia
  at 3 -> interruption; resumed at 4 at level 0.5. Dose-weighted months ``2 x 1 + 1 x 0.5 + 1 x 0
  + 2 x 0.5 = 3.5`` -> drug 3,500;
* line 2, ``drug_b`` by cycle (2,000 per administration + 100 administration, every 4 weeks, at
  most 2), ``[6, 9)``, 2.5 months on treatment (``ceil(2.5 / 0.92) = 3`` capped at 2
  administrations, at 6 and 6 + 4 weeks), true progression at 8, detected at the scan at 9;
* line 3, best supportive care (500 per month) ``[9, 15)``, disease death at 15 (end of life 4,000).

Monitoring: 300 per scan (2 + 1 scans) + 20 per month on treatment (6 + 2.5). AE management:
stomatitis 300, neutropenia 1,000. Utilities 0.77 / 0.61 with decrements 0.21 over the 3-week
stomatitis and 0.10 over the 2-week neutropenia.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.economics import EconomicsSpec, evaluate, load_spec
from sim.units import DAYS_PER_MONTH, weeks

DT = 3.0
K = ["patient_id", "strategy"]


def _spec(rate: float = 0.0, horizon_years=None) -> EconomicsSpec:
    cfg = dict(load_spec("uk_nhs").config)
    cfg.update(
        drugs={"drug_a": {"schedule": "daily", "price_per_day": 1000.0 / DAYS_PER_MONTH},
               "drug_b": {"schedule": "cycle", "price_per_administration": 2000.0, "interval_weeks": 4,
                          "max_administrations": 2, "administration_cost": 100.0}},
        therapy_drugs={"a": "drug_a", "b": "drug_b", "bsc": None},
        monitoring={"scan": 300.0, "labs_per_month": 20.0},
        adverse_events={"default": 0.0, "stomatitis": 300.0, "neutropenia": 1000.0},
        bsc_per_month=500.0, end_of_life=4000.0,
        utilities={"set": "s", "sets": {"s": {"progression_free": 0.77, "progressed": 0.61}},
                   "ae_disutility": {"default": 0.10, "stomatitis": 0.21}},
        discount={"costs": rate, "effects": rate}, horizon_years=horizon_years, ranges={},
    )
    return EconomicsSpec.from_config(cfg)


def _log():
    nan = math.nan
    patients = pd.DataFrame([dict(patient_id=1, strategy="s", os_months=15.0, death=True, death_cause="disease")])
    lines = pd.DataFrame([
        dict(line=1, therapy="a", start=0.0, end=6.0, reason="progression", pfs_true=5.0, progression_true=5.0,
             progression_detected=6.0, on_treatment_months=6.0, dose_intensity=3.5 / 6, n_scans=2),
        dict(line=2, therapy="b", start=6.0, end=9.0, reason="progression", pfs_true=2.0, progression_true=8.0,
             progression_detected=9.0, on_treatment_months=2.5, dose_intensity=1.0, n_scans=1),
        dict(line=3, therapy="bsc", start=9.0, end=15.0, reason="death", pfs_true=nan, progression_true=nan,
             progression_detected=nan, on_treatment_months=0.0, dose_intensity=nan, n_scans=0),
    ]).assign(patient_id=1, strategy="s")
    ev = [(0.0, 1, "line_start", "a", 1.0), (2.0, 1, "adverse_event", "stomatitis", 3.0),
          (2.0, 1, "dose_change", "stomatitis", 0.5), (3.0, 1, "adverse_event", "neutropenia", 2.0),
          (3.0, 1, "interruption", "neutropenia", 0.0), (4.0, 1, "dose_change", "resume", 0.5),
          (5.0, 1, "progression", "true", 5.0), (6.0, 1, "progression_detected", "scan", 6.0),
          (6.0, 2, "line_start", "b", 2.0), (8.0, 2, "progression", "true", 2.0),
          (9.0, 2, "progression_detected", "scan", 3.0), (9.0, 3, "line_start", "bsc", 3.0),
          (15.0, 3, "death", "disease", nan)]
    events = pd.DataFrame(ev, columns=["time", "line", "event", "detail", "value"]).assign(patient_id=1, strategy="s")
    return patients, lines, events


def D(a, b, r):
    """Independent discount integral int_a^b exp(-r t) dt (months)."""
    return (b - a) if r == 0 else (math.exp(-r * a) - math.exp(-r * b)) / r


def expected(rate: float) -> dict[str, float]:
    r = math.log(1 + rate) / 12
    p = lambda t: math.exp(-r * t)                      # noqa: E731
    h = weeks(4)
    drug = 1000 * (D(0, 2, r) + 0.5 * D(2, 3, r) + 0.5 * D(4, 6, r)) + 2000 * (p(6) + p(6 + h))
    admin = 100 * (p(6) + p(6 + h))
    monitoring = 300 * (p(3) + p(6) + p(9)) + 20 * (D(0, 6, r) + D(6, 8.5, r))
    ae = 300 * p(2) + 1000 * p(3)
    bsc = 500 * D(9, 15, r)
    eol = 4000 * p(15)
    pf = D(0, 5, r) + D(6, 8, r)
    pd_ = D(5, 6, r) + D(8, 9, r) + D(9, 15, r)
    ae_loss = 0.21 * D(2, 2 + weeks(3), r) + 0.10 * D(3, 3 + weeks(2), r)
    return {"cost_drug": drug, "cost_administration": admin, "cost_monitoring": monitoring, "cost_ae": ae,
            "cost_bsc": bsc, "cost_end_of_life": eol, "cost_total": drug + admin + monitoring + ae + bsc + eol,
            "ly": D(0, 15, r) / 12, "pf_ly": pf / 12, "pd_ly": pd_ / 12,
            "qaly": (0.77 * pf + 0.61 * pd_ - ae_loss) / 12}


def test_undiscounted_costs_by_category_equal_hand_totals():
    """Undiscounted: drug 7,500, administration 200, monitoring 1,070, AE 1,300, BSC 3,000, end of life 4,000."""
    per = evaluate(*_log(), _spec(0.0), imaging_interval_months=DT).iloc[0]
    hand = {"cost_drug": 3500 + 4000, "cost_administration": 200, "cost_monitoring": 900 + 170, "cost_ae": 1300,
            "cost_bsc": 3000, "cost_end_of_life": 4000, "cost_total": 17070, "ly": 15 / 12}
    for k, v in hand.items():
        assert per[k] == pytest.approx(v, rel=1e-12), k


@pytest.mark.parametrize("rate", [0.0, 0.035])
def test_discounted_costs_and_qalys_equal_independent_formulas(rate):
    """Every category, LYs and QALYs equal the hand formulas (continuous discounting from time 0)."""
    per = evaluate(*_log(), _spec(rate), imaging_interval_months=DT).iloc[0]
    for k, v in expected(rate).items():
        assert per[f"{k}_disc"] == pytest.approx(v, rel=1e-10), k


@pytest.mark.parametrize("rate", [0.0, 0.035])
def test_off_schedule_detection_costs_one_unscheduled_scan_at_its_time(rate):
    """Line 2 detected clinically at 8.5 (between scans): its scheduled scans stay on the grid (none
    before 8.5 beyond line start + 3 = 9, so 0) and one unscheduled scan is costed at 8.5."""
    patients, lines, events = _log()
    lines = lines.assign(unscheduled_scans=0)
    lines.loc[1, ["end", "progression_detected", "n_scans", "unscheduled_scans"]] = [8.5, 8.5, 0, 1]
    lines.loc[2, "start"] = 8.5
    events.loc[events["detail"] == "scan", "detail"] = ["scan", "clinical"]
    events.loc[(events["event"] == "progression_detected") & (events["line"] == 2), ["time", "value"]] = [8.5, 2.5]
    base = evaluate(*_log(), _spec(rate), imaging_interval_months=DT).iloc[0]
    per = evaluate(patients, lines, events, _spec(rate), imaging_interval_months=DT).iloc[0]
    r = math.log(1 + rate) / 12
    # scheduled: the scan at 9 is gone; unscheduled: one at 8.5
    want = base["cost_monitoring_disc"] - 300 * math.exp(-r * 9) + 300 * math.exp(-r * 8.5)
    assert per["cost_monitoring_disc"] == pytest.approx(want, rel=1e-12)


def test_unscheduled_scans_do_not_bias_the_inferred_imaging_interval():
    """The imaging interval is recovered from scheduled-scan detections only."""
    from sim.economics.costs import infer_imaging_interval

    _, lines, _ = _log()
    lines = lines.assign(unscheduled_scans=[0, 1, 0])
    lines.loc[1, ["progression_detected", "n_scans"]] = [10.0, 1]   # scheduled scan at 9, detected at 10
    assert infer_imaging_interval(lines) == pytest.approx(DT)
    assert infer_imaging_interval(lines.drop(columns="unscheduled_scans")) == pytest.approx(3.5)  # biased


def test_dose_reductions_and_interruptions_scale_the_daily_drug_cost():
    """With dose-intensity scaling off the drug is charged for all 6 months (6,000 instead of 3,500)."""
    spec = _spec(0.0)
    cfg = dict(spec.config)
    cfg["drugs"] = {**cfg["drugs"], "drug_a": {**cfg["drugs"]["drug_a"], "dose_intensity_scaling": False}}
    per = evaluate(*_log(), EconomicsSpec.from_config(cfg), imaging_interval_months=DT).iloc[0]
    assert per["cost_drug"] == pytest.approx(6000 + 4000)


def test_horizon_truncates_flows_and_drops_later_one_offs():
    """A 1-year horizon: BSC only for months 9-12, no end-of-life cost (death at 15), 1 life-year."""
    per = evaluate(*_log(), _spec(0.0, horizon_years=1), imaging_interval_months=DT).iloc[0]
    assert per["cost_bsc"] == pytest.approx(1500.0)
    assert per["cost_end_of_life"] == 0.0
    assert per["ly"] == pytest.approx(1.0)
    assert per["pd_ly"] == pytest.approx((1 + 1 + 3) / 12)


def test_daily_drug_cost_equals_dose_intensity_on_simulated_runs(default_run):
    """On a simulated run, undiscounted daily-drug cost = cost per month x time on treatment x RDI, line by line."""
    from sim.economics.costs import cost_accruals, drug_table
    from sim.economics.records import RunArrays

    model, patients, lines, events = default_run
    spec = EconomicsSpec.from_config(load_spec("uk_nhs").config)
    ra = RunArrays.from_frames(patients, lines, events)
    per_line = cost_accruals(ra, spec, model.rules.imaging_interval_months, per_line=True)["drug"].value(0.0)
    d = drug_table(ra.therapy_names, ra.therapy, spec)
    daily = d["daily"][ra.therapy] & (ra.on_treatment > 0)
    want = (d["cost_per_month"][ra.therapy] * ra.on_treatment * ra.dose_intensity)[daily]
    assert daily.sum() > 100
    np.testing.assert_allclose(per_line[daily], want, rtol=1e-9)


def test_state_times_partition_life_years_on_simulated_runs(default_run):
    """Progression-free plus progressed time equals life-years for every patient (discounted or not)."""
    model, patients, lines, events = default_run
    per = evaluate(patients, lines, events, load_spec("uk_nhs"), model.rules.imaging_interval_months)
    for suffix in ("", "_disc"):
        np.testing.assert_allclose(per[f"pf_ly{suffix}"] + per[f"pd_ly{suffix}"], per[f"ly{suffix}"],
                                   rtol=1e-9, atol=1e-12)
    assert (per["qaly_ae_loss"] >= 0).all() and (per["qaly_ae_loss"] > 0).any()


def test_ae_state_utility_of_the_set_sets_the_decrement():
    """An AE with a state in the utility set (``ae_states``) lowers the PF utility to that state while it
    lasts: decrement u_PF - u_state (0.77 - 0.50 = 0.27 for stomatitis), not ``ae_disutility`` (0.21)."""
    cfg = dict(_spec(0.0).config)
    cfg["utilities"] = {"set": "s", "sets": {"s": {"progression_free": 0.77, "progressed": 0.61,
                                                   "ae_states": {"stomatitis": 0.50}}},
                        "ae_disutility": {"default": 0.10, "stomatitis": 0.21}}
    spec = EconomicsSpec.from_config(cfg)
    assert spec.ae_decrement("stomatitis") == pytest.approx(0.27)
    assert spec.ae_decrement("neutropenia") == pytest.approx(0.10)
    per = evaluate(*_log(), spec, imaging_interval_months=DT).iloc[0]
    assert per["qaly_ae_loss"] == pytest.approx((0.27 * weeks(3) + 0.10 * weeks(2)) / 12, rel=1e-12)


def test_default_swinburn_set_values_hand_foot_syndrome_and_stomatitis_by_their_states():
    """uk_nhs: Swinburn 2012 AE states 0.58 (hand-foot syndrome) and 0.56 (stomatitis) under PF 0.77; the
    Meng 2017 set has no AE states and falls back to the Swinburn differences in ae_disutility."""
    sw = load_spec("uk_nhs")
    assert sw.utility_set == "swinburn2012" and (sw.utility_pf, sw.utility_pd) == (0.77, 0.61)
    assert sw.ae_state_utility == {"hand_foot_syndrome": 0.58, "stomatitis": 0.56}
    assert sw.ae_decrement("hand_foot_syndrome") == pytest.approx(0.19)
    assert sw.ae_decrement("stomatitis") == pytest.approx(0.21)
    meng = load_spec("uk_nhs", {"utilities.set": "meng2017"})
    assert (meng.utility_pf, meng.utility_pd) == (0.776, 0.726) and meng.ae_state_utility == {}
    assert meng.ae_decrement("stomatitis") == pytest.approx(0.21)
