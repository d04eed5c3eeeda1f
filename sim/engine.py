"""SimPy engine: one generator process per patient, the reference executor.

Each process walks its patient through a strategy and, whenever the patient reaches a
decision (is the next line given? a holiday first? how does the line go?), calls the
clinical functions shared with the vectorised executor (:func:`sim.strategies.gate`,
:func:`sim.strategies.holiday`, :func:`sim.therapies.line.plan_lines`,
:func:`sim.strategies.after_line`) on a batch of one patient, then yields ``env.timeout``
up to each of the resulting dated events. The engine holds no clinical numbers, and the
clinical logic exists once, so both executors give identical pathways for the same seed.

Patients do not share resources in the shipped model, so each chunk of patients runs in
its own :class:`simpy.Environment` (small event heaps are faster); results do not depend
on the chunk size because every draw comes from the patient's own named streams. A model
with shared resources (e.g. PRRT slots) would make start times depend on the clock and
must run here, not in :mod:`sim.vectorised`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from sim.events import EVENT_DTYPES, LINE_COLUMNS, PATIENT_COLUMNS, VOCAB, typed_frame
from sim.lifetable import LifeTable
from sim.rng import Draws
from sim.strategies import END_REASONS, Pathways, Strategy, after_line, gate, holiday, outcomes, pick
from sim.therapies.definition import Therapy
from sim.therapies.line import CAUSES, ModelRules, Patients, frailty_z, plan_lines



def sort_frames(patients: pd.DataFrame, lines: pd.DataFrame, events: pd.DataFrame, order: list[str]):
    """Frames in the output order: strategy (in ``order``), patient, line; a patient's events
    keep their order (chronological, ties as produced by the executor)."""
    rank = {s: i for i, s in enumerate(order)}
    out = []
    for df, by_line in ((patients, False), (lines, True), (events, False)):
        if len(df):
            key = ["_rank", "patient_id"] + (["line"] if by_line else [])
            df = (df.assign(_rank=df["strategy"].map(rank)).sort_values(key, kind="stable")
                  .drop(columns="_rank").reset_index(drop=True))
        out.append(df)
    return tuple(out)


@dataclass
class Records:
    """Row buffers of the three output tables."""

    patients: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    events: list = field(default_factory=list)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Frames in a fixed order (strategy as first simulated, patient, line; events in time order
        within a patient), independent of the order in which the event heap finished the processes.
        Columns and dtypes: :data:`sim.events.PATIENT_COLUMNS`, :data:`~sim.events.LINE_COLUMNS`,
        :data:`~sim.events.EVENT_DTYPES`."""
        p = typed_frame(self.patients, PATIENT_COLUMNS)
        ln = typed_frame(self.lines, LINE_COLUMNS)
        ev = typed_frame(self.events, EVENT_DTYPES)
        return sort_frames(p, ln, ev, list(pd.unique(p["strategy"])) if len(p) else [])


def prepare_chunk(chunk: pd.DataFrame, rules: ModelRules, lifetable: LifeTable, seed: int, sample: int = 0):
    """Baseline arrays and named streams of one chunk: frailty ``z`` (stream ``frailty``
    slot 0), absolute other-cause death time (stream ``background_death`` slot 0) and the
    threshold ``E = -log u`` of the disease-death clock (stream ``disease_death`` slot 0)."""
    pat = Patients(chunk, rules)
    draws = Draws.for_ids(seed, pat.patient_id, sample)
    pat.z = frailty_z(draws["frailty"][:, 0])
    pat.death_bg = lifetable.death_time_months(chunk["age"].to_numpy(float), chunk["sex"].astype(str).to_numpy(),
                                               draws["background_death"][:, 0])
    pat.disease_clock = -np.log(draws["disease_death"][:, 0])
    return pat, draws


