"""Exact agreement of the two executors: ``engine="simpy"`` and ``engine="vectorised"`` of
:func:`sim.run.executors.simulate` give the same ``patients``, ``lines`` and ``events`` frames
(same rows in the same order, same dtypes; strings, booleans and integers equal, floats equal
to ``rtol = atol = 1e-12``) for the shipped strategies and for hypothesis-generated valid
configurations.

The generated configurations start from the composed project config (every shipped therapy,
``configs/therapy/*.yaml``, included) and vary, within the ranges the config validation accepts:
strategies (ordered lists of shipped therapies and choice lines ending with the terminal line, and every strategy
rule), model rules, PFS families and parameters (every family of
:data:`sim.distributions.FAMILIES`), adverse events and their consequences, response,
covariate hazard ratios, courses, eligibility, rechallenge parameters, the cohort (generated
with a random size and seed, or forced to an edge case) and the chunk sizes and PSA sample of
each executor. These are not statistical tests: no tolerance depends on Monte Carlo error.
Hypothesis runs derandomised (fixed examples, no example database) so CI is reproducible.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, compose_config
from sim.config import build_model, to_container
from sim.distributions import FAMILIES
from sim.run.executors import simulate
from sim.patients import validate_cohort
from sim.patients.schema import FUNCTIONAL
from sim.therapies.definition import CONSEQUENCES, COVARIATES

#: tolerance of float columns (both executors evaluate the same expressions; only the order
#: of floating-point operations on arrays of different shapes may differ)
RTOL = ATOL = 1e-12
SHIPPED_STRATEGIES = sorted(p.stem for p in (CONFIG_DIR / "strategy").glob("*.yaml"))
SHIPPED_THERAPIES = sorted(p.stem for p in (CONFIG_DIR / "therapy").glob("*.yaml"))
#: adverse-event names used by generated therapies (each keys its own random streams)
AE_NAMES = ("neutropenia", "stomatitis", "fatigue", "hypertension", "thrombocytopenia")
FRAMES = ("patients", "lines", "events")
HYPOTHESIS = dict(deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_same_frames(a, b, where: str = "") -> None:
    """The frames ``a`` and ``b`` (tuples of patients, lines, events) are identical: same
    columns, dtypes, rows and order; floats to :data:`RTOL` / :data:`ATOL` (NaN and inf in
    the same places), everything else exactly."""
    for name, x, y in zip(FRAMES, a, b):
        assert list(x.columns) == list(y.columns), f"{where} {name}: columns differ"
        assert len(x) == len(y), f"{where} {name}: {len(x)} rows (simpy) vs {len(y)} (vectorised)"
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), check_dtype=True,
                                      check_exact=False, rtol=RTOL, atol=ATOL, obj=f"{where} {name}")
        for c in x.columns:
            if x[c].dtype.kind not in "fc":
                assert x[c].tolist() == y[c].tolist(), f"{where} {name}.{c} differs"


def both_engines(model, cohort=None, strategies=None, chunks=(None, None), sample=0):
    """Frames of the SimPy and of the vectorised executor for the same model and seed."""
    cohort = model.cohort if cohort is None else cohort
    strategies = model.strategies if strategies is None else strategies
    out = []
    for engine, chunk in zip(("simpy", "vectorised"), chunks):
        rec = simulate(cohort, strategies, model.therapies, model.rules, model.lifetable, model.seed,
                       engine=engine, chunk_size=chunk, sample=sample)
        out.append(rec.frames())
    return out


@functools.lru_cache(maxsize=1)
def base_plain() -> dict:
    """Resolved plain config: the project defaults plus every shipped therapy file."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "config.yaml"))["defaults"]
    included = {k.split("@therapies.")[1] for d in defaults if isinstance(d, dict) for k in d
                if k.startswith("therapy@therapies.")}
    extra = [f"+therapy@therapies.{t}={t}" for t in SHIPPED_THERAPIES if t not in included]
    return to_container(compose_config(extra))


# ------------------------------------------------------------------------------ shipped strategies
@pytest.fixture(scope="module")
def default_model():
    return build_model(compose_config(["cohort.n=300", f"experiment.strategies=[{','.join(SHIPPED_STRATEGIES)}]"]))


@pytest.fixture(scope="module")
def default_frames(default_model):
    """(simpy frames, vectorised frames) of every shipped strategy on the default config."""
    return both_engines(default_model)


