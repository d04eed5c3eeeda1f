"""Checks of the evidence table data/evidence/evidence.csv against its conventions and sources."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from sim.evidence import (
    COLUMNS,
    DEFAULT_EVIDENCE_PATH,
    ENDPOINTS,
    UNITS,
    endpoint_base,
    load_evidence,
    lookup,
)

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "data" / "evidence" / "evidence.csv"
README = REPO / "data" / "evidence" / "README.md"
PUBLICATION_SOURCES = {"publication"}
SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def _seeds_dir() -> Path | None:
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "seeds"]
    if os.environ.get("PNET_SEEDS_DIR"):
        candidates.append(Path(os.environ["PNET_SEEDS_DIR"]))
    return next((c for c in candidates if c.is_dir()), None)


SEEDS = _seeds_dir()
needs_seeds = pytest.mark.skipif(
    SEEDS is None,
    reason="seed documents not found at ../shared/seeds relative to the repo root nor in $PNET_SEEDS_DIR",
)


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(CSV, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return load_evidence(CSV)


@pytest.fixture(scope="module")
def seed_texts() -> dict[str, str]:
    return {p.name: _collapse(p.read_text(encoding="utf-8")) for p in SEEDS.iterdir() if p.is_file()}


# ---------------------------------------------------------------- number forms in quotes
_WORDS = {
    "zero": 0, "none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20,
    "twofold": 2, "μία": 1, "ένα": 1, "δύο": 2, "τρεις": 3, "τρία": 3, "τέσσερις": 4,
    "τέσσερα": 4, "πέντε": 5, "δέκα": 10,
}
_FRACTION_WORDS = {"half": 0.5, "one-half": 0.5, "one-third": 1 / 3}


def _numbers_in(quote: str) -> list[tuple[float, float]]:
    """(number, tolerance) pairs written in ``quote``: digits (with '.' or Greek ',' decimals,
    ',' thousands separators) and number words; tolerance = half a unit of the last digit."""
    found: list[tuple[float, float]] = []
    for token in re.findall(r"\d+(?:[.,]\d+)*", quote):
        readings = set()
        if "," not in token:
            readings.add(token)
        else:
            if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
                readings.add(token.replace(",", ""))
            if token.count(",") == 1 and "." not in token:
                readings.add(token.replace(",", "."))
        for reading in readings:
            decimals = len(reading.split(".")[1]) if "." in reading else 0
            found.append((float(reading), 0.5 * 10 ** -decimals + 1e-9))
    for word in re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", quote):
        word = word.lower()
        if word in _WORDS:
            found.append((float(_WORDS[word]), 0.5))
        elif word in _FRACTION_WORDS:
            found.append((_FRACTION_WORDS[word], 0.005))
    return found


def _written_forms(x: float, unit: str, n) -> list[float]:
    """Ways a stored number may be written: as is, as a percentage, as a count of n, in years."""
    forms = [x]
    if unit.startswith("proportion"):
        forms.append(x * 100)
        if n is not None and not pd.isna(n):
            forms.append(x * float(n))
    if unit.startswith("months"):
        forms.append(x / 12)
    return forms


def _mentions(quote: str, x: float, unit: str, n) -> bool:
    numbers = _numbers_in(quote)
    for form in _written_forms(x, unit, n):
        for number, tol in numbers:
            if abs(form - number) <= tol:
                return True
    return False


# ---------------------------------------------------------------- structure
def test_columns_exact(raw):
    """The CSV has exactly the documented columns, in order."""
    assert tuple(raw.columns) == COLUMNS


def test_ids_unique_snake_case(raw):
    """Every id is unique and snake_case."""
    assert raw["id"].is_unique, raw.loc[raw["id"].duplicated(), "id"].tolist()
    bad = [i for i in raw["id"] if not SNAKE.match(i)]
    assert not bad, bad


def test_required_text_fields_present(raw):
    """trial, arm, population, endpoint, unit, source, section, citation and quote are never blank."""
    for col in ("trial", "arm", "population", "endpoint", "unit", "source", "section", "citation", "quote"):
        blank = raw.loc[raw[col].str.strip() == "", "id"].tolist()
        assert not blank, (col, blank)


def test_values_numeric_finite(table):
    """value is a finite number in every row; n, ci_low, ci_high are numbers or blank."""
    assert table["value"].notna().all(), table.loc[table["value"].isna(), "id"].tolist()
    assert all(math.isfinite(v) for v in table["value"])
    for col in ("ci_low", "ci_high"):
        present = table[col].dropna()
        assert all(math.isfinite(v) for v in present), col
    assert (table["n"].dropna() > 0).all()


def test_endpoints_in_vocabulary(table):
    """Every endpoint is a vocabulary base, optionally with a snake_case ':qualifier'."""
    for endpoint in table["endpoint"]:
        base, _, qualifier = endpoint.partition(":")
        assert base in ENDPOINTS, endpoint
        assert not qualifier or SNAKE.match(qualifier), endpoint


def test_units_in_vocabulary(table):
    """Every unit is one of the documented units."""
    unknown = sorted(set(table["unit"]) - set(UNITS))
    assert not unknown, unknown


def test_readme_documents_vocabulary():
    """The README names every endpoint base and every unit used by the loader's vocabulary."""
    text = README.read_text(encoding="utf-8")
    missing = [w for w in list(ENDPOINTS) + list(UNITS) if f"`{w}`" not in text]
    assert not missing, missing


