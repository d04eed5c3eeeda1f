"""Choice lines (policies as data) and the shipped ``guideline`` strategy.

Each rule of the guideline is checked on a constructed patient: :func:`sim.kernel.pathway.pick`
sends the patient to the therapy the rule's citation names (first line from the baseline,
later lines from the treatment history, given here as prior therapy). Every rule's quote is
found verbatim in its source document.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import compose_config
from sim.config import build_model
from sim.run.executors import simulate
from sim.kernel.pathway import Pathways, pick
from sim.strategies import Choice
from sim.kernel.line import Patients

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
BASE = dict(patient_id=0, age=60.0, sex="male", ecog=0, grade="G2", ki67=5.0, functional_status="non_functioning",
            sstr_positive=True, hepatic_burden="25to50", tempo="indolent", symptomatic_bulk=False, diabetes=False,
            mgmt_low=False, prior_therapies="")

#: (position, changes to BASE, therapy the guideline gives, rule index that gives it)
CASES = {
    "symptomatic_bulk_and_rapid_growth_get_chemotherapy_first": (0, dict(symptomatic_bulk=True, tempo="rapid"), "captem", 0),
    "higher_grade_gets_chemotherapy_first": (0, dict(grade="G3", ki67=30.0), "captem", 1),
    "heavy_hepatic_burden_gets_chemotherapy_first": (0, dict(hepatic_burden="gt50"), "captem", 2),
    "aggressive_tempo_gets_chemotherapy_first": (0, dict(tempo="rapid"), "captem", 3),
    "insulinoma_gets_everolimus_not_ssa": (0, dict(functional_status="insulinoma"), "everolimus", 4),
    "asymptomatic_low_burden_is_observed": (0, dict(hepatic_burden="le25"), "placebo_clarinet", 5),
    "sstr_positive_low_ki67_gets_ssa_first": (0, dict(symptomatic_bulk=True), "ssa", 6),
    "sstr_positive_low_hepatic_load_gets_ssa_despite_ki67_10": (
        0, dict(ki67=12.0, hepatic_burden="le25", symptomatic_bulk=True), "ssa", 7),
    "ki67_10_with_hepatic_load_over_25_gets_chemotherapy": (0, dict(ki67=12.0), "captem", 8),
    "sstr_negative_low_grade_gets_everolimus": (0, dict(sstr_positive=False), "everolimus", 9),
    "observed_patient_gets_ssa_at_progression": (1, dict(prior_therapies="placebo_clarinet"), "ssa", 0),
    "higher_grade_after_ssa_gets_chemotherapy": (1, dict(grade="G3", ki67=30.0, prior_therapies="ssa"), "captem", 1),
    "heavy_burden_after_ssa_gets_chemotherapy": (1, dict(hepatic_burden="gt50", prior_therapies="ssa"), "captem", 2),
    "rapid_tempo_after_ssa_gets_chemotherapy": (1, dict(tempo="rapid", prior_therapies="ssa"), "captem", 3),
    "sstr_positive_after_ssa_gets_prrt": (1, dict(prior_therapies="ssa"), "lu177_dotatate", 4),
    "sstr_negative_after_everolimus_gets_chemotherapy_not_prrt": (
        1, dict(sstr_positive=False, prior_therapies="everolimus"), "captem", 5),
    "after_prrt_and_chemotherapy_gets_everolimus": (1, dict(prior_therapies="ssa;lu177_dotatate;captem"), "everolimus", 6),
    "after_everolimus_gets_sunitinib": (1, dict(prior_therapies="ssa;lu177_dotatate;captem;everolimus"), "sunitinib", 7),
}


@pytest.fixture(scope="module")
def model():
    return build_model(compose_config(["cohort.n=20", "experiment.strategies=[guideline,switch]",
                                       "experiment.reference=switch"]))


def _pick_one(model, position: int, patient: dict):
    pat = Patients(pd.DataFrame([patient]), model.rules)
    st = Pathways(pat)
    st.pos[:] = position
    return pick(model.strategies["guideline"], position, model.therapies, pat, np.zeros(1, np.int64), st), st


@pytest.mark.parametrize("position,changes,therapy,rule", list(CASES.values()), ids=list(CASES))
def test_guideline_rule_sends_constructed_patient_to_cited_therapy(model, position, changes, therapy, rule):
    (p,), _ = _pick_one(model, position, BASE | changes)
    assert (p.therapy.name, p.rule) == (therapy, rule)


def test_every_guideline_rule_is_exercised_by_a_constructed_patient(model):
    lines = model.strategies["guideline"].lines
    tested = {(pos, rule) for pos, _, _, rule in CASES.values()}
    assert tested == {(pos, j) for pos in (0, 1) for j in range(len(lines[pos].rules))}


def test_patient_with_every_option_given_skips_the_choice_line(model):
    (p,), st = _pick_one(model, 1, BASE | dict(prior_therapies="ssa;lu177_dotatate;captem;everolimus;sunitinib"))
    assert p.therapy is None and int(st.pos[0]) == 2


def test_sstr_negative_patients_never_get_ssa_or_prrt_on_any_guideline_line(model):
    cohort = model.cohort.assign(sstr_positive=False)
    rec = simulate(cohort, {"guideline": model.strategies["guideline"]}, model.therapies, model.rules,
                   model.lifetable, model.seed, engine="vectorised")
    assert not rec.frames()[1]["therapy"].isin(["ssa", "lu177_dotatate"]).any()


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="source documents not found next to the repository")
def test_every_guideline_rule_quotes_its_source_document_verbatim(model):
    for ln in model.strategies["guideline"].lines:
        if isinstance(ln, Choice):
            for r in ln.rules:
                src = dict(r.source)
                text = _collapse((SEEDS / src["document"]).read_text(encoding="utf-8"))
                assert _collapse(src["quote"]) in text, (ln.name, r.text())
                assert _collapse(src["section"]).split(" (")[0] in text or src["section"] == "Abstract", src["section"]
