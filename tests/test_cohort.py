"""Cohort generator (:func:`sim.patients.generate_cohort`) and cohort files (:func:`load_cohort`)."""

import copy
import math
import re

import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from conftest import Z, binom_z, compose_config
from sim.errors import UserError
from sim.patients import COLUMNS, CohortSpec, generate_cohort, load_cohort

N = 20_000  # binomial SE <= 0.0035 for every marginal
SEED = 3


@pytest.fixture(scope="module")
def cfg():
    """The default ``cohort`` config group as a plain dict."""
    return OmegaConf.to_container(compose_config().cohort, resolve=True)


@pytest.fixture(scope="module")
def big(cfg):
    """A generated cohort of N patients under the default config."""
    return generate_cohort(CohortSpec.from_config({**cfg, "n": N}), SEED)


def _shares(series, names):
    counts = series.astype(str).value_counts()
    return {n: int(counts.get(n, 0)) for n in names}


def test_binary_marginals_match_config(big, cfg):
    """Shares of male, rapid tempo, symptomatic bulk, diabetes, MGMT-low and non-functioning match the config."""
    cases = {
        "male": ((big["sex"] == "male").sum(), cfg["male"]),
        "rapid_tempo": ((big["tempo"] == "rapid").sum(), cfg["rapid_tempo"]),
        "symptomatic_bulk": (big["symptomatic_bulk"].sum(), cfg["symptomatic_bulk"]),
        "diabetes": (big["diabetes"].sum(), cfg["diabetes"]),
        "mgmt_low": (big["mgmt_low"].sum(), cfg["mgmt_low"]),
        "non_functioning": ((big["functional_status"] == "non_functioning").sum(), cfg["non_functioning"]),
    }
    for name, (k, p) in cases.items():
        assert abs(binom_z(int(k), N, p)) < Z, name


@pytest.mark.parametrize("column,key", [("grade", "grade"), ("hepatic_burden", "hepatic_burden"), ("ecog", "ecog")])
def test_categorical_marginals_match_config(big, cfg, column, key):
    """Each category of grade, hepatic burden and ECOG has its configured share within 4 binomial SE."""
    probs = cfg[key] if isinstance(cfg[key], dict) else {str(i): p for i, p in enumerate(cfg[key])}
    got = _shares(big[column], list(probs))
    for name, p in probs.items():
        assert abs(binom_z(got[name], N, p)) < Z, (column, name)


def test_functional_subtype_mix_among_functioning_tumours(big, cfg):
    """Among functioning tumours the subtypes follow ``cohort.functional_mix``."""
    fun = big[big["functional_status"] != "non_functioning"]["functional_status"]
    got = _shares(fun, list(cfg["functional_mix"]))
    for name, p in cfg["functional_mix"].items():
        assert abs(binom_z(got[name], len(fun), p)) < Z, name


def test_sstr_positivity_by_subtype_and_lower_in_insulinoma(big, cfg):
    """SSTR positivity is the configured share in each group, and clearly lower in insulinoma."""
    ins = big["functional_status"] == "insulinoma"
    k_i, n_i = int(big.loc[ins, "sstr_positive"].sum()), int(ins.sum())
    k_o, n_o = int(big.loc[~ins, "sstr_positive"].sum()), int((~ins).sum())
    assert abs(binom_z(k_i, n_i, cfg["sstr_positive"]["insulinoma"])) < Z
    assert abs(binom_z(k_o, n_o, cfg["sstr_positive"]["default"])) < Z
    p_i, p_o = k_i / n_i, k_o / n_o
    se = math.sqrt(p_i * (1 - p_i) / n_i + p_o * (1 - p_o) / n_o)
    assert (p_o - p_i) / se > Z


def test_age_is_truncated_normal_of_config(big, cfg):
    """Age lies in [min, max] and its mean matches the truncated normal's within 4 SE."""
    a = cfg["age"]
    lo, hi = (a["min"] - a["mean"]) / a["sd"], (a["max"] - a["mean"]) / a["sd"]
    tn = stats.truncnorm(lo, hi, loc=a["mean"], scale=a["sd"])
    assert big["age"].between(a["min"], a["max"]).all()
    assert abs(big["age"].mean() - tn.mean()) < Z * tn.std() / math.sqrt(N)


