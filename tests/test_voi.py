"""Value of information and acceptability: known answers and properties (sim.uncertainty.voi)."""

import math

import numpy as np
import pytest
from scipy import stats

from sim.uncertainty import voi
from sim.errors import UserError


def _two_normal(mu, sigma, S, seed=1):
    d = np.random.default_rng(seed).normal(mu, sigma, S)
    return np.column_stack([np.zeros(S), d])


@pytest.mark.parametrize("mu,sigma", [(0.0, 1000.0), (500.0, 1000.0), (-1500.0, 1000.0), (300.0, 100.0)])
def test_evpi_matches_normal_closed_form(mu, sigma):
    """EVPI of two strategies with NB difference ~ N(mu, sigma) equals
    sigma*phi(mu/sigma) - |mu|*Phi(-|mu|/sigma) within 4 Monte Carlo SEs."""
    nb = _two_normal(mu, sigma, 200_000)
    exact = sigma * stats.norm.pdf(mu / sigma) - abs(mu) * stats.norm.cdf(-abs(mu) / sigma)
    r = voi.evpi_se(nb)
    assert r.value == pytest.approx(voi.evpi(nb))
    # evpi_se treats d* as fixed; add the SE of the mean difference for the choice term
    se = math.hypot(r.se, sigma / math.sqrt(len(nb)) if abs(mu) < 4 * sigma / math.sqrt(len(nb)) else 0.0)
    assert abs(r.value - exact) < 4 * se + 1e-9


def test_evpi_definition_and_zero_without_uncertainty():
    """EVPI is mean of row maxima minus max of column means; 0 when one strategy always wins."""
    nb = np.array([[1.0, 2.0, 0.0], [3.0, 1.0, 0.0], [2.0, 2.5, 5.0]])
    assert voi.evpi(nb) == pytest.approx(np.mean([2, 3, 5]) - max(2.0, 5.5 / 3, 5 / 3))
    nb2 = np.column_stack([np.arange(10.0), np.arange(10.0) + 1])
    assert voi.evpi(nb2) == 0.0


def _deterministic_case(S=1500, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(S, 3))
    nb = np.column_stack([np.zeros(S), 800 * x[:, 0] + 400 * x[:, 1] ** 2 - 300,
                          -500 * x[:, 1] + 200 * x[:, 0] * x[:, 2]])
    return nb, x


def _deterministic_pair(S=200, seed=3):
    """Two strategies, INB a smooth nonlinear function of three parameters (one GP fit)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(S, 3))
    inb = 800 * x[:, 0] + 400 * x[:, 1] ** 2 - 300 + 200 * x[:, 0] * x[:, 2]
    return np.column_stack([np.zeros(S), inb]), x


def test_evppi_all_parameters_equals_evpi_when_nb_deterministic():
    """EVPPI of all parameters (GP) equals EVPI, within the EVPI's Monte Carlo SE, when NB is a
    deterministic function of them (the regression then only has to interpolate)."""
    nb, x = _deterministic_pair()
    e = voi.evpi_se(nb)
    r = voi.evppi(nb, x, method="gp", n_boot=100)
    assert r.method == "gp"
    assert abs(r.value - e.value) < 2 * e.se


def test_evppi_gam_one_parameter_deterministic():
    """GAM EVPPI of the only parameter equals EVPI within 2 Monte Carlo SEs of the EVPI
    (nonlinear NB, one parameter)."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, 2000)
    nb = np.column_stack([np.zeros_like(x), 1000 * np.sin(2 * x) + 300 * x])
    e = voi.evpi_se(nb)
    r = voi.evppi(nb, x, method="gam", n_boot=50)
    assert abs(r.value - e.value) < 2 * e.se


def test_evppi_gam_two_parameters_known_answer():
    """Two-parameter tensor-product GAM: EVPPI of (x1, x2) when INB = x1 + x2 + x3 (x3 not
    learned) equals E[max(0, x1 + x2)] - max(0, 0) = sqrt(2) / sqrt(2 pi) for standard normals,
    within 4 bootstrap SEs of the estimate."""
    rng = np.random.default_rng(11)
    S = 4000
    x = rng.normal(size=(S, 3))
    nb = np.column_stack([np.zeros(S), x[:, 0] + x[:, 1] + x[:, 2]])
    r = voi.evppi(nb, x[:, :2], method="gam", n_boot=200)
    exact = math.sqrt(2) / math.sqrt(2 * math.pi)
    assert abs(r.value - exact) < 4 * r.se


def test_evppi_irrelevant_parameter_is_near_zero():
    """EVPPI of parameters unrelated to NB is ~0 (below 2 Monte Carlo SEs of the EVPI), GAM with
    one and GP with two parameters."""
    nb, x = _deterministic_pair()
    noise = np.random.default_rng(9).normal(size=(len(nb), 2))
    e = voi.evpi_se(nb)
    for method, cols in (("gam", noise[:, :1]), ("gp", noise)):
        r = voi.evppi(nb, cols, method=method, n_boot=50)
        assert 0 <= r.value < 2 * e.se, method


