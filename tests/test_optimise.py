"""The best-sequence experiment (``experiment=optimise``, sim/optimise.py): enumeration and pruning,
common random numbers, P(optimal) from the PSA machinery, the metamodel, outputs and bad input.

Tests do not depend on the model's current figures: they compare the optimiser with the model's own
comparison run, with a closed-form count, or with a synthetic function."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.config import build_model, to_container
from sim.economics.evaluate import evaluate
from sim.uncertainty.psa import economics_spec, with_economics
from sim.errors import UserError
from sim.optimise import (eligible_sequences, evaluate_sequences, fit_metamodel, optimise_settings, p_optimal,
                          run_optimise, sequence_features, with_sequences)
from sim.pipeline import simulate_model
from tests.smoke import SMOKE
from tests.conftest import compose_config, make_cohort

AGENTS = ["ssa", "everolimus", "sunitinib", "sunitinib_rechallenge", "captem", "lu177_dotatate"]


def _cfg(*overrides):
    base = list(SMOKE["optimise"])
    return compose_config(["experiment=optimise", *base, "output.progress=false", *overrides])


def _settings(cfg):
    cfg = with_economics(cfg)
    plain = to_container(cfg)
    model = build_model(cfg)
    return cfg, plain, model, optimise_settings(plain, model.therapies, economics_spec(plain))


def _count(m: int, k: int) -> int:
    """Closed form: sum over L <= k of P(m, L) + C(L, 2) P(m - 1, L - 2) (module docstring), L = 0 included."""
    perm = lambda a, b: math.perm(a, b) if 0 <= b <= a else 0          # noqa: E731
    return 1 + sum(perm(m, L) + math.comb(L, 2) * perm(m - 1, L - 2) for L in range(1, k + 1))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_number_of_eligible_sequences_matches_the_closed_form(k):
    model = build_model(_cfg())
    seqs = eligible_sequences(AGENTS, model.therapies, k, model.cohort)
    assert len(seqs) == _count(5, k)
    assert len(set(seqs)) == len(seqs)
    for s in seqs:
        assert len(set(s)) == len(s)                                   # no agent twice
        if "sunitinib_rechallenge" in s:                               # rechallenge only after sunitinib
            assert "sunitinib" in s[:s.index("sunitinib_rechallenge")]


def test_the_six_original_agents_give_291_sequences_and_the_default_ten_give_3971():
    """The closed form with 5 (9) first-exposure agents and one rechallenge at k = 4: 291 for the original six
    agents, 3971 for the default agents of configs/experiment/optimise.yaml (the new therapies added), which is
    above ``enumeration_limit`` (500), so the default screen runs the metamodel."""
    cfg = _cfg()
    model = build_model(cfg)
    assert len(eligible_sequences(AGENTS, model.therapies, 4, model.cohort)) == 291 == _count(5, 4)
    default = list(cfg.experiment.agents)
    assert set(AGENTS) < set(default) and len(default) == 10
    n = len(eligible_sequences(default, model.therapies, 4, model.cohort))
    assert n == _count(9, 4) == 3971 and n > cfg.experiment.enumeration_limit


def test_lines_no_patient_of_the_cohort_can_receive_are_pruned():
    model = build_model(_cfg())
    neg = make_cohort(5, sstr_positive=False)
    seqs = eligible_sequences(AGENTS, model.therapies, 2, neg)
    assert not any(a in s for s in seqs for a in ("ssa", "lu177_dotatate"))
    prior = make_cohort(5, prior_therapies="sunitinib")
    assert ("sunitinib_rechallenge",) in eligible_sequences(AGENTS, model.therapies, 1, prior)
    assert ("sunitinib_rechallenge",) not in eligible_sequences(AGENTS, model.therapies, 1, make_cohort(5))


def test_a_sequence_has_the_same_per_patient_nmb_whatever_it_is_simulated_with():
    cfg, plain, model, st = _settings(_cfg())
    seqs = [("ssa", "sunitinib"), ("captem",), ("sunitinib", "everolimus", "sunitinib_rechallenge")]
    together = evaluate_sequences(cfg, seqs, st, 50, model.seed)
    alone = evaluate_sequences(cfg, seqs[2:], st, 50, model.seed)
    np.testing.assert_array_equal(together.nmb[:, 2], alone.nmb[:, 0])


def test_sequence_nmb_equals_the_comparison_run_of_the_same_strategy():
    """The switch strategy as a generated sequence gives exactly the per-patient NMB of the comparison run."""
    cfg, plain, model, st = _settings(_cfg("cohort.n=80"))
    res = evaluate_sequences(cfg, [("ssa", "sunitinib", "everolimus", "captem")], st, 80, model.seed)
    patients, lines, events = simulate_model(model, progress=False)
    per = evaluate(patients, lines, events, economics_spec(plain), model.rules.imaging_interval_months)
    per = per[per["strategy"] == "switch"].sort_values("patient_id")
    ref = st.wtp * per["qaly_disc"].to_numpy() - per["cost_total_disc"].to_numpy()
    np.testing.assert_allclose(res.nmb[:, 0], ref, rtol=1e-12, atol=1e-6)


def test_per_therapy_rules_apply_to_the_sequences_that_contain_the_therapy():
    cfg, plain, model, st = _settings(_cfg("+experiment.rules.holiday_months.sunitinib_rechallenge=2.0",
                                           "+experiment.rules.uptake.captem=0.8"))
    c = with_sequences(cfg, [("sunitinib", "sunitinib_rechallenge"), ("captem",), ("ssa",)], st, 10)
    rules = {n: dict(c.strategies[n].rules) for n in c.experiment.strategies}
    assert rules["seq0"]["holiday_months"] == {"sunitinib_rechallenge": 2.0} and rules["seq0"]["uptake"] == {}
    assert rules["seq1"]["uptake"] == {"captem": 0.8} and rules["seq2"]["holiday_months"] == {}
    assert all(r["skip_ineligible"] for r in rules.values())
    assert list(build_model(c).strategies["seq0"].lines) == ["sunitinib", "sunitinib_rechallenge", "bsc"]


def test_p_optimal_is_the_share_of_psa_samples_in_which_a_sequence_is_best():
    cfg, plain, model, st = _settings(_cfg())
    seqs = [("captem",), ("ssa", "captem"), ()]
    t = p_optimal(cfg, plain, seqs, st, model.seed)
    assert t["p_optimal"].sum() == pytest.approx(1.0)
    assert ((t["p_optimal"] >= 0) & (t["p_optimal"] <= 1)).all()
    assert np.all(t["p_optimal"].to_numpy() * st.psa_samples % 1 == 0)


def test_metamodel_recovers_an_additive_value_of_agents_by_position():
    agents = AGENTS[:4]
    seqs = eligible_sequences(agents, {a: _Thr() for a in agents}, 3)
    X = sequence_features(seqs, agents)
    effect = np.array([3.0, 1.0, 2.0, 5.0])
    y = X[:, 4:] @ effect + 0.5 * X[:, :4].sum(1) + np.random.default_rng(1).normal(0, 0.05, len(seqs))
    _, r2 = fit_metamodel(X, y, 0)
    assert r2 > 0.98


class _Thr:
    requires_prior_progression_on = None
    requires_sstr_positive = False
    exclude_functional = ()


def test_optimise_run_writes_ranked_sequences_subgroups_and_stages(tmp_path):
    folder, tables = run_optimise(_cfg(f"output.root={tmp_path}"))
    seq = pd.read_csv(folder / "sequences.csv")
    assert {"sequence", "nmb_mean", "p_optimal"} <= set(seq.columns)
    assert seq["sequence"].str.endswith("bsc").all()
    conf = seq[seq["stage"] == "confirm"]
    assert (np.diff(conf["nmb_mean"].to_numpy()) <= 0).all()        # ranked
    assert conf["p_optimal"].notna().sum() == 2                       # psa_top.top of the smoke settings
    stages = pd.read_csv(folder / "optimise_stages.csv")
    assert list(stages["stage"]) == ["screen", "confirm", "psa"]
    sub = pd.read_csv(folder / "subgroups.csv")
    assert set(sub["subgroup"]) == {"grade", "hepatic_burden", "sstr_positive", "functional_status"}


def test_space_above_the_enumeration_limit_uses_the_metamodel(tmp_path):
    folder, tables = run_optimise(_cfg(f"output.root={tmp_path}", "experiment.enumeration_limit=10",
                                       "experiment.metamodel.design=12", "experiment.metamodel.candidates=3"))
    seq = tables["sequences"]
    assert (seq["nmb_source"] == "metamodel").sum() == len(seq) - 15
    assert "metamodel" in tables["optimise_stages"]["what"].iloc[0].lower()


@pytest.mark.parametrize("override,key", [
    ("experiment.agents=[ssa,nosuch]", "experiment.agents[1]"),
    ("experiment.agents=[ssa,bsc]", "experiment.agents[1]"),
    ("experiment.max_active_lines=0", "experiment.max_active_lines"),
    ("experiment.terminal=ssa", "experiment.terminal"),
    ("experiment.subgroups=[age]", "experiment.subgroups[0]"),
    ("experiment.psa_top.samples=abc", "experiment.psa_top.samples"),
    ("experiment.wtp=-5", "experiment.wtp"),
    ("+experiment.rules.holiday_months.nosuch=1", "experiment.rules.holiday_months"),
    ("experiment.rules.after_toxicity=stop", "rules.after_toxicity"),
])
def test_bad_optimise_settings_stop_before_any_work_naming_the_key(override, key, tmp_path):
    with pytest.raises(UserError, match=key.replace("[", r"\[").replace("]", r"\]")):
        run_optimise(_cfg(f"output.root={tmp_path}", override))
    assert not any(tmp_path.rglob("*.csv"))


def test_cli_bad_agent_exits_2_with_one_error_line_and_no_run_folder(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-m", "experiments.run", "experiment=optimise", "experiment.agents=[ssa,nosuch]",
                           f"output.root={tmp_path}", "output.progress=false"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pnetsim: error: experiment.agents[1]") and "'nosuch'" in lines[0]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
