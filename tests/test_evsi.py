"""Expected value of sample information of a binomial trial: closed forms and properties
(sim.uncertainty.evsi)."""

import numpy as np
import pytest
from scipy import stats

from sim.uncertainty import evsi, voi
from sim.errors import UserError

A, B, K, P_STAR = 6.0, 4.0, 10_000.0, 0.55


def _toy(S, seed):
    """Beta(6, 4) prior on the endpoint, two strategies, INB = K (p - 0.55): linear net benefit."""
    rng = np.random.default_rng(seed)
    p = rng.beta(A, B, S)
    nb = np.column_stack([np.zeros(S), K * (p - P_STAR)])
    return nb, p, rng.uniform(size=S)


def test_toy_closed_form_limits():
    """The closed form is 0 for n = 0 data points' worth of information, rises with n and tends to the EVPPI
    of the endpoint, E[max(0, INB)] - max(0, E INB), computed here by quadrature."""
    exact = [evsi.toy_evsi_exact(A, B, n, K, P_STAR) for n in (1, 5, 20, 100, 2000)]
    assert all(np.diff(exact) > 0)
    quad = K * stats.beta.expect(lambda q: max(q - P_STAR, 0.0), (A, B)) - max(0.0, K * (A / (A + B) - P_STAR))
    assert evsi.toy_evppi_exact(A, B, K, P_STAR) == pytest.approx(quad, rel=1e-8)
    assert exact[-1] < quad and exact[-1] == pytest.approx(quad, rel=0.02)


@pytest.mark.parametrize("n", [5, 30, 150])
def test_toy_evsi_by_both_methods_matches_the_closed_form(n):
    """Beta-binomial data and a linear net benefit: EVSI by regression on X/n and by importance sampling both
    equal the closed form within 4 Monte Carlo SEs (bootstrap over 20,000 samples), and agree with each
    other within 4 SEs of their paired difference."""
    nb, p, u = _toy(20_000, seed=n)
    exact = evsi.toy_evsi_exact(A, B, n, K, P_STAR)
    r = evsi.evsi(nb, p, n, u, n_boot=100, seed=1)
    for est in (r.regression, r.importance):
        assert abs(est.value - exact) < 4 * est.se, (est, exact)
    assert abs(r.regression.value - r.importance.value) < 4 * r.diff_se


def test_evsi_rises_with_n_below_the_evppi_of_the_endpoint_below_the_evpi():
    """On a synthetic PSA whose net benefit depends on the trial endpoint and on a parameter the trial does not
    inform, EVSI rises with the trial size (both methods), stays below the EVPPI of the endpoint (regression),
    which stays below the EVPI."""
    S = 4000
    rng = np.random.default_rng(7)
    p = rng.beta(A, B, S)
    other = rng.normal(size=S)
    nb = np.column_stack([np.zeros(S), K * (p - P_STAR) + 1500 * other])
    u = rng.uniform(size=S)
    ev = [evsi.evsi(nb, p, n, u, n_boot=50, seed=2) for n in (5, 20, 80, 320)]
    endpoint = voi.evppi(nb, p, method="gam", n_boot=50)
    e = voi.evpi_se(nb)
    for m in ("regression", "importance"):
        v = np.array([getattr(r, m).value for r in ev])
        se = np.array([getattr(r, m).se for r in ev])
        assert np.all(np.diff(v) > -2 * np.hypot(se[1:], se[:-1])), (m, v)
        assert v[-1] > v[0] + 2 * np.hypot(se[0], se[-1])
        assert np.all(v <= endpoint.value + 2 * np.hypot(se, endpoint.se))
    assert endpoint.value < e.value - 2 * np.hypot(e.se, endpoint.se)


def test_evsi_is_zero_when_one_strategy_wins_every_sample():
    """No data can change a decision that every sample makes the same way: EVSI is exactly 0."""
    nb, p, u = _toy(500, seed=3)
    nb[:, 1] = -1.0 - np.abs(nb[:, 1])
    r = evsi.evsi(nb, p, 20, u, n_boot=10)
    assert r.regression.value == r.importance.value == 0.0


def test_importance_sampling_is_the_exact_preposterior_sum():
    """With three samples the importance-sampling EVSI is the hand-computed sum over x of P(x) max_d E[NB|x]."""
    p = np.array([0.2, 0.5, 0.9])
    nb = np.array([[0.0, -30.0], [0.0, 5.0], [0.0, 40.0]])
    n = 2
    L = np.array([[stats.binom.pmf(x, n, q) for x in range(3)] for q in p])
    want = (sum(L[:, x].mean() * max(0.0, L[:, x] @ nb[:, 1] / L[:, x].sum()) for x in range(3))
            - max(0.0, nb[:, 1].mean()))
    assert evsi.importance_value(nb, p, n) == pytest.approx(want)


def test_bad_endpoint_is_a_user_error():
    """An endpoint outside [0, 1] or of the wrong length names the endpoint."""
    nb, p, u = _toy(50, seed=4)
    with pytest.raises(UserError, match="endpoint"):
        evsi.evsi(nb, p * 2, 10, u)
    with pytest.raises(UserError, match="endpoint"):
        evsi.evsi(nb, p[:10], 10, u)
