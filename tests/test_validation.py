"""External validation (sim/validation.py): trial designs as data, metrics, comparison, the run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from sim.config import to_container
from sim.errors import UserError
from sim.evidence import lookup
from sim.validation import (DEFAULT_TOLERANCES, METRIC, TrialDesign, compare, deep_merge, km_median,
                            km_median_censored, load_designs, prepare_trial, replicate_metrics, set_path,
                            simulate_trial)

REPO = Path(__file__).resolve().parents[1]
TRIALS = sorted(p.stem for p in (REPO / "configs" / "trial").glob("*.yaml"))
Z = 4.0


@pytest.fixture(scope="module")
def plain():
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return to_container(compose("config", overrides=["experiment=validation"]))


@pytest.mark.parametrize("key", TRIALS)
def test_every_trial_design_builds_and_its_published_figures_are_evidence_rows(plain, key):
    """Each configs/trial file is listed by the validation experiment, validates and names existing evidence rows."""
    assert key in plain["experiment"]["trials"]
    design = TrialDesign.from_config(key, plain["trials"][key])
    targets = design.targets()
    assert len(targets) >= 1 and targets["published"].notna().all()
    from sim.strategies import Strategy
    from sim.therapies import build_therapies
    therapies = build_therapies(plain["therapies"])
    for arm in design.arms:   # arms are valid strategies over configured therapies
        Strategy.from_config(arm.name, {"lines": list(arm.lines), "rules": arm.rules}, therapies)


#: endpoint bases of data/evidence/evidence.csv that a validation metric may be compared with
METRIC_ENDPOINTS = {"median_pfs": {"median_pfs"}, "median_os": {"median_os"}, "median_ttp": {"median_ttp"},
                    "orr": {"orr"}, "ae_g34": {"ae_g34_rate", "ae_g3plus_rate"}}


@pytest.mark.parametrize("key", TRIALS)
def test_every_published_metric_names_an_evidence_row_of_the_same_endpoint(plain, key):
    """A median PFS target is a median PFS row, a landmark a landmark row of the same month, and so on."""
    design = TrialDesign.from_config(key, plain["trials"][key])
    for t in design.targets().itertuples():
        base = lookup(t.evidence_id)["endpoint"].split(":")[0]
        m = METRIC.match(t.metric)
        if m.group(2):
            assert base == t.metric, (t.metric, t.evidence_id, base)
        else:
            assert base in METRIC_ENDPOINTS[t.metric.split(":")[0]], (t.metric, t.evidence_id, base)


def test_crossover_shares_come_from_the_evidence(plain):
    """The placebo arms' uptake of the trial drug equals the published crossover shares."""
    r3 = plain["trials"]["radiant3"]["arms"]["placebo"]["rules"]["uptake"]["everolimus"]
    s11 = plain["trials"]["sun1111"]["arms"]["placebo"]["rules"]["uptake"]["sunitinib"]
    assert r3 == float(lookup("radiant3_placebo_crossover_share")["value"])
    assert s11 == float(lookup("sun1111_placebo_crossover_share")["value"])


def test_unknown_metric_is_a_user_error_naming_the_key():
    """A published metric outside the vocabulary stops with the trial key and the bad name."""
    cfg = {"n_per_arm": 10, "arms": {"a": {"lines": ["x", "bsc"]}}, "published": {"a": {"mean_pfs": "x"}}}
    with pytest.raises(UserError, match=r"trials\.t\.published\.a .*'mean_pfs'"):
        TrialDesign.from_config("t", cfg)


def test_unknown_trial_is_a_user_error(plain):
    with pytest.raises(UserError, match="experiment.trials names an unknown trial 'nope'"):
        load_designs(plain, ["nope"])


def test_deep_merge_and_set_path_copy_without_touching_the_input():
    """Population overrides merge into nested mappings; set_path refuses unknown paths."""
    base = {"grade": {"G1": 0.5, "G2": 0.5}, "n": 3}
    merged = deep_merge(base, {"grade": {"G2": 0.4}})
    assert merged == {"grade": {"G1": 0.5, "G2": 0.4}, "n": 3} and base["grade"]["G2"] == 0.5
    assert set_path(base, "grade.G1", 0.1)["grade"]["G1"] == 0.1 and base["grade"]["G1"] == 0.5
    with pytest.raises(UserError, match="grade.G9"):
        set_path(base, "grade.G9", 1.0)


