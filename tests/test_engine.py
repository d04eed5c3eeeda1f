"""SimPy engine (:mod:`sim.engine`): scans, frailty, pathway bookkeeping, strategy rules."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import Z, compose_config, make_cohort
from sim.config import build_model
from sim.engine import simulate
from sim.units import weeks

SCAN = weeks(12)  # 12 weeks = 12 * 7 / (365.25 / 12) months


def _frames(overrides, cohort=None, strategies=None):
    m = build_model(compose_config(overrides))
    names = strategies or list(m.strategies)
    rec = simulate(m.cohort if cohort is None else cohort, {s: m.strategies[s] for s in names},
                   m.therapies, m.rules, m.lifetable, m.seed)
    return m, *rec.frames()


def test_scan_interval_is_twelve_weeks_in_months():
    """The default imaging interval is 12 weeks expressed in mean months (12*7 / (365.25/12))."""
    assert SCAN == pytest.approx(12 * 7 / (365.25 / 12), rel=1e-15)
    m = build_model(compose_config(["cohort.n=1"]))
    assert m.rules.imaging_interval_months == pytest.approx(SCAN, rel=1e-15)


def test_progression_detected_at_a_scan_after_true_progression(default_run, line_start):
    """Detection time minus line start is a positive multiple of the scan interval and >= true progression."""
    _, _, lines, events = default_run
    det = events[events["event"] == "progression_detected"]
    assert len(det) > 500
    since = det["time"].to_numpy() - line_start(det, lines)
    k = since / SCAN
    np.testing.assert_allclose(k, np.round(k), rtol=0, atol=1e-9)
    assert (np.round(k) >= 1).all()
    np.testing.assert_allclose(det["value"], since, rtol=1e-12)
    key = ["patient_id", "strategy", "line"]
    true = events[events["event"] == "progression"][key + ["time"]].rename(columns={"time": "t_true"})
    both = det.merge(true, on=key, how="left")
    assert not both["t_true"].isna().any()  # every detected progression has a true one on its line
    assert (both["time"] >= both["t_true"]).all()
    assert (both["time"] - both["t_true"] < SCAN * (1 + 1e-12)).all()  # the first scan after it


@pytest.mark.parametrize("interval_weeks", [4, 8, 12])
def test_imaging_interval_setting_changes_detection(interval_weeks):
    """With model.imaging_interval_weeks=w, line-1 detection = ceil(true PFS / w) * w after line start."""
    base = ["cohort.n=150", "seed=4", "experiment.strategies=[switch]", "experiment.reference=switch"]
    _, _, lines, _ = _frames(base + [f"model.imaging_interval_weeks={interval_weeks}"])
    _, _, ref, _ = _frames(base)
    l1, r1 = lines[lines["line"] == 1], ref[ref["line"] == 1]
    np.testing.assert_array_equal(l1["pfs_true"].to_numpy(), r1["pfs_true"].to_numpy())  # same true PFS
    dt = weeks(interval_weeks)
    prog = l1[l1["reason"] == "progression"]
    assert len(prog) > 100
    want = np.ceil(prog["pfs_true"].to_numpy() / dt - 1e-12) * dt
    np.testing.assert_allclose(prog["progression_detected"] - prog["start"], want, rtol=1e-12)
    np.testing.assert_array_equal(prog["n_scans"], np.round(want / dt).astype(int))


def _pfs_pairs(rho, n=1000):
    over = ["cohort.n=1", "seed=21", f"model.frailty_rho={rho}", "model.pre_progression_death_share=0",
            "+strategies.fr={lines: [sunitinib, everolimus, bsc]}", "experiment.strategies=[fr]",
            "experiment.reference=fr"]
    _, _, lines, _ = _frames(over, cohort=make_cohort(n, age=30.0))  # identical covariates, few other deaths
    wide = lines[lines["line"] <= 2].pivot(index="patient_id", columns="line", values="pfs_true").dropna()
    assert len(wide) > 0.9 * n
    return wide[1].to_numpy(), wide[2].to_numpy()


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_frailty_correlates_pfs_across_lines(rho):
    """Spearman correlation of line-1 and line-2 true PFS matches 6/pi asin(rho/2) within 4 SE (0 without frailty)."""
    a, b = _pfs_pairs(rho)
    rs = stats.spearmanr(a, b).statistic
    want = 6 / math.pi * math.asin(rho / 2)
    se = math.sqrt(1.06 / (len(a) - 3))  # Fieller-Hartley-Pearson SE of atanh(Spearman)
    assert abs(math.atanh(rs) - math.atanh(want)) < Z * se, rs
    if rho > 0:
        assert math.atanh(rs) > Z * se  # clearly positive


def test_pathway_bookkeeping_is_consistent(default_run):
    """Lines are numbered 1..n, each starts when the previous ends, and the last ends at death or horizon."""
    model, patients, lines, events = default_run
    g = lines.groupby(["strategy", "patient_id"], observed=True)
    assert (g["line"].apply(lambda s: list(s) == list(range(1, len(s) + 1)))).all()
    prev_end = g["end"].shift()
    gap = (lines["start"] - prev_end).dropna()
    np.testing.assert_array_equal(gap, 0.0)  # no holidays in the default strategies
    last = g.tail(1).set_index(["strategy", "patient_id"])
    p = patients.set_index(["strategy", "patient_id"]).loc[last.index]
    np.testing.assert_allclose(last["end"], p["os_months"], rtol=1e-12)
    np.testing.assert_array_equal(p["n_lines"], last["line"])
    deaths = events[events["event"] == "death"].set_index(["strategy", "patient_id"])
    assert deaths.index.is_unique
    dead = p[p["death"]]
    np.testing.assert_allclose(deaths.loc[dead.index, "time"], dead["os_months"], rtol=1e-12)
    assert set(p.loc[p["death"], "death_cause"]) <= {"disease", "other"}
    # events are time-ordered within each patient and strategy
    assert (events.groupby(["strategy", "patient_id"], observed=True)["time"].diff().dropna() >= 0).all()


def test_pfs1_is_first_detected_progression_or_death(default_run):
    """pfs1_months is the end of line 1 when it ended by progression or death, else a later event."""
    _, patients, lines, _ = default_run
    l1 = lines[lines["line"] == 1].set_index(["strategy", "patient_id"])
    p = patients.set_index(["strategy", "patient_id"]).loc[l1.index]
    ended = l1["reason"].isin(["progression", "death"])
    np.testing.assert_allclose(p.loc[ended, "pfs1_months"], l1.loc[ended, "end"], rtol=1e-12)
    assert (p.loc[~ended, "pfs1_months"] >= l1.loc[~ended, "end"]).all()
    assert (p["pfs2_months"] >= p["pfs1_months"]).all() and (p["os_months"] >= p["pfs2_months"]).all()


def test_holiday_delays_rechallenge_by_its_length():
    """A holiday of h months before rechallenge: holiday_start/end events and the line starts h later."""
    over = ["cohort.n=150", "seed=8", "experiment.strategies=[rechallenge]", "experiment.reference=rechallenge",
            "strategies.rechallenge.rules.holiday_months.sunitinib_rechallenge=3.0"]
    _, _, lines, events = _frames(over)
    rc = lines[lines["therapy"] == "sunitinib_rechallenge"].set_index("patient_id")
    prev = lines.set_index(["patient_id", "line"])["end"]
    before = prev.loc[list(zip(rc.index, rc["line"] - 1))].to_numpy()
    assert len(rc) > 30
    np.testing.assert_allclose(rc["start"].to_numpy() - before, 3.0, rtol=1e-12)
    hs = events[events["event"] == "holiday_start"].set_index("patient_id")
    assert set(rc.index) <= set(hs.index) and (hs["detail"] == "sunitinib_rechallenge").all()


def test_max_active_lines_sends_patients_to_terminal_line():
    """With max_active_lines=1 every patient receives at most one active line, then best supportive care."""
    over = ["cohort.n=100", "seed=8", "experiment.strategies=[switch]", "experiment.reference=switch",
            "strategies.switch.rules.max_active_lines=1"]
    _, _, lines, _ = _frames(over)
    assert (lines.groupby("patient_id")["therapy"].apply(lambda s: s.iloc[-1] == "bsc" or len(s) == 1)).all()
    assert (lines.groupby("patient_id")["line"].max() <= 2).all()
