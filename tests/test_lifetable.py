"""Background mortality: the life-table data (provenance, ranges), sampled other-cause death
times against the table's survival function, and the table as an upper bound on simulated OS.

Statistical checks use fixed seeds and tolerances in Monte Carlo standard errors (``Z``) or the
Dvoretzky-Kiefer-Wolfowitz bound ``P(sup |F_n - F| > e) <= 2 exp(-2 n e^2)``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from conftest import Z, compose_config
from sim.config import build_model
from sim.errors import UserError
from sim.lifetable import DATA_DIR, DEFAULT_TABLE, LifeTable
from sim.pipeline import simulate_model
from sim.rng import Draws
from sim.units import MONTHS_PER_YEAR

TABLE = DATA_DIR / DEFAULT_TABLE
#: DKW false-alarm probability of a distribution check
ALPHA = 1e-4


def dkw_epsilon(n: int, alpha: float = ALPHA) -> float:
    """Half-width ``e`` with ``P(sup_t |F_n(t) - F(t)| > e) <= alpha`` (DKW, Massart's constant)."""
    return math.sqrt(math.log(2 / alpha) / (2 * n))


@pytest.fixture(scope="module")
def raw():
    """The shipped life table as read from disk."""
    return pd.read_csv(TABLE)


@pytest.fixture(scope="module")
def lt():
    """The default life table with death certain at 110 (``configs/model/default.yaml``)."""
    return LifeTable.load(DEFAULT_TABLE, 110)


# ------------------------------------------------------------------ data and provenance
def test_default_model_config_names_the_shipped_table():
    """``model.background_mortality.table`` of the default config is the shipped file."""
    cfg = compose_config()
    assert cfg.model.background_mortality.table == DEFAULT_TABLE
    assert TABLE.is_file()


def test_readme_documents_source_licence_and_file(raw):
    """data/lifetables/README.md names the file, the publisher, the period, the licence and the copy source."""
    readme = (DATA_DIR / "README.md").read_text()
    for needle in (DEFAULT_TABLE, "Office for National Statistics", "2017", "2019", "Open Government Licence",
                   "bitowaqr/shortfall"):
        assert needle in readme, needle
    assert f"There are {len(raw)} rows" in readme


def test_readme_quick_check_values_equal_the_csv(raw):
    """Every ``q<age>`` of the README's quick-check table equals the CSV value (male, female)."""
    readme = (DATA_DIR / "README.md").read_text()
    rows = re.findall(r"^\| q(\d+) \| ([0-9.]+) \| ([0-9.]+) \|$", readme, flags=re.M)
    assert len(rows) >= 4
    q = raw.set_index(["sex", "age"])["qx"]
    for age, male, female in rows:
        assert q[("male", int(age))] == float(male)
        assert q[("female", int(age))] == float(female)


def test_table_covers_ages_0_to_100_for_both_sexes_with_qx_in_unit_interval(raw):
    """Columns age, sex, qx; single ages 0..100 once per sex; 0 < qx < 1."""
    assert list(raw.columns) == ["age", "sex", "qx"]
    for sex in ("male", "female"):
        ages = raw.loc[raw["sex"] == sex, "age"].to_numpy()
        assert np.array_equal(np.sort(ages), np.arange(101)), sex
    assert ((raw["qx"] > 0) & (raw["qx"] < 1)).all()


def test_qx_increases_with_age_from_40(raw):
    """Mortality rises with age in adult life: qx non-decreasing from age 40 to 100 for each sex."""
    for sex in ("male", "female"):
        q = raw[(raw["sex"] == sex) & (raw["age"] >= 40)].sort_values("age")["qx"].to_numpy()
        assert np.all(np.diff(q) >= 0), sex


def test_men_die_at_higher_rates_than_women_in_old_age(raw):
    """Male qx exceeds female qx at every age 50-90 (a sanity check of the sex labels)."""
    q = raw.set_index(["sex", "age"])["qx"]
    assert all(q[("male", a)] > q[("female", a)] for a in range(50, 91))


# ------------------------------------------------------------------ the LifeTable object
def test_hazard_is_minus_log_one_minus_qx_and_held_after_100(lt, raw):
    """``mu_x = -log(1 - q_x)`` for tabulated ages; the age-100 hazard is held to ``max_age``."""
    q = raw[raw["sex"] == "female"].sort_values("age")["qx"].to_numpy()
    assert np.allclose(lt.mu["female"][:101], -np.log1p(-q), rtol=1e-12)
    assert np.all(lt.mu["female"][101:] == lt.mu["female"][100])
    assert lt.mu["female"].size == 110


def test_one_year_survival_at_integer_age_is_one_minus_qx(lt, raw):
    """``S(x + 1 | x) = 1 - q_x`` at every tabulated age (constant hazard within the year)."""
    for sex in ("male", "female"):
        q = raw[raw["sex"] == sex].sort_values("age")["qx"].to_numpy()
        s = np.array([lt.survival(float(x), sex, 1.0) for x in range(101)])
        assert np.allclose(s, 1 - q, rtol=1e-10), sex


def test_death_age_inverts_the_cumulative_hazard(lt):
    """``H(death_age) - H(age) = -log(u)`` whenever death comes before ``max_age``."""
    rng = np.random.default_rng(5)
    age = rng.uniform(18, 95, 2000)
    u = rng.uniform(1e-6, 1, 2000)
    for sex in ("male", "female"):
        d = lt.death_age(age, np.full(age.size, sex), u)
        inside = d < lt.max_age
        assert inside.mean() > 0.9
        dh = lt.cumhazard(d[inside], sex) - lt.cumhazard(age[inside], sex)
        assert np.allclose(dh, -np.log(u[inside]), rtol=1e-9, atol=1e-12)
        assert np.all(d >= age) and np.all(d <= lt.max_age)


def test_death_is_certain_at_max_age(lt):
    """A uniform so small that the table's hazard never reaches it gives death exactly at ``max_age``."""
    d = lt.death_age(np.array([60.0, 60.0]), np.array(["male", "female"]), np.array([1e-300, 1e-300]))
    assert np.all(d == lt.max_age)


def test_sampled_death_times_follow_life_table_survival(lt):
    """Other-cause death times drawn from the ``background_death`` stream match ``1 - S(t | age)``
    within the DKW band (n = 20,000 per sex, fixed seed)."""
    n = 20_000
    u = Draws(123, 0, n)["background_death"][:, 0]
    for sex, age in (("male", 60.0), ("female", 72.5)):
        t = np.sort(lt.death_time_months(np.full(n, age), np.full(n, sex), u)) / MONTHS_PER_YEAR
        theory = 1 - lt.survival(age, sex, t)
        ecdf_hi = np.arange(1, n + 1) / n
        ecdf_lo = np.arange(n) / n
        gap = max(np.max(np.abs(ecdf_hi - theory)), np.max(np.abs(ecdf_lo - theory)))
        assert gap < dkw_epsilon(n), (sex, gap)


@pytest.mark.parametrize("max_age", [100, 131, 105.5])
def test_max_age_outside_range_is_a_user_error(max_age):
    """``model.background_mortality.max_age`` outside (100, 130] or not whole names the key and value."""
    cfg = compose_config(["cohort.n=5", f"model.background_mortality.max_age={max_age}"])
    with pytest.raises(UserError, match=re.escape(f"model.background_mortality.max_age must be a whole number "
                                                  f"in (100, 130], got {max_age!r}")):
        build_model(cfg)


@pytest.mark.parametrize("content,needle", [
    ("age,sex,q\n0,male,0.1\n", "needs columns age, sex, qx"),
    ("age,sex,qx\n0,male,0.1\n0,female,1.2\n", "qx for female must be in (0, 1)"),
])
def test_malformed_life_table_file_is_a_user_error(tmp_path, content, needle):
    """A life-table file without the columns or with a qx outside (0, 1) raises UserError naming the file."""
    path = tmp_path / "bad_table.csv"
    path.write_text(content)
    with pytest.raises(UserError) as e:
        LifeTable.load(str(path), 110)
    assert needle in str(e.value) and "bad_table.csv" in str(e.value)


# ------------------------------------------------------------------ the table in the simulation
def _background_death_months(model, cohort: pd.DataFrame) -> np.ndarray:
    """Each patient's other-cause death time (months from start), recomputed from the named stream
    ``background_death`` slot 0 exactly as the executors do."""
    u = Draws(model.seed, int(cohort["patient_id"].iloc[0]), len(cohort))["background_death"][:, 0]
    return model.lifetable.death_time_months(cohort["age"].to_numpy(float), cohort["sex"].astype(str).to_numpy(), u)


def test_simulated_os_never_exceeds_other_cause_death(default_run):
    """In every strategy OS <= the patient's other-cause death time, with equality exactly for
    deaths from other causes (within round-off)."""
    model, patients, _, _ = default_run
    assert np.array_equal(model.cohort["patient_id"].to_numpy(), np.arange(len(model.cohort)))
    bg = _background_death_months(model, model.cohort)
    p = patients.assign(bg=bg[patients["patient_id"].to_numpy()])
    assert (p["os_months"] <= p["bg"] + 1e-9).all()
    other = p["death_cause"] == "other"
    assert other.any()
    assert np.allclose(p.loc[other, "os_months"], p.loc[other, "bg"], rtol=1e-12, atol=1e-9)
    disease = p["death_cause"] == "disease"
    assert (p.loc[disease, "os_months"] <= p.loc[disease, "bg"] + 1e-9).all()


def _cohort_background_survival(model, t_years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected share alive from other causes only, ``mean_i S_i(t)``, and the SE of the observed
    share, ``sqrt(sum_i S_i (1 - S_i)) / n`` (independent Bernoulli indicators)."""
    c = model.cohort
    s = np.array([model.lifetable.survival(a, str(x), t_years) for a, x in zip(c["age"], c["sex"])])
    return s.mean(axis=0), np.sqrt((s * (1 - s)).sum(axis=0)) / len(c)


T_YEARS = np.array([1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0])


def test_os_survival_lies_below_the_life_table_survival(default_run):
    """For each strategy the share alive at 1-30 years never exceeds the cohort's life-table
    survival by more than Z Monte Carlo SEs (OS includes disease deaths, so it lies below)."""
    model, patients, _, _ = default_run
    s_bg, se = _cohort_background_survival(model, T_YEARS)
    for name, g in patients.groupby("strategy", observed=True):
        alive = np.array([(g["os_months"] > t * MONTHS_PER_YEAR).mean() for t in T_YEARS])
        assert np.all(alive <= s_bg + Z * se), (name, alive, s_bg)


@pytest.fixture(scope="module")
def disease_free_run():
    """1,500 patients on best supportive care only with a disease-death median of 10^7 months:
    OS is then other-cause death (up to the 40-year horizon)."""
    model = build_model(compose_config([
        "cohort.n=1500", "seed=17", "experiment.strategies=[switch]", "experiment.reference=switch",
        "strategies.switch.lines=[bsc]",
        "therapies.bsc.pfs.median=1e7"]))
    patients, _, _ = simulate_model(model, progress=False)
    return model, patients


def test_without_disease_deaths_os_follows_the_life_table(disease_free_run):
    """With disease deaths switched off the share alive at 1-30 years equals the cohort's
    life-table survival within Z Monte Carlo SEs (both directions)."""
    model, patients = disease_free_run
    assert (patients["death_cause"] != "disease").all()
    s_bg, se = _cohort_background_survival(model, T_YEARS)
    alive = np.array([(patients["os_months"] > t * MONTHS_PER_YEAR).mean() for t in T_YEARS])
    assert np.all(np.abs(alive - s_bg) <= Z * se), (alive, s_bg, se)


def test_without_disease_deaths_os_equals_each_patients_other_cause_death(disease_free_run):
    """Each patient's OS is their own other-cause death time, censored at the horizon."""
    model, patients = disease_free_run
    bg = _background_death_months(model, model.cohort)[patients["patient_id"].to_numpy()]
    expected = np.minimum(bg, model.rules.horizon_months)
    assert np.allclose(patients["os_months"].to_numpy(), expected, rtol=1e-12, atol=1e-9)
    assert np.array_equal(patients["death"].to_numpy(), bg <= model.rules.horizon_months)


def test_survival_is_zero_from_max_age_on(lt):
    """``S(t | a) = 0`` once ``a + t`` reaches ``max_age`` (death certain there) and positive just before."""
    s = lt.survival(60.0, "male", np.array([lt.max_age - 60 - 1e-6, lt.max_age - 60, lt.max_age - 60 + 5]))
    assert s[0] > 0 and s[1] == 0 and s[2] == 0