def patient_process(env: simpy.Environment, j: int, strategy: Strategy, therapies: Mapping[str, Therapy],
                    rules: ModelRules, pat: Patients, st: Pathways, draws, rec: Records):
    """The pathway of chunk row ``j`` under ``strategy`` (a SimPy generator); its state lives in
    row ``j`` of ``st``."""
    pid, sname = int(pat.patient_id[j]), strategy.name
    rows = np.array([j], dtype=np.int64)
    events, lines = rec.events, rec.lines
    terminal = therapies[strategy.lines[-1]]
    while True:
        p, = pick(strategy, int(st.pos[j]), therapies, pat, rows, st)
        if p.therapy is None:
            events.append((pid, sname, env.now, int(st.line[j]), "line_skipped", VOCAB.string(p.detail), math.nan))
            continue
        th = p.therapy
        if th.kind != "terminal":
            g = gate(strategy, th, pat, rows, st, draws)
            if g.skip[0]:
                events.append((pid, sname, env.now, int(st.line[j]), "line_skipped", VOCAB.string(g.detail[0]),
                               math.nan))
            if not g.go[0]:
                continue
            line = int(st.line[j])
            h = holiday(strategy, th, terminal, pat, rows, st, draws, rules.horizon_months)
            if h is not None:
                events.append((pid, sname, env.now, line, "holiday_start", th.name, h.months))
                yield env.timeout(float(h.stop[0]) - env.now)
                if h.ends[0]:
                    if h.died[0]:
                        events.append((pid, sname, env.now, line, "death", CAUSES[h.cause[0]], math.nan))
                    break
                events.append((pid, sname, env.now, line, "holiday_end", th.name, h.months))
        line = np.array([st.line[j] + 1])
        lb = plan_lines(th, therapies, pat, rows, line, st.now[rows], st.history, draws, None, rules)
        n = int(line[0])
        for t, event, detail, value in lb.row_events(0):
            if t > env.now:
                yield env.timeout(t - env.now)
            events.append((pid, sname, t, n, event, detail, value))
        r = lb.row_record(0)
        r["patient_id"], r["strategy"] = pid, sname
        lines.append(r)
        after_line(strategy, th, rows, st, lb)
        if st.done[j]:
            break
        if st.now[j] > env.now:
            yield env.timeout(float(st.now[j]) - env.now)


def _patient_rows(pat: Patients, st: Pathways, rows: np.ndarray, sname: str, horizon: float) -> list[dict]:
    out = outcomes(st, horizon)
    return [dict(patient_id=int(pat.patient_id[j]), strategy=sname, os_months=float(out["os_months"][j]),
                 death=bool(out["death"][j]), death_cause=CAUSES[out["death_cause"][j]],
                 pfs1_months=float(out["pfs1_months"][j]), pfs1_event=bool(out["pfs1_event"][j]),
                 pfs2_months=float(out["pfs2_months"][j]), pfs2_event=bool(out["pfs2_event"][j]),
                 n_lines=int(out["n_lines"][j]), end_reason=END_REASONS[out["end_reason"][j]]) for j in rows]


def simulate(cohort: pd.DataFrame, strategies: Mapping[str, Strategy], therapies: Mapping[str, Therapy],
             rules: ModelRules, lifetable: LifeTable, seed: int, chunk_size: int = 500, progress=None,
             sample: int = 0) -> Records:
    """Simulate every patient of ``cohort`` under every strategy (common random numbers).

    ``progress`` is an optional callable receiving the number of patients just finished;
    ``sample`` selects the random streams of a PSA sample (keyed by (seed, name, sample);
    0 is the base case).
    """
    rec = Records()
    n = len(cohort)
    for a in range(0, n, chunk_size):
        chunk = cohort.iloc[a:a + chunk_size]
        pat, draws = prepare_chunk(chunk, rules, lifetable, seed, sample)
        for strategy in strategies.values():
            env = simpy.Environment()
            st = Pathways(pat)
            for j in range(pat.n):
                env.process(patient_process(env, j, strategy, therapies, rules, pat, st, draws, rec))
            env.run()
            rec.patients += _patient_rows(pat, st, range(pat.n), strategy.name, rules.horizon_months)
        if progress is not None:
            progress(pat.n)
    return rec