def test_every_shipped_strategy_gives_identical_frames_in_both_executors(default_frames):
    """Default config, 300 patients, every configs/strategy/*.yaml: simpy and vectorised frames are identical."""
    a, b = default_frames
    assert_same_frames(a, b, "default config")
    patients, lines, events = a
    assert set(patients["strategy"]) == set(SHIPPED_STRATEGIES)
    assert len(patients) == 300 * len(SHIPPED_STRATEGIES)
    assert {"progression", "death", "toxicity"} <= set(lines["reason"])          # a non-trivial comparison
    assert {"adverse_event", "line_skipped", "progression_detected"} <= set(events["event"])


@pytest.mark.parametrize("strategy", SHIPPED_STRATEGIES)
def test_each_shipped_strategy_alone_matches_its_rows_of_the_joint_run(default_model, default_frames, strategy):
    """A strategy simulated alone by each executor gives its rows of the joint run (no cross-strategy state)."""
    joint = default_frames[0]
    cohort = default_model.cohort.iloc[:120]
    for alone in both_engines(default_model, cohort, {strategy: default_model.strategies[strategy]}, (7, 50)):
        ids = set(cohort["patient_id"])
        rows = [f[(f["strategy"] == strategy) & f["patient_id"].isin(ids)].reset_index(drop=True) for f in joint]
        assert_same_frames(rows, alone, f"{strategy} alone")


def test_comparison_helper_detects_a_difference_beyond_tolerance(default_model):
    """The equality check is not vacuous: a float perturbed by 1e-9 relative, or a changed string, fails it."""
    a, _ = both_engines(default_model, default_model.cohort.iloc[:20])
    b = tuple(f.copy() for f in a)
    b[1].loc[3, "end"] *= 1 + 1e-9
    with pytest.raises(AssertionError):
        assert_same_frames(a, b)
    c = tuple(f.copy() for f in a)
    c[2].loc[0, "detail"] = c[2].loc[0, "detail"] + "x"
    with pytest.raises(AssertionError):
        assert_same_frames(a, c)


# ------------------------------------------------------------------------------ generated configurations
def _probability():
    return st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def pfs_specs(draw):
    """A valid ``pfs`` mapping of any family of :data:`sim.distributions.FAMILIES`."""
    family = draw(st.sampled_from(sorted(FAMILIES)))
    spec = {"family": family, "median": draw(st.floats(0.3, 80.0))}
    if family in ("weibull", "loglogistic"):
        spec["shape"] = draw(st.floats(0.3, 5.0))
    elif family == "gompertz":
        spec["shape"] = draw(st.floats(-0.3, 0.5))          # negative: a cured fraction (infinite times)
    elif family == "lognormal":
        spec["sigma"] = draw(st.floats(0.1, 2.5))
    elif family == "gengamma":
        spec["sigma"] = draw(st.floats(0.2, 2.0))
        spec["Q"] = draw(st.floats(-2.0, 2.0))
    if family in ("exponential", "weibull") and draw(st.booleans()):
        spec["hazard_ratio"] = draw(st.floats(0.2, 3.0))
    return spec


@st.composite
def adverse_event_specs(draw):
    """A valid adverse-event mapping (consequence shares summing to one)."""
    weights = draw(st.lists(st.integers(0, 4), min_size=len(CONSEQUENCES), max_size=len(CONSEQUENCES))
                   .filter(lambda w: sum(w) > 0))
    spec = {"probability": draw(st.one_of(_probability(), st.floats(0.3, 1.0))),   # often frequent: more AE paths
            "onset_median_weeks": draw(st.floats(0.2, 40.0)),
            "consequence": {c: w / sum(weights) for c, w in zip(CONSEQUENCES, weights) if w},
            "reduced_intensity": draw(st.floats(0.05, 1.0)),
            "interruption_weeks": draw(st.floats(0.0, 16.0)),
            "duration_weeks": draw(st.floats(0.0, 12.0))}
    if draw(st.booleans()):
        spec["probability_diabetes"] = draw(_probability())
    return spec


