"""Target roles (sim/target_roles.py): in sample when a fit, a config source or the OS calibration uses the figure."""

from __future__ import annotations

from pathlib import Path

import yaml

from sim.target_roles import IN_SAMPLE, OUT_OF_SAMPLE, in_sample_basis, target_roles

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def test_a_target_named_by_a_fit_a_source_or_the_calibration_is_in_sample_and_an_unnamed_one_out_of_sample(tmp_path):
    """Fit files, evidence:/derived: sources and calibration median OS make a target in sample; free text does not."""
    cfg = tmp_path / "configs"
    _write(cfg / "fit" / "pfs.yaml", {"drug": {"family": "weibull", "median": "fitted_median",
                                               "checks": [{"hazard_ratio": "checked_hr", "reference": "x"}]}})
    _write(cfg / "therapy" / "drug.yaml", {"response": {"probability": 0.2},
                                           "sources": {"response.probability": "evidence:config_orr",
                                                       "course.doses": "derived:dose_count/(trial_n/2)"}})
    _write(cfg / "trial" / "calib.yaml", {"published": {"a": {"median_os": "calibrated_os", "orr": "trial_orr"}},
                                          "sources": {"n_per_arm": "n of free_text_id (40)"}})
    known = {"fitted_median", "checked_hr", "config_orr", "dose_count", "trial_n", "calibrated_os", "trial_orr",
             "free_text_id", "never_used"}
    basis = in_sample_basis(cfg, calibration_trials=["calib"], known=known)
    roles = target_roles(["fitted_median", "config_orr", "dose_count", "trial_n", "calibrated_os",
                          "trial_orr", "free_text_id", "never_used"], basis)
    assert list(roles["target_role"]) == [IN_SAMPLE] * 5 + [OUT_OF_SAMPLE] * 3
    assert roles.loc[0, "role_basis"] == "fit:configs/fit/pfs.yaml"
    assert roles.loc[1, "role_basis"] == "source:configs/therapy/drug.yaml"
    assert roles.loc[4, "role_basis"] == "calibration:median_os"
    assert (roles.loc[5:, "role_basis"] == "").all()


def test_the_same_trial_is_out_of_sample_when_it_is_not_a_calibration_trial(tmp_path):
    """The calibration targets are the median OS of the calibration trials only."""
    cfg = tmp_path / "configs"
    _write(cfg / "trial" / "t.yaml", {"published": {"a": {"median_os": "os_a"}}})
    assert target_roles(["os_a"], in_sample_basis(cfg, calibration_trials=["t"], known={"os_a"}))["target_role"][0] \
        == IN_SAMPLE
    assert target_roles(["os_a"], in_sample_basis(cfg, calibration_trials=[], known={"os_a"}))["target_role"][0] \
        == OUT_OF_SAMPLE


def test_shipped_roles_follow_the_fit_specification_and_the_calibration():
    """Every evidence id the PFS fit names is in sample; calibrated OS is in sample; an unused trial figure is not."""
    basis = in_sample_basis()
    spec = yaml.safe_load((REPO / "configs" / "fit" / "pfs.yaml").read_text())
    medians = [v["median"] for k, v in spec.items() if isinstance(v, dict) and "median" in v]
    assert medians and all(m in basis for m in medians)
    assert "calibration:median_os" in basis["sun1111_sunitinib_median_os"]
    roles = target_roles(["kulke2008_sunitinib_median_ttp", "radiant3_everolimus_median_pfs"], basis)
    assert list(roles["target_role"]) == [OUT_OF_SAMPLE, IN_SAMPLE]
