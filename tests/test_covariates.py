"""Covariates where the evidence gives an effect: prognostic hazard ratios on every non-terminal line,
MGMT on temozolomide-based PFS, a therapy's own reference population, hypoglycaemia in insulinoma,
symptom control of functional syndromes on SSA and the utility of an uncontrolled syndrome."""

import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import Z, FixedU, binom_z, compose_config, make_cohort, make_rules, plan
from sim.config import build_rules
from sim.economics import load_spec
from sim.economics.qalys import effect_accruals
from sim.economics.records import RunArrays
from sim.rng import Draws
from sim.therapies import Therapy
from sim.kernel.line import (CONTROLLED, NO_SYNDROME, UNCONTROLLED, History, Patients, plan_lines,
                                progression_hr)
from support.one_patient import LineHistory

CFG = compose_config(["experiment=validation"])       # with the trials' therapies (temozolomide, placebo arms)
CONFIG_THERAPIES = OmegaConf.to_container(CFG.therapies, resolve=True)
MODEL = OmegaConf.to_container(CFG.model, resolve=True)
RULES = build_rules(MODEL)
PROG = MODEL["prognostic_hr"]
REF = MODEL["covariate_reference"]


def therapy(name, **changes):
    """Therapy ``name`` of the default config, with top-level keys replaced by ``changes``."""
    return Therapy.from_config(name, {**CONFIG_THERAPIES[name], **changes})


def expected_hr(t: Therapy, x: dict) -> float:
    """``prod_c hr_c^(x_c - ref_c)`` by hand: prognostic ratios (non-terminal lines) times the therapy's own."""
    ref = {**REF, **t.covariate_reference}
    hrs = dict(t.covariate_hr)
    if t.kind != "terminal":
        for c, h in PROG.items():
            hrs[c] = hrs.get(c, 1.0) * h
    return math.prod(h ** (float(x[c]) - ref.get(c, 0.0)) for c, h in hrs.items())


# a G2 tumour with Ki-67 12 %, ECOG 2, MGMT-low, rapid tempo, hepatic load 25-50 %
POOR = dict(grade="G2", ki67=12.0, ecog=2, mgmt_low=True, tempo="rapid", hepatic_burden="25to50")
POOR_X = dict(grade_ge2=1, ki67_ge10=1, ecog_ge2=1, mgmt_low=1, rapid_tempo=1, hepatic_gt25=1, hepatic_gt50=0,
              grade_g3=0)
G1 = dict(grade="G1", ki67=2.0, ecog=0, mgmt_low=False)
G1_X = dict(grade_ge2=0, ki67_ge10=0, ecog_ge2=0, mgmt_low=0, rapid_tempo=0, hepatic_gt25=0, hepatic_gt50=0,
            grade_g3=0)


@pytest.mark.parametrize("name", ["sunitinib", "everolimus", "captem", "temozolomide", "ssa", "lu177_dotatate",
                                  "observation", "placebo_clarinet", "placebo_sun1111", "bsc"])
@pytest.mark.parametrize("cols,x", [(POOR, POOR_X), (G1, G1_X)], ids=["poor", "g1"])
def test_progression_hazard_multiplier_follows_the_centred_formula(name, cols, x):
    """A constructed patient's hazard multiplier on each line is prod hr^(x - ref) over the prognostic
    ratios of every non-terminal line and the therapy's own, centred on its reference population;
    the terminal line (best supportive care) takes no prognostic ratio."""
    t = therapy(name)
    pat = Patients(make_cohort(1, **cols), RULES)
    assert pat.hr(t)[0] == pytest.approx(expected_hr(t, x), rel=1e-12)


def test_prognostic_ratios_act_on_observation_and_every_drug_but_not_the_terminal_line():
    """With only the prognostic ratios changed, a G2 patient's hazard on observation and on sunitinib rises
    by grade_hr^(1 - ref); best supportive care does not move."""
    base = Patients(make_cohort(1, grade="G2", ki67=5.0), RULES)
    steeper = Patients(make_cohort(1, grade="G2", ki67=5.0),
                       build_rules({**MODEL, "prognostic_hr": {**PROG, "grade_ge2": 2.0}}))
    step = (2.0 / PROG["grade_ge2"]) ** (1 - REF["grade_ge2"])
    for name in ("observation", "sunitinib"):
        assert steeper.hr(therapy(name))[0] / base.hr(therapy(name))[0] == pytest.approx(step, rel=1e-12)
    assert steeper.hr(therapy("bsc"))[0] == pytest.approx(base.hr(therapy("bsc"))[0], rel=1e-12)


def test_patient_at_the_reference_prevalences_keeps_the_fitted_hazard():
    """Covariate indicators equal to the reference prevalences give a multiplier of exactly 1 (the fits
    describe the reference population)."""
    for name in ("sunitinib", "captem", "observation"):
        t = therapy(name)
        ref = {**REF, **t.covariate_reference}
        x = {c: ref.get(c, 0.0) for c in ("grade_ge2", "ki67_ge10", "ecog_ge2", "mgmt_low", "rapid_tempo",
                                          "hepatic_gt25", "hepatic_gt50", "grade_g3")}
        assert math.exp(t.log_hazard_multiplier(x, REF, PROG)) == pytest.approx(1.0, abs=1e-12)