def test_ki67_inside_the_range_of_its_grade(big, cfg):
    """Every patient's Ki-67 lies inside the configured range of their grade."""
    for g, (lo, hi) in cfg["ki67_range"].items():
        k = big.loc[big["grade"] == g, "ki67"]
        assert len(k) > 0
        assert k.between(lo, hi).all(), g


def _rapid_by_grade(df):
    out = {}
    for g in ("G1", "G3"):
        sel = df["grade"] == g
        out[g] = (int((df.loc[sel, "tempo"] == "rapid").sum()), int(sel.sum()))
    return out


def _two_prop_z(a, b):
    (k1, n1), (k2, n2) = a, b
    p1, p2 = k1 / n1, k2 / n2
    p = (k1 + k2) / (n1 + n2)
    return (p1 - p2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


def test_rapid_tempo_more_frequent_in_g3_than_g1(big):
    """With the default latent correlation grade-tempo > 0, rapid tempo is clearly more frequent in G3."""
    r = _rapid_by_grade(big)
    assert _two_prop_z(r["G3"], r["G1"]) > Z


def test_no_correlations_make_tempo_independent_of_grade(cfg):
    """Without latent correlations, rapid tempo is as frequent in G3 as in G1 (within 4 SE)."""
    spec = CohortSpec.from_config({**cfg, "n": N, "correlations": [], "grade": {"G1": 0.5, "G2": 0.3, "G3": 0.2}})
    r = _rapid_by_grade(generate_cohort(spec, SEED))
    assert abs(_two_prop_z(r["G3"], r["G1"])) < Z


def test_rows_identical_whatever_the_block_generated(cfg):
    """Patients first..first+count-1 generated alone equal the same rows of the whole cohort."""
    spec = CohortSpec.from_config({**cfg, "n": 300})
    whole = generate_cohort(spec, SEED)
    part = generate_cohort(spec, SEED, first=123, count=45)
    pd.testing.assert_frame_equal(part, whole.iloc[123:168].reset_index(drop=True))


def test_generated_cohort_satisfies_the_file_schema(cfg):
    """A generated cohort has exactly the schema columns and passes the file validator."""
    from sim.patients import validate_cohort

    df = generate_cohort(CohortSpec.from_config({**cfg, "n": 200}), SEED)
    assert list(df.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(validate_cohort(df), df)


# ------------------------------------------------------------------ bad configs
def _set(cfg, path, value):
    out = copy.deepcopy(cfg)
    node = out
    *head, last = path
    for k in head:
        node = node[k]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()
NOT_PD = [{"a": "grade", "b": "tempo", "rho": 0.9}, {"a": "tempo", "b": "ecog", "rho": 0.9},
          {"a": "grade", "b": "ecog", "rho": -0.9}]


@pytest.mark.parametrize("path,value,key,shown", [
    (("male",), 1.5, "cohort.male", "1.5"),
    (("diabetes",), -0.1, "cohort.diabetes", "-0.1"),
    (("sstr_positive", "insulinoma"), 1.5, "cohort.sstr_positive.insulinoma", "1.5"),
    (("grade", "G3"), 1.5, "cohort.grade.G3", "1.5"),
    (("grade",), {"G1": 0.5, "G2": 0.4, "G3": 0.2}, "cohort.grade", "0.2"),
    (("n",), 0, "cohort.n", "0"),
    (("n",), "abc", "cohort.n", "'abc'"),
    (("correlations",), NOT_PD, "cohort.correlations", "0.9"),
    (("correlations",), [{"a": "grade", "b": "nosuch", "rho": 0.1}], "cohort.correlations[0].b", "nosuch"),
    (("correlations",), [{"a": "grade", "b": "tempo", "rho": 1.0}], "cohort.correlations[0].rho", "1.0"),
    (("ki67_range", "G2"), [20, 3], "cohort.ki67_range.G2", "20"),
])
def test_bad_cohort_config_raises_user_error_naming_key_and_value(cfg, path, value, key, shown):
    """A bad cohort config value raises UserError naming the key and the value."""
    with pytest.raises(UserError) as e:
        CohortSpec.from_config(_set(cfg, path, value))
    msg = str(e.value)
    assert key in msg and shown in msg, msg


# ------------------------------------------------------------------ cohort files
@pytest.fixture(scope="module")
def small(cfg):
    """A generated cohort of 60 patients (the reference for file round trips)."""
    return generate_cohort(CohortSpec.from_config({**cfg, "n": 60, "prior_therapies": "ssa;sunitinib"}), SEED)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".CSV"])
