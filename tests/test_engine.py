"""Both executors (:mod:`sim.run.engine`, :mod:`sim.run.vectorised` via :mod:`sim.run.executors`): scans, frailty,
pathway bookkeeping, strategy rules, executor choice and agreement."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import Z, binom_z, compose_config, make_cohort
from sim.config import build_model
from sim.errors import UserError
from sim.run.executors import resolve_engine, simulate
from sim.units import weeks

SCAN = weeks(12)  # 12 weeks = 12 * 7 / (365.25 / 12) months
ENGINES = ["simpy", "vectorised"]


def _frames(overrides, cohort=None, strategies=None, engine="simpy"):
    m = build_model(compose_config(overrides))
    names = strategies or list(m.strategies)
    rec = simulate(m.cohort if cohort is None else cohort, {s: m.strategies[s] for s in names},
                   m.therapies, m.rules, m.lifetable, m.seed, engine=engine)
    return m, *rec.frames()


def test_scan_interval_is_twelve_weeks_in_months():
    """The default imaging interval is 12 weeks expressed in mean months (12*7 / (365.25/12))."""
    assert SCAN == pytest.approx(12 * 7 / (365.25 / 12), rel=1e-15)
    m = build_model(compose_config(["cohort.n=1"]))
    assert m.rules.imaging_interval_months == pytest.approx(SCAN, rel=1e-15)


def test_progression_detected_at_a_scan_or_clinically_after_true_progression(default_run, line_start):
    """A 'scan' detection is a positive multiple of the scan interval after line start, a
    'clinical' one falls between scans; both come after the true progression and no later than
    the first scan after it; lines record the unscheduled scan of a clinical detection."""
    _, _, lines, events = default_run
    det = events[events["event"] == "progression_detected"]
    assert len(det) > 500
    since = det["time"].to_numpy() - line_start(det, lines)
    k = since / SCAN
    on_grid = np.abs(k - np.round(k)) < 1e-9
    scan = (det["detail"] == "scan").to_numpy()
    assert set(det["detail"]) == {"scan", "clinical"}
    np.testing.assert_array_equal(on_grid, scan)
    assert (np.round(k[scan]) >= 1).all()
    np.testing.assert_allclose(det["value"], since, rtol=1e-12)
    key = ["patient_id", "strategy", "line"]
    true = events[events["event"] == "progression"][key + ["time"]].rename(columns={"time": "t_true"})
    both = det.merge(true, on=key, how="left")
    assert not both["t_true"].isna().any()  # every detected progression has a true one on its line
    assert (both["time"] >= both["t_true"]).all()
    t_true_since = both["t_true"].to_numpy() - line_start(det, lines)
    next_scan = np.maximum(1, np.ceil(t_true_since / SCAN - 1e-12)) * SCAN
    assert (since <= next_scan * (1 + 1e-12)).all()  # never later than the first scan after it
    prog = lines[lines["reason"] == "progression"]
    clinical = prog["unscheduled_scans"] == 1
    assert set(prog["unscheduled_scans"]) == {0, 1} and (lines.loc[lines["reason"] != "progression",
                                                                   "unscheduled_scans"] == 0).all()
    sched = prog["n_scans"].to_numpy()
    d = (prog["progression_detected"] - prog["start"]).to_numpy() / SCAN
    np.testing.assert_array_equal(sched[~clinical], np.round(d[~clinical]).astype(int))
    np.testing.assert_array_equal(sched[clinical], np.floor(d[clinical]).astype(int))  # scans before it


@pytest.mark.parametrize("engine", ENGINES)
def test_clinical_detection_delay_comes_from_its_own_stream(engine):
    """Detection = min(next scan, T + D) with D = -c log(u), u the patient's stream 'detection@<therapy>'
    at slot 0 (first exposure); switching detection off (null) leaves the line-1 true PFS times unchanged."""
    from sim.rng import uniforms

    base = ["cohort.n=200", "seed=5", "experiment.strategies=[switch]", "experiment.reference=switch"]
    m, _, lines, _ = _frames(base + ["model.clinical_detection_months=2.5"], engine=engine)
    _, _, off, _ = _frames(base + ["model.clinical_detection_months=null"], engine=engine)
    l1 = lines[(lines["line"] == 1) & (lines["reason"] == "progression")]
    assert len(l1) > 100
    u = np.array([uniforms(m.seed, f"detection@{th}", int(pid), 1)[0, 0]
                  for pid, th in zip(l1["patient_id"], l1["therapy"])])
    t = l1["pfs_true"].to_numpy()
    want = np.minimum(np.maximum(1, np.ceil(t / SCAN - 1e-12)) * SCAN, t - 2.5 * np.log(u))
    np.testing.assert_allclose((l1["progression_detected"] - l1["start"]).to_numpy(), want, rtol=1e-12)
    np.testing.assert_array_equal(l1["unscheduled_scans"].to_numpy(), (want < np.ceil(t / SCAN - 1e-12) * SCAN)
                                  .astype(int))
    first_on, first_off = lines[lines["line"] == 1], off[off["line"] == 1]
    np.testing.assert_array_equal(first_on["pfs_true"].to_numpy(), first_off["pfs_true"].to_numpy())


def test_clinical_detection_share_matches_its_probability():
    """Share of line-1 progressions detected between scans = E[1 - exp(-(next scan - T) / c)]
    over the drawn T, within binomial Monte Carlo error (Z standard errors)."""
    over = ["cohort.n=1", "seed=9", "model.clinical_detection_months=4.0", "model.disease_death.rate_per_year=0",
            "+strategies.one={lines: [observation, bsc]}", "experiment.strategies=[one]", "experiment.reference=one"]
    _, _, lines, _ = _frames(over, cohort=make_cohort(3000, age=30.0), engine="vectorised")
    l1 = lines[(lines["line"] == 1) & (lines["reason"] == "progression")]
    t = l1["pfs_true"].to_numpy()
    p = 1.0 - np.exp(-(np.maximum(1, np.ceil(t / SCAN - 1e-12)) * SCAN - t) / 4.0)
    got = l1["unscheduled_scans"].to_numpy()
    se = math.sqrt(np.sum(p * (1 - p))) / len(p)
    assert abs(got.mean() - p.mean()) < Z * se


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("interval_weeks", [4, 8, 12])
def test_imaging_interval_setting_changes_detection(interval_weeks, engine):
    """With model.imaging_interval_weeks=w, line-1 detection = ceil(true PFS / w) * w after line start."""
    base = ["cohort.n=150", "seed=4", "experiment.strategies=[switch]", "experiment.reference=switch",
            "model.clinical_detection_months=null"]   # scans only
    _, _, lines, _ = _frames(base + [f"model.imaging_interval_weeks={interval_weeks}"], engine=engine)
    _, _, ref, _ = _frames(base, engine=engine)
    l1, r1 = lines[lines["line"] == 1], ref[ref["line"] == 1]
    np.testing.assert_array_equal(l1["pfs_true"].to_numpy(), r1["pfs_true"].to_numpy())  # same true PFS
    dt = weeks(interval_weeks)
    prog = l1[l1["reason"] == "progression"]
    assert len(prog) > 100
    want = np.ceil(prog["pfs_true"].to_numpy() / dt - 1e-12) * dt
    np.testing.assert_allclose(prog["progression_detected"] - prog["start"], want, rtol=1e-12)
    np.testing.assert_array_equal(prog["n_scans"], np.round(want / dt).astype(int))


def _pfs_pairs(rho, n=1000, engine="vectorised"):
    over = ["cohort.n=1", "seed=21", f"model.frailty_rho={rho}", "model.disease_death.rate_per_year=0",
            "+strategies.fr={lines: [sunitinib, everolimus, bsc]}", "experiment.strategies=[fr]",
            "experiment.reference=fr"]
    _, _, lines, _ = _frames(over, cohort=make_cohort(n, age=30.0), engine=engine)  # identical covariates, few other deaths
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
    assert set(p.loc[p["death"], "death_cause"]) <= {"disease", "other", "treatment"}   # treatment: PRRT late toxicity
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


@pytest.mark.parametrize("engine", ENGINES)
def test_holiday_delays_rechallenge_by_its_length(engine):
    """A holiday of h months before rechallenge: holiday_start/end events and the line starts h later."""
    over = ["cohort.n=150", "seed=8", "experiment.strategies=[rechallenge]", "experiment.reference=rechallenge",
            "strategies.rechallenge.rules.holiday_months.sunitinib_rechallenge=3.0"]
    _, _, lines, events = _frames(over, engine=engine)
    rc = lines[lines["therapy"] == "sunitinib_rechallenge"].set_index("patient_id")
    prev = lines.set_index(["patient_id", "line"])["end"]
    before = prev.loc[list(zip(rc.index, rc["line"] - 1))].to_numpy()
    assert len(rc) > 30
    np.testing.assert_allclose(rc["start"].to_numpy() - before, 3.0, rtol=1e-12)
    hs = events[events["event"] == "holiday_start"].set_index("patient_id")
    assert set(rc.index) <= set(hs.index) and (hs["detail"] == "sunitinib_rechallenge").all()


@pytest.mark.parametrize("engine", ENGINES)
def test_max_active_lines_sends_patients_to_terminal_line(engine):
    """With max_active_lines=1 every patient receives at most one active line, then best supportive care."""
    over = ["cohort.n=100", "seed=8", "experiment.strategies=[switch]", "experiment.reference=switch",
            "strategies.switch.rules.max_active_lines=1"]
    _, _, lines, _ = _frames(over, engine=engine)
    assert (lines.groupby("patient_id")["therapy"].apply(lambda s: s.iloc[-1] == "bsc" or len(s) == 1)).all()
    assert (lines.groupby("patient_id")["line"].max() <= 2).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_toxicity_stop_sends_patient_to_terminal_line_when_configured(engine):
    """With after_toxicity=terminal the line after a toxicity discontinuation is best supportive care."""
    over = ["cohort.n=120", "seed=3", "experiment.strategies=[switch]", "experiment.reference=switch",
            "strategies.switch.rules.after_toxicity=terminal",
            "therapies.sunitinib.adverse_events.neutropenia.probability=0.6",
            "therapies.sunitinib.adverse_events.neutropenia.consequence.discontinuation=0.6",
            "therapies.sunitinib.adverse_events.neutropenia.consequence.interruption=0.4",
            "therapies.sunitinib.adverse_events.neutropenia.consequence.dose_reduction=0"]
    _, _, lines, _ = _frames(over, engine=engine)
    nxt = lines.groupby("patient_id")["therapy"].shift(-1)
    tox = lines["reason"] == "toxicity"
    assert tox.sum() > 10
    assert (nxt[tox] == "bsc").all()


@pytest.mark.parametrize("engine", ENGINES)
def test_death_during_holiday_ends_pathway_with_death_event(engine):
    """A death during a long holiday is logged at its time, ends the pathway, and no later line starts."""
    over = ["cohort.n=80", "seed=8", "experiment.strategies=[rechallenge]", "experiment.reference=rechallenge",
            "strategies.rechallenge.rules.holiday_months.sunitinib_rechallenge=600.0"]
    _, patients, lines, events = _frames(over, engine=engine)
    hs = events[events["event"] == "holiday_start"]
    assert len(hs) > 10
    after = events.merge(hs[["patient_id", "time"]].rename(columns={"time": "t_hol"}), on="patient_id")
    after = after[after["time"] > after["t_hol"]]
    assert set(after["event"]) == {"death"}  # nothing but the death follows a holiday this long
    p = patients.set_index("patient_id").loc[hs["patient_id"]]
    assert p["death"].all() and (p["n_lines"] == hs["line"].to_numpy()).all()
    np.testing.assert_allclose(after.set_index("patient_id").loc[p.index, "time"], p["os_months"], rtol=1e-12)


def test_uptake_declines_line_at_the_configured_rate():
    """With uptake p for everolimus, the share of eligible patients not taking it is 1 - p within Z SE."""
    p = 0.7
    over = ["cohort.n=1500", "seed=13", "experiment.strategies=[switch]", "experiment.reference=switch",
            f"+strategies.switch.rules.uptake={{everolimus: {p}}}"]
    _, _, lines, events = _frames(over, engine="vectorised")
    declined = (events["detail"] == "everolimus:not_taken").sum()
    given = (lines["therapy"] == "everolimus").sum()
    n = declined + given
    assert n > 500
    assert abs(binom_z(int(declined), int(n), 1 - p)) < Z


def test_unknown_engine_is_a_user_error_naming_engine():
    """engine="fast" raises UserError naming the key and the value; auto means vectorised."""
    with pytest.raises(UserError, match=r"^engine must be one of .*got 'fast'$"):
        resolve_engine("fast")
    assert resolve_engine("auto") == "vectorised" and resolve_engine("simpy") == "simpy"


RULE_VARIANTS = {
    "holiday_uptake_cap": ["strategies.rechallenge.rules.holiday_months.sunitinib_rechallenge=3.0",
                           "strategies.switch.rules.max_active_lines=2", "+strategies.switch.rules.uptake={everolimus: 0.6}",
                           "strategies.prrt.rules.after_toxicity=terminal", "strategies.prrt.rules.skip_ineligible=false",
                           "model.horizon_years=5"],
    "prior_and_rechallenge": ["cohort.prior_therapies='ssa;sunitinib'",
                              "therapies.sunitinib_rechallenge.rechallenge.beta_prior_pfs=0.5",
                              "therapies.sunitinib_rechallenge.rechallenge.beta_time_off=-0.3",
                              "strategies.rechallenge.rules.holiday_months.sunitinib_rechallenge=40.0"],
    "heavy_toxicity": ["therapies.sunitinib.adverse_events.neutropenia.probability=0.9",
                       "therapies.sunitinib.adverse_events.hypertension.probability=0.9",
                       "therapies.sunitinib.adverse_events.neutropenia.interruption_weeks=30",
                       "therapies.lu177_dotatate.adverse_events.thrombocytopenia.probability=0.9",
                       "therapies.lu177_dotatate.adverse_events.aminotransferase_increase.probability=0.9",
                       "therapies.lu177_dotatate.adverse_events.aminotransferase_increase.consequence.interruption=0.9",
                       "therapies.lu177_dotatate.adverse_events.aminotransferase_increase.consequence.none=0.1",
                       "model.frailty_rho=0", "model.disease_death.rate_per_year=0.5"],
}


@pytest.mark.parametrize("variant", list(RULE_VARIANTS))
def test_executors_give_identical_frames_under_strategy_rules(variant):
    """SimPy and vectorised executors give equal patients, lines and events frames (rtol 1e-12, same
    row order and dtypes) with holidays, uptake, caps, toxicity rules, prior therapy and heavy toxicity."""
    m = build_model(compose_config(["cohort.n=60", "seed=19", *RULE_VARIANTS[variant]]))
    args = (m.cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed)
    a = simulate(*args, engine="simpy", chunk_size=13).frames()
    b = simulate(*args, engine="vectorised", chunk_size=25).frames()
    for x, y in zip(a, b):
        assert len(x) > 0
        pd.testing.assert_frame_equal(x, y, rtol=1e-12)
