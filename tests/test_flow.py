"""Treatment flow (what patients receive at each line, why lines were skipped), the note for a
strategy line given to no patient, and the subgroup table of the compare run."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import compose_config
from sim.config import build_model
from sim.flow import SUBGROUPS, flow_labels, never_given_notes, subgroup_table, treatment_flow
from sim.pipeline import run, simulate_model


@pytest.fixture(scope="module")
def frames():
    model = build_model(compose_config([
        "cohort.n=300", "+strategies.user={label: user, lines: [ssa, sunitinib_rechallenge, bsc]}",
        "experiment.strategies=[guideline,switch,user]", "experiment.reference=switch"]))
    patients, lines, events = simulate_model(model, progress=False)
    flow = treatment_flow(lines, events, patients.groupby("strategy").size().to_dict(), list(model.strategies))
    return model, patients, lines, events, flow


def test_flow_counts_every_line_given_once(frames):
    _, _, lines, _, flow = frames
    assert flow["n_patients"].sum() == len(lines)
    per = lines.groupby(["strategy", "line", "therapy"]).size()
    for r in flow[flow["n_patients"] > 0].itertuples():
        assert per[(r.strategy, r.line, r.therapy)] == r.n_patients


def test_flow_shares_of_a_line_add_up_to_at_most_the_cohort(frames):
    _, _, _, _, flow = frames
    assert (flow.groupby(["strategy", "line"])["share"].sum() <= 1 + 1e-12).all()


def test_switch_flow_shows_patients_starting_on_sunitinib_through_the_skip_rule(frames):
    _, _, _, events, flow = frames
    first = flow[(flow["strategy"] == "switch") & (flow["line"] == 1)].set_index("therapy")
    n_skip = ((events["strategy"] == "switch") & (events["detail"] == "ssa:sstr_negative")).sum()
    assert first.loc["sunitinib", "n_patients"] > 0 and n_skip > 0
    assert "ssa:sstr_negative" in first.loc["sunitinib", "skipped_before"]


def test_line_given_to_no_patient_gets_a_note_with_the_skip_reason(frames):
    model, _, _, events, flow = frames
    notes = never_given_notes(flow, events, model.strategies)
    assert len(notes) == 1
    assert notes[0].startswith("strategy user: line 2 (sunitinib_rechallenge) was given to no patient")
    assert "no_prior_progression_on_sunitinib" in notes[0]


def test_flow_labels_name_what_patients_received(frames):
    _, _, _, _, flow = frames
    labels = flow_labels(flow)
    assert labels["switch"].startswith("1: ssa ") and "sunitinib" in labels["switch"].split("|")[0]


def test_subgroups_cover_each_value_with_one_best_strategy(frames):
    model, patients, _, _, _ = frames
    sub = subgroup_table(patients, None, None, list(model.strategies))
    for var in SUBGROUPS:
        assert set(sub.loc[sub["subgroup"] == var, "value"]) == set(
            patients[var].map({True: "positive", False: "negative"}) if var == "sstr_positive"
            else patients[var].astype(str))
    best = sub[sub["best"]]
    assert (best.groupby(["subgroup", "value"]).size() == 1).all()
    for (_, _), g in sub.groupby(["subgroup", "value"]):
        assert g.loc[g["best"], "mean_os_months"].iloc[0] == g["mean_os_months"].max()
        assert (g["n_patients"] == g["n_patients"].iloc[0]).all()     # the same patients under each strategy


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    cfg = compose_config(["cohort.n=80", f"output.root={root}", "output.progress=false",
                          "experiment.strategies=[guideline,switch]", "experiment.reference=switch"])
    return run(cfg)


def test_guideline_vs_switch_run_writes_and_prints_flow_and_subgroups(compare_run):
    folder, text = compare_run
    for name in ("treatment_flow", "subgroups"):
        assert (folder / f"{name}.csv").is_file() and (folder / f"{name}.parquet").is_file()
    assert (folder / "treatment_flow.png").is_file()
    sub = pd.read_csv(folder / "subgroups.csv")
    assert {"nmb", "nmb_se", "qaly_disc", "cost_total_disc", "best_strategy"} <= set(sub.columns)
    assert "Treatment flow" in text and "Subgroups" in text and "best " in text