def test_km_median_is_the_kaplan_meier_median_of_uncensored_times():
    """With no censoring the KM curve first reaches 0.5 at the ceil(n/2)-th order statistic."""
    assert km_median([4.0, 1.0, 3.0, 2.0]) == 2.0
    assert km_median([5.0, 1.0, 3.0]) == 3.0


def test_censored_km_median_equals_the_order_statistic_without_censoring_and_skips_censored_times():
    """Without censoring it is km_median; a censoring removes a patient from the risk set without a drop."""
    x = [4.0, 1.0, 3.0, 2.0, 7.0]
    assert km_median_censored(x, [True] * 5) == km_median(x)
    assert km_median_censored([1.0, 2.0, 3.0, 4.0], [True, True, True, True]) == 2.0
    assert km_median_censored([1.0, 2.0, 3.0, 4.0], [True, False, True, True]) == 3.0   # S(3) = 3/4 x 1/2
    assert km_median_censored([1.0, 2.0], [False, False]) == math.inf


def test_median_ttp_censors_deaths_before_progression():
    """A death before any progression ends PFS but only censors the time to progression."""
    patients = pd.DataFrame({
        "patient_id": [0, 1, 2, 3], "arm": "a", "replicate": 0,
        "pfs1_months": [2.0, 5.0, 8.0, 9.0], "pfs1_event": True,
        "os_months": [2.0, 30.0, 20.0, 40.0], "death": True})          # patient 0 dies before progressing
    lines = pd.DataFrame({"patient_id": [0, 1, 2, 3], "arm": "a", "replicate": 0, "line": 1,
                          "response": False, "n_ae": 0, "ae_types": ""})
    got = replicate_metrics(patients, lines, {"a": ["median_pfs", "median_ttp"]}).set_index("metric")["value"]
    assert got["median_pfs"] == 5.0 and got["median_ttp"] == 8.0


def test_replicate_metrics_on_a_hand_made_trial():
    """Medians, landmark rates, ORR and AE shares are computed per replicate as documented."""
    patients = pd.DataFrame({
        "patient_id": [0, 1, 2, 3], "arm": "a", "replicate": [0, 0, 1, 1],
        "pfs1_months": [2.0, 14.0, 5.0, 7.0], "os_months": [10.0, 30.0, 20.0, 40.0]})
    lines = pd.DataFrame({
        "patient_id": [0, 1, 1, 2, 3], "arm": "a", "replicate": [0, 0, 0, 1, 1], "line": [1, 1, 2, 1, 1],
        "response": [True, False, True, False, False], "n_ae": [1, 2, 1, 0, 0],
        "ae_types": ["rash", "rash;fever", "fever", "", ""]})
    m = replicate_metrics(patients, lines, {"a": ["median_pfs", "pfs_rate_12m", "orr", "ae_g34:fever", "ae_g34:any"]})
    got = {(r.replicate, r.metric): r.value for r in m.itertuples()}
    assert got[(0, "median_pfs")] == 2.0 and got[(1, "median_pfs")] == 5.0
    assert got[(0, "pfs_rate_12m")] == 0.5 and got[(1, "pfs_rate_12m")] == 0.0
    assert got[(0, "orr")] == 0.5 and got[(1, "orr")] == 0.0            # line-2 response does not count
    assert got[(0, "ae_g34:fever")] == 0.5 and got[(0, "ae_g34:any")] == 1.0


def test_status_uses_relative_tolerance_for_medians_and_points_for_rates():
    """pass within the goal, accept for medians within 10 %, fail beyond."""
    targets = pd.DataFrame({"trial": "t", "arm": "a", "metric": ["median_os", "median_pfs", "median_pfs", "orr"],
                            "evidence_id": "e", "published": [10.0, 10.0, 10.0, 0.10]})
    targets = targets.assign(arm=["a", "b", "c", "d"])
    reps = pd.DataFrame({"arm": ["a", "a", "b", "b", "c", "c", "d", "d"], "replicate": [0, 1] * 4,
                         "metric": ["median_os"] * 2 + ["median_pfs"] * 4 + ["orr"] * 2,
                         "value": [10.4, 10.4, 10.8, 10.8, 12.0, 12.0, 0.14, 0.14]})
    out = compare(targets, reps, DEFAULT_TOLERANCES)
    assert list(out["status"]) == ["pass", "accept", "fail", "fail"]
    assert out.loc[0, "error"] == pytest.approx(0.04)


