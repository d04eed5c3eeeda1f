"""``experiment=evsi`` end to end (smoke size) and its bad input; the PSA's new settings checked before work
starts (sim.uncertainty.evsi, sim.uncertainty.psa)."""

import numpy as np
import pandas as pd
import pytest

from experiments.run import experiment_runner
from sim.uncertainty.psa_analysis import decision_thresholds, population_factor
from sim.errors import UserError

from conftest import compose_config
from smoke import SMOKE


def _cfg(kind, *extra, root):
    smoke = list(SMOKE[kind])
    return compose_config([f"experiment={kind}", *smoke, "output.progress=false", f"output.root='{root}'", *extra])


def test_evsi_experiment_writes_evsi_csv_with_both_methods_and_every_size(tmp_path):
    """The smoke run writes evsi.csv with n, wtp, evsi_per_person, method for every size, report WTP and method,
    ENBS = population x EVSI - trial cost, the agreement and optimal-size tables and a manifest."""
    folder, text = experiment_runner("evsi")(_cfg("evsi", "experiment.trial.at_threshold_price=true", root=tmp_path),
                                             None)
    t = pd.read_csv(folder / "evsi.csv")
    assert {"n", "wtp", "evsi_per_person", "method", "enbs", "trial_cost", "evppi_endpoint", "evpi"} <= set(t.columns)
    assert set(t["method"]) == {"regression", "importance"} and set(t["n"]) == {10, 20}
    assert len(t) == 2 * 2 * len(set(t["wtp"]))
    assert np.allclose(t["enbs"], t["evsi_per_person"] * t["population"] - (500000 + 20000 * t["n"]))
    assert (t["evsi_per_person"] >= 0).all()
    for name in ("evsi_agreement.csv", "enbs_sensitivity.csv", "evsi_optimal.csv", "manifest.json",
                 "psa_samples.parquet"):
        assert (folder / name).is_file(), name
    assert "optimal n" in text


@pytest.mark.parametrize("kind,override,key,shown", [
    ("evsi", "experiment.trial.sample_sizes=abc", "experiment.trial.sample_sizes", "'abc'"),
    ("evsi", "experiment.trial.sample_sizes=[0,10]", "experiment.trial.sample_sizes", "[0, 10]"),
    ("evsi", "experiment.trial.costs.fixed=-1", "experiment.trial.costs.fixed", "-1"),
    ("evsi", "experiment.trial.methods=[bogus]", "experiment.trial.methods", "['bogus']"),
    ("evsi", "experiment.trial.strategy=prrt", "experiment.trial.strategy", "'prrt'"),
    ("evsi", "experiment.trial.therapy=lu177_dotatate", "experiment.trial.therapy", "'lu177_dotatate'"),
    ("evsi", "experiment.trial.informs=[nosuch.*]", "experiment.trial.informs", "nosuch"),
    ("evsi", "experiment.trial.at_threshold_price=maybe", "experiment.trial.at_threshold_price", "'maybe'"),
    ("psa", "psa.population.horizon_years=0", "psa.population.horizon_years", "0"),
    ("psa", "psa.population.incidence_per_year=abc", "psa.population.incidence_per_year", "'abc'"),
    ("psa", "psa.patients.rule=bogus", "psa.patients.rule", "'bogus'"),
    ("psa", "psa.patients.target_share=1.5", "psa.patients.target_share", "1.5"),
    ("psa", "psa.sampling=lhs", "psa.sampling", "'lhs'"),
    ("psa", "psa.evppi.noise_replicates=-1", "psa.evppi.noise_replicates", "-1"),
    ("psa", "psa.patients.pilot_samples=1", "psa.patients.pilot_samples", "1"),
])
def test_bad_evsi_and_psa_settings_stop_before_any_simulation(kind, override, key, shown, tmp_path, monkeypatch):
    """A bad key raises one-line UserError naming key and value before the first simulation; no run folder."""
    from sim.uncertainty import psa

    def no_simulation(*a, **k):
        raise AssertionError("simulated before validating")
    monkeypatch.setattr(psa.SampleRunner, "run", no_simulation)
    with pytest.raises(UserError) as e:
        experiment_runner(kind)(_cfg(kind, override, root=tmp_path), None)
    msg = str(e.value)
    assert "\n" not in msg and key in msg and shown in msg, msg
    assert list(tmp_path.glob("*/*")) == []


