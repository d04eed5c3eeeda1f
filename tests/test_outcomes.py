"""Outcome summaries: the bootstrap medians from resample counts equal ``np.median`` of the resamples."""

import numpy as np
import pytest

from sim.outcomes import bootstrap_medians, resample_counts


@pytest.mark.parametrize("n", [1, 2, 3, 7, 63, 64, 65, 200, 1001])
def test_bootstrap_medians_equal_numpy(n):
    rng = np.random.default_rng(n)
    for x in (rng.normal(size=n), rng.integers(0, 4, size=n).astype(float), np.round(rng.exponential(size=n), 1)):
        for m in (n, n + 1, max(n - 1, 1)):          # even and odd resample sizes
            idx = rng.integers(0, n, size=(50, m))
            got = bootstrap_medians(x, idx, resample_counts(idx, n))
            assert np.array_equal(got, np.median(x[idx], axis=1))


def test_bootstrap_medians_nan_and_no_counts():
    x = np.array([1.0, np.nan, 3.0, 4.0])
    idx = np.random.default_rng(0).integers(0, 4, size=(20, 4))
    assert np.array_equal(bootstrap_medians(x, idx, resample_counts(idx, 4)), np.median(x[idx], axis=1),
                          equal_nan=True)
    y = np.arange(4.0)
    assert np.array_equal(bootstrap_medians(y, idx), np.median(y[idx], axis=1))
