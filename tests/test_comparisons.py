"""Comparisons as data (sim/comparisons.py): validation, paired differences, and the phase
decomposition, whose phases must add up to the OS and QALY differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.comparisons import build_comparisons, comparison_table, icer_wording, phase_table
from sim.config import build_model, to_container
from sim.errors import UserError
from sim.pipeline import economics_spec_of, economics_tables, simulate_model
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def default_tables():
    cfg = compose_config(["cohort.n=300", "seed=3"])
    model = build_model(cfg)
    plain = to_container(cfg)
    patients, lines, events = simulate_model(model, progress=False)
    spec = economics_spec_of(plain)
    econ = economics_tables(patients, lines, events, spec, model, {})
    comps = build_comparisons(plain["experiment"], list(model.strategies))
    table = comparison_table(comps, patients, econ["economics_patients"], spec.wtp)
    phases = phase_table(comps, patients, lines, events, spec, model.rules.horizon_months, model.strategies)
    return comps, table, phases, econ["economics_patients"]


def test_the_default_experiment_answers_the_decision_point_and_the_additional_line(default_tables):
    """Both shipped comparisons are built, each with the sentence saying what it isolates."""
    comps, table, _, _ = default_tables
    assert [c.name for c in comps] == ["decision_point", "additional_line"]
    assert all(len(c.isolates) > 40 for c in comps)
    assert list(table["comparison"]) == ["decision_point", "additional_line"]


def test_phase_differences_add_up_to_the_os_and_qaly_differences(default_tables):
    """The months and discounted QALYs of the phases sum to each comparison's OS and QALY difference."""
    _, table, phases, per = default_tables
    for r in table.itertuples():
        ph = phases[phases["comparison"] == r.comparison]
        assert ph["delta_months"].sum() == pytest.approx(r.delta_os_months, rel=1e-9, abs=1e-9)
        assert ph["delta_qaly_disc"].sum() == pytest.approx(r.delta_qaly, rel=1e-9, abs=1e-9)
        # and each strategy's phases sum to its own mean QALYs
        q = per.groupby("strategy")["qaly_disc"].mean()
        assert ph["intervention_qaly_disc"].sum() == pytest.approx(q[r.intervention], rel=1e-9)


def test_shared_lines_contribute_nothing_at_the_decision_point(default_tables):
    """SSA, sunitinib and everolimus come before the decision in both strategies: zero difference."""
    _, _, phases, _ = default_tables
    ph = phases[phases["comparison"] == "decision_point"].set_index("phase")
    for t in ("ssa", "sunitinib", "everolimus"):
        assert ph.loc[t, "delta_months"] == 0.0 and ph.loc[t, "delta_qaly_disc"] == 0.0


def test_icer_wording_names_dominance():
    """A cheaper, more effective intervention dominates; the reverse is dominated; otherwise an ICER."""
    base = {"intervention": "a", "comparator": "b", "icer": float("nan")}
    assert icer_wording({**base, "delta_cost": -1.0, "delta_qaly": 0.1}) == "a dominates b"
    assert icer_wording({**base, "delta_cost": 1.0, "delta_qaly": -0.1}) == "a is dominated by b"
    assert icer_wording({**base, "delta_cost": 3000.0, "delta_qaly": 0.1, "icer": 30000.0}).startswith("ICER 30,000")


@pytest.mark.parametrize("bad,key", [
    ({"x": {"intervention": "switch", "comparator": "switch", "isolates": "a sentence"}}, "experiment.comparisons.x.comparator"),
    ({"x": {"intervention": "switch", "comparator": "prrt"}}, "experiment.comparisons.x.isolates"),
    ({"x": {"intervention": "switch", "comparator": "prrt", "isolates": "s", "extra": 1}}, "experiment.comparisons.x"),
    ({"x": {"intervention": 3, "comparator": "prrt", "isolates": "s"}}, "experiment.comparisons.x.intervention"),
])
def test_bad_comparisons_are_user_errors_naming_the_key(bad, key):
    """A malformed comparison is one error naming its key."""
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        build_comparisons({"comparisons": bad}, ["switch", "prrt"])


def test_a_comparison_of_strategies_not_compared_is_left_out_with_a_note():
    """Only the comparisons whose two strategies run are kept; the others are named in a note."""
    notes = []
    comps = build_comparisons({"comparisons": {
        "x": {"intervention": "switch", "comparator": "prrt", "isolates": "s"},
        "y": {"intervention": "switch", "comparator": "rechallenge", "isolates": "s"}}}, ["switch", "prrt"],
        note=notes.append)
    assert [c.name for c in comps] == ["x"] and len(notes) == 1 and "rechallenge" in notes[0]


def test_paired_os_difference_is_the_mean_of_per_patient_differences():
    """comparison_table's OS difference is the mean of the paired per-patient differences."""
    patients = pd.DataFrame({"patient_id": [0, 1, 2, 0, 1, 2], "strategy": ["a"] * 3 + ["b"] * 3,
                             "os_months": [10.0, 20.0, 30.0, 8.0, 21.0, 25.0]})
    comps = build_comparisons({"comparisons": {"x": {"intervention": "a", "comparator": "b", "isolates": "s"}}},
                              ["a", "b"])
    t = comparison_table(comps, patients, None, ())
    assert t.loc[0, "delta_os_months"] == pytest.approx(np.mean([2.0, -1.0, 5.0]))
