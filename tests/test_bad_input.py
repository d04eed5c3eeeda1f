"""Bad input at the function level: :func:`sim.config.build_model`, :func:`sim.patients.load_cohort`
and :func:`sim.runio.atomic_run_dir`.

Every user error must be one :class:`~sim.errors.UserError` whose single-line message names the
config key (or the cohort-file column and row) and the bad value. The same cases through the
console command (exit status 2, one stderr line, no run folder) are in ``tests/test_cli.py``.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import DATA, compose_config
from sim.config import build_model
from sim.errors import UserError
from sim.patients import load_cohort
from sim.runio import atomic_run_dir

SMALL = ["cohort.n=20"]


@pytest.fixture(scope="module")
def base_cfg():
    """The default composed config (composed once: Hydra composition costs ~0.4 s)."""
    return compose_config()


def with_overrides(base, overrides):
    """A copy of ``base`` with Hydra override strings applied (``key=value``, ``+key=value``,
    ``~key``), parsed by Hydra's own override grammar so values get Hydra's types. Only key
    overrides (no config-group choices), which is all these tests need."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = copy.deepcopy(base)
    OmegaConf.set_struct(cfg, False)
    for ov in OverridesParser.create().parse_overrides(list(overrides)):
        if ov.is_delete():
            parent, _, leaf = ov.key_or_group.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            node.pop(leaf)
        else:
            OmegaConf.update(cfg, ov.key_or_group, ov.value(), merge=False)
    return cfg


@pytest.fixture(scope="module")
def user_error(base_cfg):
    """Function: overrides -> message of the :class:`UserError` raised by building the model."""
    def error(overrides) -> str:
        with pytest.raises(UserError) as e:
            build_model(with_overrides(base_cfg, overrides))
        msg = str(e.value)
        assert "\n" not in msg, msg
        return msg
    return error


def test_override_helper_matches_hydra_composition(base_cfg):
    """:func:`with_overrides` gives the same config as Hydra composing the same overrides."""
    ovs = ["cohort.n=20", "~model.frailty_rho", "+strategies.switch.rules.uptake={ssa:0.5}", "cohort.ecog=[0.5,0.5]",
           "experiment.strategies=[switch,prrt]"]
    mine = OmegaConf.to_container(with_overrides(base_cfg, ovs), resolve=True)
    hydra = OmegaConf.to_container(compose_config(ovs), resolve=True)
    assert mine == hydra


