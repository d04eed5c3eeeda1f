"""PSA distribution machinery: centring on the base case, two-piece ranges, Dirichlet shares, the Sobol
outer loop (sim.uncertainty.params)."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.stats import qmc

from sim.config import to_container
from sim.uncertainty import psa
from sim.uncertainty.params import Dirichlet, build_paramset, make_dirichlet, make_param
from sim.errors import UserError

from conftest import compose_config


def test_two_piece_log_uniform_has_its_median_at_the_base_case_and_keeps_the_range():
    """Rechallenge time ratio, base 0.4293 on [0.25, 1]: the two-piece log-uniform has median 0.4293 (the plain
    log-uniform's is 0.5), its 0 and 1 quantiles are the range ends, and half the mass lies on each side."""
    p = make_param("r", {"dist": "loguniform", "low": 0.25, "high": 1.0, "centre": "median"}, {"r": 0.4293})
    assert p.centre == "median" and p.split
    assert float(p.ppf(0.5)) == pytest.approx(0.4293, rel=1e-12)
    assert float(p.ppf(0.0)) == pytest.approx(0.25) and float(p.ppf(1.0)) == pytest.approx(1.0)
    u = np.linspace(0.001, 0.999, 999)
    assert np.all(np.diff(p.ppf(u)) > 0)
    plain = make_param("r", {"dist": "loguniform", "low": 0.25, "high": 1.0}, {"r": 0.5})
    assert plain.centre == "median" and float(plain.ppf(0.5)) == pytest.approx(0.5)


def test_uniform_off_its_base_case_must_state_its_centre_in_a_psa():
    """A log-uniform whose base case is neither its mean nor its median is refused in a PSA unless it states
    centre: median or centre: none; the message names the path and the value."""
    spec = {"r": {"dist": "loguniform", "low": 0.25, "high": 1.0}}
    with pytest.raises(UserError, match=r"psa.parameters.r.*0.4293"):
        build_paramset({"r": 0.4293}, spec, 1)
    ps = build_paramset({"r": 0.4293}, {"r": {**spec["r"], "centre": "none"}}, 1)
    assert ps.table()["centred_on"].tolist() == ["none"]


def test_log_normal_centred_on_its_mean():
    """centre: mean gives mu = log(base) - sigma^2 / 2, so exp(mu + sigma^2 / 2) = base exactly."""
    p = make_param("m", {"dist": "lognormal", "se_log": 0.4, "centre": "mean"}, {"m": 12.0})
    assert math.exp(p.a + p.b ** 2 / 2) == pytest.approx(12.0, rel=1e-12)
    assert p.centre == "mean"
    with pytest.raises(UserError, match="centre"):
        make_param("g", {"dist": "gamma", "se": 1.0, "centre": "median"}, {"g": 10.0})


def test_shipped_parameter_table_states_the_centre_of_every_distribution():
    """Every distribution of configs/psa/default.yaml states which summary equals its base case; the rechallenge
    time ratio's median is its base case 0.4293."""
    plain = to_container(psa.with_economics(compose_config(["experiment=psa"])))
    ps = build_paramset(plain, plain["psa"]["parameters"], plain["seed"])
    t = ps.table().set_index("path")
    assert t["centred_on"].map(bool).all()
    p = next(q for q in ps.params if q.path.endswith("rechallenge.time_ratio"))
    assert float(p.ppf(0.5)) == pytest.approx(t.loc[p.path, "base"], rel=1e-12)


def test_dirichlet_shares_sum_to_one_with_means_at_the_base_case():
    """Dirichlet(50 x (0.5, 0.3, 0.2)): every draw sums to 1; over 4,000 draws each share's mean is its base value
    within 4 Monte Carlo SEs (SE from the Beta marginal variance) and its variance matches the Beta marginal."""
    d = make_dirichlet("mix", {"paths": ["a", "b", "c"], "concentration": 50}, {"a": 0.5, "b": 0.3, "c": 0.2})
    u = np.random.default_rng(3).uniform(size=(4000, 3))
    x = np.array([d.draw(r) for r in u])
    assert np.allclose(x.sum(axis=1), 1.0)
    a = d.alpha
    var = a * (50 - a) / (50 ** 2 * 51)
    assert np.all(np.abs(x.mean(axis=0) - np.array([0.5, 0.3, 0.2])) < 4 * np.sqrt(var / 4000))
    # SE of a sample variance of n draws: sqrt((mu4 - var^2 (n - 3) / (n - 1)) / n), mu4 from the Beta kurtosis
    n = 4000
    mu4 = (np.array([float(stats.beta.stats(aj, 50 - aj, moments="k")) for aj in a]) + 3) * var ** 2
    se_var = np.sqrt((mu4 - var ** 2 * (n - 3) / (n - 1)) / n)
    assert np.all(np.abs(x.var(axis=0, ddof=1) - var) < 4 * se_var)
    with pytest.raises(UserError, match="sum to 1"):
        make_dirichlet("mix", {"paths": ["a", "b"], "concentration": 5}, {"a": 0.5, "b": 0.4})
    assert isinstance(d, Dirichlet)


def test_sobol_outer_loop_is_stratified_and_independent_of_the_block():
    """psa.sampling: sobol -- the first 2^k samples put exactly one uniform in each interval [i/2^k, (i+1)/2^k) of
    every parameter (the Sobol sequence's stratification), and sample s is the same computed alone."""
    cfg = {"a": 1.0, "b": 2.0}
    spec = {"a": {"dist": "uniform", "low": 0.0, "high": 2.0}, "b": {"dist": "uniform", "low": 1.0, "high": 3.0}}
    ps = build_paramset(cfg, spec, 11, sampling="sobol")
    draws = np.array([[ps.draw(s)["a"], ps.draw(s)["b"]] for s in range(64)])
    u = np.column_stack([draws[:, 0] / 2.0, (draws[:, 1] - 1.0) / 2.0])
    for j in range(2):
        assert sorted(np.floor(u[:, j] * 64).astype(int)) == list(range(64))
    eng = qmc.Sobol(d=2, scramble=True, seed=11)
    assert np.allclose(u, eng.random(64))
    assert build_paramset(cfg, spec, 11, sampling="sobol").draw(37) == ps.draw(37)
    with pytest.raises(UserError, match="psa.sampling"):
        build_paramset(cfg, spec, 11, sampling="lhs")
