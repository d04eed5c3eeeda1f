"""Full incremental analysis: strict and extended dominance, ICERs along the frontier, NMB / NHB.

The decision rules are those of Drummond MF et al., *Methods for the Economic Evaluation of
Health Care Programmes*, 4th ed., Oxford University Press 2015, ch. 4 (dominance; extended
dominance as defined by Cantor SB, Med Decis Making 1994;14:259-265): a strategy is
extendedly dominated when a mix of two others gives more effect at the same cost, i.e. when
its ICER exceeds that of the next more costly non-dominated strategy. The cases below are
small hand-made textbook-style examples; every expected number is worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.economics.incremental import DOMINATED, EXTENDED, FRONTIER, frontier_status, incremental
from sim.errors import UserError


def _table(rows):
    return pd.DataFrame(rows, columns=["strategy", "cost_total_disc", "qaly_disc"])


def test_strict_and_extended_dominance_hand_worked_example():
    """Five strategies: C strictly dominated by B, E extendedly dominated by the B-D mix; ICERs 4,000 and 10,000."""
    # by cost: A (1000, 1.0), B (3000, 1.5), C (4000, 1.4), E (6000, 1.6), D (8000, 2.0)
    # C costs more than B and is less effective: dominated.
    # A, B, E, D: ICER_B = 2000/0.5 = 4000, ICER_E = 3000/0.1 = 30000, ICER_D = 2000/0.4 = 5000
    # ICER_E > ICER_D: E is extendedly dominated; then ICER_D (vs B) = 5000/0.5 = 10000 > 4000.
    t = _table([("A", 1000, 1.0), ("B", 3000, 1.5), ("C", 4000, 1.4), ("D", 8000, 2.0), ("E", 6000, 1.6)])
    out = incremental(t, wtp=[5000, 20000]).set_index("strategy")
    assert list(out.index) == ["A", "B", "C", "E", "D"]                       # ordered by cost
    assert out["status"].to_dict() == {"A": FRONTIER, "B": FRONTIER, "C": DOMINATED, "E": EXTENDED, "D": FRONTIER}
    assert out.loc["B", "comparator"] == "A" and out.loc["D", "comparator"] == "B"
    assert out.loc["B", "icer"] == pytest.approx(4000.0)
    assert out.loc["D", "icer"] == pytest.approx(10000.0)
    assert np.isnan(out.loc["A", "icer"]) and np.isnan(out.loc["C", "icer"]) and np.isnan(out.loc["E", "icer"])
    # NMB = l E - C: at 5,000 A 4000, B 4500, C 3000, E 2000, D 2000 -> B; at 20,000 D (32,000)
    assert out.loc["B", "nmb_5000"] == pytest.approx(4500.0)
    assert out["best_5000"].to_dict() == {"A": False, "B": True, "C": False, "E": False, "D": False}
    assert out.loc["D", "nmb_20000"] == pytest.approx(32000.0) and bool(out.loc["D", "best_20000"])
    # NHB = E - C / l: D at 20,000: 2.0 - 0.4 = 1.6
    assert out.loc["D", "nhb_20000"] == pytest.approx(1.6)


def test_extended_dominance_is_iterated_until_icers_increase():
    """Removing one extendedly dominated strategy can expose another: both middle strategies go."""
    # P0 (0, 0), P1 (10, 0.5), P2 (20, 1.0), P3 (21, 1.5). ICERs 20, 20, 2: P2 goes (20 > 2);
    # then P1 -> P3 is 11 / 1.0 = 11 < 20: P1 goes; frontier P0, P3 with ICER 21 / 1.5 = 14.
    t = _table([("P0", 0, 0.0), ("P1", 10, 0.5), ("P2", 20, 1.0), ("P3", 21, 1.5)])
    out = incremental(t, wtp=[30000]).set_index("strategy")
    assert out["status"].to_dict() == {"P0": FRONTIER, "P1": EXTENDED, "P2": EXTENDED, "P3": FRONTIER}
    assert out.loc["P3", "icer"] == pytest.approx(14.0)
    assert out.loc["P3", "comparator"] == "P0"


def test_dominant_strategy_and_exact_duplicates():
    """A cheaper and more effective strategy dominates all others; of two identical strategies one is kept."""
    t = _table([("new", 500, 3.0), ("old", 900, 2.0), ("old_copy", 900, 2.0), ("other", 700, 2.5)])
    out = incremental(t, wtp=[20000]).set_index("strategy")
    assert out["status"].to_dict() == {"new": FRONTIER, "other": DOMINATED, "old": DOMINATED, "old_copy": DOMINATED}
    assert out["comparator"].isna().all() and out["icer"].isna().all()
    status, _ = frontier_status([1.0, 1.0], [2.0, 2.0])
    assert sorted(status) == [DOMINATED, FRONTIER]


def test_equal_cost_lower_effect_is_dominated():
    """At equal cost the less effective strategy is (strictly) dominated."""
    status, comp = frontier_status([100.0, 100.0, 300.0], [1.0, 1.5, 2.0])
    assert list(status) == [DOMINATED, FRONTIER, FRONTIER]
    assert list(comp) == [-1, -1, 1]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=7, unique=True),
       st.floats(0.05, 20.0))
def test_max_nmb_strategy_lies_on_frontier_and_frontier_icers_increase(points, wtp):
    """Property: frontier ICERs are positive and increasing, and the best NMB at any WTP is a frontier strategy."""
    c = np.array([p[0] for p in points], float)
    e = np.array([p[1] for p in points], float)
    t = pd.DataFrame({"strategy": [f"s{i}" for i in range(len(points))], "cost_total_disc": c, "qaly_disc": e})
    out = incremental(t, wtp=[wtp])
    front = out[out["status"] == FRONTIER]
    icers = front["icer"].to_numpy()[1:]
    assert np.all(icers > 0) and np.all(np.diff(icers) >= 0)
    nmb = wtp * out["effect"] - out["cost"]
    best_value = nmb.max()
    assert np.isclose(nmb[out["status"] == FRONTIER].max(), best_value)


@pytest.mark.parametrize("wtp", [[], [0.0], [-20000.0], [float("nan")]])
def test_bad_wtp_is_a_user_error_naming_it(wtp):
    """An empty, zero, negative or NaN threshold list is refused, naming wtp and the value."""
    t = _table([("A", 1.0, 1.0), ("B", 2.0, 2.0)])
    with pytest.raises(UserError, match=r"wtp"):
        incremental(t, wtp=wtp)