def test_proportions_in_unit_interval(table):
    """Values and bounds of proportion units lie in [0, 1]."""
    rows = table[table["unit"].str.startswith("proportion")]
    for col in ("value", "ci_low", "ci_high"):
        vals = rows[col].dropna()
        bad = rows.loc[vals.index[(vals < 0) | (vals > 1)], "id"].tolist()
        assert not bad, (col, bad)


def test_utilities_at_most_one(table):
    """Utilities do not exceed 1 (full health)."""
    assert (table.loc[table["unit"] == "utility", "value"] <= 1).all()


def test_ci_brackets_value(table):
    """ci_low <= value <= ci_high whenever both bounds are given, and bounds come in pairs."""
    both = table.dropna(subset=["ci_low", "ci_high"])
    bad = both.loc[~((both["ci_low"] <= both["value"]) & (both["value"] <= both["ci_high"])), "id"].tolist()
    assert not bad, bad
    half = table.loc[table["ci_low"].isna() != table["ci_high"].isna(), "id"].tolist()
    assert not half, half


def test_range_units_have_bounds(table):
    """Rows whose unit ends in '_range' carry both range ends in ci_low/ci_high."""
    rows = table[table["unit"].str.endswith("_range")]
    missing = rows.loc[rows["ci_low"].isna() | rows["ci_high"].isna(), "id"].tolist()
    assert not missing, missing


def test_hazard_ratios_positive(table):
    """Hazard ratios are positive and in unit 'ratio'."""
    hr = table[table["endpoint"].isin(["hr_pfs", "hr_os"])]
    assert (hr["unit"] == "ratio").all()
    assert (hr["value"] > 0).all()


def test_sources_known(raw):
    """Every source is a seed file name (000_...txt) or ``publication``."""
    bad = [s for s in raw["source"] if s not in PUBLICATION_SOURCES and not re.fullmatch(r"\d{3}_[0-9a-f]{16}\.txt", s)]
    assert not bad, bad


def test_publication_rows_cite_a_publication_not_a_planning_note(raw):
    """Rows of source ``publication`` name the part of the publication and carry a citation with a year;
    no row's citation or section refers to an issue."""
    pub = raw[raw["source"].isin(PUBLICATION_SOURCES)]
    assert len(pub) and (pub["section"].str.len() > 0).all()
    assert pub["citation"].str.contains(r"(?:19|20)\d\d").all(), pub["citation"].tolist()
    for col in ("citation", "section", "source"):
        assert not raw[col].astype(str).str.contains(r"\bissue", case=False).any(), col


def test_every_quote_mentions_its_number(table):
    """Each quote contains the row's value in a written form (or, for ranges, both range ends)."""
    bad = []
    for row in table.itertuples(index=False):
        if _mentions(row.quote, row.value, row.unit, row.n):
            continue
        if (
            row.unit.endswith("_range")
            and _mentions(row.quote, row.ci_low, row.unit, None)
            and _mentions(row.quote, row.ci_high, row.unit, None)
        ):
            continue
        bad.append((row.id, row.value, row.quote))
    assert not bad, bad


def test_number_forms_helper():
    """The quote-number matcher reads percentages, Greek decimal commas, thousands and words."""
    assert _mentions("neutropenia (12 percent)", 0.12, "proportion", None)
    assert _mentions("PFS 14,3 μήνες", 14.3, "months", None)
    assert _mentions("£2,673 per 30", 2673, "GBP", None)
    assert _mentions("only seven of 57 cases", 7 / 57, "proportion", 57)
    assert _mentions("a median survival of 2.2 years", 26.4, "months", None)
    assert not _mentions("neutropenia (13 percent)", 0.12, "proportion", None)
    assert not _mentions("11.4 versus 5.5 months", 11.0, "months", None)