# (overrides, key that must be named, value as shown in the message)
CONFIG_CASES = {
    # issue 2 list: names, missing therapy, non-positive scale, probability, empty cohort
    "unknown_strategy": (["experiment.strategies=[switch,nosuch]"], "experiment.strategies", "'nosuch'"),
    "unknown_line_therapy": (["strategies.switch.lines=[ssa,nosuch,bsc]"], "strategies.switch.lines[1]", "'nosuch'"),
    "unknown_reference": (["experiment.reference=nosuch"], "experiment.reference", "'nosuch'"),
    "reference_not_compared": (["experiment.strategies=[switch,prrt]", "experiment.reference=rechallenge"],
                               "experiment.reference", "'rechallenge'"),
    "non_positive_median": (["therapies.sunitinib.pfs.median=0"], "therapies.sunitinib.pfs.median", "0"),
    "negative_median": (["therapies.captem.pfs.median=-3"], "therapies.captem.pfs.median", "-3"),
    "non_positive_shape": (["therapies.sunitinib.pfs.shape=0"], "therapies.sunitinib.pfs", "0"),
    "non_positive_hazard_ratio": (["therapies.ssa.pfs.hazard_ratio=-0.5"], "therapies.ssa.pfs.hazard_ratio", "-0.5"),
    "probability_above_one": (["therapies.everolimus.response.probability=1.5"],
                              "therapies.everolimus.response.probability", "1.5"),
    "ae_probability_negative": (["therapies.sunitinib.adverse_events.neutropenia.probability=-0.1"],
                                "therapies.sunitinib.adverse_events.neutropenia.probability", "-0.1"),
    "cohort_probability": (["cohort.male=1.2"], "cohort.male", "1.2"),
    "uptake_probability": (["+strategies.switch.rules.uptake={sunitinib:2}"],
                           "strategies.switch.rules.uptake.sunitinib", "2"),
    "empty_cohort": (["cohort.n=0"], "cohort.n", "0"),
    # wrong type or range of config keys
    "negative_cohort_size": (["cohort.n=-5"], "cohort.n", "-5"),
    "text_cohort_size": (["cohort.n=abc"], "cohort.n", "'abc'"),
    "fractional_cohort_size": (["cohort.n=2.5"], "cohort.n", "2.5"),
    "zero_imaging_interval": (["model.imaging_interval_weeks=0"], "model.imaging_interval_weeks", "0"),
    "text_imaging_interval": (["model.imaging_interval_weeks=often"], "model.imaging_interval_weeks", "'often'"),
    "negative_seed": (["seed=-1"], "seed", "-1"),
    "text_seed": (["seed=abc"], "seed", "'abc'"),
    "zero_chunk_size": (["chunk_size=0"], "chunk_size", "0"),
    "unknown_engine": (["engine=warp"], "engine", "'warp'"),
    "frailty_rho_above_one": (["model.frailty_rho=1.5"], "model.frailty_rho", "1.5"),
    "frailty_rho_negative": (["model.frailty_rho=-0.1"], "model.frailty_rho", "-0.1"),
    "death_share_above_one": (["model.pre_progression_death_share=2"], "model.pre_progression_death_share", "2"),
    "zero_horizon": (["model.horizon_years=0"], "model.horizon_years", "0"),
    "covariate_reference": (["model.covariate_reference.rapid_tempo=1.5"],
                            "model.covariate_reference.rapid_tempo", "1.5"),
    "missing_model_key": (["~model.frailty_rho"], "model.frailty_rho", "None"),
    "lifetable_max_age": (["model.background_mortality.max_age=99"], "model.background_mortality.max_age", "99"),
    "lifetable_missing": (["model.background_mortality.table=nosuch.csv"], "model.background_mortality.table",
                          "nosuch.csv"),
    "lifetable_not_mapping": (["model.background_mortality=abc"], "model.background_mortality", "'abc'"),
    "covariate_reference_not_mapping": (["model.covariate_reference=abc"], "model.covariate_reference", "'abc'"),
    "cohort_age_not_mapping": (["cohort.age=5"], "cohort.age", "5"),
    "cohort_age_sd_zero": (["cohort.age.sd=0"], "cohort.age.sd", "0"),
    "cohort_ecog_not_list": (["cohort.ecog=abc"], "cohort.ecog", "'abc'"),
    "cohort_ecog_text_entry": (["cohort.ecog=[0.5,x,0.5]"], "cohort.ecog[1]", "'x'"),
    "cohort_grade_not_mapping": (["cohort.grade=abc"], "cohort.grade", "'abc'"),
    "cohort_grade_text": (["cohort.hepatic_burden.le25=abc"], "cohort.hepatic_burden.le25", "'abc'"),
    "cohort_ki67_pair": (["cohort.ki67_range.G1=[1]"], "cohort.ki67_range.G1", "[1]"),
    "cohort_correlations_not_list": (["cohort.correlations=abc"], "cohort.correlations", "'abc'"),
    "cohort_correlation_incomplete": (["cohort.correlations=[{a:grade}]"], "cohort.correlations[0].b", "None"),
    "cohort_sstr_not_mapping": (["cohort.sstr_positive=0.5"], "cohort.sstr_positive", "0.5"),
    "unknown_prior_therapy": (["cohort.prior_therapies=suntinib"], "cohort.prior_therapies", "'suntinib'"),
    "cohort_source_missing": (["cohort.source=/nonexistent/cohort.csv"], "cohort.source", "/nonexistent/cohort.csv"),
}


@pytest.mark.parametrize("overrides,key,shown", list(CONFIG_CASES.values()), ids=list(CONFIG_CASES))
def test_bad_config_value_raises_one_line_user_error_naming_key_and_value(user_error, overrides, key, shown):
    """A bad config value raises UserError whose one-line message names the key and the value."""
    msg = user_error(SMALL + overrides)
    assert key in msg and shown in msg, msg


