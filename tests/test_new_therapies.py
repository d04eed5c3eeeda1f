"""Therapies added from the seeds' numbers: STZ/5-FU, surufatinib, (chemo)embolisation, 90Y-DOTATOC,
cabozantinib, everolimus + bevacizumab, everolimus + octreotide, and PRRT late toxicity (myeloid neoplasms) as a pathway-level event of the line kernel.

Statistical checks use fixed seeds and tolerances of ``Z`` Monte Carlo standard errors (binomial
for rates, order-statistic intervals for medians).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import Z, compose_config, make_cohort
from sim.config import build_model, to_container
from sim.errors import UserError
from sim.evidence import lookup
from sim.run.executors import simulate
from sim.fitting import Detection
from sim.target_roles import IN_SAMPLE, OUT_OF_SAMPLE, target_roles
from sim.therapies.definition import Therapy
from sim.therapies.pfs import build_pfs
from sim.units import DAYS_PER_MONTH, weeks
from sim.validation import TrialDesign
from test_executor_equality import assert_same_frames, both_engines

#: goal tolerance of a median (configs/experiment/validation.yaml)
MEDIAN_TOL = 0.05
N = 20_000


def _strategy_model(lines: list[str], extra=()):
    """The default model with one strategy ``x`` of ``lines`` (and config overrides ``extra``)."""
    return build_model(compose_config([f"cohort.n={N}", f"+strategies.x={{lines: [{', '.join(lines)}]}}",
                                       "experiment.strategies=[x]", "experiment.reference=x", *extra]))


def _frames(model, cohort=None):
    cohort = model.cohort if cohort is None else cohort
    return simulate(cohort, model.strategies, model.therapies, model.rules, model.lifetable, model.seed,
                    engine="vectorised").frames()


@pytest.mark.parametrize("therapy, prior, evidence_id, extra", [
    # STZ/5-FU: the fitted progression curve, without its toxicity stops (a stop moves the patient to the
    # next line, which the series' PFS does not: with them the median is 20.0 through [stz_5fu, bsc], 13 % low;
    # the fit leaves them out on purpose, docs/fitting.md "Toxicity stops are not in S_Y")
    ("stz_5fu", "", "clewemar2016_stz_5fu_median_pfs",
     ["therapies.stz_5fu.adverse_events.toxicity_discontinuation.probability=0.0"]),
    ("surufatinib", "ssa", "sanetp_surufatinib_median_pfs", []),
    ("embolisation", "ssa", "guideline_embolisation_median_pfs", []),     # procedure deaths included
    ("y90_dotatoc", "ssa", "horsch2016_y90_dotatoc_median_pfs", []),
    ("cabozantinib", "ssa", "cabozantinib_phase2_median_pfs", []),
    ("everolimus_bevacizumab", "ssa", "calgb80701_everolimus_bevacizumab_median_pfs", []),
    # RADIANT-1 stratum 2: after SSA and chemotherapy (reference 2 prior lines); SSTR-positive, no insulinoma
    ("everolimus_octreotide", "ssa;captem", "yao2010_everolimus_octreotide_median_pfs", []),
])
def test_new_therapy_reproduces_its_published_median_pfs_within_the_goal_tolerance(therapy, prior, evidence_id,
                                                                                   extra):
    """The default cohort at the therapy's reference line, simulated through [therapy, bsc] (scans every
    12 weeks, clinical detection, deaths), has a detected-PFS median within +-5 % of the published one
    (the order-statistic Z interval of the simulated median meets the +-5 % band)."""
    published = float(lookup(evidence_id)["value"])
    model = _strategy_model([therapy, "bsc"], [*extra, *([f"cohort.prior_therapies='{prior}'"] if prior else [])])
    cohort = model.cohort
    if model.therapies[therapy].requires_sstr_positive:
        cohort = cohort[cohort["sstr_positive"].to_numpy(bool)]
    if "insulinoma" in model.therapies[therapy].exclude_functional:
        cohort = cohort[cohort["functional_status"].astype(str).to_numpy() != "insulinoma"]
    patients, _, _ = _frames(model, cohort)
    y = np.sort(patients["pfs1_months"].to_numpy())
    n = y.size
    j, k = (int(stats.binom.ppf(q, n, 0.5)) for q in (stats.norm.cdf(-Z), stats.norm.cdf(Z)))
    assert y[k] >= (1 - MEDIAN_TOL) * published and y[j - 1] <= (1 + MEDIAN_TOL) * published, \
        (therapy, float(np.median(y)), published)


def test_embolisation_kills_at_its_cited_thirty_day_mortality_within_monte_carlo_error():
    """Deaths of cause 'treatment' within 30 days of an embolisation occur at seed 002's 30-day mortality
    (midpoint 5.6 % of 1.9-9.3 %), uniformly over the 30 days."""
    p = float(lookup("guideline_embolisation_mortality_30d")["value"])
    model = _strategy_model(["embolisation", "bsc"], ["cohort.prior_therapies=ssa"])
    patients, lines, events = _frames(model)
    treat = patients["death_cause"].astype(str) == "treatment"
    share = treat.mean()
    assert abs(share - p) <= Z * math.sqrt(p * (1 - p) / len(patients))
    t = patients.loc[treat, "os_months"].to_numpy()
    assert t.max() <= (30 / DAYS_PER_MONTH) + 1e-9
    assert stats.kstest(t / (30 / DAYS_PER_MONTH), "uniform").pvalue > 1e-4
    first = lines[lines["line"] == 1]
    assert (first.loc[first["patient_id"].isin(patients.loc[treat, "patient_id"]), "reason"] == "death").all()


@pytest.mark.parametrize("therapy, ids", [
    ("lu177_dotatate", {"mds": "brabander2017_lu177_long_term_mds",
                        "acute_leukaemia": "brabander2017_lu177_long_term_acute_leukemia"}),
    ("y90_dotatoc", {"mds": "guideline_prrt_long_term_mds",
                     "acute_leukaemia": "guideline_prrt_long_term_acute_leukemia"}),
])
def test_prrt_late_toxicity_occurs_at_the_cited_rate_within_monte_carlo_error(therapy, ids):
    """Young SSTR-positive patients without disease death and with a long terminal phase (everyone lives
    past the onset window): after one PRRT course the myeloid neoplasms appear as adverse events at their
    cited rates, 2-7 years after the course starts, and the fatal share dies of them (cause 'treatment')."""
    model = _strategy_model([therapy, "bsc"], ["model.disease_death.rate_per_year=0.0", "therapies.bsc.pfs.median=3000",
                                               "cohort.prior_therapies=ssa"])
    cohort = make_cohort(N, age=20.0, prior_therapies="ssa")
    patients, lines, events = _frames(model, cohort)
    late = events[(events["event"] == "adverse_event") & events["detail"].isin(list(ids))]
    start = lines[lines["line"] == 1].set_index("patient_id")["start"]
    expected_deaths = 0.0
    for name, eid in ids.items():
        p = float(lookup(eid)["value"])
        rows = late[late["detail"] == name]
        assert rows["patient_id"].is_unique
        rate = len(rows) / N
        assert abs(rate - p) <= Z * math.sqrt(p * (1 - p) / N), (name, rate, p)
        lag = rows["time"].to_numpy() - start.loc[rows["patient_id"]].to_numpy()
        assert lag.min() >= 24.0 and lag.max() <= 84.0
        expected_deaths += p * model.therapies[therapy].late_toxicity[list(ids).index(name)].fatal_share
    deaths = (patients["death_cause"].astype(str) == "treatment").mean()
    assert abs(deaths - expected_deaths) <= Z * math.sqrt(expected_deaths * (1 - expected_deaths) / N)
    died = patients.loc[patients["death_cause"].astype(str) == "treatment", "patient_id"]
    assert died.isin(late["patient_id"]).all()


def test_late_toxicity_and_procedure_deaths_give_identical_pathways_in_both_executors():
    """With the late-toxicity and procedure-death probabilities raised (many events), a strategy through every
    new therapy gives identical frames in the SimPy and the vectorised executor, and the late events and their
    deaths land on lines after the PRRT one."""
    lines = ["lu177_dotatate", "embolisation", "y90_dotatoc", "stz_5fu", "surufatinib", "bsc"]
    extra = ["cohort.n=400", "cohort.sstr_positive.default=1.0", "therapies.embolisation.procedure_death.probability=0.2"]
    for t in ("lu177_dotatate", "y90_dotatoc"):
        extra += [f"therapies.{t}.late_toxicity.mds.probability=0.3", f"therapies.{t}.late_toxicity.mds.onset_min_months=3",
                  f"therapies.{t}.late_toxicity.acute_leukaemia.probability=0.2"]
    model = build_model(compose_config([f"+strategies.x={{lines: [{', '.join(lines)}]}}", "experiment.strategies=[x]",
                                        "experiment.reference=x", *extra]))
    a, b = both_engines(model)
    assert_same_frames(a, b, "new therapies")
    patients, lns, events = a
    late = events[(events["event"] == "adverse_event") & events["detail"].isin(["mds", "acute_leukaemia"])]
    assert (late["line"] > 1).any()
    dead = lns[(lns["reason"] == "death") & (lns["line"] > 1)]
    treat = patients[patients["death_cause"].astype(str) == "treatment"]
    assert len(treat) and treat["patient_id"].isin(dead["patient_id"]).any()


def test_detected_pfs_with_a_procedure_death_is_scaled_by_the_share_still_alive():
    """``S_Y`` with a procedure death ``p`` over window ``w``: multiplied by ``1 - p min(t / w, 1)``."""
    dist = build_pfs("pfs", {"family": "weibull", "median": 16.0, "shape": 1.0})
    plain = Detection(weeks(12), 3.0, 0.002)
    proc = Detection(weeks(12), 3.0, 0.002, procedure_death=0.1, procedure_window=1.0)
    for t in (0.5, 1.0, 7.0, 20.0):
        assert proc.survival_at(dist, t) == pytest.approx(plain.survival_at(dist, t) * (1 - 0.1 * min(t, 1.0)), rel=1e-12)
    with pytest.raises(UserError, match="procedure_window"):
        Detection(weeks(12), procedure_death=0.1)


@pytest.mark.parametrize("patch, key", [
    ({"procedure_death": {"probability": 1.5}}, "therapies.x.procedure_death.probability"),
    ({"late_toxicity": {"mds": {"probability": 0.02, "onset_min_months": 84, "onset_max_months": 24,
                                "fatal_share": 0.5, "survival_median_months": 12}}},
     "therapies.x.late_toxicity.mds.onset_max_months"),
    ({"late_toxicity": {"mds": {"probability": 0.02, "onset_min_months": 24, "onset_max_months": 84,
                                "fatal_share": 1.2, "survival_median_months": 12}}},
     "therapies.x.late_toxicity.mds.fatal_share"),
])
def test_bad_procedure_death_or_late_toxicity_settings_are_user_errors_naming_the_key(patch, key):
    """An impossible probability or an onset window that ends before it starts names its key."""
    cfg = {"pfs": {"family": "weibull", "median": 10.0, "shape": 1.0}, **patch}
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        Therapy.from_config("x", cfg)


@pytest.fixture(scope="module")
def validation_plain():
    return to_container(compose_config(["experiment=validation"]))


@pytest.mark.parametrize("trial, roles", [
    ("dilz2015", {"dilz2015_stz_5fu_median_ttp": OUT_OF_SAMPLE, "dilz2015_stz_5fu_median_os": OUT_OF_SAMPLE,
                  "dilz2015_stz_5fu_orr": IN_SAMPLE}),
    ("clewemar2016", {"clewemar2016_stz_5fu_median_pfs": IN_SAMPLE, "clewemar2016_stz_5fu_median_os": OUT_OF_SAMPLE}),
    ("sanetp", {"sanetp_surufatinib_median_pfs": IN_SAMPLE, "sanetp_placebo_median_pfs": OUT_OF_SAMPLE}),
    ("horsch2016", {"horsch2016_y90_dotatoc_median_pfs": IN_SAMPLE}),
    ("y90_dotatoc_s002", {"guideline_y90_dotatoc_median_ttp": OUT_OF_SAMPLE, "guideline_y90_dotatoc_median_os": OUT_OF_SAMPLE,
                          "guideline_y90_dotatoc_orr": IN_SAMPLE}),
    ("chan2017", {"cabozantinib_phase2_median_pfs": IN_SAMPLE, "cabozantinib_phase2_orr": IN_SAMPLE}),
    ("calgb80701", {"calgb80701_everolimus_median_pfs": OUT_OF_SAMPLE,
                    "calgb80701_everolimus_bevacizumab_median_pfs": IN_SAMPLE,
                    "calgb80701_everolimus_bevacizumab_orr": IN_SAMPLE,
                    "calgb80701_everolimus_bevacizumab_g3plus_hypertension": IN_SAMPLE}),
    ("radiant1_octreotide", {"yao2010_everolimus_octreotide_median_pfs": IN_SAMPLE}),
])
def test_new_trial_files_load_and_their_targets_resolve_with_their_roles(validation_plain, trial, roles):
    """Each new trial file is in the validation experiment, builds, names evidence rows, and its targets are in
    sample exactly when a fit or a config source uses the figure."""
    assert trial in validation_plain["experiment"]["trials"]
    design = TrialDesign.from_config(trial, validation_plain["trials"][trial])
    targets = design.targets()
    assert set(roles) <= set(targets["evidence_id"])
    got = target_roles(list(roles))
    assert dict(zip(roles, got["target_role"])) == roles
    assert pd.notna(targets["published"]).all()


@pytest.mark.parametrize("therapy, klass, sstr, excluded", [
    ("cabozantinib", "tki", False, ()),
    ("everolimus_bevacizumab", "mtor", False, ()),
    ("everolimus_octreotide", "mtor", True, ("insulinoma",)),
])
def test_combination_and_new_targeted_therapies_build_with_their_class_and_eligibility(therapy, klass, sstr, excluded):
    """The default config has the therapy (config defaults), its exposure class, its SSA-like eligibility
    (octreotide: SSTR-positive, no insulinoma), an economics drug entry, and a strategy through it builds."""
    model = build_model(compose_config(["cohort.n=200", f"+strategies.x={{lines: [{therapy}, bsc]}}",
                                        "experiment.strategies=[x]", "experiment.reference=x"]))
    th = model.therapies[therapy]
    assert th.exposure_class == klass
    assert th.requires_sstr_positive is sstr
    assert tuple(th.exclude_functional) == excluded
    plain = to_container(compose_config([]))
    assert plain["economics"]["therapy_drugs"][therapy] == therapy
    patients, lines, _ = _frames(model)
    first = lines[lines["line"] == 1]
    if sstr:
        ineligible = ~model.cohort["sstr_positive"].to_numpy(bool) | (model.cohort["functional_status"].astype(str) == "insulinoma").to_numpy()
        got = first.set_index("patient_id")["therapy"].astype(str).reindex(model.cohort["patient_id"]).to_numpy()
        assert (got[ineligible] != therapy).all() and (got[~ineligible] == therapy).all()
    else:
        assert (first["therapy"].astype(str) == therapy).all()


def test_everolimus_bevacizumab_adverse_events_occur_at_calgb80701_rates_within_monte_carlo_error():
    """Grade >= 3 diarrhoea, hyponatraemia and hypertension on everolimus + bevacizumab (line 1) occur at
    CALGB 80701's rates among patients on the line past their onset (rates per patient ever treated)."""
    model = _strategy_model(["everolimus_bevacizumab", "bsc"], ["cohort.prior_therapies=ssa"])
    patients, lines, events = _frames(model)
    ae = events[(events["event"] == "adverse_event") & (events["line"] == 1)]
    for name, eid in (("diarrhoea", "calgb80701_everolimus_bevacizumab_g3plus_diarrhea"),
                      ("hyponatraemia", "calgb80701_everolimus_bevacizumab_g3plus_hyponatremia"),
                      ("hypertension", "calgb80701_everolimus_bevacizumab_g3plus_hypertension")):
        p = float(lookup(eid)["value"])
        rate = ae.loc[ae["detail"] == name, "patient_id"].nunique() / N
        # an AE drawn after the line ended (progression or death first) is not recorded: the rate is at most p
        assert rate <= p + Z * math.sqrt(p * (1 - p) / N), (name, rate, p)
        assert rate >= 0.75 * p, (name, rate, p)
