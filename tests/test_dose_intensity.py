"""The dose-intensity effect on progression (``model.dose_intensity_effect.beta``, sim/kernel/line.py):
after the dose level drops to ``L`` the progression hazard is multiplied by ``L^(-beta)``.

The kernel checks are exact (one patient, fixed uniforms); the pathway checks compare two runs of the same
patients (common random numbers), so they need no Monte Carlo tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import FixedU, compose_config, make_cohort, make_rules, plan
from sim.config import build_model
from sim.errors import UserError
from sim.run.executors import simulate
from sim.therapies import Therapy
from sim.units import weeks
from test_executor_equality import assert_same_frames, both_engines

MEDIAN = 10.0          # exponential PFS: H(t) = log(2) t / MEDIAN
U_PFS = 0.25           # T = 2 MEDIAN = 20 months without the effect


def _therapy(consequence: str = "dose_reduction", onset_weeks: float = 4.0, reduced: float = 0.5):
    spec = compose_config().therapies["everolimus"]
    ae = {"probability": 1.0, "onset_median_weeks": onset_weeks, "consequence": {consequence: 1.0},
          "reduced_intensity": reduced, "interruption_weeks": 2}
    return Therapy.from_config("x", {**spec, "pfs": {"family": "exponential", "median": MEDIAN},
                                     "adverse_events": {"stomatitis": ae}})


def _patient():
    return make_cohort(1).iloc[0].to_dict()


def _line(t, beta, u_ae=0.5):
    """One line of ``t`` from time 0 (scans only, no deaths); the AE's onset is its median at ``u_ae = 0.5``."""
    return plan(t, {}, _patient(), 1, 0.0, math.inf, [], FixedU(0.999, pfs=U_PFS, **{"ae/stomatitis": u_ae}),
                make_rules(dose_intensity_beta=beta))


@pytest.mark.parametrize("beta", [0.25, 0.5, 1.0])
def test_a_reduction_scales_the_remaining_cumulative_hazard_by_the_dose_level_to_the_minus_beta(beta):
    """One reduction to 0.5 at 4 weeks, exponential PFS: ``T* = a + (T - a) 0.5^beta``; the progression is
    detected at the first scan after ``T*`` and the dose intensity is recomputed over the shorter line."""
    t = _therapy()
    res = _line(t, beta)
    a, T = weeks(4), float(t.pfs.sample(U_PFS))
    want = a + (T - a) * 0.5 ** beta
    assert res.record["pfs_true"] == pytest.approx(want, rel=1e-12)
    dt = weeks(12)
    detect = math.ceil(want / dt) * dt
    assert res.reason == "progression" and res.end == pytest.approx(detect, rel=1e-12)
    assert res.record["dose_intensity"] == pytest.approx((a + 0.5 * (detect - a)) / detect, rel=1e-12)


