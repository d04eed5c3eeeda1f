"""Bad input at the function level: :func:`sim.config.build_model`, :func:`sim.patients.load_cohort`
(CSV and Parquet), :func:`sim.runio.atomic_run_dir` and the entry function of every experiment kind
(compare, psa, dsa, validation, emulation; in-process, with each kind's smoke overrides).

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
from smoke import SMOKE
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
           "experiment.strategies=[switch,prrt]", "experiment.reference=switch"]
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
    "negative_disease_death_rate": (["model.disease_death.rate_per_year=-1"], "model.disease_death.rate_per_year", "-1"),
    "zero_horizon": (["model.horizon_years=0"], "model.horizon_years", "0"),
    "covariate_reference": (["model.covariate_reference.rapid_tempo=1.5"],
                            "model.covariate_reference.rapid_tempo", "1.5"),
    "missing_model_key": (["~model.frailty_rho"], "model.frailty_rho", "None"),
    "prognostic_hr_unknown_covariate": (["+model.prognostic_hr.colour=1.2"], "model.prognostic_hr", "'colour'"),
    "prognostic_hr_zero": (["model.prognostic_hr.grade_ge2=0"], "model.prognostic_hr.grade_ge2", "0"),
    "therapy_covariate_reference": (["therapies.lu177_dotatate.covariate_reference.grade_ge2=1.5"],
                                    "therapies.lu177_dotatate.covariate_reference.grade_ge2", "1.5"),
    "symptom_control_unknown_status": (["+therapies.ssa.symptom_control.carcinoid=0.5"],
                                       "therapies.ssa.symptom_control", "'carcinoid'"),
    "symptom_control_above_one": (["therapies.ssa.symptom_control.vipoma=1.2"],
                                  "therapies.ssa.symptom_control.vipoma", "1.2"),
    "ae_functional_unknown": (["therapies.sunitinib.adverse_events.hypoglycaemia.functional=carcinoid"],
                              "therapies.sunitinib.adverse_events.hypoglycaemia.functional", "'carcinoid'"),
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
    # choice lines (policies as data), checked when the config is read
    "choice_unknown_therapy": (["experiment.strategies=[guideline]", "strategies.guideline.lines.0.choose.0.give=nosuch"],
                               "strategies.guideline.lines[0].choose[0].give", "'nosuch'"),
    "choice_unknown_column": (["experiment.strategies=[guideline]", "strategies.guideline.lines.0.choose.1.when={colour: red}"],
                              "strategies.guideline.lines[0].choose[1].when.colour", "'colour'"),
    "choice_bad_category": (["experiment.strategies=[guideline]", "strategies.guideline.lines.0.choose.1.when={grade: G4}"],
                            "strategies.guideline.lines[0].choose[1].when.grade", "'G4'"),
    "choice_threshold_out_of_range": (["experiment.strategies=[guideline]",
                                       "strategies.guideline.lines.0.choose.6.when.ki67={lt: 150}"],
                                      "strategies.guideline.lines[0].choose[6].when.ki67.lt", "150"),
    "choice_bad_operator": (["experiment.strategies=[guideline]", "strategies.guideline.lines.0.choose.6.when.ki67={below: 10}"],
                            "strategies.guideline.lines[0].choose[6].when.ki67", "'below'"),
    "choice_uncited_rule": (["experiment.strategies=[guideline]", "~strategies.guideline.lines.0.choose.0.source"],
                            "strategies.guideline.lines[0].choose[0].source", "None"),
    "choice_unknown_class": (["experiment.strategies=[guideline]",
                              "strategies.guideline.lines.1.choose.1.when={not_given_class: [alkylator]}"],
                             "strategies.guideline.lines[1].choose[1].when.not_given_class", "'alkylator'"),
    "choice_as_last_line": (["experiment.strategies=[guideline]", "strategies.guideline.lines=[{choose: [{give: ssa}]}]"],
                            "strategies.guideline.lines[0]", "'choose'"),
}


@pytest.mark.parametrize("overrides,key,shown", list(CONFIG_CASES.values()), ids=list(CONFIG_CASES))
def test_bad_config_value_raises_one_line_user_error_naming_key_and_value(user_error, overrides, key, shown):
    """A bad config value raises UserError whose one-line message names the key and the value."""
    msg = user_error(SMALL + overrides)
    assert key in msg and shown in msg, msg


# wrongly typed therapy / strategy groups and lists: refused where the config is read, not crashed on
GROUP_CASES = {
    "therapy_not_mapping": (["therapies.captem=abc"], "therapies.captem", "'abc'"),
    "therapy_pfs_not_mapping": (["therapies.sunitinib.pfs=abc"], "therapies.sunitinib.pfs", "'abc'"),
    "therapy_pfs_family_list": (["therapies.sunitinib.pfs.family=[weibull]"], "therapies.sunitinib.pfs.family",
                                "['weibull']"),
    "therapy_adverse_events_not_mapping": (["therapies.sunitinib.adverse_events=abc"],
                                           "therapies.sunitinib.adverse_events", "'abc'"),
    "therapy_adverse_event_not_mapping": (["therapies.sunitinib.adverse_events.neutropenia=5"],
                                          "therapies.sunitinib.adverse_events.neutropenia", "5"),
    "therapy_adverse_event_missing_probability": (["~therapies.sunitinib.adverse_events.neutropenia.probability"],
                                                  "therapies.sunitinib.adverse_events.neutropenia.probability",
                                                  "None"),
    "therapy_covariate_hr_not_mapping": (["therapies.sunitinib.covariate_hr=abc"], "therapies.sunitinib.covariate_hr",
                                         "'abc'"),
    "therapy_response_not_mapping": (["therapies.everolimus.response=0.1"], "therapies.everolimus.response", "0.1"),
    "therapy_eligibility_string": (["+therapies.sunitinib.eligibility.exclude_functional=carcinoid"],
                                   "therapies.sunitinib.eligibility.exclude_functional", "'carcinoid'"),
    "therapy_sstr_requirement_text": (["therapies.ssa.eligibility.requires_sstr_positive=maybe"],
                                      "therapies.ssa.eligibility.requires_sstr_positive", "'maybe'"),
    "rechallenge_not_mapping": (["therapies.sunitinib_rechallenge.rechallenge=abc"],
                                "therapies.sunitinib_rechallenge.rechallenge", "'abc'"),
    "rechallenge_missing_of": (["~therapies.sunitinib_rechallenge.rechallenge.of"],
                               "therapies.sunitinib_rechallenge.rechallenge.of", "None"),
    "strategy_not_mapping": (["strategies.switch=abc"], "strategies.switch", "'abc'"),
    "strategy_rules_not_mapping": (["strategies.switch.rules=abc"], "strategies.switch.rules", "'abc'"),
    "strategy_holiday_not_mapping": (["strategies.switch.rules.holiday_months=abc"],
                                     "strategies.switch.rules.holiday_months", "'abc'"),
    "strategy_uptake_not_mapping": (["+strategies.switch.rules.uptake=0.5"], "strategies.switch.rules.uptake", "0.5"),
    "strategy_lines_string": (["strategies.switch.lines=abc"], "strategies.switch.lines", "'abc'"),
    "strategy_line_not_text": (["strategies.switch.lines=[ssa,[sunitinib],bsc]"], "strategies.switch.lines[1]",
                               "['sunitinib']"),
    "experiment_strategies_string": (["experiment.strategies=abc"], "experiment.strategies", "'abc'"),
    "chunk_size_text": (["chunk_size=abc"], "chunk_size", "'abc'"),
    "engine_list": (["engine=[simpy]"], "engine", "['simpy']"),
}


@pytest.mark.parametrize("overrides,key,shown", list(GROUP_CASES.values()), ids=list(GROUP_CASES))
def test_wrongly_typed_therapy_or_strategy_group_is_a_user_error(user_error, overrides, key, shown):
    """A therapy or strategy group (or list) of the wrong type raises UserError naming it and the value."""
    msg = user_error(SMALL + overrides)
    assert key in msg and shown in msg, msg


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


@pytest.fixture(scope="module")
def typed_rows():
    """The shipped fixture cohort as typed columns (what a Parquet file written from pandas holds)."""
    return load_cohort(DATA / "cohort_small.csv")


def _object_column(df: pd.DataFrame, column: str, row: int, value) -> pd.DataFrame:
    df = df.copy()
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df


@pytest.mark.parametrize("make,column,row,shown,requirement", [
    (lambda d: _object_column(d.astype({"age": str}), "age", 2, "sixty"), "age", 2, "'sixty'", "must be a number"),
    (lambda d: d.assign(age=d["age"].where(d.index != 3)), "age", 3, "nan", "must be a number"),
    (lambda d: _object_column(d.astype({"ecog": float}), "ecog", 1, 1.5), "ecog", 1, "1.5", "whole number"),
    (lambda d: d.assign(age=True), "age", 0, "True", "must be a number"),            # a boolean is not a number
    (lambda d: _object_column(d.astype({"sex": str}), "sex", 4, None), "sex", 4, "None", "one of"),
    (lambda d: _object_column(d, "diabetes", 0, None), "diabetes", 0, "None", "true/false"),
    (lambda d: d.assign(ki67=d["ki67"] + 200), "ki67", 0, "", "[0.0, 100.0]"),
])
def test_parquet_cohort_bad_cell_names_column_row_and_value(source_error, typed_rows, tmp_path, make, column, row,
                                                            shown, requirement):
    """A bad cell of a Parquet cohort file: the message names the file, column, 1-based row and value."""
    path = tmp_path / "c.parquet"
    make(typed_rows).to_parquet(path, index=False)
    msg = source_error(path)
    assert "c.parquet" in msg and f"'{column}'" in msg and f"row {row + 1}:" in msg, msg
    assert shown in msg and requirement in msg, msg


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_cohort_file_with_duplicated_patient_id_names_the_row(source_error, typed_rows, tmp_path, suffix):
    """Two rows with one patient_id (their random streams would coincide) are refused, naming the second row."""
    df = typed_rows.copy()
    df.loc[4, "patient_id"] = df.loc[1, "patient_id"]
    path = tmp_path / f"c.{suffix}"
    df.to_csv(path, index=False) if suffix == "csv" else df.to_parquet(path, index=False)
    msg = source_error(path)
    assert "'patient_id'" in msg and "row 5:" in msg and "unique" in msg, msg


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_cohort_file_extra_columns_are_ignored(typed_rows, tmp_path, suffix):
    """A column outside the schema (e.g. a site) is accepted and dropped: the loaded cohort is the same."""
    df = typed_rows.assign(site="Leeds", record=range(len(typed_rows)))
    path = tmp_path / f"c.{suffix}"
    df.to_csv(path, index=False) if suffix == "csv" else df.to_parquet(path, index=False)
    loaded = load_cohort(path)
    pd.testing.assert_frame_equal(loaded, typed_rows)


def test_cohort_csv_naming_a_column_twice_is_a_user_error(source_error, good_file_rows, tmp_path):
    """A CSV header with ``age`` twice is refused (pandas would silently use the first and rename the second)."""
    path = tmp_path / "c.csv"
    df = good_file_rows.copy()
    df.insert(3, "age_again", "70")
    df.to_csv(path, index=False, header=[c if c != "age_again" else "age" for c in df.columns])
    msg = source_error(path)
    assert "c.csv" in msg and "'age'" in msg and "more than once" in msg, msg


@pytest.mark.parametrize("content", ["zero bytes", "zero rows"])
def test_empty_parquet_cohort_file_is_a_user_error_naming_the_file(source_error, typed_rows, tmp_path, content):
    """A Parquet cohort file of zero bytes (unreadable) or zero rows (empty cohort) raises UserError naming it."""
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"") if content == "zero bytes" else typed_rows.iloc[:0].to_parquet(path, index=False)
    assert "empty.parquet" in source_error(path)


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
#: (experiment kind, overrides, key that must be named, value as shown); each kind runs with its
#: smoke overrides (tests/smoke.py) first, so a case that is not refused would finish in seconds
KIND_CASES = {
    # run settings and model keys read by every kind
    "validation_chunk_size_text": ("validation", ["chunk_size=abc"], "chunk_size", "'abc'"),
    "emulation_chunk_size_text": ("emulation", ["chunk_size=abc"], "chunk_size", "'abc'"),
    "validation_unknown_engine": ("validation", ["engine=nosuch"], "engine", "'nosuch'"),
    "emulation_unknown_engine": ("emulation", ["engine=nosuch"], "engine", "'nosuch'"),
    "validation_zero_imaging_interval": ("validation", ["model.imaging_interval_weeks=0"],
                                         "model.imaging_interval_weeks", "0"),
    "emulation_lifetable_max_age": ("emulation", ["model.background_mortality.max_age=99"],
                                    "model.background_mortality.max_age", "99"),
    "emulation_empty_cohort": ("emulation", ["cohort.n=0"], "cohort.n", "0"),
    "dsa_empty_cohort": ("dsa", ["cohort.n=0"], "cohort.n", "0"),
    # economics (compare, psa, dsa)
    "compare_discount_above_one": ("default", ["economics.discount.costs=1.5"], "economics.discount.costs", "1.5"),
    "compare_discount_not_mapping": ("default", ["economics.discount=abc"], "economics.discount", "'abc'"),
    "compare_utility_above_one": ("default", ["economics.utilities.sets.swinburn2012.progression_free=1.2"],
                                  "economics.utilities.sets.swinburn2012.progression_free", "1.2"),
    "compare_uncontrolled_syndrome_utility": ("default", ["economics.utilities.uncontrolled_syndrome=1.5"],
                                              "economics.utilities.uncontrolled_syndrome", "1.5"),
    "compare_negative_price": ("default", ["economics.drugs.sunitinib.pack_price=-5"],
                               "economics.drugs.sunitinib.pack_price", "-5"),
    "compare_empty_wtp_grid": ("default", ["economics.wtp_grid.stop=-1"], "economics.wtp_grid", "-1"),
    "compare_wtp_text": ("default", ["economics.wtp=abc"], "economics.wtp", "'abc'"),
    "compare_price_year_text": ("default", ["economics.price_year=abc"], "economics.price_year", "'abc'"),
    "psa_ae_costs_not_mapping": ("psa", ["economics.adverse_events=abc"], "economics.adverse_events", "'abc'"),
    # psa
    "psa_negative_samples": ("psa", ["psa.samples=-1"], "psa.samples", "-1"),
    "psa_text_workers": ("psa", ["psa.workers=abc"], "psa.workers", "'abc'"),
    "psa_empty_wtp_grid": ("psa", ["psa.wtp_grid=[]"], "psa.wtp_grid", "[]"),
    "psa_evppi_not_mapping": ("psa", ["psa.evppi=abc"], "psa.evppi", "'abc'"),
    "psa_evppi_groups_not_mapping": ("psa", ["psa.evppi.groups=abc"], "psa.evppi.groups", "'abc'"),
    # dsa: every arm is validated before the first simulation
    "dsa_scenario_overrides_not_mapping": ("dsa", ["+experiment.scenarios.bad={overrides:abc}"],
                                           "experiment.scenarios.bad.overrides", "'abc'"),
    "dsa_scenario_bad_value": ("dsa", ["experiment.scenarios.discount_0.overrides={economics.discount.costs:1.5}"],
                               "experiment.scenarios.discount_0.overrides: economics.discount.costs", "1.5"),
    "dsa_scenario_unknown_path": ("dsa", ["+experiment.scenarios.bad={overrides:{nosuch:1}}"],
                                  "experiment.scenarios.bad.overrides", "nosuch"),
    # validation
    "validation_zero_replicates": ("validation", ["experiment.replicates=0"], "experiment.replicates", "0"),
    "validation_unknown_trial": ("validation", ["experiment.trials=[nosuch]"], "experiment.trials", "'nosuch'"),
    "validation_trials_string": ("validation", ["experiment.trials=radiant3"], "experiment.trials", "'radiant3'"),
    "validation_tolerances_not_mapping": ("validation", ["experiment.tolerances=abc"], "experiment.tolerances",
                                          "'abc'"),
    "validation_unknown_arm_therapy": ("validation", ["trials.e2211.arms.captem.lines=[nosuch,bsc]"],
                                       "trials.e2211.arms.captem.lines[0]", "'nosuch'"),
    "validation_trial_not_mapping": ("validation", ["trials.radiant3=abc"], "trials.radiant3", "'abc'"),
    "validation_arm_rules_not_mapping": ("validation", ["trials.radiant3.arms.placebo.rules=abc"],
                                         "trials.radiant3.arms.placebo.rules", "'abc'"),
    # emulation
    "emulation_alpha_above_one": ("emulation", ["experiment.design.alpha=2"], "experiment.design.alpha", "2"),
    "emulation_design_not_mapping": ("emulation", ["experiment.design=abc"], "experiment.design", "'abc'"),
    "emulation_sample_sizes_text": ("emulation", ["experiment.design.sample_sizes=abc"],
                                    "experiment.design.sample_sizes", "'abc'"),
    "emulation_text_samples": ("emulation", ["experiment.uncertainty.samples=abc"], "experiment.uncertainty.samples",
                               "'abc'"),
    "emulation_negative_samples": ("emulation", ["experiment.uncertainty.samples=-1"],
                                   "experiment.uncertainty.samples", "-1"),
    "emulation_parameters_string": ("emulation", ["experiment.uncertainty.parameters=abc"],
                                    "experiment.uncertainty.parameters", "'abc'"),
    "emulation_landmark_zero": ("emulation", ["experiment.landmark_months=0"], "experiment.landmark_months", "0"),
    "emulation_unknown_therapy": ("emulation", ["experiment.therapy=nosuch"], "experiment.therapy", "'nosuch'"),
}


@pytest.fixture(scope="module")
def kind_cfg():
    """Function: experiment kind -> its composed config with its smoke overrides (composed once per kind)."""
    cache = {}

    def cfg(kind):
        if kind not in cache:
            smoke = list(SMOKE[kind])
            cache[kind] = compose_config([f"experiment={kind}", *smoke, "output.progress=false"])
        return cache[kind]
    return cfg


@pytest.mark.parametrize("experiment,overrides,key,shown", list(KIND_CASES.values()), ids=list(KIND_CASES))
def test_bad_value_stops_every_experiment_kind_with_a_user_error_and_no_run_folder(kind_cfg, experiment, overrides,
                                                                                  key, shown, tmp_path):
    """A bad key read by an experiment kind raises one-line UserError naming key and value; no run folder."""
    from experiments.run import experiment_runner

    cfg = with_overrides(kind_cfg(experiment), [*overrides, f"output.root='{tmp_path}'"])
    with pytest.raises(UserError) as e:
        experiment_runner(cfg.experiment.kind)(cfg, None)
    msg = str(e.value)
    assert "\n" not in msg and key in msg and shown in msg, msg
    assert list(tmp_path.glob("*/*")) == []
