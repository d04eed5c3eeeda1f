"""OS calibration (sim/calibration.py): grid, prior, likelihood, common random numbers, shipped values."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir

from sim.calibration import (CALIBRATION_FILE, PARAMETERS, OSCalibration, apply_result, assumption_rows, bounds,
                             grid_axes, log_likelihood, log_prior, read_result)
from sim.config import to_container

REPO = Path(__file__).resolve().parents[1]


def test_grid_spans_each_range_evenly_on_its_scale():
    """Grid values lie inside the assumption ranges, evenly spaced in x (linear) or log x (log)."""
    for p, axis, (lo, hi) in zip(PARAMETERS, grid_axes(), bounds()):
        assert axis.size == p.points and np.all((axis > lo) & (axis < hi))
        steps = np.diff(axis if p.scale == "linear" else np.log(axis))
        np.testing.assert_allclose(steps, steps[0], rtol=1e-9)


def test_likelihood_peaks_at_the_published_medians():
    """The log-likelihood is 0 at the targets and equals -1/2 at one SD away on the log scale."""
    assert log_likelihood([44.0, 37.7], [44.0, 37.7], [0.1, 0.1]) == 0.0
    assert log_likelihood([44.0 * math.exp(0.1), 37.7], [44.0, 37.7], [0.1, 0.1]) == pytest.approx(-0.5)


def test_log_prior_of_the_rate_is_centred_on_its_prior_median():
    """The log-normal prior of the disease-death rate is highest at its median and symmetric in log."""
    q = 0.5
    p = next(p for p in PARAMETERS if p.scale == "log")
    at = log_prior([q, p.prior_median])
    lo, hi = log_prior([q, p.prior_median / 2]), log_prior([q, p.prior_median * 2])
    assert at == 0.0 and lo == pytest.approx(hi) and lo < at


@pytest.fixture(scope="module")
def tiny():
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        plain = to_container(compose("config", overrides=["experiment=validation"]))
    return OSCalibration(plain, n=150, trials=("e2211",))


def test_simulated_medians_use_common_random_numbers(tiny):
    """The same parameters give the same simulated medians (fixed patients and uniforms)."""
    x = (0.5, 0.03)
    np.testing.assert_array_equal(tiny.simulated(x), tiny.simulated(x))
    assert list(tiny.targets["evidence_id"]) == ["e2211_captem_median_os", "e2211_temozolomide_median_os"]


def test_more_post_trial_lines_lengthen_simulated_os(tiny):
    """A higher post-trial uptake raises both E2211 arms' simulated median OS on the same patients."""
    assert np.all(tiny.simulated((0.9, 0.03)) > tiny.simulated((0.2, 0.03)))


def test_pfs_refit_follows_the_disease_death_rate(tiny):
    """More deaths without progression (seen at once) need a longer progression component for the same
    published detected median: the refitted medians increase with the rate."""
    low, high = tiny.pfs_blocks(0.01), tiny.pfs_blocks(0.09)
    for name in ("observation", "everolimus", "captem"):
        assert high[name]["median"] > low[name]["median"], name
    plain = tiny.configured((0.5, 0.09))
    assert plain["therapies"]["captem"]["pfs"] == high["captem"]


def test_shipped_values_equal_the_calibration_file():
    """The configs, assumption rows and the PSA spread of the rate carry the calibration's estimates."""
    result = read_result(CALIBRATION_FILE)
    rows = assumption_rows()
    for p in PARAMETERS:
        est = result["parameters"][p.path]
        node = yaml.safe_load((REPO / p.config_file).read_text())
        parts = p.path.split(".")
        for part in (parts if parts[0] in node else parts[1:]):     # a "@package _global_" file keeps its group
            node = node[part]
        assert float(node) == est["estimate"], p.path
        assert float(rows[p.assumption]["value"]) == est["estimate"]
        assert "os_calibration.yaml" in rows[p.assumption]["rationale"]
    psa = yaml.safe_load((REPO / "configs" / "psa" / "default.yaml").read_text())
    sd = result["parameters"]["model.disease_death.rate_per_year"]["posterior_sd"]
    assert psa["parameters"]["model.disease_death.rate_per_year"]["se_log"] == pytest.approx(sd, abs=5e-4)
    w = np.array(result["grid"]["weights"])
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0) and result["effective_grid_points"] >= 2


def test_shipped_pfs_curves_are_the_ones_the_calibration_used():
    """The therapy pfs blocks (pnetsim-fit at the shipped rate) of every therapy in the calibration trials'
    arms equal the calibration's PFS refit."""
    result = read_result(CALIBRATION_FILE)
    assert {"observation", "everolimus", "placebo_sun1111", "sunitinib", "captem", "temozolomide"} <= set(
        result["pfs_refit"])
    for name, block in result["pfs_refit"].items():
        cfg = yaml.safe_load((REPO / "configs" / "therapy" / f"{name}.yaml").read_text())["pfs"]
        assert set(cfg) == set(block), name
        for k, v in block.items():
            assert cfg[k] == (pytest.approx(v, rel=1e-6) if isinstance(v, float) else v), (name, k)


def test_apply_result_rewrites_configs_and_assumption_rows(tmp_path):
    """apply_result sets the rounded estimates in copies of the configs, the assumption rows and the PSA."""
    for rel in ("configs/model/default.yaml", "configs/experiment/validation.yaml", "configs/psa/default.yaml",
                "data/evidence/assumptions.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    result = {"parameters": {"experiment.post_trial.uptake": {"estimate": 0.42},
                             "model.disease_death.rate_per_year": {"estimate": 0.0123, "posterior_sd": 0.321}}}
    apply_result(result, repo=tmp_path)
    assert yaml.safe_load((tmp_path / "configs/model/default.yaml").read_text())["disease_death"]["rate_per_year"] \
        == 0.0123
    val = yaml.safe_load((tmp_path / "configs/experiment/validation.yaml").read_text())
    assert val["experiment"]["post_trial"]["uptake"] == 0.42
    psa = yaml.safe_load((tmp_path / "configs/psa/default.yaml").read_text())
    assert psa["parameters"]["model.disease_death.rate_per_year"]["se_log"] == 0.321
    with open(tmp_path / "data/evidence/assumptions.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows["disease_death_rate"]["value"] == "0.0123" and rows["post_trial_uptake"]["value"] == "0.42"