def test_gp_that_interpolates_noise_is_rejected_and_evppi_stays_within_the_noise_floor():
    """40 samples, 4 parameters unrelated to a noisy net benefit: an unguarded GP interpolates the noise and
    gives EVPPI ~ EVPI; the cross-validation guard rejects it for the additive P-spline, whose EVPPI is within
    the noise floor of 4 dummy parameters and far below the EVPI."""
    rng = np.random.default_rng(18)
    S = 40
    nb = np.column_stack([np.zeros(S), rng.normal(-300, 400, S)])
    x = rng.uniform(size=(S, 4))
    e = voi.evpi(nb)
    fitted = voi.fit_gp(x, nb[:, 1])                                   # the unguarded regression
    g = np.column_stack([np.zeros(S), fitted])
    assert e > 0 and g.max(axis=1).mean() - g.mean(axis=0).max() == pytest.approx(e, rel=0.01)
    r = voi.evppi(nb, x, method="gp", n_boot=20)
    assert "gp not better in cross-validation" in r.method
    floor, _ = voi.noise_floor(nb, k=4, method="gp", replicates=20)
    assert r.value <= floor < e / 2


def test_gp_guard_keeps_a_real_signal():
    """A net benefit driven by an interaction of two of three parameters: the GP predicts held-out samples
    better than the additive P-spline (which cannot represent the interaction), is kept, and its EVPPI is
    close to the EVPI; a signal without interaction is kept by the additive P-spline (EVPPI close to EVPI)."""
    rng = np.random.default_rng(13)
    S = 150
    x = rng.normal(size=(S, 3))
    nb = np.column_stack([np.zeros(S), 500 * x[:, 0] * x[:, 1] + rng.normal(0, 20, S)])
    assert voi.gp_is_predictive(x, nb[:, 1])
    r = voi.evppi(nb, x, method="gp", n_boot=20)
    assert r.method == "gp" and r.value == pytest.approx(voi.evpi(nb), rel=0.1)
    lin = np.column_stack([np.zeros(S), 500 * x[:, 0] + rng.normal(0, 20, S)])
    r = voi.evppi(lin, x, method="gp", n_boot=20)
    assert r.value == pytest.approx(voi.evpi(lin), rel=0.1)


def test_evppi_is_zero_when_one_strategy_wins_every_sample():
    """When one strategy has the highest NB in every sample, EVPI and every EVPPI are exactly 0."""
    x = np.random.default_rng(6).normal(size=(100, 2))
    nb = np.column_stack([np.zeros(100), -1000 - 100 * x[:, 0] ** 2, -50 + 10 * np.abs(x[:, 1])])
    nb[:, 2] = np.minimum(nb[:, 2], -1.0)
    assert voi.evpi(nb) == 0.0
    r = voi.evppi(nb, x, method="gp")
    assert (r.value, r.method) == (0.0, "dominance")


def test_evppi_not_above_evpi():
    """EVPPI of any subset <= EVPI (within 2 bootstrap SEs); the interval contains the estimate."""
    nb, x = _deterministic_case()
    e = voi.evpi(nb)
    for cols in ([0], [1], [0, 1]):
        r = voi.evppi(nb, x[:, cols], n_boot=100)
        assert r.value <= e + 2 * r.se
        assert r.lo <= r.value <= r.hi


def test_ceac_sums_to_one_and_limits():
    """CEAC probabilities sum to 1 at every WTP; at WTP 0 the cheapest strategy wins always."""
    rng = np.random.default_rng(2)
    S = 500
    costs = np.column_stack([rng.normal(1000, 10, S), rng.normal(5000, 10, S), rng.normal(9000, 10, S)])
    qalys = np.column_stack([rng.normal(1.0, 0.1, S), rng.normal(1.2, 0.1, S), rng.normal(1.3, 0.1, S)])
    grid = np.arange(0, 100001, 5000)
    c = voi.ceac(costs, qalys, grid, ["a", "b", "c"])
    sums = c.groupby("wtp")["probability"].sum()
    assert np.allclose(sums, 1.0)
    p0 = c[c.wtp == 0].set_index("strategy")["probability"]
    assert p0["a"] == 1.0
    f = voi.ce_frontier(costs, qalys, grid, ["a", "b", "c"])
    assert f.loc[f.wtp == 0, "optimal_strategy"].item() == "a"
    # CEAF strategy has highest expected NMB
    for lam, s in zip(f.wtp, f.optimal_strategy):
        assert ["a", "b", "c"][int(np.argmax((lam * qalys - costs).mean(0)))] == s


def test_convergence_final_point_is_overall_mean():
    """The running mean at S samples is the overall mean; the band narrows."""
    x = np.random.default_rng(4).normal(100, 50, 400)
    c = voi.convergence(x)
    assert c["n_samples"].iloc[-1] == 400
    assert c["mean_inb"].iloc[-1] == pytest.approx(x.mean())
    assert c["se"].iloc[-1] < c["se"].iloc[1]


def test_bad_input_is_user_error():
    """Malformed inputs raise UserError naming the argument."""
    with pytest.raises(UserError, match="nb"):
        voi.evpi(np.ones(5))
    with pytest.raises(UserError, match="params"):
        voi.evppi(np.ones((5, 2)), np.ones((4, 1)))
    with pytest.raises(UserError, match="method"):
        voi.evppi(np.random.default_rng(0).normal(size=(20, 2)), np.arange(20.0), method="spline")
    with pytest.raises(UserError, match="wtp"):
        voi.ceac(np.ones((3, 2)), np.ones((3, 2)), [-1])
