"""Named random streams and common random numbers (:mod:`sim.rng`, engine level)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.run.executors import simulate as simulate_with
from sim.rng import WIDTH, Draws, column, uniforms

SEED = 20261122


@settings(max_examples=40, deadline=None)
@given(a=st.integers(0, 300), k=st.integers(0, 50), pad=st.integers(0, 40))
def test_block_of_patients_identical_alone_or_inside_larger_block(a, k, pad):
    """Uniforms for patients [a, b) are the same generated alone or as rows of a larger block."""
    alone = uniforms(SEED, "pfs", a, k)
    lo = max(0, a - pad)
    big = uniforms(SEED, "pfs", lo, (a - lo) + k + pad)
    assert alone.shape == (k, WIDTH)
    np.testing.assert_array_equal(alone, big[a - lo:a - lo + k])


def test_uniforms_are_uniform_and_strictly_inside_unit_interval():
    """A stream's draws lie in (0, 1) and pass a Kolmogorov-Smirnov test for uniformity."""
    u = uniforms(SEED, "pfs", 0, 2000).ravel()
    assert u.min() > 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_streams_differ_by_name_seed_and_psa_sample():
    """Different stream names, master seeds and PSA samples give unrelated draws."""
    base = uniforms(SEED, "pfs", 0, 50)
    for other in (uniforms(SEED, "frailty", 0, 50), uniforms(SEED + 1, "pfs", 0, 50),
                  uniforms(SEED, "pfs", 0, 50, sample=1)):
        assert not np.any(base == other)
        # independent streams: correlation of 1600 pairs within 4 SE of 0
        assert abs(np.corrcoef(base.ravel(), other.ravel())[0, 1]) < 4 / np.sqrt(base.size)


def test_using_another_stream_does_not_change_existing_streams():
    """Drawing a new stream or slot (or streams in another order) leaves every other stream unchanged."""
    a = Draws(SEED, 10, 20)
    first = {name: a[name][:, 3].copy() for name in ("pfs", "ae/neutropenia", "baseline")}
    b = Draws(SEED, 10, 20)
    b["ae/a_new_adverse_event"][:, 0]
    b["holiday"][:, 7]
    b["pfs"][:, 4]
    for name in ("baseline", "ae/neutropenia", "pfs"):
        np.testing.assert_array_equal(b[name][:, 3], first[name])


def test_a_slot_column_equals_the_matching_column_of_the_slot_block():
    """``column(slot=s)`` is column ``s`` of :func:`uniforms` and of ``Draws[...][:, s]``."""
    block = uniforms(SEED, "pfs", 5, 30, width=6)
    for s in range(6):
        np.testing.assert_array_equal(column(SEED, "pfs", s, 5, 30), block[:, s])
        np.testing.assert_array_equal(Draws(SEED, 5, 30)["pfs"][:, s], block[:, s])


def test_per_row_slots_gather_each_row_from_its_own_slot():
    """``stream[rows, k]`` with one slot per row picks row j's uniform at slot k[j]."""
    d = Draws(SEED, 0, 50)
    rows = np.array([3, 9, 9, 40, 0])
    k = np.array([0, 2, 5, 2, 7])
    want = np.array([column(SEED, "ae/x", s, 0, 50)[r] for r, s in zip(rows, k)])
    np.testing.assert_array_equal(d["ae/x"][rows, k], want)


def test_draws_for_non_contiguous_ids_equal_the_patients_own_uniforms():
    """Draws.for_ids on unordered, gapped ids gives each row the uniforms of its own patient id."""
    ids = np.array([17, 3, 4, 5, 250, 18, 2])
    d = Draws.for_ids(SEED, ids)
    for s in (0, 3):
        full = column(SEED, "pfs", s, 0, 300)
        np.testing.assert_array_equal(d["pfs"][:, s], full[ids])


def test_adding_an_adverse_event_stream_leaves_the_simulation_unchanged(compose_cfg, simulate):
    """A new AE type with probability 0 (a new named stream) changes no patient, line or event."""
    from sim.config import build_model

    base = ["cohort.n=120", "seed=5", "experiment.strategies=[switch]", "experiment.reference=switch"]
    extra = base + ["+therapies.sunitinib.adverse_events.new_ae={probability: 0.0, onset_median_weeks: 4}"]
    ref = simulate(build_model(compose_cfg(base)))
    new = simulate(build_model(compose_cfg(extra)))
    for a, b in zip(ref, new):
        pd.testing.assert_frame_equal(a, b)


