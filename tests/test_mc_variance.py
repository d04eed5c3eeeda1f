"""Monte Carlo share of the PSA variance by the ANOVA method (O'Hagan, Stevenson & Madan 2007) and the
within-sample moments it needs (sim.uncertainty.mc_variance, sim.uncertainty.psa.within_sample_moments)."""

import math

import numpy as np
import pandas as pd
import pytest

from sim.uncertainty import mc_variance
from sim.uncertainty.psa import within_sample_moments
from sim.errors import UserError


def _synthetic_psa(S, n, sigma_theta, tau, seed):
    """S samples of n paired patients, two strategies: INB_i = mu_s + e_i, mu_s ~ N(100, sigma_theta^2),
    e_i ~ N(0, tau^2) (costs only: QALYs 0), with the per-sample rows the PSA stores."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(S):
        mu = rng.normal(100, sigma_theta)
        c0 = rng.normal(1000, 50, n)
        c1 = c0 - (mu + rng.normal(0, tau, n))                 # INB = NB1 - NB0 = c0 - c1
        strategy = np.repeat([0, 1], n)
        pid = np.tile(np.arange(n), 2)
        cost, qaly = np.r_[c0, c1], np.zeros(2 * n)
        m = within_sample_moments(strategy, pid, cost, qaly, ["a", "b"], (1000.0,))
        for d, name in enumerate(["a", "b"]):
            rows.append({"sample": s, "strategy": name, "cost": cost[strategy == d].mean(), "qaly": 0.0,
                         **{k: v[d] for k, v in m.items()}})
    return pd.DataFrame(rows)


def test_within_sample_moments_match_numpy_covariances():
    """Per-strategy SDs and cross-strategy covariances over paired patients equal numpy's (ddof 1), whatever the
    order of the rows; the NMB SD at a WTP is that of w q - c."""
    rng = np.random.default_rng(1)
    n = 50
    c, q = rng.normal(size=(2, n)), rng.normal(size=(2, n))
    order = rng.permutation(2 * n)
    strategy, pid = np.repeat([0, 1], n)[order], np.tile(np.arange(n), 2)[order]
    m = within_sample_moments(strategy, pid, c.ravel()[order], q.ravel()[order], ["a", "b"], (3.0,))
    assert m["cov_cost__b"][0] == pytest.approx(np.cov(c)[0, 1])
    assert m["cov_qaly__a"][1] == pytest.approx(np.cov(q)[1, 0])
    assert m["cov_cost_qaly__b"][0] == pytest.approx(np.cov(c[0], q[1])[0, 1])
    assert m["nmb_sd_3"][1] == pytest.approx(np.std(3 * q[1] - c[1], ddof=1))
    assert list(m["n_patients"]) == [n, n]


def test_inb_within_variance_is_the_variance_of_the_paired_patient_inb():
    """The within-sample variance of the per-patient INB assembled from the stored covariances equals the direct
    variance of w (q1 - q0) - (c1 - c0) over the sample's patients."""
    rng = np.random.default_rng(2)
    n = 40
    c, q = rng.normal(size=(2, n)) * 100, rng.normal(size=(2, n))
    m = within_sample_moments(np.repeat([0, 1], n), np.tile(np.arange(n), 2), c.ravel(), q.ravel(), ["a", "b"])
    rows = pd.DataFrame([{"sample": 0, "strategy": s, **{k: v[d] for k, v in m.items()}}
                         for d, s in enumerate(["a", "b"])])
    w = 250.0
    got = mc_variance.inb_within_variance(rows, ["a", "b"], "b", "a", w)[0]
    assert got == pytest.approx(np.var(w * (q[1] - q[0]) - (c[1] - c[0]), ddof=1))


def test_anova_share_matches_the_random_effects_model():
    """One-way random effects with known components (sigma_theta = 20, tau = 400, n = 100): the estimated Monte
    Carlo share equals (tau^2 / n) / (sigma_theta^2 + tau^2 / n) = 0.8 within 4 SEs (relative SE of the
    between-sample variance sqrt(2 / (S - 1))), and the size for a 5 % share is tau^2 0.95 / (0.05 sigma_theta^2)."""
    S, n, st, tau = 800, 100, 20.0, 400.0
    t = mc_variance.mc_variance_table(_synthetic_psa(S, n, st, tau, 4), ["a", "b"], "a", [1000.0]).iloc[0]
    true = (tau ** 2 / n) / (st ** 2 + tau ** 2 / n)
    assert abs(t["mc_share"] - true) < 4 * true * math.sqrt(2 / (S - 1))
    assert t["tau2"] == pytest.approx(tau ** 2, rel=4 * math.sqrt(2 / (S * (n - 1))))
    want = tau ** 2 * 0.95 / (0.05 * st ** 2)
    assert abs(t["n_for_target"] - want) < 4 * want * math.sqrt(2 / (S - 1)) / (1 - true)
    assert not t["below_target"]


def test_anova_at_the_recommended_size_meets_the_target():
    """Simulating at the size the ANOVA rule recommends brings the Monte Carlo share to the 5 % target (within
    4 SEs)."""
    st, tau = 20.0, 100.0
    n = math.ceil(tau ** 2 * 0.95 / (0.05 * st ** 2))
    S = 600
    t = mc_variance.mc_variance_table(_synthetic_psa(S, n, st, tau, 5), ["a", "b"], "a", [1000.0]).iloc[0]
    assert abs(t["mc_share"] - 0.05) < 4 * 0.05 * math.sqrt(2 / (S - 1))


def test_anova_bad_input_is_a_user_error():
    """Fewer than 2 samples, missing moments or a target outside (0, 1) name the problem."""
    with pytest.raises(UserError, match="anova"):
        mc_variance.anova(np.ones(1), np.ones(1), 10)
    with pytest.raises(UserError, match="target_share"):
        mc_variance.anova(np.ones(3), np.ones(3), 10, target=1.5)
    with pytest.raises(UserError, match="covariances"):
        mc_variance.inb_within_variance(pd.DataFrame({"sample": [0], "strategy": ["a"]}), ["a", "b"], "b", "a", 1.0)


def test_upper_size_meets_the_target_with_its_stated_confidence():
    """Over 400 pilots of 50 samples (sigma_theta = 20, tau = 400, n = 200 patients), the size n_for_target_upper
    reaches the true size for a 5 % share in 90 % of pilots (binomial tolerance 4 SEs); the point estimate does
    so markedly less often."""
    rng = np.random.default_rng(9)
    st, tau, n, S, reps = 20.0, 400.0, 200, 50, 400
    n_true = tau ** 2 * 0.95 / (0.05 * st ** 2)
    hit_upper = hit_point = 0
    for _ in range(reps):
        means = rng.normal(0, st, S) + rng.normal(0, tau / math.sqrt(n), S)
        within = tau ** 2 * rng.chisquare(n - 1, S) / (n - 1)
        a = mc_variance.anova(means, within, n, 0.05, confidence=0.9)
        hit_upper += a["n_for_target_upper"] >= n_true
        hit_point += a["n_for_target"] >= n_true
    se = math.sqrt(0.9 * 0.1 / reps)
    assert abs(hit_upper / reps - 0.9) < 4 * se
    assert hit_point / reps < 0.9 - 4 * se                # the point estimate falls short of that confidence