def _perturb_therapy(draw, name: str, t: dict, active: list[str]) -> None:
    """Redraw parts of therapy ``t`` in place (each part kept as shipped with probability 1/2)."""
    if draw(st.booleans()):
        t["pfs"] = draw(pfs_specs())
    if t.get("kind", "active") == "terminal":
        return
    if draw(st.booleans()):
        t["response"] = {"probability": draw(_probability())}
        if draw(st.booleans()):
            t["response"]["by"] = {"mgmt_low": {"if_true": draw(_probability()), "if_false": draw(_probability())}}
    if draw(st.booleans()):
        t["covariate_hr"] = draw(st.dictionaries(st.sampled_from(COVARIATES), st.floats(0.2, 4.0), max_size=3))
    if draw(st.booleans()):
        t["adverse_events"] = draw(st.dictionaries(st.sampled_from(AE_NAMES), adverse_event_specs(), max_size=3))
    if draw(st.booleans()):
        t["course"] = (None if draw(st.booleans()) else
                       {"doses": draw(st.integers(1, 14)), "interval_weeks": draw(st.floats(0.5, 9.0))})
    if draw(st.booleans()):
        elig = {"requires_sstr_positive": draw(st.booleans()),
                "exclude_functional": draw(st.lists(st.sampled_from(FUNCTIONAL), max_size=2, unique=True))}
        if draw(st.booleans()):
            elig["requires_prior_progression_on"] = draw(st.sampled_from(active))
        t["eligibility"] = elig
    if t.get("rechallenge") is not None or draw(st.integers(0, 3)) == 0:
        t["rechallenge"] = {
            "of": t["rechallenge"]["of"] if t.get("rechallenge") else draw(st.sampled_from(active)),
            "time_ratio": draw(st.floats(0.05, 3.0)), "response_ratio": draw(st.floats(0.0, 2.0)),
            "beta_prior_pfs": draw(st.sampled_from([0.0, draw(st.floats(-1.5, 1.5))])),
            "beta_time_off": draw(st.sampled_from([0.0, draw(st.floats(-1.5, 1.5))])),
            "reference_pfs_first": draw(st.floats(0.5, 40.0)), "reference_time_off": draw(st.floats(0.5, 40.0))}


#: conditions a generated choice rule may test (cohort columns and treatment history)
CONDITIONS = (
    {"grade": "G3"}, {"grade": ["G1", "G2"]}, {"hepatic_burden": {"not": ["le25"]}}, {"tempo": "rapid"},
    {"sstr_positive": True}, {"symptomatic_bulk": False}, {"functional_status": "insulinoma"},
    {"ki67": {"lt": 10}}, {"ki67": {"ge": 3, "le": 20}}, {"ecog": {"ge": 1}}, {"age": {"gt": 60}},
    {"mgmt_low": True}, {"active_lines": {"lt": 1}}, {"active_lines": {"ge": 2}},
)
SOURCE = {"document": "generated", "section": "generated", "quote": "generated"}


@st.composite
def choice_specs(draw, nonterminal: list[str]):
    """A valid choice line: 1-3 rules, each a shipped non-terminal therapy with 0-2 conditions drawn
    from :data:`CONDITIONS` and history tests (given / not given / progressed on / class)."""
    rules = []
    for _ in range(draw(st.integers(1, 3))):
        when = {}
        for c in draw(st.lists(st.sampled_from(CONDITIONS), max_size=2)):
            when.update(c)
        hist = draw(st.sampled_from([None, "given", "not_given", "progressed_on", "not_given_class"]))
        if hist == "not_given_class":
            when[hist] = [draw(st.sampled_from(["ssa", "mtor", "tki", "chemotherapy", "prrt"]))]
        elif hist is not None:
            when[hist] = [draw(st.sampled_from(nonterminal))]
        rules.append({"give": draw(st.sampled_from(nonterminal)), "when": when, "source": SOURCE})
    return {"choose": rules}


@st.composite
def strategy_specs(draw, nonterminal: list[str], terminal: list[str], min_lines: int = 0):
    """A valid strategy: ``min_lines``-5 lines, each a shipped non-terminal therapy (repeats allowed)
    or a choice line (:func:`choice_specs`), a terminal last line, random rules."""
    lines = (draw(st.lists(st.one_of(st.sampled_from(nonterminal), choice_specs(nonterminal)), min_size=min_lines,
                           max_size=5))
             + [draw(st.sampled_from(terminal))])
    for i, ln in enumerate(lines):
        if isinstance(ln, dict):
            ln["name"] = f"choice{i}"
    named = sorted({t for ln in lines for t in ([r["give"] for r in ln["choose"]] if isinstance(ln, dict) else [ln])})
    rules = {"skip_ineligible": draw(st.booleans()),
             "after_toxicity": draw(st.sampled_from(["next_line", "terminal"])),
             "max_active_lines": draw(st.one_of(st.none(), st.integers(0, 4))),
             "holiday_months": draw(st.dictionaries(st.sampled_from(named),
                                                    st.one_of(st.just(0.0), st.floats(0.0, 30.0)), max_size=2)),
             "uptake": draw(st.dictionaries(st.sampled_from(named), _probability(), max_size=2))}
    return {"label": "generated", "lines": lines, "rules": rules}


