"""Probabilistic sensitivity analysis (sim.uncertainty.psa, sim.uncertainty.params): distributions,
reproducibility of samples across workers and blocks, analysis tables, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.config import to_container
from sim.uncertainty import psa
from sim.uncertainty.params import build_paramset, expand_groups, make_param
from sim.errors import UserError
from tests.conftest import compose_config

#: tiny PSA: 16 patients, two strategies, three uncertain parameters of different kinds
TINY = ["experiment=psa", "cohort.n=16", "experiment.strategies=[switch,rechallenge]", "experiment.reference=switch",
        "psa.intervention=rechallenge", "psa.comparator=switch", "psa.workers=1",
        "psa.samples=3", "psa.evppi.n_boot=20", "output.figures=false"]
TINY_PARAMS = {
    "therapies.sunitinib_rechallenge.rechallenge.time_ratio":
        {"dist": "loguniform", "range": "assumption:rechallenge_time_ratio", "low": 0.25, "high": 1.0,
         "centre": "median"},
    "therapies.sunitinib.pfs.median": {"dist": "lognormal", "se_log": 0.1},
    "economics.utilities.sets.swinburn2012.progressed": {"dist": "beta", "range": "economics"},
}


def tiny_cfg(*extra):
    cfg = psa.with_economics(compose_config(TINY + list(extra)))
    return cfg


@pytest.fixture(scope="module")
def tiny():
    cfg = tiny_cfg()
    plain = to_container(cfg)
    return cfg, build_paramset(plain, TINY_PARAMS, plain["seed"])


# ------------------------------------------------------------------ distributions
def test_beta_and_gamma_match_mean_and_se_by_method_of_moments():
    """Beta (utilities) and gamma (costs) have the base value as mean and (high - low) / 3.92 as SD."""
    cfg = {"u": 0.61, "c": 600.0}
    b = make_param("u", {"dist": "beta", "low": 0.55, "high": 0.67}, cfg)
    g = make_param("c", {"dist": "gamma", "low": 300.0, "high": 1200.0}, cfg)
    for p, d in ((b, stats.beta(b.a, b.b)), (g, stats.gamma(g.a, scale=g.b))):
        lo, hi = p.low, p.high
        assert d.mean() == pytest.approx(p.base, rel=1e-12)
        assert d.std() == pytest.approx((hi - lo) / (2 * 1.959963984540054), rel=1e-12)
        assert p.ppf(0.5) == pytest.approx(d.median())


def test_lognormal_is_centred_on_the_median_and_uses_the_ci_of_the_log():
    """A log-normal from a 95 % CI has median = base value and sigma = (log hi - log lo) / 3.92."""
    p = make_param("hr", {"dist": "lognormal", "ci": "evidence:clarinet_lanreotide_hr_pfs"}, {"hr": 0.47})
    assert p.ppf(0.5) == pytest.approx(0.47)
    assert p.b == pytest.approx((math.log(0.73) - math.log(0.30)) / (2 * 1.959963984540054))


def test_range_from_assumption_row_wins_over_the_fallback(tiny):
    """``range: assumption:<id>`` reads low / high of data/evidence/assumptions.csv when the row
    exists (rechallenge_beta_time_off), ignoring the fallback in the entry."""
    from sim.calibration import assumption_rows
    row = assumption_rows()["rechallenge_beta_time_off"]
    p = make_param("x", {"dist": "uniform", "range": "assumption:rechallenge_beta_time_off", "low": -9, "high": 9},
                   {"x": float(row["value"])})
    assert (p.low, p.high) == (float(row["low"]), float(row["high"]))
    assert "assumptions.csv" in p.source


def test_draws_of_sample_s_do_not_depend_on_other_samples_or_parameters(tiny):
    """Sample s draws the same values whatever other samples or parameters exist (named streams)."""
    cfg, ps = tiny
    plain = to_container(cfg)
    one = build_paramset(plain, {k: v for k, v in list(TINY_PARAMS.items())[:1]}, plain["seed"])
    k = next(iter(TINY_PARAMS))
    assert ps.draw(7)[k] == one.draw(7)[k]
    assert ps.draw(7) == ps.draw(7) and ps.draw(7) != ps.draw(8)
    lo, hi = 0.25, 1.0
    assert all(lo <= ps.draw(s)[k] <= hi for s in range(20))


def _fit_file(tmp_path, cov):
    import yaml
    path = tmp_path / "fits.yaml"
    path.write_text(yaml.safe_dump({"x": {"theta": {"names": ["log_scale", "log_shape"], "estimate": [2.0, 0.1],
                                                    "cov": cov}}}))
    return str(path)


def test_fit_draws_have_the_fitted_covariance_around_the_configured_curve(tmp_path):
    """``dist: fit``: at u = 0.5 the configured curve comes back; recovered (log scale, log shape)
    of 2,000 draws have the fit's covariance (each entry within Z SEs, SE(s_ij)^2 =
    (s_ii s_jj + s_ij^2) / n)."""
    from sim.uncertainty.params import make_weibull_fit
    from tests.conftest import Z
    cov = np.array([[0.01, 0.002], [0.002, 0.04]])
    cfg = {"therapies": {"t": {"pfs": {"family": "weibull", "median": 10.0, "shape": 1.2}}}}
    f = make_weibull_fit("therapies.t.pfs", {"fit": "x", "file": _fit_file(tmp_path, cov.tolist())}, cfg)
    assert f.paths == ("therapies.t.pfs.median", "therapies.t.pfs.shape")
    assert f.draw(np.array([0.5, 0.5])) == pytest.approx([10.0, 1.2])
    u = np.random.default_rng(12).random((2000, 2))
    d = np.array([f.draw(r) for r in u])
    theta = np.column_stack([np.log(d[:, 0] / math.log(2) ** (1 / d[:, 1])), np.log(d[:, 1])])
    s = np.cov(theta.T)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / len(u))
    assert np.all(np.abs(s - cov) < Z * se)


def test_fit_draws_through_median_and_landmark_stay_valid_curves(tmp_path):
    """A median + landmark node drawn from a fit keeps the configured curve at u = 0.5 and every
    draw builds a valid PFS distribution (median and landmark from one Weibull)."""
    from sim.uncertainty.params import make_weibull_fit
    from sim.therapies.pfs import build_pfs
    node = {"family": "weibull", "median": 18.0, "landmark_months": 24, "landmark_survival": 0.33}
    f = make_weibull_fit("p", {"fit": "x", "file": _fit_file(tmp_path, [[0.07, -0.09], [-0.09, 0.16]])}, {"p": node})
    assert f.draw(np.array([0.5, 0.5])) == pytest.approx([18.0, 0.33])
    for r in np.random.default_rng(3).random((300, 2)):
        med, sl = f.draw(r)
        dist = build_pfs("p", {**node, "median": med, "landmark_survival": sl})
        assert dist.survival(np.array([24.0]))[0] == pytest.approx(sl, rel=1e-9)


def test_fit_without_covariance_is_a_user_error(tmp_path):
    """A fit whose covariance is missing (median without CI) cannot be drawn: UserError naming the entry."""
    from sim.uncertainty.params import make_weibull_fit
    cfg = {"p": {"family": "weibull", "median": 10.0, "shape": 1.0}}
    with pytest.raises(UserError, match=r"psa\.parameters\.p\.fit"):
        make_weibull_fit("p", {"fit": "x", "file": _fit_file(tmp_path, [[None, 0.0], [0.0, 0.0]])}, cfg)


# ------------------------------------------------------------------ reproducibility
def test_sample_rows_identical_whatever_workers_and_block_split(tiny):
    """Samples 0..2 run in one block sequentially equal blocks {0} + {1, 2} with 2 workers, row
    for row (sample s depends only on (seed, s)); only per-sample summaries are kept."""
    cfg, ps = tiny
    whole = psa.run_samples(cfg, ps, range(3), workers=1)
    split = pd.concat([psa.run_samples(cfg, ps, [0], workers=1),
                       psa.run_samples(cfg, ps, range(1, 3), workers=2)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, split)
    cols = list(whole.columns)
    assert cols[:len(psa.SAMPLE_COLUMNS)] == psa.SAMPLE_COLUMNS and cols[-len(ps.paths):] == ps.paths
    moments = {"n_patients", "cost_sd", "qaly_sd", "nmb_sd_30000"} | {
        f"cov_{m}__{s}" for m in ("cost", "qaly", "cost_qaly") for s in ("switch", "rechallenge")}
    assert moments <= set(cols)
    assert len(whole) == 3 * 2
    assert whole.groupby("sample")["therapies.sunitinib.pfs.median"].nunique().eq(1).all()
    assert whole["cost"].nunique() == 6


def test_parameter_change_reaches_interpolated_configs(tiny):
    """A drawn sunitinib median also sets the rechallenge PFS (interpolated before resolution)."""
    cfg, _ = tiny
    from sim.uncertainty.params import apply_overrides
    c = to_container(apply_overrides(cfg, {"therapies.sunitinib.pfs.median": 20.0}))
    assert c["therapies"]["sunitinib_rechallenge"]["pfs"]["median"] == 20.0


# ------------------------------------------------------------------ analysis on hand-made samples
def _hand_made():
    """Four samples, two strategies: costs and QALYs chosen so that at WTP 0 A always wins and at
    WTP 100 B wins in samples 0, 1, 2 (INB = 100 dQ - dC = 50, 150, 10, -90)."""
    rows = []
    for s, (ca, qa, cb, qb) in enumerate([(0, 1.0, 50, 2.0), (0, 1.0, 50, 3.0), (10, 1.0, 50, 1.5), (0, 1.0, 90, 1.0)]):
        rows += [{"sample": s, "strategy": "A", "cost": ca, "qaly": qa}, {"sample": s, "strategy": "B", "cost": cb,
                                                                             "qaly": qb}]
    df = pd.DataFrame(rows)
    for c in ("ly", "cost_undiscounted", "qaly_undiscounted", "ly_undiscounted"):
        df[c] = 0.0
    return df


def test_incremental_ceac_and_evpi_on_hand_made_samples():
    """Hand-made samples: incremental means, P(CE), CEAC and the EVPI by its definition."""
    df = _hand_made()
    inc = psa.incremental_table(df, ["A", "B"], "A", [0.0, 100.0]).iloc[0]
    assert inc["delta_cost"] == pytest.approx(np.mean([50, 50, 40, 90]))
    assert inc["delta_qaly"] == pytest.approx(np.mean([1, 2, 0.5, 0]))
    assert inc["p_ce_100"] == 0.75 and inc["p_ce_0"] == 0.0
    assert inc["inmb_100"] == pytest.approx(np.mean([50, 150, 10, -90]))
    C, Q = psa.matrices(df, ["A", "B"], "cost"), psa.matrices(df, ["A", "B"], "qaly")
    from sim.uncertainty import voi
    ce = voi.ceac(C, Q, [0, 100], ["A", "B"]).set_index(["wtp", "strategy"])["probability"]
    assert ce[(0.0, "A")] == 1.0 and ce[(100.0, "B")] == 0.75
    f = voi.ce_frontier(C, Q, [0, 100], ["A", "B"]).set_index("wtp")
    assert f.loc[100.0, "optimal_strategy"] == "B" and f.loc[100.0, "probability_cost_effective"] == 0.75
    # EVPI = mean(max(0, INB)) - max(0, mean INB) = (50 + 150 + 10 + 0) / 4 - 30
    assert f.loc[100.0, "evpi"] == pytest.approx(210 / 4 - 30)
    assert f.loc[0.0, "evpi"] == 0.0


def test_analyse_returns_every_table_with_convergence_ending_at_the_mean():
    """analyse() returns the documented tables; the convergence curve ends at the mean INB."""
    df = _hand_made()
    df["x"] = df["sample"].map({0: 0.1, 1: 0.5, 2: 0.2, 3: 0.9})
    st = psa.PsaSettings(samples=4, first_sample=0, intervention="B", comparator="A", wtp_grid=np.array([0.0, 50.0]),
                         report_wtp=(100.0,), primary_wtp=100.0, groups={"g": ["x"]}, evppi_method="gam", n_boot=10,
                         workers=1, progress=False)
    t = psa.analyse(df, ["A", "B"], st, {"g": ["x"]})
    assert set(t) == {"psa_summary", "psa_full_incremental", "psa_incremental", "ce_plane", "ceac", "ceaf", "evppi",
                      "convergence", "convergence_voi", "decision_thresholds"}
    assert t["convergence"]["mean_inb"].iloc[-1] == pytest.approx(30.0)
    assert 100.0 in set(t["ceac"]["wtp"])          # report WTPs are added to the grid
    ev = t["evppi"].set_index("group")
    assert ev.loc["ALL (EVPI)", "evppi"] == pytest.approx(22.5)


def test_full_incremental_of_psa_is_the_incremental_analysis_of_the_expected_values():
    """psa_full_incremental applies dominance and frontier ICERs to the mean cost and QALYs over samples, with
    SEs sd / sqrt(S) and paired incremental SEs; psa_summary carries the same means with their SEs."""
    from sim.economics.incremental import incremental

    df = _hand_made()
    full = psa.full_incremental(df, ["A", "B"], [100.0]).set_index("strategy")
    means = df.groupby("strategy")[["cost", "qaly"]].mean().reset_index()
    want = incremental(means, [100.0], cost="cost", effect="qaly").set_index("strategy")
    assert full["status"].to_dict() == want["status"].to_dict()
    for col in ("cost", "effect", "icer", "nmb_100"):
        assert full[col].to_dict() == pytest.approx(want[col].to_dict(), nan_ok=True), col
    dc = np.array([50, 50, 40, 90], float)
    assert full.loc["B", "inc_cost_se"] == pytest.approx(dc.std(ddof=1) / 2)
    summ = psa.summary_table(df, ["A", "B"]).set_index("strategy")
    assert summ.loc["B", "cost"] == pytest.approx(full.loc["B", "cost"])
    assert summ.loc["B", "cost_se"] == pytest.approx(np.std([50, 50, 50, 90], ddof=1) / 2)


def test_evppi_table_adds_all_parameters_jointly():
    """With all parameter paths given, the evppi table has a row for all parameters jointly, below the EVPI."""
    rng = np.random.default_rng(3)
    S = 300
    x1, x2 = rng.normal(size=S), rng.normal(size=S)
    rows = []
    for s in range(S):
        rows += [{"sample": s, "strategy": "A", "cost": 0.0, "qaly": 0.0, "x1": x1[s], "x2": x2[s]},
                 {"sample": s, "strategy": "B", "cost": -(100 * x1[s] + 50 * x2[s]), "qaly": 0.0, "x1": x1[s],
                  "x2": x2[s]}]
    ev = psa.evppi_table(pd.DataFrame(rows), ["A", "B"], {"x1": ["x1"]}, [1.0], "gam", 50, 0, ["x1", "x2"])
    ev = ev.set_index("group")["evppi"]
    assert list(ev.index) == [psa.EVPI_GROUP, "x1", psa.ALL_GROUP]
    # NB_B - NB_A = 100 x1 + 50 x2 is a deterministic function of (x1, x2): EVPPI(all) ~ EVPI > EVPPI(x1)
    assert ev[psa.ALL_GROUP] == pytest.approx(ev[psa.EVPI_GROUP], rel=0.05)
    assert ev["x1"] < ev[psa.ALL_GROUP]


# ------------------------------------------------------------------ bad input
def _set(plain, path, value):
    node = plain
    *head, last = path.split("/")
    for k in head:
        node = node[k]
    node[last] = value


@pytest.mark.parametrize("path,value,needle", [
    ("psa/samples", 0, "psa.samples"),
    ("psa/samples", 1.5, "psa.samples"),
    ("psa/wtp_grid", [], "psa.wtp_grid"),
    ("psa/wtp_grid", {"start": 0, "stop": 100, "step": 0}, "psa.wtp_grid.step"),
    ("psa/report_wtp", [-5], "psa.report_wtp"),
    ("psa/intervention", "nosuch", "psa.intervention"),
    ("psa/evppi/method", "spline", "psa.evppi.method"),
])
def test_bad_psa_settings_are_user_errors_naming_the_key(tiny, path, value, needle):
    """Bad ``psa.*`` settings raise a UserError naming the key (checked before any simulation)."""
    import copy
    plain = copy.deepcopy(to_container(tiny[0]))
    _set(plain, path, value)
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        psa.psa_settings(plain, psa.economics_spec(plain))


@pytest.mark.parametrize("params,needle", [
    ({"therapies.nosuch.pfs.median": {"dist": "lognormal", "se_log": 0.1}},
     "psa.parameters.therapies.nosuch.pfs.median must name an existing configuration key"),
    ({"therapies.nosuch.pfs": {"dist": "fit", "fit": "x"}}, "psa.parameters.therapies.nosuch.pfs must name"),
    ({"therapies.sunitinib.pfs.median": {"dist": "weird"}}, "psa.parameters.therapies.sunitinib.pfs.median.dist"),
    ({"therapies.sunitinib.pfs.median": {"dist": "lognormal"}}, "psa.parameters.therapies.sunitinib.pfs.median"),
    ({"economics.utilities.sets.swinburn2012.progressed": {"dist": "beta", "se": 0.6}},
     "psa.parameters.economics.utilities.sets.swinburn2012.progressed.se"),
    ({}, "psa.parameters"),
])
def test_bad_parameter_entries_are_user_errors_naming_the_path(tiny, params, needle):
    """An unknown config path, an unknown distribution, a missing spread, an impossible beta SE or
    no parameters at all raise a UserError naming the entry."""
    plain = to_container(tiny[0])
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        build_paramset(plain, params, 1)


def test_group_matching_no_parameter_is_a_user_error():
    """An EVPPI group whose patterns match no parameter is a UserError naming the group."""
    with pytest.raises(UserError, match=r"psa\.evppi\.groups\.empty"):
        expand_groups({"empty": ["nothing.*"]}, ["x.1"])


def test_groups_expand_fnmatch_patterns():
    """EVPPI groups are fnmatch patterns over the parameter paths."""
    g = expand_groups({"a": ["x.*"], "b": "y"}, ["x.1", "x.2", "y", "z"])
    assert g == {"a": ["x.1", "x.2"], "b": ["y"]}