def test_population_factor_is_the_discounted_sum_of_incident_cases():
    """P = sum_{t<H} I / (1 + r)^t: 10 years of 50 at 3.5 % by the geometric-series closed form; no discount
    gives I H; a half year counts half."""
    r = 0.035
    assert population_factor(50, 10, r) == pytest.approx(50 * (1 - (1 + r) ** -10) / (1 - 1 / (1 + r)))
    assert population_factor(50, 10, 0.0) == pytest.approx(500.0)
    assert population_factor(50, 2.5, 0.0) == pytest.approx(125.0)


def test_decision_changes_at_the_threshold_premium():
    """Shifting a strategy's cost per patient by its premium makes it tie with the best alternative: the
    premium is the price change at which the decision changes, positive for the optimal strategy."""
    rng = np.random.default_rng(8)
    C = np.column_stack([rng.normal(1000, 100, 200), rng.normal(5000, 100, 200)])
    Q = np.column_stack([rng.normal(1.0, 0.1, 200), rng.normal(1.1, 0.1, 200)])
    t = decision_thresholds(C, Q, ["a", "b"], [20000.0]).set_index("strategy")
    assert t.loc["a", "optimal"] and not t.loc["b", "optimal"]
    assert t.loc["a", "premium"] == pytest.approx(-t.loc["b", "premium"])
    C2 = C.copy()
    C2[:, 1] += t.loc["b", "premium"]
    m = (20000 * Q - C2).mean(axis=0)
    assert m[0] == pytest.approx(m[1])


def test_trial_endpoint_from_run_arrays_matches_the_emulation_definition():
    """The trial endpoint computed from a PSA sample's arrays is, patient for patient, the 6-month event of
    sim.emulation.landmark_events on the same simulation's tables."""
    from sim.config import build_model
    from sim.uncertainty.evsi import trial_endpoint
    from sim.economics.records import RunArrays
    from sim.emulation import landmark_events
    from sim.pipeline import simulate_model

    model = build_model(compose_config(["experiment=evsi", "cohort.n=300"]))
    patients, lines, events = simulate_model(model, progress=False)
    dt = model.rules.imaging_interval_months
    ra = RunArrays.from_frames(patients, lines, events)
    got = trial_endpoint(ra, "rechallenge_then_captem", "sunitinib_rechallenge", 6.0, dt)
    keep = patients["strategy"] == "rechallenge_then_captem"
    want = landmark_events(lines[lines["strategy"] == "rechallenge_then_captem"], patients[keep], "sunitinib_rechallenge",
                           6.0, dt)
    assert len(got) == len(want) > 50
    assert (got == want["event"].to_numpy()).all()


def test_anova_rule_runs_a_pilot_and_sets_the_patients_per_sample(tmp_path):
    """psa.patients.rule=anova: a pilot at cohort.n estimates the size for the target share; the run uses it,
    bounded by cohort.n below and psa.patients.max_patients above, and the manifest records the pilot."""
    import json

    cfg = _cfg("psa", "experiment.strategies=[switch,rechallenge]", "psa.intervention=rechallenge",
               "psa.comparator=switch", "experiment.reference=switch", "psa.patients.rule=anova",
               "psa.patients.pilot_samples=3", "psa.patients.max_patients=45", "cohort.n=30", "psa.base_case=false",
               root=tmp_path)
    folder, _ = experiment_runner("psa")(cfg, None)
    man = json.loads((folder / "manifest.json").read_text())
    pilot = man["patients_pilot"]
    assert pilot["pilot_samples"] == 3 and pilot["pilot_patients"] == 30
    assert pilot["patients"] == min(max(30, pilot["n_for_target"]), 45) == man["n_patients"]
    assert set(pd.read_parquet(folder / "psa_samples.parquet")["n_patients"]) == {man["n_patients"]}