@pytest.fixture(scope="module")
def small_radiant3(plain):
    design = TrialDesign.from_config("radiant3", deep_merge(plain["trials"]["radiant3"], {"n_per_arm": 150}))
    prep = prepare_trial(plain, design, 4)
    return design, prep, simulate_trial(plain, prep)


def test_replicates_are_blocks_of_the_trial_size_with_common_patients_across_arms(small_radiant3):
    """Each arm has n patients per replicate; the arms of a replicate share the same patients."""
    design, prep, (patients, _) = small_radiant3
    counts = patients.groupby(["arm", "replicate"]).size()
    assert set(counts) == {150} and len(counts) == 2 * 4
    ids = {arm: set(g["patient_id"]) for arm, g in patients.groupby("arm")}
    assert ids["everolimus"] == ids["placebo"]
    assert prep.cohort["grade"].eq("G3").sum() == 0          # population override: no G3


def test_crossover_share_matches_uptake_within_monte_carlo_error(small_radiant3, plain):
    """Among placebo patients progressing alive, the share starting everolimus is the uptake (85 %)."""
    _, _, (_, lines) = small_radiant3
    pl = lines[lines["arm"] == "placebo"]
    progressed = pl[(pl["line"] == 1) & (pl["reason"] == "progression")]["patient_id"]
    crossed = pl[(pl["line"] == 2) & (pl["therapy"] == "everolimus")]["patient_id"]
    share = crossed.isin(progressed).sum() / len(progressed)
    p = plain["trials"]["radiant3"]["arms"]["placebo"]["rules"]["uptake"]["everolimus"]
    assert abs(share - p) <= Z * math.sqrt(p * (1 - p) / len(progressed))


def test_simulated_orr_matches_the_therapy_response_probability(small_radiant3, plain):
    """ORR on line 1 over all replicates agrees with everolimus' response probability (binomial MC error)."""
    design, _, (patients, lines) = small_radiant3
    reps = replicate_metrics(patients, lines, {"everolimus": ["orr"]})
    n = len(patients[patients["arm"] == "everolimus"])
    p = plain["therapies"]["everolimus"]["response"]["probability"]
    assert abs(reps["value"].mean() - p) <= Z * math.sqrt(p * (1 - p) / n)


def test_validation_run_writes_table_figures_and_manifest(plain, tmp_path):
    """The experiment writes validation.csv/.parquet, one KM figure per arm and the manifest, atomically."""
    from omegaconf import OmegaConf

    from sim.validation import run
    cfg = OmegaConf.create(deep_merge(plain, {"output": {"root": str(tmp_path), "figures": True},
                                              "experiment": {"replicates": 2, "trials": ["e2211"]}}))
    folder, text = run(cfg, None)
    table = pd.read_csv(folder / "validation.csv")
    assert set(table["status"]) <= {"pass", "accept", "fail"} and "e2211" in text
    assert (table["mc_lo"] <= table["simulated"]).all() and (table["simulated"] <= table["mc_hi"]).all()
    assert {p.name for p in folder.glob("km_*.png")} == {"km_e2211_captem.png", "km_e2211_temozolomide.png"}
    assert (folder / "manifest.json").exists() and (folder / "validation.parquet").exists()
    assert not list(Path(tmp_path, "validation").glob(".*partial*"))


def test_validation_csv_labels_every_target_and_has_at_least_12_out_of_sample_rows(plain, tmp_path):
    """A smoke run of every trial: target_role in csv and parquet, >= 12 out-of-sample rows, headline first."""
    from omegaconf import OmegaConf

    from sim.validation import run
    cfg = OmegaConf.create(deep_merge(plain, {"output": {"root": str(tmp_path), "figures": False},
                                              "experiment": {"replicates": 2}}))
    folder, text = run(cfg, None)
    table = pd.read_csv(folder / "validation.csv", keep_default_na=False)
    assert set(table["target_role"]) == {"in_sample", "out_of_sample"}
    assert (table["target_role"] == "out_of_sample").sum() >= 12
    assert ((table["target_role"] == "in_sample") == (table["role_basis"] != "")).all()
    assert list(pd.read_parquet(folder / "validation.parquet")["target_role"]) == list(table["target_role"])
    assert text.startswith("Out-of-sample pass rate:")
    assert text.index("Out of sample (") < text.index("In sample (")
    report = (folder / "report.md").read_text()
    assert "**Out-of-sample pass rate:" in report and "## In sample" in report