# Bugs in files this test file's author does not own: strict xfail until the lead integrates a fix.
KNOWN_BUGS = {
    "therapy_pfs_not_mapping": (
        ["therapies.sunitinib.pfs=abc"], "therapies.sunitinib.pfs",
        "sim/therapies/pfs.py build_pfs: a non-mapping pfs raises AttributeError (no UserError)"),
    "therapy_adverse_events_not_mapping": (
        ["therapies.sunitinib.adverse_events=abc"], "therapies.sunitinib.adverse_events",
        "sim/therapies/definition.py Therapy.from_config: non-mapping adverse_events raises AttributeError"),
    "therapy_covariate_hr_not_mapping": (
        ["therapies.sunitinib.covariate_hr=abc"], "therapies.sunitinib.covariate_hr",
        "sim/therapies/definition.py Therapy.from_config: non-mapping covariate_hr raises AttributeError"),
    "strategy_not_mapping": (
        ["strategies.switch=abc"], "strategies.switch",
        "sim/strategies.py Strategy.from_config: a non-mapping strategy raises AttributeError"),
    "strategy_rules_not_mapping": (
        ["strategies.switch.rules=abc"], "strategies.switch.rules",
        "sim/strategies.py Strategy.from_config: non-mapping rules raises AttributeError"),
    "strategy_holiday_not_mapping": (
        ["strategies.switch.rules.holiday_months=abc"], "strategies.switch.rules.holiday_months",
        "sim/strategies.py Strategy.from_config: non-mapping holiday_months raises ValueError"),
    "strategy_lines_string": (
        ["strategies.switch.lines=abc"], "'abc'",
        "sim/strategies.py Strategy.from_config: a string lines is iterated by character ('a' named, not 'abc')"),
    "experiment_strategies_string": (
        ["experiment.strategies=abc"], "'abc'",
        "sim/strategies.py build_strategies: a string experiment.strategies is iterated by character ('a' named, not 'abc')"),
}


@pytest.mark.parametrize(
    "overrides,named,reason",
    [pytest.param(o, k, r, marks=pytest.mark.xfail(strict=True, reason=r)) for o, k, r in KNOWN_BUGS.values()],
    ids=list(KNOWN_BUGS))
def test_wrongly_typed_therapy_or_strategy_group_is_a_user_error(user_error, overrides, named, reason):
    """A therapy or strategy group of the wrong type raises UserError naming it (not a crash)."""
    msg = user_error(SMALL + overrides)
    assert named in msg, msg


def test_prior_therapy_names_are_normalised_not_rejected_for_spaces(base_cfg):
    """``' ssa ; sunitinib '`` means ssa then sunitinib (spaces do not make unknown names)."""
    model = build_model(with_overrides(base_cfg, SMALL + ["cohort.prior_therapies=' ssa ; sunitinib '"]))
    assert set(model.cohort["prior_therapies"]) == {"ssa;sunitinib"}


# ------------------------------------------------------------------ cohort files through the config
@pytest.fixture(scope="module")
def good_file_rows():
    """The shipped fixture cohort (6 valid patients) as text cells."""
    return pd.read_csv(DATA / "cohort_small.csv", dtype=str, keep_default_na=False)


def _write(df: pd.DataFrame, path) -> str:
    df.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def source_error(user_error):
    """Function: cohort file path -> message of the UserError of a run reading it."""
    return lambda path: user_error(SMALL + [f"cohort.source='{path}'"])


def test_cohort_file_missing_column_is_named(source_error, good_file_rows, tmp_path):
    """A cohort file without a required column: the message names the file and the column."""
    msg = source_error(_write(good_file_rows.drop(columns="hepatic_burden"), tmp_path / "c.csv"))
    assert "c.csv" in msg and "'hepatic_burden'" in msg, msg


