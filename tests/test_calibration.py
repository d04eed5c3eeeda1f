"""OS calibration (sim/calibration.py): transforms, objective, common random numbers, shipped values."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir

from sim.calibration import (CALIBRATION_FILE, PARAMETERS, OSObjective, apply_result, assumption_rows, bounds,
                             objective_value, read_result, to_bounded, to_unbounded)
from sim.config import to_container

REPO = Path(__file__).resolve().parents[1]


def test_bounded_transform_round_trips_and_stays_inside_the_search_range():
    b = bounds()
    x = np.array([0.2, 30.0, 0.1])
    np.testing.assert_allclose(to_bounded(to_unbounded(x, b), b), x, rtol=1e-9)
    for z in (-50.0, 0.0, 50.0):
        v = to_bounded(np.full(3, z), b)
        assert np.all(v >= b[:, 0]) and np.all(v <= b[:, 1])


def test_objective_is_the_weighted_squared_error_of_log_medians():
    """f = sum w_k (log m_k - log M_k)^2 with weights normalised to 1; zero at the targets."""
    assert objective_value([44.0, 37.7], [44.0, 37.7], [1, 1]) == 0.0
    f = objective_value([44.0 * np.e, 37.7], [44.0, 37.7], [3, 1])
    assert f == pytest.approx(0.75)


@pytest.fixture(scope="module")
def tiny_objective():
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        plain = to_container(compose("config", overrides=["experiment=validation"]))
    return OSObjective(plain, n=60, trials=("e2211",))


def test_objective_uses_common_random_numbers(tiny_objective):
    """The same parameters give the same objective (fixed patients and uniforms across evaluations)."""
    x = (0.2, 30.0, 0.1)
    assert tiny_objective(x) == tiny_objective(x)
    assert list(tiny_objective.targets["evidence_id"]) == ["e2211_captem_median_os", "e2211_temozolomide_median_os"]


def test_longer_survival_after_the_last_line_lengthens_simulated_os(tiny_objective):
    """Raising the BSC median raises both E2211 arms' simulated median OS on the same patients."""
    short = tiny_objective.simulated((0.2, 15.0, 0.1))
    long = tiny_objective.simulated((0.2, 45.0, 0.1))
    assert np.all(long > short)


def _config_value(rel: str, key: str) -> float:
    cfg = yaml.safe_load((REPO / rel).read_text())
    return float(cfg["pfs"]["median"]) if key == "median" else float(cfg[key])


def test_shipped_values_equal_the_calibration_file():
    """configs/model/default.yaml, configs/therapy/bsc.yaml and assumptions.csv carry the calibrated estimates."""
    result = read_result(CALIBRATION_FILE)
    rows = assumption_rows()
    for p in PARAMETERS:
        est = result["parameters"][p.path]
        assert _config_value(p.config_file, p.key) == est["estimate"], p.path
        assert float(rows[p.assumption]["value"]) == est["estimate"]
        assert (float(rows[p.assumption]["low"]), float(rows[p.assumption]["high"])) == (est["low"], est["high"])
        assert "os_calibration.yaml" in rows[p.assumption]["rationale"]
    assert {"method", "date", "seed", "n_per_arm", "objective", "targets"} <= set(result)


def test_shipped_pfs_curves_are_the_ones_the_calibration_used():
    """The therapy pfs blocks (pnetsim-fit at the shipped death share) of every therapy in the calibration
    trials' arms equal the calibration's PFS refit."""
    result = read_result(CALIBRATION_FILE)
    assert {"observation", "everolimus", "placebo_sun1111", "sunitinib", "captem", "temozolomide"} <= set(
        result["pfs_refit"])
    for name, block in result["pfs_refit"].items():
        cfg = yaml.safe_load((REPO / "configs" / "therapy" / f"{name}.yaml").read_text())["pfs"]
        assert set(cfg) == set(block), name
        for k, v in block.items():
            assert cfg[k] == (pytest.approx(v, rel=1e-6) if isinstance(v, float) else v), (name, k)


def test_pfs_refit_follows_the_death_share(tiny_objective):
    """A larger pre-progression death share (deaths seen at once, not at a later scan) needs a longer
    true-time PFS for the same published detected median: the refitted medians increase."""
    low, high = tiny_objective.pfs_blocks(0.05), tiny_objective.pfs_blocks(0.4)
    for name in ("observation", "everolimus", "captem"):
        assert high[name]["median"] > low[name]["median"], name
    plain = tiny_objective.configured((0.4, 30.0, 0.1))
    assert plain["therapies"]["captem"]["pfs"] == high["captem"]


def test_apply_result_rewrites_configs_and_assumption_rows(tmp_path):
    """apply_result sets the rounded estimates in copies of the three files."""
    for rel in ("configs/model/default.yaml", "configs/therapy/bsc.yaml", "data/evidence/assumptions.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    b = bounds()
    result = {"parameters": {p.path: {"estimate": v, "low": float(lo), "high": float(hi)}
                             for p, v, (lo, hi) in zip(PARAMETERS, (0.123, 33.3, 0.456), b)}}
    apply_result(result, repo=tmp_path)
    assert yaml.safe_load((tmp_path / "configs/model/default.yaml").read_text())["frailty_rho"] == 0.456
    assert yaml.safe_load((tmp_path / "configs/therapy/bsc.yaml").read_text())["pfs"]["median"] == 33.3
    with open(tmp_path / "data/evidence/assumptions.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows["pre_progression_death_share"]["value"] == "0.123"
