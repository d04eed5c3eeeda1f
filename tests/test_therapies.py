"""Per-line clinical rules: eligibility, toxicity, fixed courses, dose intensity, rechallenge."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from conftest import Z, FixedU, binom_z, compose_config, make_cohort, make_rules, plan
from sim.run.executors import simulate
from sim.rng import Draws
from sim.therapies import Rechallenge, Therapy, build_therapies
from sim.kernel.line import History, Patients, plan_lines
from sim.units import weeks
from support.one_patient import LineHistory, eligible

CONFIG_THERAPIES = OmegaConf.to_container(compose_config().therapies, resolve=True)


def therapy(name, **changes):
    """Therapy ``name`` of the default config, with top-level keys replaced by ``changes``."""
    return Therapy.from_config(name, {**CONFIG_THERAPIES[name], **changes})


def patient(**cols):
    """One plain patient as a mapping (covariates at their reference levels unless given)."""
    return make_cohort(1, **cols).iloc[0].to_dict()


# ------------------------------------------------------------------ eligibility
def test_eligibility_rules_of_single_therapies():
    """eligible() gives the documented reason for SSTR-negative, insulinoma and missing prior progression."""
    ssa, lu, rc, eve = (therapy(n) for n in ("ssa", "lu177_dotatate", "sunitinib_rechallenge", "everolimus"))
    assert eligible(ssa, patient(sstr_positive=False), []) == "sstr_negative"
    assert eligible(lu, patient(sstr_positive=False), []) == "sstr_negative"
    assert eligible(ssa, patient(functional_status="insulinoma"), []) == "excluded_insulinoma"
    assert eligible(lu, patient(functional_status="insulinoma"), []) is None
    assert eligible(eve, patient(sstr_positive=False, functional_status="insulinoma"), []) is None
    need = "no_prior_progression_on_sunitinib"
    assert eligible(rc, patient(), []) == need
    assert eligible(rc, patient(), [LineHistory("sunitinib", 0, 5, "toxicity", math.nan)]) == need
    assert eligible(rc, patient(), [LineHistory("everolimus", 0, 5, "progression", 5.0)]) == need
    assert eligible(rc, patient(), [LineHistory("sunitinib", 0, 5, "progression", 5.0)]) is None
    assert eligible(rc, patient(), [LineHistory("sunitinib", -math.inf, 0, "prior", math.nan)]) is None


KINDS = {  # patient type -> (sstr_positive, functional_status)
    "sstr_neg": (False, "non_functioning"),
    "sstr_neg_insulinoma": (False, "insulinoma"),
    "insulinoma": (True, "insulinoma"),
    "plain": (True, "non_functioning"),
}


def _mixed_cohort(per_kind=15):
    kinds = [k for k in KINDS for _ in range(per_kind)]
    return make_cohort(len(kinds), sstr_positive=[KINDS[k][0] for k in kinds],
                       functional_status=[KINDS[k][1] for k in kinds]), np.array(kinds)


ENGINES = ["simpy", "vectorised"]


def _run(overrides, cohort, strategies, engine="simpy"):
    from sim.config import build_model

    m = build_model(compose_config(["cohort.n=1", f"experiment.strategies=[{','.join(strategies)}]",
                                    f"experiment.reference={strategies[0]}", *overrides]))
    rec = simulate(cohort, {s: m.strategies[s] for s in strategies}, m.therapies, m.rules, m.lifetable, m.seed,
                   engine=engine)
    return rec.frames()


@pytest.mark.parametrize("engine", ENGINES)
def test_prrt_and_ssa_skipped_for_sstr_negative_and_ssa_for_insulinoma(engine):
    """PRRT and SSA are skipped (line_skipped with reason) for SSTR-negative disease; SSA for insulinoma."""
    cohort, kinds = _mixed_cohort()
    _, lines, events = _run([], cohort, ["prrt"], engine)
    skips = events[events["event"] == "line_skipped"].groupby("patient_id")["detail"].apply(set)
    given = lines.groupby("patient_id")["therapy"].apply(set)
    first = lines[lines["line"] == 1].set_index("patient_id")["therapy"]
    for pid, kind in enumerate(kinds):
        got = skips.get(pid, set())
        if kind.startswith("sstr_neg"):
            assert got == {"ssa:sstr_negative", "lu177_dotatate:sstr_negative"}, (pid, got)
            assert not {"ssa", "lu177_dotatate"} & given[pid] and first[pid] == "everolimus"
        elif kind == "insulinoma":
            assert got == {"ssa:excluded_insulinoma"} and first[pid] == "lu177_dotatate"
        else:
            assert got == set() and first[pid] == "ssa"
    sk = events[events["event"] == "line_skipped"]
    assert (sk["time"] == 0).all() and (sk["line"] == 0).all()  # skipped before the first line


@pytest.mark.parametrize("engine", ENGINES)
def test_ssa_given_in_insulinoma_when_exclusion_removed(engine):
    """With therapies.ssa.eligibility.exclude_functional=[] SSTR-positive insulinoma receives SSA."""
    cohort, kinds = _mixed_cohort()
    _, lines, _ = _run(["therapies.ssa.eligibility.exclude_functional=[]"], cohort, ["prrt"], engine)
    first = lines[lines["line"] == 1].set_index("patient_id")["therapy"]
    assert (first[np.flatnonzero(kinds == "insulinoma")] == "ssa").all()


@pytest.mark.parametrize("engine", ENGINES)
def test_ineligible_line_leads_to_terminal_line_when_skipping_disabled(engine):
    """With skip_ineligible=false an SSTR-negative patient goes straight to best supportive care."""
    cohort, kinds = _mixed_cohort(5)
    _, lines, _ = _run(["strategies.prrt.rules.skip_ineligible=false"], cohort, ["prrt"], engine)
    first = lines[lines["line"] == 1].set_index("patient_id")["therapy"]
    assert (first[np.flatnonzero(kinds == "sstr_neg")] == "bsc").all()
    assert (first[np.flatnonzero(kinds == "plain")] == "ssa").all()


@pytest.mark.parametrize("engine", ENGINES)
def test_no_rechallenge_after_sunitinib_stopped_for_toxicity(engine):
    """Only patients who progressed on sunitinib are rechallenged; a toxicity stop makes them ineligible."""
    tox = ["therapies.sunitinib.adverse_events.neutropenia.probability=0.5",
           "therapies.sunitinib.adverse_events.neutropenia.onset_median_weeks=2",
           "therapies.sunitinib.adverse_events.neutropenia.consequence.interruption=0",
           "therapies.sunitinib.adverse_events.neutropenia.consequence.dose_reduction=0",
           "therapies.sunitinib.adverse_events.neutropenia.consequence.discontinuation=1",
           "model.disease_death.rate_per_year=0"]
    _, lines, events = _run(tox, make_cohort(300, sstr_positive=False), ["rechallenge"], engine)
    sun = lines[lines["therapy"] == "sunitinib"].set_index("patient_id")["reason"]
    rech = set(lines.loc[lines["therapy"] == "sunitinib_rechallenge", "patient_id"])
    skipped = set(events.loc[events["detail"] == "sunitinib_rechallenge:no_prior_progression_on_sunitinib",
                             "patient_id"])
    tox_ids, prog_ids = set(sun[sun == "toxicity"].index), set(sun[sun == "progression"].index)
    assert len(tox_ids) > 20 and len(prog_ids) > 20
    assert not rech & tox_ids
    assert rech <= prog_ids and len(rech) > 20
    reached_tox = tox_ids & set(lines.loc[lines["therapy"] == "bsc", "patient_id"])
    assert reached_tox and reached_tox <= skipped


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("prior", ["sunitinib", "ssa;sunitinib", "", "everolimus"])
def test_prior_sunitinib_makes_rechallenge_eligible_at_line_1(prior, engine):
    """A cohort with prior therapy sunitinib starts on rechallenge at line 1; others skip it."""
    from sim.config import build_model

    m = build_model(compose_config([
        "cohort.n=40", f"cohort.prior_therapies='{prior}'", "+strategies.rc={lines: [sunitinib_rechallenge, bsc]}",
        "experiment.strategies=[rc]", "experiment.reference=rc",
        "therapies.sunitinib_rechallenge.rechallenge.beta_prior_pfs=0.5",
        "therapies.sunitinib_rechallenge.rechallenge.beta_time_off=-0.3"]))
    rec = simulate(m.cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed, engine=engine)
    lines = rec.frames()[1]
    l1 = lines[lines["line"] == 1]
    assert len(l1) == 40
    if "sunitinib" in prior.split(";"):
        assert (l1["therapy"] == "sunitinib_rechallenge").all()
        # prior exposure: first PFS and time off unknown -> the reference values, TR as configured
        assert np.allclose(l1["time_ratio"], m.therapies["sunitinib_rechallenge"].rechallenge.time_ratio, rtol=1e-12)
    else:
        assert (l1["therapy"] == "bsc").all()


# ------------------------------------------------------------------ toxicity
def test_everolimus_hyperglycaemia_uses_diabetes_probability():
    """Everolimus G3/4 hyperglycaemia occurs at probability_diabetes (0.15) with diabetes, 0.03 without."""
    spec = CONFIG_THERAPIES["everolimus"]
    ae = dict(spec["adverse_events"]["hyperglycaemia"], onset_median_weeks=0.01)  # onset ~never censored
    eve = Therapy.from_config("everolimus", {**spec, "pfs": {"family": "exponential", "median": 1e6},
                                             "adverse_events": {"hyperglycaemia": ae}})
    rules = make_rules()
    n = 4000
    pat = Patients(make_cohort(2 * n, diabetes=[True] * n + [False] * n), rules)
    d = Draws(17, 0, 2 * n)
    rows = np.arange(2 * n)
    lb = plan_lines(eve, {}, pat, rows, np.ones(2 * n, np.int64), np.zeros(2 * n), History(2 * n), d, d["pfs"][:, 0],
                    rules)
    for diabetic, p, part in ((True, 0.15, slice(0, n)), (False, 0.03, slice(n, 2 * n))):
        hits = int((lb.n_ae[part] > 0).sum())
        assert abs(binom_z(hits, n, p)) < Z, (diabetic, hits / n)


def test_discontinuation_for_toxicity_ends_the_line_at_onset():
    """An AE with consequence discontinuation ends the line at its onset with reason toxicity."""
    spec = CONFIG_THERAPIES["everolimus"]
    ae = {"probability": 1.0, "onset_median_weeks": 4, "consequence": {"discontinuation": 1.0}}
    t = Therapy.from_config("x", {**spec, "adverse_events": {"stomatitis": ae}})
    u_onset = 0.5
    res = plan(t, {}, patient(), 1, 10.0, math.inf, [], FixedU(0.999, pfs=0.05, **{"ae/stomatitis": u_onset}),
               make_rules())
    onset = 10.0 + weeks(4)  # median onset at u = 1/2
    assert res.reason == "toxicity" and res.end == pytest.approx(onset, rel=1e-12)
    assert res.record["on_treatment_months"] == pytest.approx(weeks(4), rel=1e-12)
    assert [e[1] for e in res.events][-2:] == ["discontinuation", "line_end"]


# ------------------------------------------------------------------ fixed courses
@pytest.mark.parametrize("name,doses,every_weeks", [("lu177_dotatate", 4, 8), ("captem", 13, 4)])
def test_fixed_course_ends_after_its_doses_only_if_line_lasts(default_run, line_start, name, doses, every_weeks):
    """course_end comes doses x interval after line start, exactly when the line lasts that long."""
    _, _, lines, events = default_run
    course = weeks(doses * every_weeks)
    ce = events[(events["event"] == "course_end") & (events["detail"] == name)]
    assert (ce["value"] == doses).all()
    np.testing.assert_allclose(ce["time"].to_numpy() - line_start(ce, lines), course, rtol=1e-12)
    ln = lines[lines["therapy"] == name]
    key = ["patient_id", "strategy", "line"]
    has = ln[key].merge(ce[key], on=key, how="left", indicator=True)["_merge"].to_numpy() == "both"
    lasts = (ln["end"] - ln["start"]).to_numpy() >= course
    assert has.sum() > 20 and (~has).sum() > 10
    np.testing.assert_array_equal(has, lasts)
    # no AE while off drug after the course
    ae = events[events["event"] == "adverse_event"]
    ae = ae[ae[key].merge(ln[key], on=key, how="left", indicator=True)["_merge"].to_numpy() == "both"]
    assert (ae["time"].to_numpy() - line_start(ae, lines) < course).all()
    # time on treatment is capped by the course
    assert (ln["on_treatment_months"] <= course * (1 + 1e-12)).all()


# ------------------------------------------------------------------ dose intensity
def test_dose_intensity_in_unit_interval_and_one_without_aes(default_run):
    """Relative dose intensity is in [0, 1] on drug lines, exactly 1 without AEs, NaN off drug."""
    model, _, lines, _ = default_run
    kind = lines["therapy"].map({k: t.kind for k, t in model.therapies.items()})
    on = lines[(kind == "active") & (lines["on_treatment_months"] > 0)]
    assert on["dose_intensity"].between(0, 1).all()
    no_ae = on[on["n_ae"] == 0]["dose_intensity"]
    np.testing.assert_allclose(no_ae, 1.0, rtol=0, atol=1e-12)
    assert (on[on["n_ae"] > 0]["dose_intensity"] < 1 - 1e-9).any()
    assert lines.loc[kind != "active", "dose_intensity"].isna().all()


@pytest.mark.parametrize("consequence", ["dose_reduction", "interruption"])
def test_dose_intensity_is_time_weighted_dose_level(consequence):
    """RDI equals the time-weighted dose level for one dose reduction or one interruption."""
    spec = CONFIG_THERAPIES["everolimus"]
    ae = {"probability": 1.0, "onset_median_weeks": 4, "consequence": {consequence: 1.0},
          "reduced_intensity": 0.5, "interruption_weeks": 2}
    t = Therapy.from_config("x", {**spec, "pfs": {"family": "exponential", "median": 10.0},
                                  "adverse_events": {"stomatitis": ae}})
    u_pfs = 0.25
    res = plan(t, {}, patient(), 1, 0.0, math.inf, [], FixedU(0.999, pfs=u_pfs, **{"ae/stomatitis": 0.5}),
               make_rules())
    dt = weeks(12)
    pfs = float(t.pfs.sample(u_pfs))
    detect = math.ceil(pfs / dt) * dt
    onset = weeks(4)
    assert res.reason == "progression" and res.end == pytest.approx(detect)
    if consequence == "dose_reduction":
        want = (onset + 0.5 * (detect - onset)) / detect
    else:
        want = (detect - weeks(2)) / detect
    assert res.record["dose_intensity"] == pytest.approx(want, rel=1e-12)


def test_dose_reduction_during_interruption_persists_after_resumption():
    """A dose reduction while the drug is interrupted is kept when the drug resumes."""
    spec = CONFIG_THERAPIES["everolimus"]
    aes = {"anaemia": {"probability": 1.0, "onset_median_weeks": 4, "consequence": {"interruption": 1.0},
                       "interruption_weeks": 4},
           "stomatitis": {"probability": 1.0, "onset_median_weeks": 5, "consequence": {"dose_reduction": 1.0},
                          "reduced_intensity": 0.5}}
    t = Therapy.from_config("x", {**spec, "pfs": {"family": "exponential", "median": 10.0}, "adverse_events": aes})
    res = plan(t, {}, patient(), 1, 0.0, math.inf, [], FixedU(0.5, pfs=0.25, pfs_event=0.999), make_rules())
    resume = [e for e in res.events if e[1] == "dose_change" and e[2] == "resume"]
    assert resume and resume[0][3] == 0.5
    # dose 1 until the interruption, 0 while interrupted, 0.5 after resumption
    t_int, t_back, end = weeks(4), weeks(4) + weeks(4), res.record["end"]
    want = (t_int + 0.5 * (end - t_back)) / end
    assert res.record["dose_intensity"] == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------ rechallenge
@pytest.mark.parametrize("r", [0.25, 0.4293, 1.0, 1.7])
@pytest.mark.parametrize("u", [0.01, 0.3, 0.5, 0.97])
def test_rechallenge_pfs_is_time_ratio_times_first_exposure_quantile(r, u):
    """With betas 0, rechallenge true PFS = r x the sunitinib PFS quantile for the same uniform."""
    sun = therapy("sunitinib")
    rc_cfg = dict(CONFIG_THERAPIES["sunitinib_rechallenge"])
    rc_cfg["rechallenge"] = {**rc_cfg["rechallenge"], "time_ratio": r, "beta_prior_pfs": 0.0, "beta_time_off": 0.0,
                          "response_time_ratio": 1.0}
    rc = Therapy.from_config("sunitinib_rechallenge", rc_cfg)
    ths = {"sunitinib": sun, "sunitinib_rechallenge": rc}
    rules, U, pt = make_rules(), FixedU(0.999, pfs=u), patient()
    first = plan(sun, ths, pt, 2, 3.0, math.inf, [], U, rules)
    assert first.record["pfs_true"] == pytest.approx(float(sun.pfs.quantile(1 - u)), rel=1e-12)
    hist = [LineHistory("sunitinib", 3.0, first.end, first.reason, first.record["pfs_months"])]
    again = plan(rc, ths, pt, 4, first.end + 7.0, math.inf, hist, U, rules)
    assert again.record["time_ratio"] == r
    assert again.record["pfs_true"] == pytest.approx(r * first.record["pfs_true"], rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(tr=st.floats(0.05, 3), bp=st.floats(-2, 2), bt=st.floats(-2, 2),
       pf=st.floats(0.1, 100), off=st.floats(0.1, 100))
def test_time_ratio_for_follows_documented_formula(tr, bp, bt, pf, off):
    """TR = time_ratio (pfs_first/ref_pfs)^beta_prior_pfs (time_off/ref_off)^beta_time_off."""
    rc = Rechallenge("sunitinib", tr, 0.3, bp, bt, 11.4, 14.6)
    want = tr * (pf / 11.4) ** bp * (off / 14.6) ** bt
    assert rc.time_ratio_for(pf, off) == pytest.approx(want, rel=1e-12)
    assert rc.time_ratio_for(11.4, 14.6) == pytest.approx(tr, rel=1e-12)  # at the references: as configured


def test_rechallenge_uses_first_pfs_and_time_off_from_history():
    """plan_line feeds the detected PFS on sunitinib and the time since it stopped into time_ratio_for."""
    rc_cfg = dict(CONFIG_THERAPIES["sunitinib_rechallenge"])
    rc_cfg["rechallenge"] = {**rc_cfg["rechallenge"], "beta_prior_pfs": 0.5, "beta_time_off": -0.25}
    ths = build_therapies({**CONFIG_THERAPIES, "sunitinib_rechallenge": rc_cfg})
    rc = ths["sunitinib_rechallenge"]
    trs = []
    for pfs_first in (4.0, 11.4, 30.0):
        hist = [LineHistory("sunitinib", 2.0, 2.0 + pfs_first, "progression", pfs_first),
                LineHistory("everolimus", 2.0 + pfs_first, 20.0 + pfs_first, "progression", 18.0)]
        start = 20.0 + pfs_first
        res = plan(rc, ths, patient(), 3, start, math.inf, hist, FixedU(0.5), make_rules())
        want = rc.rechallenge.time_ratio_for(pfs_first, 18.0, responded=False)
        assert res.record["time_ratio"] == pytest.approx(want, rel=1e-12)
        trs.append(res.record["time_ratio"])
    assert trs[0] < trs[1] < trs[2]  # beta_prior_pfs > 0: longer first PFS, better rechallenge


def test_rechallenge_response_probability_is_scaled():
    """Rechallenge response rate = first-exposure response probability x response_ratio."""
    ths = build_therapies(CONFIG_THERAPIES)
    rc = ths["sunitinib_rechallenge"]
    p = ths["sunitinib"].response_probability * rc.rechallenge.response_ratio
    hist = [LineHistory("sunitinib", -math.inf, 0.0, "prior", math.nan)]
    for u, want in ((p * 0.999, True), (p * 1.001, False)):
        res = plan(rc, ths, patient(), 1, 0.0, math.inf, hist, FixedU(0.5, response=u), make_rules())
        assert res.record["response"] is want


def test_overlapping_interruptions_resume_once_at_the_last_window_end():
    """Two overlapping interruptions: one resume event, at the end of the later window; RDI counts both as 0."""
    spec = CONFIG_THERAPIES["everolimus"]
    aes = {"anaemia": {"probability": 1.0, "onset_median_weeks": 4, "consequence": {"interruption": 1.0},
                       "interruption_weeks": 4},
           "stomatitis": {"probability": 1.0, "onset_median_weeks": 5, "consequence": {"interruption": 1.0},
                          "interruption_weeks": 6}}
    t = Therapy.from_config("x", {**spec, "pfs": {"family": "exponential", "median": 10.0}, "adverse_events": aes})
    res = plan(t, {}, patient(), 1, 0.0, math.inf, [], FixedU(0.5, pfs=0.25, pfs_event=0.999), make_rules())
    resume = [e for e in res.events if e[1] == "dose_change" and e[2] == "resume"]
    t_a, t_s = weeks(4), weeks(5)  # onsets at the medians (u = 1/2)
    assert [e[0] for e in resume] == [pytest.approx(t_s + weeks(6), rel=1e-12)] and resume[0][3] == 1.0
    end = res.record["end"]
    want = (end - (t_s + weeks(6) - t_a)) / end  # off drug from the first onset to the last window end
    assert res.record["dose_intensity"] == pytest.approx(want, rel=1e-12)
    assert res.record["ae_types"] == "anaemia;stomatitis"


def test_aes_after_a_discontinuation_do_not_count():
    """An AE with onset after a discontinuation is not logged and not counted on the line."""
    spec = CONFIG_THERAPIES["everolimus"]
    aes = {"late": {"probability": 1.0, "onset_median_weeks": 6, "consequence": {"none": 1.0}},
           "early": {"probability": 1.0, "onset_median_weeks": 3, "consequence": {"discontinuation": 1.0}}}
    t = Therapy.from_config("x", {**spec, "pfs": {"family": "exponential", "median": 10.0}, "adverse_events": aes})
    res = plan(t, {}, patient(), 1, 0.0, math.inf, [], FixedU(0.5, pfs=0.25, pfs_event=0.999), make_rules())
    assert res.reason == "toxicity" and res.end == pytest.approx(weeks(3), rel=1e-12)
    assert res.record["ae_types"] == "early" and res.record["n_ae"] == 1
    assert [e[1] for e in res.events] == ["line_start", "adverse_event", "discontinuation", "line_end"]