def test_cohort_file_round_trip(small, tmp_path, suffix):
    """A generated cohort written as CSV or Parquet loads back identical (values and types)."""
    path = tmp_path / f"cohort{suffix}"
    if suffix.lower() == ".csv":
        small.to_csv(path, index=False)
    else:
        small.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(load_cohort(path), small)


def test_shipped_fixture_cohort_file_loads():
    """The small fixture file tests/data/cohort_small.csv is a valid cohort with both sexes and subtypes."""
    from conftest import DATA

    df = load_cohort(DATA / "cohort_small.csv")
    assert len(df) == 6 and set(df["sex"]) == {"male", "female"}
    assert df["prior_therapies"].tolist()[0] == "sunitinib"


def _write_bad(small, tmp_path, column, row, value):
    df = small.astype({c: object for c in small.columns})
    df.loc[row, column] = value
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("column,row,value,requirement", [
    ("age", 2, "old", "number"),               # wrong type
    ("ecog", 0, "1.5", "whole number"),         # wrong type (int)
    ("ecog", 4, "7", "[0, 4]"),                 # out of range
    ("age", 9, "12", "[18.0, 100.0]"),          # out of range
    ("ki67", 1, "", "number"),                  # missing value
    ("grade", 5, "G4", "one of"),               # unknown category
    ("sex", 7, "unknown", "one of"),            # unknown category
    ("sstr_positive", 3, "maybe", "true/false"),  # wrong type (bool)
])
def test_bad_cohort_value_names_column_row_and_value(small, tmp_path, column, row, value, requirement):
    """A bad value raises UserError naming the column, the 1-based data row and the value."""
    path = _write_bad(small, tmp_path, column, row, value)
    with pytest.raises(UserError) as e:
        load_cohort(path)
    msg = str(e.value)
    assert repr(column) in msg and f"row {row + 1}:" in msg and repr(value) in msg and requirement in msg, msg
    assert "\n" not in msg


def test_duplicate_patient_id_names_row_and_value(small, tmp_path):
    """A repeated patient_id raises UserError naming the column, the row of the repeat and the id."""
    path = _write_bad(small, tmp_path, "patient_id", 6, str(small["patient_id"][2]))
    with pytest.raises(UserError, match=r"'patient_id', row 7: must be unique, got 2"):
        load_cohort(path)


def test_missing_column_is_named(small, tmp_path):
    """A file without a required column raises UserError naming the column."""
    path = tmp_path / "c.csv"
    small.drop(columns="tempo").to_csv(path, index=False)
    with pytest.raises(UserError, match=r"missing column\(s\) \['tempo'\]"):
        load_cohort(path)


def test_bad_value_in_parquet_is_named(small, tmp_path):
    """A Parquet cohort with an out-of-range value is rejected naming column, row and value."""
    df = small.copy()
    df.loc[3, "ki67"] = 140.0
    path = tmp_path / "c.parquet"
    df.to_parquet(path, index=False)
    with pytest.raises(UserError, match=re.escape("'ki67', row 4: must be in [0.0, 100.0], got 140.0")):
        load_cohort(path)


@pytest.mark.parametrize("content", ["", ",".join(COLUMNS) + "\n"])
def test_empty_cohort_file_is_rejected(tmp_path, content):
    """An empty file (no bytes, or a header without rows) raises UserError naming the file."""
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(UserError) as e:
        load_cohort(path)
    assert "empty.csv" in str(e.value)


@pytest.mark.parametrize("name", ["nofile.csv", "cohort.xlsx"])
def test_missing_or_unsupported_file_is_rejected(tmp_path, name):
    """A missing file or an unsupported extension raises UserError naming cohort.source and the path."""
    path = tmp_path / name
    if name.endswith("xlsx"):
        path.write_text("x")
    with pytest.raises(UserError) as e:
        load_cohort(path)
    assert "cohort.source" in str(e.value) and name in str(e.value)
