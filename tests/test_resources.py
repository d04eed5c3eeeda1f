"""Shared capacity (``resources``, :mod:`sim.resources`) on the SimPy engine.

* With more slots than patients can ever use, nobody waits and the pathways are exactly those of
  the model without the resource (the vectorised executor's), every frame to round-off.
* Direction (common random numbers, one seed): more slots never lengthen the mean wait and do not
  lower mean OS (tolerance: 4 paired Monte Carlo standard errors).
* Little's law on the queue: the time-average queue length equals the arrival rate to the queue
  times the mean wait over the whole run (the queue starts and ends empty; both sides are measured
  separately, the queue length from the resource's queue, the waits from the patients).
* A maximum wait sends the patient to the next line; no wait exceeds it.
* ``pnetsim resources=prrt_uk`` runs on the SimPy engine and writes ``resources.csv``, the queue
  figure and ``wait_months``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import Z, compose_config
from sim.config import build_model
from sim.run.executors import simulate
from sim.units import weeks
from test_cli_errors import run_main
from test_executor_equality import assert_same_frames

#: a busy centre: many arrivals for few slots, so that queues form within a small cohort
BUSY = ["resources=prrt_uk", "resources.arrivals_per_year=600", "experiment.strategies=[prrt]"]


def _run(overrides, n=400):
    m = build_model(compose_config([f"cohort.n={n}", *overrides]))
    rec = simulate(m.cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed, engine=m.engine,
                   centre=m.centre)
    return m, rec


def test_unlimited_capacity_gives_exactly_the_pathways_without_the_resource():
    m, rec = _run(BUSY + ["resources.prrt.slots_per_week=100000", "experiment.strategies=[prrt,switch]"], n=300)
    assert m.engine == "auto" and m.centre is not None
    m0 = build_model(compose_config(["cohort.n=300", "experiment.strategies=[prrt,switch]"]))
    ref = simulate(m0.cohort, m0.strategies, m0.therapies, m0.rules, m0.lifetable, m0.seed, engine="vectorised")
    got = rec.frames()
    assert (got[1]["wait_months"] == 0).all()
    assert not got[2]["event"].isin(["queue_start", "queue_end"]).any()
    assert_same_frames(got, ref.frames(), "unlimited capacity")
    q, = rec.queues
    assert q.strategy == "prrt" and len(q.waits) > 50 and max(q.waits) == 0.0


def test_more_slots_never_lengthen_the_mean_wait_nor_lower_mean_os():
    waits, os_ = [], []
    for slots in (1, 2, 4, 8):
        m, rec = _run(BUSY + [f"resources.prrt.slots_per_week={slots}", "resources.prrt.max_wait_weeks=26"])
        q, = rec.queues
        waits.append(float(np.mean(q.waits)))
        os_.append(rec.frames()[0].set_index("patient_id")["os_months"])
    assert waits[0] > 0.5, waits                      # the busiest centre does queue
    assert all(a >= b for a, b in zip(waits, waits[1:])), waits
    for less, more in zip(os_, os_[1:]):
        d = (more - less).to_numpy()
        se = d.std(ddof=1) / math.sqrt(d.size)
        assert d.mean() >= -Z * se, (d.mean(), se)
    d = (os_[-1] - os_[0]).to_numpy()                   # and a long wait costs life on average
    assert d.mean() > Z * d.std(ddof=1) / math.sqrt(d.size)


def test_littles_law_holds_on_the_queue():
    _, rec = _run(BUSY + ["resources.prrt.slots_per_week=2"])
    q, = rec.queues
    s = q.summary()
    assert s["mean_wait_months"] > 0.5 and s["queue_entries"] > 100
    # queue length integrated from the resource's queue; waits from the patients' own clocks
    assert s["mean_queue_length"] == pytest.approx(s["arrival_rate_per_month"] * s["mean_wait_months"], rel=1e-9)
    assert 0.5 < s["utilisation"] <= 1.0 + 1e-9


def test_a_maximum_wait_sends_the_patient_to_the_next_line():
    _, rec = _run(BUSY + ["resources.prrt.slots_per_week=1", "resources.prrt.max_wait_weeks=4"])
    q, = rec.queues
    assert max(q.waits) <= weeks(4) + 1e-9
    assert q.outcomes.count("max_wait") > 20
    patients, lines, events = rec.frames()
    left = events[(events["event"] == "queue_end") & (events["detail"] == "lu177_dotatate:max_wait")]
    nxt = lines.merge(left[["patient_id", "time", "line"]], on="patient_id", suffixes=("", "_q"))
    nxt = nxt[nxt["line"] == nxt["line_q"] + 1]
    assert len(nxt) == len(left.drop_duplicates("patient_id"))
    # the next line starts when the patient leaves the queue, and it is the strategy's next therapy
    assert np.allclose(nxt["start"], nxt["time"])
    assert set(nxt["therapy"]) <= {"everolimus", "bsc"}


def test_wait_shortens_the_lines_progression_by_the_hazard_it_used():
    """One progression clock: a patient who waited has a PRRT PFS no longer than without the wait
    (same uniform; the untreated hazard used while waiting is taken off), patient by patient."""
    _, rec = _run(BUSY + ["resources.prrt.slots_per_week=2", "resources.prrt.max_wait_weeks=26"])
    _, free = _run(BUSY + ["resources.prrt.slots_per_week=100000"])
    a, b = rec.frames()[1], free.frames()[1]
    key = ["patient_id", "therapy"]
    lu = a[(a["therapy"] == "lu177_dotatate") & (a["wait_months"] > 0)].merge(
        b[b["therapy"] == "lu177_dotatate"], on=key, suffixes=("", "_free"))
    assert len(lu) > 30
    assert (lu["pfs_true"] <= lu["pfs_true_free"] + 1e-9).all()
    assert (lu["pfs_true"] < lu["pfs_true_free"]).mean() > 0.9


@pytest.mark.slow
def test_pnetsim_with_prrt_capacity_writes_waits_and_queue_statistics(tmp_path, capfd):
    root = tmp_path / "out"
    code, out, err = run_main([f"output.root={root}", "output.progress=false", "cohort.n=300",
                               "resources=prrt_uk", "experiment.strategies=[switch,prrt]"], capfd)
    assert code == 0, err[-3000:]
    run, = (root / "default").iterdir()
    table = pd.read_csv(run / "resources.csv")
    assert list(table["strategy"]) == ["prrt"] and table["queue_entries"].iloc[0] > 0
    assert {"utilisation", "mean_wait_months", "p95_wait_months", "mean_queue_length"} <= set(table.columns)
    assert (run / "resource_queue.png").stat().st_size > 0
    assert "wait_months" in pd.read_parquet(run / "lines.parquet").columns
    assert json.loads((run / "manifest.json").read_text())["executor"] == "simpy"
    assert "Shared capacity" in out