def test_strategy_change_leaves_baseline_covariates_untouched(build, default_run):
    """A patient's baseline covariates are the same in every strategy and whichever strategies run."""
    model, patients, _, _ = default_run
    cols = list(model.cohort.columns)
    per_strategy = [g[cols].reset_index(drop=True) for _, g in patients.groupby("strategy", observed=True)]
    assert len(per_strategy) == len(model.strategies) == 5
    for g in per_strategy[1:]:
        pd.testing.assert_frame_equal(g, per_strategy[0])
    alone = build(["cohort.n=400", "seed=11", "experiment.strategies=[prrt]", "experiment.reference=prrt"])
    pd.testing.assert_frame_equal(alone.cohort, model.cohort)


def test_same_first_line_gives_identical_line1_records(default_run):
    """Strategies starting with the same therapy give every patient identical line-1 records and events."""
    _, _, lines, events = default_run
    key = ["patient_id"]
    by = {s: g.drop(columns="strategy").set_index(key).sort_index()
          for s, g in lines[lines["line"] == 1].groupby("strategy", observed=True)}
    # switch and rechallenge share their first three lines (ssa, sunitinib, everolimus)
    pd.testing.assert_frame_equal(by["switch"], by["rechallenge"])
    # prrt also starts with ssa: identical wherever line 1 is ssa in both
    ssa = by["switch"]["therapy"] == "ssa"
    assert ssa.sum() > 100
    pd.testing.assert_frame_equal(by["prrt"][ssa], by["switch"][ssa])
    ev = {s: g[g["line"] <= 1].drop(columns="strategy").reset_index(drop=True)
          for s, g in events.groupby("strategy", observed=True)}
    pd.testing.assert_frame_equal(ev["switch"], ev["rechallenge"])


@pytest.mark.parametrize("engine", ["simpy", "vectorised"])
def test_pathway_of_a_patient_independent_of_other_patients(default_run, engine):
    """Simulating a non-contiguous subset of patients gives them the same records (either executor)."""
    model, _, lines, _ = default_run
    sub = model.cohort.iloc[[3, 4, 17, 250, 399]].reset_index(drop=True)
    s = {"rechallenge": model.strategies["rechallenge"]}
    rec = simulate_with(sub, s, model.therapies, model.rules, model.lifetable, model.seed, engine=engine, chunk_size=2)
    got = rec.frames()[1].sort_values(["patient_id", "line"]).reset_index(drop=True)
    want = lines[(lines["strategy"] == "rechallenge") & lines["patient_id"].isin(sub["patient_id"])]
    want = want.sort_values(["patient_id", "line"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, check_categorical=False, rtol=1e-12)


@pytest.mark.parametrize("chunk", [7, 399])
def test_results_do_not_depend_on_chunk_size(default_run, simulate, chunk):
    """The SimPy engine with chunk_size 7 or 399 gives the default run's patients, lines and events frames."""
    model, *frames = default_run
    for got, want in zip(simulate(model, chunk, engine="simpy"), frames):
        pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("chunk", [1, 37])
def test_vectorised_results_do_not_depend_on_chunk_size(default_run, chunk):
    """The vectorised executor with chunks of 1 or 37 patients reproduces the default run's frames."""
    model, *frames = default_run
    rec = simulate_with(model.cohort.iloc[:80], model.strategies, model.therapies, model.rules, model.lifetable,
                        model.seed, engine="vectorised", chunk_size=chunk)
    whole = simulate_with(model.cohort.iloc[:80], model.strategies, model.therapies, model.rules, model.lifetable,
                          model.seed, engine="vectorised")
    for got, want in zip(rec.frames(), whole.frames()):
        pd.testing.assert_frame_equal(got, want)
    lines = frames[1][frames[1]["patient_id"] < 80].reset_index(drop=True)
    pd.testing.assert_frame_equal(whole.frames()[1][lines.columns], lines, rtol=1e-12)


def test_psa_sample_selects_other_streams_and_zero_is_the_base_case(default_run):
    """simulate(sample=0) equals the default; sample=1 draws other uniforms (different PFS), same in both executors."""
    model, *_ = default_run
    args = (model.cohort.iloc[:40], {"switch": model.strategies["switch"]}, model.therapies, model.rules,
            model.lifetable, model.seed)
    base = simulate_with(*args).frames()[1]
    zero = simulate_with(*args, sample=0).frames()[1]
    one = simulate_with(*args, sample=1).frames()[1]
    one_simpy = simulate_with(*args, engine="simpy", sample=1).frames()[1]
    pd.testing.assert_frame_equal(base, zero)
    pd.testing.assert_frame_equal(one, one_simpy, rtol=1e-12)
    first = lambda df: df[df["line"] == 1]["pfs_true"].to_numpy()  # noqa: E731
    assert not np.any(first(base) == first(one))