# ---------------------------------------------------------------- against the seed documents
@needs_seeds
def test_seed_sources_exist(raw):
    """Every seed-file source names a file present in the seeds folder."""
    names = {p.name for p in SEEDS.iterdir()}
    missing = sorted(set(raw.loc[~raw["source"].isin(PUBLICATION_SOURCES), "source"]) - names)
    assert not missing, missing


@needs_seeds
def test_seed_quotes_verbatim(raw, seed_texts):
    """Every quote of a seed-sourced row occurs verbatim in its seed (whitespace collapsed)."""
    bad = []
    for row in raw[~raw["source"].isin(PUBLICATION_SOURCES)].itertuples(index=False):
        if _collapse(row.quote) not in seed_texts.get(row.source, ""):
            bad.append((row.id, row.quote))
    assert not bad, bad


@needs_seeds
def test_seed_sections_present(raw, seed_texts):
    """Every section heading of a seed-sourced row occurs in its seed (parenthesised = untitled part)."""
    rows = raw[~raw["source"].isin(PUBLICATION_SOURCES) & ~raw["section"].str.startswith("(")]
    bad = [(r.id, r.section) for r in rows.itertuples(index=False) if _collapse(r.section) not in seed_texts[r.source]]
    assert not bad, bad


# ---------------------------------------------------------------- content the model relies on
KEY_FIGURES = {
    "radiant3_everolimus_median_pfs": 11.0,
    "radiant3_placebo_median_pfs": 4.6,
    "radiant3_everolimus_hr_pfs": 0.35,
    "radiant3_placebo_crossover_share": 0.85,
    "radiant3_everolimus_g34_hyperglycemia_diabetes": 0.15,
    "sun1111_sunitinib_median_pfs": 11.4,
    "sun1111_placebo_median_pfs": 5.5,
    "sun1111_sunitinib_g34_neutropenia": 0.12,
    "sun1111_placebo_crossover_share": 0.69,
    "clarinet_lanreotide_hr_pfs": 0.47,
    "e2211_captem_median_pfs": 22.7,
    "e2211_captem_orr_mgmt_low": 0.57,
    "e2211_all_n_cycles_on_protocol": 13,
    "oclurandom_lu177_median_pfs": 20.7,
    "oclurandom_sunitinib_median_pfs": 11,
    "label_lu177_dotatate_dose": 7.4,
    "label_lu177_dotatate_interval_weeks": 8,
    "label_lu177_dotatate_n_doses": 4,
    "brabander2017_lu177_long_term_mds": 0.015,
    "kennedy2022_lu177_chemo_mds_or_leukemia": 0.067,
    "promid_octreotide_lar_median_pfs": 14.3,
    "resume_sunitinib_rechallenge_median_pfs": 7.9,
    "swinburn2012_utility_stable_disease": 0.77,
}


@pytest.mark.parametrize("evidence_id,expected", sorted(KEY_FIGURES.items()))
def test_key_figures(table, evidence_id, expected):
    """Figures the pathway model is built on are present with the published value."""
    assert lookup(evidence_id, table)["value"] == pytest.approx(expected)


def test_trial_arms_complete(table):
    """The main trials carry rows for both arms of their primary endpoint."""
    for trial, arms in {
        "RADIANT-3": {"everolimus", "placebo"},
        "SUN1111": {"sunitinib", "placebo"},
        "E2211": {"captem", "temozolomide"},
        "OCLURANDOM": {"lu177_dotatate", "sunitinib"},
        "SANET-p": {"surufatinib", "placebo"},
    }.items():
        got = set(table.loc[(table["trial"] == trial) & (table["endpoint"] == "median_pfs"), "arm"])
        assert arms <= got, (trial, got)