EDGE_COHORTS = ("sstr_negative", "insulinoma", "age_100", "prior_therapies", "sparse_ids", "one_patient")


@st.composite
def scenarios(draw, edge=None):
    """(plain config, cohort edge case or None, chunk sizes (simpy, vectorised), PSA sample)."""
    plain = copy.deepcopy(base_plain())
    th = plain["therapies"]
    kinds = {n: t.get("kind", "active") for n, t in th.items()}
    active = sorted(n for n, k in kinds.items() if k == "active")
    for name in sorted(th):
        if draw(st.booleans()):
            _perturb_therapy(draw, name, th[name], active)
    nonterminal = sorted(n for n, k in kinds.items() if k != "terminal")
    terminal = sorted(n for n, k in kinds.items() if k == "terminal")
    n_strategies = draw(st.integers(1, 2))
    plain["strategies"] = {f"s{i}": draw(strategy_specs(nonterminal, terminal, min_lines=1 - i))
                           for i in range(n_strategies)}
    plain["experiment"]["strategies"] = list(plain["strategies"])
    plain["experiment"]["reference"] = "s0"
    m = plain["model"]
    m["imaging_interval_weeks"] = draw(st.floats(0.5, 52.0))
    m["frailty_rho"] = draw(st.sampled_from([0.0, draw(st.floats(0.0, 0.9))]))
    m["disease_death"]["rate_per_year"] = draw(st.sampled_from([0.0, draw(st.floats(0.0, 2.0))]))
    m["line_effect"]["hr_per_prior_line"] = draw(st.floats(0.5, 2.0))
    m["clinical_detection_months"] = draw(st.sampled_from([None, draw(st.floats(0.01, 24.0))]))
    m["horizon_years"] = draw(st.floats(0.1, 60.0))
    c = plain["cohort"]
    c["n"] = draw(st.integers(1, 16))
    for key in ("rapid_tempo", "diabetes", "mgmt_low", "symptomatic_bulk", "non_functioning"):
        if draw(st.booleans()):
            c[key] = draw(_probability())
    plain["seed"] = draw(st.integers(0, 2**32 - 1))
    edge = draw(st.sampled_from((None,) + EDGE_COHORTS)) if edge is None else edge
    n = c["n"]
    chunks = (draw(st.sampled_from([None, 1, max(1, n // 3), n])), draw(st.sampled_from([None, 1, max(1, n // 2)])))
    prior = draw(st.lists(st.sampled_from(sorted(th)), max_size=2, unique=True))
    return plain, (edge, prior), chunks, draw(st.integers(0, 3))


def edge_cohort(cohort: pd.DataFrame, edge) -> pd.DataFrame:
    """The generated cohort forced to an edge case (validated again)."""
    kind, prior = edge
    df = cohort.copy()
    if kind == "sstr_negative":
        df["sstr_positive"] = False
    elif kind == "insulinoma":
        df["functional_status"] = "insulinoma"
    elif kind == "age_100":
        df["age"] = 100.0
    elif kind == "prior_therapies":
        df["prior_therapies"] = ";".join(prior)
    elif kind == "sparse_ids":
        df["patient_id"] = 1_000_003 + 97 * np.arange(len(df))[::-1]    # non-contiguous, descending
    elif kind == "one_patient":
        df = df.iloc[:1]
    return validate_cohort(df)


def _check_scenario(scenario) -> None:
    plain, edge, chunks, sample = scenario
    model = build_model(plain)
    cohort = model.cohort if edge[0] is None else edge_cohort(model.cohort, edge)
    a, b = both_engines(model, cohort, chunks=chunks, sample=sample)
    assert_same_frames(a, b, f"seed={plain['seed']} edge={edge} chunks={chunks} sample={sample}")
    assert len(a[0]) == len(cohort) * len(model.strategies)


@settings(max_examples=300, **HYPOTHESIS)
@given(scenarios())
def test_random_valid_configurations_give_identical_frames(scenario):
    """Random strategies, rules, PFS families, AEs, HRs, rechallenge and cohorts: simpy == vectorised."""
    _check_scenario(scenario)


@pytest.mark.parametrize("edge", EDGE_COHORTS)
@settings(max_examples=15, **HYPOTHESIS)
@given(data=st.data())
def test_edge_case_cohorts_give_identical_frames(edge, data):
    """All SSTR-negative, all insulinoma, age 100, prior therapies, sparse ids, one patient: simpy == vectorised."""
    _check_scenario(data.draw(scenarios(edge=edge)))