def test_two_reductions_apply_their_levels_segment_by_segment():
    """Reductions to 0.5 at 4 weeks and to 0.25 at 8 weeks (beta 1): hazard x2 then x4, exponential PFS:
    ``E = l a1 + 2 l (a2 - a1) + 4 l (T* - a2)`` with ``E = l T``."""
    spec = compose_config().therapies["everolimus"]
    aes = {n: {"probability": 1.0, "onset_median_weeks": w, "consequence": {"dose_reduction": 1.0},
               "reduced_intensity": 0.5} for n, w in (("stomatitis", 4.0), ("anaemia", 8.0))}
    t = Therapy.from_config("x", {**spec, "pfs": {"family": "exponential", "median": MEDIAN}, "adverse_events": aes})
    res = plan(t, {}, _patient(), 1, 0.0, math.inf, [], FixedU(0.5, pfs=U_PFS), make_rules(dose_intensity_beta=1.0))
    a1, a2, T = weeks(4), weeks(8), float(t.pfs.sample(U_PFS))
    want = a2 + (T - a1 - 2 * (a2 - a1)) / 4
    assert res.record["pfs_true"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("case", ["interruption", "after_progression", "no_ae"])
def test_lines_without_a_reduction_before_progression_are_unchanged(case):
    """beta 1 leaves a line unchanged (every event and column) when its only AE is an interruption, when its
    reduction comes after the true progression (before its detection), or when it has no AE."""
    if case == "interruption":
        t, u_ae = _therapy("interruption"), 0.5
    elif case == "after_progression":
        T = float(_therapy().pfs.sample(U_PFS))
        dt = weeks(12)
        assert math.ceil(T / dt) * dt > T + 0.5          # the reduction below falls between T and its scan
        t = _therapy(onset_weeks=(T + 0.25) / weeks(1))
        u_ae = 0.5
    else:                                               # p = 0.5 and an occurrence uniform above it
        t = Therapy.from_config("x", {**compose_config().therapies["everolimus"],
                                      "pfs": {"family": "exponential", "median": MEDIAN}, "adverse_events": {
                                          "stomatitis": {"probability": 0.5, "onset_median_weeks": 4,
                                                         "consequence": {"dose_reduction": 1.0},
                                                         "reduced_intensity": 0.5}}})
        u_ae = 0.9
    a, b = _line(t, 0.0, u_ae), _line(t, 1.0, u_ae)
    assert a.events == b.events and a.record == b.record
    if case == "no_ae":
        assert a.record["n_ae"] == 0
    else:
        assert a.record["n_ae"] == 1


def test_beta_zero_is_the_default_and_a_negative_beta_is_refused():
    """``model.dose_intensity_effect`` absent, or beta 0, gives the same rules; beta -0.5 is a UserError naming it."""
    base = build_model(compose_config(["cohort.n=10"])).rules
    assert base.dose_intensity_beta == 0.0
    gone = build_model(compose_config(["cohort.n=10", "~model.dose_intensity_effect"])).rules
    assert gone == base
    with pytest.raises(UserError, match=r"model\.dose_intensity_effect\.beta.*-0\.5"):
        build_model(compose_config(["cohort.n=10", "model.dose_intensity_effect.beta=-0.5"]))


def _frames(beta, n=3000):
    model = build_model(compose_config([f"cohort.n={n}", f"model.dose_intensity_effect.beta={beta}"]))
    return simulate(model.cohort, model.strategies, model.therapies, model.rules, model.lifetable, model.seed,
                    engine="vectorised").frames()


def _reduced_before_progression(lines, events, *, latent: bool):
    """(patient, strategy, line) keys of lines with a dose reduction before their true progression; with
    ``latent`` also those whose progression is not recorded (a death came first: it lies beyond the death)."""
    red = events[(events["event"] == "dose_change") & (events["detail"] != "resume")]
    red = red.merge(lines[["patient_id", "strategy", "line", "progression_true"]], on=["patient_id", "strategy", "line"])
    prog = red["progression_true"].to_numpy(float)
    red = red[(red["time"] < prog) | (latent & np.isnan(prog))]
    return set(map(tuple, red[["patient_id", "strategy", "line"]].drop_duplicates().to_numpy().tolist()))


def test_beta_shortens_only_the_lines_with_a_reduction_and_leaves_every_other_pathway_identical():
    """Default model, beta 0 vs 1 on the same patients: the first line with a reduction before its progression
    has a shorter true PFS (a shorter or the same PFS event when a death came first); every patient without a
    reduction on a line before its progression has identical rows in all three frames."""
    p0, l0, e0 = _frames(0.0)
    p1, l1, e1 = _frames(1.0)
    key = ["patient_id", "strategy"]
    touched_lines = _reduced_before_progression(l0, e0, latent=True)
    shortened = _reduced_before_progression(l0, e0, latent=False)
    assert len(shortened) > 50
    first = {}
    for p, s, ln in sorted(touched_lines):
        first.setdefault((p, s), ln)
    a = l0.set_index(["patient_id", "strategy", "line"])["pfs_true"]
    b = l1.set_index(["patient_id", "strategy", "line"])["pfs_true"]
    d = np.array([b[(p, s, ln)] - a[(p, s, ln)] for (p, s), ln in first.items()])
    strict = np.array([(p, s, ln) in shortened for (p, s), ln in first.items()])
    assert (d <= 0).all() and (d[strict] < 0).all()
    touched = set(first)
    for f0, f1 in ((p0, p1), (l0, l1), (e0, e1)):
        keep0 = ~f0[key].apply(tuple, axis=1).isin(touched)
        keep1 = ~f1[key].apply(tuple, axis=1).isin(touched)
        a_, b_ = f0[keep0].reset_index(drop=True), f1[keep1].reset_index(drop=True)
        assert len(a_) and a_.equals(b_)


def test_the_events_of_a_shortened_line_stay_inside_it_and_both_engines_agree():
    """beta 1: no AE, consequence or resumption after the end of its line, and the SimPy and vectorised
    executors give the same frames."""
    model = build_model(compose_config(["cohort.n=300", "model.dose_intensity_effect.beta=1.0"]))
    a, b = both_engines(model)
    assert_same_frames(a, b, "dose intensity effect")
    _, lines, events = a
    ev = events.merge(lines[["patient_id", "strategy", "line", "start", "end"]], on=["patient_id", "strategy", "line"])
    assert ((ev["time"] >= ev["start"] - 1e-9) & (ev["time"] <= ev["end"] + 1e-9)).all()