@pytest.mark.parametrize("column,row,value,requirement", [
    ("age", 1, "sixty", "number"),                      # wrong type
    ("ecog", 3, "two", "whole number"),                 # wrong type
    ("ki67", 0, "-4", "[0.0, 100.0]"),                  # out of range
    ("functional_status", 5, "carcinoid", "one of"),    # unknown category
    ("diabetes", 2, "perhaps", "true/false"),           # wrong type
    ("prior_therapies", 4, "ssa;suntinib", "unknown therapy 'suntinib'"),  # unknown therapy name
])
def test_cohort_file_bad_cell_names_column_row_and_value(source_error, good_file_rows, tmp_path, column, row, value, requirement):
    """A bad cell of a cohort file: the message names the column, the 1-based data row and the value."""
    df = good_file_rows.copy()
    df.loc[row, column] = value
    msg = source_error(_write(df, tmp_path / "c.csv"))
    assert f"'{column}'" in msg and f"row {row + 1}:" in msg and repr(value) in msg and requirement in msg, msg


@pytest.mark.parametrize("name,content", [
    ("ragged.csv", "patient_id,age\n1,60,extra,fields\n"),      # more fields than the header
    ("garbage.parquet", "this is not parquet"),                  # unreadable binary
    ("empty.csv", ""),                                           # no bytes at all
    ("header_only.csv", None),                                   # header without rows: empty cohort
])
def test_malformed_or_empty_cohort_file_is_a_user_error_naming_the_file(source_error, tmp_path, good_file_rows, name, content):
    """A malformed, unreadable or empty cohort file raises UserError naming the file."""
    path = tmp_path / name
    if content is None:
        good_file_rows.iloc[:0].to_csv(path, index=False)
    else:
        path.write_text(content)
    msg = source_error(path)
    assert name in msg, msg


def test_cohort_file_with_spaces_in_prior_therapies_loads_normalised(good_file_rows, tmp_path):
    """``'ssa ; sunitinib'`` in a file loads as ``'ssa;sunitinib'`` (no silent unknown ' sunitinib')."""
    df = good_file_rows.copy()
    df.loc[0, "prior_therapies"] = " ssa ; sunitinib "
    path = _write(df, tmp_path / "c.csv")
    assert load_cohort(path)["prior_therapies"].iloc[0] == "ssa;sunitinib"


# ------------------------------------------------------------------ no complete-looking output
def test_bad_config_leaves_no_run_folder(base_cfg, tmp_path):
    """A compare run with a bad config raises before writing: output.root holds no run folder."""
    from sim.pipeline import run

    cfg = with_overrides(base_cfg, SMALL + [f"output.root='{tmp_path}'", "therapies.ssa.pfs.median=0"])
    with pytest.raises(UserError):
        run(cfg, None)
    assert [p for p in tmp_path.rglob("*")] == []


def test_failure_while_writing_removes_the_partial_folder(tmp_path):
    """An error inside :func:`atomic_run_dir` leaves neither the final nor the partial folder."""
    final = tmp_path / "exp" / "run1"
    with pytest.raises(RuntimeError):
        with atomic_run_dir(final) as tmp:
            (tmp / "summary.csv").write_text("half")
            raise RuntimeError("disk full")
    assert list((tmp_path / "exp").iterdir()) == []


def test_successful_block_renames_to_the_final_folder(tmp_path):
    """A completed :func:`atomic_run_dir` block leaves exactly the final folder, with its files."""
    final = tmp_path / "exp" / "run1"
    with atomic_run_dir(final) as tmp:
        (tmp / "manifest.json").write_text("{}")
    assert [p.name for p in (tmp_path / "exp").iterdir()] == ["run1"]
    assert (final / "manifest.json").read_text() == "{}"


# ------------------------------------------------------------------ other experiment kinds
@pytest.mark.parametrize("experiment", ["validation", "emulation"])
def test_wrongly_typed_chunk_size_is_a_user_error_in_every_experiment_kind(experiment, tmp_path):
    """``chunk_size=abc`` stops the validation and emulation kinds with a UserError naming chunk_size."""
    from experiments.run import experiment_runner

    smoke = list(compose_config([f"experiment={experiment}"]).experiment.smoke)
    cfg = compose_config([f"experiment={experiment}", *smoke, "chunk_size=abc", f"output.root={tmp_path}"])
    with pytest.raises(UserError, match=r"chunk_size .*'abc'"):
        experiment_runner(cfg.experiment.kind)(cfg, None)
    assert list(tmp_path.glob("*/*")) == []