#: issue 3's evidence list: (trial, arm or None, endpoint base or full endpoint) that must have a row
ISSUE3_COVERAGE = {
    "RADIANT-3": [("everolimus", "median_pfs"), ("placebo", "median_pfs"), ("everolimus", "hr_pfs"),
                  ("everolimus", "median_os"), ("placebo", "median_os"), ("placebo", "crossover_share"),
                  ("everolimus", "ae_g34_rate"), ("everolimus", "ae_g34_rate:hyperglycemia")],
    "SUN1111": [("sunitinib", "median_pfs"), ("placebo", "median_pfs"), ("sunitinib", "median_os"),
                ("placebo", "median_os"), ("placebo", "crossover_share"), ("sunitinib", "objective_response_count"),
                ("sunitinib", "ae_g34_rate")],
    "CLARINET": [("lanreotide", "hr_pfs"), ("placebo", "median_pfs"), ("lanreotide", "pfs_rate_24m"),
                 ("placebo", "pfs_rate_24m")],
    "E2211": [("captem", "median_pfs"), ("temozolomide", "median_pfs"), ("captem", "median_os"),
              ("temozolomide", "median_os"), ("captem", "orr"), ("temozolomide", "orr"), ("captem", "ae_g34_rate:any"),
              ("temozolomide", "ae_g34_rate:any"), ("all", "prevalence:mgmt_low")],   # MGMT ORR: KEY_FIGURES
    "OCLURANDOM": [("lu177_dotatate", "median_pfs"), ("sunitinib", "median_pfs"), ("lu177_dotatate", "pfs_rate_12m"),
                   ("sunitinib", "pfs_rate_12m"), ("lu177_dotatate", "ae_g34_rate:any"), ("sunitinib", "ae_g34_rate:any")],
    "SANET-p": [("surufatinib", "median_pfs"), ("placebo", "median_pfs"), ("surufatinib", "hr_pfs")],
    "CALGB-80701": [("everolimus", "median_pfs"), ("everolimus_bevacizumab", "median_pfs")],
    "Brabander-2017": [("lu177_dotatate", "median_pfs"), ("lu177_dotatate", "median_os"),
                       ("lu177_dotatate", "ae_long_term_rate:mds"), ("lu177_dotatate", "ae_long_term_rate:acute_leukemia")],
    "Moertel-1992": [("stz_doxorubicin", "median_os")],
    "Kouvaraki-2004": [("stz_5fu_doxorubicin", "orr"), ("stz_5fu_doxorubicin", "median_os")],
    "Dilz-2015": [("stz_5fu", "orr")],
    "Kulke-2008": [("sunitinib", "orr"), ("sunitinib", "median_ttp")],
    "Yao-2010": [("everolimus", "median_pfs"), ("everolimus_octreotide", "median_pfs")],
    "guideline": [("embolisation", "median_pfs"), ("embolisation", "survival_rate_5y"), ("embolisation", "mortality_30d")],
    "RESUME": [("sunitinib_rechallenge", "median_pfs"), ("sunitinib_first_exposure", "median_pfs")],
}


@pytest.mark.parametrize("trial", sorted(ISSUE3_COVERAGE))
def test_issue3_evidence_list_is_covered(table, trial):
    """Every trial / series issue 3 names has rows for the figures it lists (arm, endpoint)."""
    rows = table[table["trial"] == trial]
    missing = []
    for arm, endpoint in ISSUE3_COVERAGE[trial]:
        ep = rows["endpoint"] if ":" in endpoint else rows["endpoint"].map(lambda e: e.split(":", 1)[0])
        if not ((rows["arm"] == arm) & (ep == endpoint)).any():
            missing.append((arm, endpoint))
    assert not missing, f"{trial}: no evidence row for {missing}"


# ---------------------------------------------------------------- loader
def test_loader_default_path_and_types():
    """load_evidence() reads the package-relative default file with numeric columns."""
    assert DEFAULT_EVIDENCE_PATH == CSV
    table = load_evidence()
    assert len(table) > 100
    assert table["value"].dtype == float
    assert str(table["n"].dtype) == "Int64"


def test_lookup_returns_row():
    """lookup() returns the row as a Series with its fields."""
    row = lookup("sun1111_sunitinib_median_pfs")
    assert row["trial"] == "SUN1111" and row["unit"] == "months"
    assert endpoint_base(row["endpoint"]) == "median_pfs"


def test_lookup_unknown_id_raises_keyerror():
    """lookup() of an unknown id raises KeyError naming the id and close matches."""
    with pytest.raises(KeyError, match="sun1111_sunitinib_median_pfz"):
        lookup("sun1111_sunitinib_median_pfz")


def test_loader_rejects_wrong_columns(tmp_path):
    """A file with other columns is refused with a message naming the expected columns."""
    bad = tmp_path / "bad.csv"
    bad.write_text("id,value\nx,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected"):
        load_evidence(bad)