def test_lu177_effects_are_centred_on_the_oclurandom_population():
    """177Lu-dotatate's fit is OCLURANDOM's (81 % G2-3, 37 % Ki-67 > 10 %): its covariate effects are
    centred there, so a G1 patient's hazard is grade_hr^-0.81 x ki67_hr^-0.37 x the rest."""
    t = therapy("lu177_dotatate")
    assert t.covariate_reference == {"grade_ge2": 0.81, "ki67_ge10": 0.37}
    pat = Patients(make_cohort(1, **G1), RULES)
    want = (PROG["grade_ge2"] ** -0.81 * PROG["ki67_ge10"] ** -0.37 * PROG["ecog_ge2"] ** -REF["ecog_ge2"]
            * 1.5 ** -REF["rapid_tempo"])
    assert pat.hr(t)[0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("name", ["captem", "temozolomide"])
def test_mgmt_low_scales_temozolomide_based_progression_hazard_by_its_ratio(name):
    """On CAPTEM and temozolomide an MGMT-low tumour's hazard is hr_mgmt times an MGMT-high one's (all
    else equal); on sunitinib MGMT does not act."""
    t = therapy(name)
    low, high = (Patients(make_cohort(1, mgmt_low=m), RULES).hr(t)[0] for m in (True, False))
    assert low / high == pytest.approx(t.covariate_hr["mgmt_low"], rel=1e-12)
    assert t.covariate_hr["mgmt_low"] < 1.0
    s = therapy("sunitinib")
    assert (Patients(make_cohort(1, mgmt_low=True), RULES).hr(s)[0]
            == pytest.approx(Patients(make_cohort(1, mgmt_low=False), RULES).hr(s)[0], rel=1e-12))


@pytest.mark.parametrize("u", [0.1, 0.5, 0.9])
def test_progression_time_is_the_fitted_quantile_at_the_patient_hazard_ratio(u):
    """A constructed patient's true progression time on sunitinib is H^{-1}(-log u / HR_i) of the fitted
    exponential (the line effect is zero at the trial's reference line)."""
    spec = CONFIG_THERAPIES["sunitinib"]["pfs"]
    assert spec["shape"] == 1.0                     # the fit is exponential: H(t) = log(2) t / median
    t = therapy("sunitinib")
    rules = make_rules(covariate_reference=REF, prognostic_hr=PROG)
    p = make_cohort(1, **POOR, prior_therapies="ssa").iloc[0].to_dict()
    hist = [LineHistory("ssa", 0.0, 0.0, "prior", math.nan)]
    res = plan(t, {"sunitinib": t}, p, 1, 0.0, math.inf, hist, FixedU(0.99, pfs=u), rules)
    hr = expected_hr(t, POOR_X)
    want = -math.log(u) / (math.log(2) / spec["median"] * hr)
    assert res.record["pfs_true"] == pytest.approx(want, rel=1e-9)


def test_progression_hr_of_a_batch_includes_the_prognostic_ratios():
    """:func:`progression_hr` (the kernel both executors call) returns the covariate multiplier with the
    prognostic ratios for patients at the reference line."""
    t = therapy("everolimus")
    pat = Patients(make_cohort(2, grade=["G1", "G2"], ki67=[2.0, 12.0], ecog=[0, 2], prior_therapies="ssa"), RULES)
    hist = History(2, pat.prior)
    hr = progression_hr(t, {"everolimus": t}, pat, np.arange(2), hist, RULES)
    assert hr[1] / hr[0] == pytest.approx(PROG["grade_ge2"] * PROG["ki67_ge10"] * PROG["ecog_ge2"], rel=1e-12)


# ------------------------------------------------------------------ hypoglycaemia in insulinoma
@pytest.mark.parametrize("name", ["sunitinib", "ssa"])
def test_hypoglycaemia_occurs_only_in_insulinoma_at_its_labelled_rate(name):
    """Hypoglycaemia on SSA and on sunitinib occurs in insulinoma at the configured probability (within
    Monte Carlo error) and never in other functional statuses."""
    spec = CONFIG_THERAPIES[name]
    ae = dict(spec["adverse_events"]["hypoglycaemia"], onset_median_weeks=0.01)     # onset ~never censored
    t = Therapy.from_config(name, {**spec, "pfs": {"family": "exponential", "median": 1e6},
                                   "adverse_events": {"hypoglycaemia": ae},
                                   "eligibility": {"exclude_functional": []}})
    rules = make_rules()
    n = 4000
    pat = Patients(make_cohort(2 * n, functional_status=["insulinoma"] * n + ["vipoma"] * n), rules)
    d = Draws(23, 0, 2 * n)
    rows = np.arange(2 * n)
    lb = plan_lines(t, {}, pat, rows, np.ones(2 * n, np.int64), np.zeros(2 * n), History(2 * n), d,
                    d["pfs"][:, 0], rules)
    hits = int((lb.n_ae[:n] > 0).sum())
    assert abs(binom_z(hits, n, ae["probability"])) < Z, hits / n
    assert int((lb.n_ae[n:] > 0).sum()) == 0


def test_ssa_stays_excluded_in_insulinoma_by_default():
    """The seeds advise SSA 'with extreme caution' in insulinoma: the default keeps the exclusion."""
    assert therapy("ssa").exclude_functional == ("insulinoma",)


# ------------------------------------------------------------------ functional syndromes
@pytest.mark.parametrize("status", ["vipoma", "glucagonoma", "gastrinoma", "insulinoma"])
def test_ssa_controls_a_functional_syndrome_at_its_configured_probability(status):
    """On an SSA line a functioning tumour's syndrome is controlled with ``symptom_control[status]``
    (seed 002: 80-90 % in VIPoma and glucagonoma) within Monte Carlo error; a non-functioning tumour
    has no syndrome; on sunitinib and best supportive care the syndrome is uncontrolled."""
    rules = make_rules()
    n = 4000
    pat = Patients(make_cohort(2 * n, functional_status=[status] * n + ["non_functioning"] * n), rules)
    d = Draws(31, 0, 2 * n)
    rows = np.arange(2 * n)
    ssa = therapy("ssa", eligibility={})
    lb = plan_lines(ssa, {}, pat, rows, np.ones(2 * n, np.int64), np.zeros(2 * n), History(2 * n), d,
                    d["pfs"][:, 0], rules)
    controlled = int((lb.syndrome[:n] == CONTROLLED).sum())
    assert abs(binom_z(controlled, n, ssa.symptom_control[status])) < Z, controlled / n
    assert set(lb.syndrome[:n].tolist()) <= {CONTROLLED, UNCONTROLLED}
    assert (lb.syndrome[n:] == NO_SYNDROME).all()
    for name in ("sunitinib", "bsc"):
        other = plan_lines(therapy(name), {}, pat, rows, np.ones(2 * n, np.int64), np.zeros(2 * n), History(2 * n),
                           d, d["pfs"][:, 0], rules)
        assert (other.syndrome[:n] == UNCONTROLLED).all() and (other.syndrome[n:] == NO_SYNDROME).all()


def _run_frames(syndromes):
    """A hand-made run of one patient: observation [0, 2), SSA [2, 14), best supportive care [14, 20),
    death at 20 months, with the given ``syndrome`` code of each line."""
    patients = pd.DataFrame({"strategy": ["s"], "patient_id": [0], "os_months": [20.0], "death": [True],
                             "death_cause": ["disease"]})
    lines = pd.DataFrame({
        "strategy": ["s"] * 3, "patient_id": [0] * 3, "line": [1, 2, 3], "therapy": ["observation", "ssa", "bsc"],
        "start": [2.0, 4.0, 14.0], "end": [4.0, 14.0, 20.0], "pfs_true": [2.0, 10.0, np.nan],
        "progression_true": [4.0, 14.0, np.nan], "progression_detected": [4.0, 14.0, np.nan],
        "on_treatment_months": [0.0, 10.0, 0.0], "dose_intensity": [np.nan, 1.0, np.nan], "n_scans": [0, 0, 0],
        "unscheduled_scans": [0, 0, 0], "syndrome": syndromes})
    events = pd.DataFrame({"strategy": pd.Series([], dtype=object), "patient_id": pd.Series([], dtype="int64"),
                           "time": pd.Series([], dtype=float), "line": pd.Series([], dtype="int64"),
                           "event": pd.Series([], dtype=object), "detail": pd.Series([], dtype=object),
                           "value": pd.Series([], dtype=float)})
    return RunArrays.from_frames(patients, lines, events)


@pytest.mark.parametrize("syndromes,uncontrolled_months", [
    ([UNCONTROLLED, CONTROLLED, UNCONTROLLED], 2.0 + 2.0 + 6.0),   # before line 1, observation, BSC
    ([UNCONTROLLED, UNCONTROLLED, UNCONTROLLED], 20.0),
    ([NO_SYNDROME, NO_SYNDROME, NO_SYNDROME], 0.0),
])
def test_uncontrolled_syndrome_loses_its_utility_decrement_over_the_uncontrolled_time(syndromes, uncontrolled_months):
    """``qaly_syndrome_loss = delta_S x (months uncontrolled) / 12`` undiscounted: a functioning tumour
    loses the decrement before the first line and on every line that does not control it; a
    non-functioning one loses nothing."""
    spec = load_spec("uk_nhs")
    acc = effect_accruals(_run_frames(syndromes), spec)
    got = float(acc["qaly_syndrome_loss"].value(0.0)[0])
    assert got == pytest.approx(spec.uncontrolled_syndrome * uncontrolled_months / 12, rel=1e-12)
    assert spec.uncontrolled_syndrome == pytest.approx(0.10)
