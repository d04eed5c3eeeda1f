"""SimPy engine: one generator process per patient, the reference executor.

Each process walks its patient through a strategy and, whenever the patient reaches a
decision (is the next line given? a holiday first? how does the line go?), calls the
clinical functions shared with the vectorised executor (:func:`sim.strategies.gate`,
:func:`sim.strategies.holiday`, :func:`sim.therapies.line.plan_lines`,
:func:`sim.strategies.after_line`) on a batch of one patient, then yields ``env.timeout``
up to each of the resulting dated events. The engine holds no clinical numbers, and the
clinical logic exists once, so both executors give identical pathways for the same seed.

Without shared resources patients are independent, so each chunk of patients runs in its own
:class:`simpy.Environment` (small event heaps are faster); results do not depend on the chunk
size because every draw comes from the patient's own named streams. With a :class:`~sim.resources.Centre`
(config group ``resources``, e.g. PRRT administration slots) the whole cohort shares one
environment per strategy: patients arrive over time (:func:`sim.resources.arrival_times`), a line
whose therapy needs a slot starts only when a slot is free (the process waits on a
:class:`simpy.PriorityResource` while the disease goes on, :mod:`sim.resources`), each later
administration of its course requests a slot at its date, and the rest of the pathway is resolved
from the date the line actually starts. Times in the output stay measured from each patient's
arrival; the SimPy clock is absolute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import simpy

from sim.events import EVENT_DTYPES, LINE_COLUMNS, PATIENT_COLUMNS, VOCAB, typed_frame
from sim.lifetable import LifeTable
from sim.resources import Centre, QueueMonitor, Resource, arrival_times
from sim.rng import Draws
from sim.strategies import END_REASONS, Pathways, Strategy, after_line, gate, holiday, outcomes, pick
from sim.therapies.definition import Therapy
from sim.therapies.line import (CAUSES, DEATH, HORIZON, PROGRESSION, ModelRules, Patients, disease_rate_now,
                                frailty_z, line_pfs_uniform, plan_lines, progression_hr)


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
    #: one :class:`~sim.resources.QueueMonitor` per (strategy, resource) when the model has resources
    queues: list = field(default_factory=list)

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


class _Shared:
    """The shared resources of one strategy's environment: a SimPy resource and a monitor per
    :class:`~sim.resources.Resource`, the arrival time of every chunk row, and the renamed
    untreated therapy of each (therapy, resource) wait (its streams are ``<purpose>@queue:<therapy>``)."""

    def __init__(self, env: simpy.Environment, centre: Centre, strategy: Strategy, arrival: np.ndarray, therapies):
        self.centre, self.arrival = centre, arrival
        self.slots = {r.name: simpy.PriorityResource(env, capacity=r.slots) for r in centre.resources}
        self.monitors = {r.name: QueueMonitor(r, strategy.name) for r in centre.resources
                         if set(r.therapies) & set(strategy.therapy_names)}
        self._untreated = {}
        self._therapies = therapies

    def untreated(self, therapy: str, res: Resource) -> Therapy:
        t = self._untreated.get(therapy)
        if t is None:
            t = self._untreated[therapy] = replace(self._therapies[res.untreated], name=f"queue:{therapy}")
        return t


def patient_process(env: simpy.Environment, j: int, strategy: Strategy, therapies: Mapping[str, Therapy],
                    rules: ModelRules, pat: Patients, st: Pathways, draws, rec: Records, shared: _Shared | None = None):
    """The pathway of chunk row ``j`` under ``strategy`` (a SimPy generator); its state lives in
    row ``j`` of ``st`` (times measured from the patient's arrival ``t0``: 0 without resources)."""
    pid, sname = int(pat.patient_id[j]), strategy.name
    rows = np.array([j], dtype=np.int64)
    events, lines = rec.events, rec.lines
    terminal = therapies[strategy.lines[-1]]
    t0 = 0.0
    if shared is not None:
        t0 = float(shared.arrival[j])
        yield env.timeout(t0)
    while True:
        p, = pick(strategy, int(st.pos[j]), therapies, pat, rows, st)
        if p.therapy is None:
            events.append((pid, sname, st.now[j], int(st.line[j]), "line_skipped", VOCAB.string(p.detail), math.nan))
            continue
        th = p.therapy
        wait, slot, u_pfs = 0.0, None, None
        if th.kind != "terminal":
            g = gate(strategy, th, pat, rows, st, draws)
            if g.skip[0]:
                events.append((pid, sname, st.now[j], int(st.line[j]), "line_skipped", VOCAB.string(g.detail[0]),
                               math.nan))
            if not g.go[0]:
                continue
            line = int(st.line[j])
            h = holiday(strategy, th, terminal, pat, rows, st, draws, rules.horizon_months)
            if h is not None:
                events.append((pid, sname, float(h.start[0]), line, "holiday_start", th.name, h.months))
                yield _until(env, t0, float(h.stop[0]))
                if h.ends[0]:
                    if h.died[0]:
                        events.append((pid, sname, float(h.stop[0]), line, "death", CAUSES[h.cause[0]], math.nan))
                    break
                events.append((pid, sname, float(h.stop[0]), line, "holiday_end", th.name, h.months))
            res = shared.centre.resource_of(th.name) if shared is not None else None
            if res is not None:
                got = yield from _wait_for_slot(env, t0, j, th, res, shared, therapies, rules, pat, st, draws,
                                                events, pid, sname)
                if got is None:                      # left the queue: next position, or the pathway ended
                    if st.done[j]:
                        break
                    continue
                wait, slot, u_pfs = got
        line = np.array([st.line[j] + 1])
        lb = plan_lines(th, therapies, pat, rows, line, st.now[rows], st.history, draws, u_pfs, rules)
        n = int(line[0])
        if slot is not None:
            env.process(_administrations(env, t0, shared, res, slot, th, float(lb.start[0]),
                                         float(lb.on_treatment_months[0])))
        for t, event, detail, value in lb.row_events(0):
            if t0 + t > env.now:
                yield env.timeout(t0 + t - env.now)
            events.append((pid, sname, t, n, event, detail, value))
        r = lb.row_record(0)
        r["patient_id"], r["strategy"], r["wait_months"] = pid, sname, wait
        lines.append(r)
        after_line(strategy, th, rows, st, lb)
        if st.done[j]:
            break
        if t0 + st.now[j] > env.now:
            yield env.timeout(t0 + float(st.now[j]) - env.now)


def _until(env: simpy.Environment, t0: float, t: float) -> simpy.Timeout:
    """A timeout to pathway time ``t`` (months since the arrival ``t0``; never negative)."""
    return env.timeout(max(0.0, t0 + t - env.now))


def _wait_for_slot(env, t0, j, th, res, shared, therapies, rules, pat, st, draws, events, pid, sname):
    """Queue chunk row ``j`` for a first administration of ``th`` (a sub-generator of
    :func:`patient_process`; :mod:`sim.resources` gives the rules). Returns ``(wait, request,
    u_pfs)`` when the slot comes first: the line starts ``wait`` months after the request
    (``st.now`` moved on) with the progression uniform ``u_pfs = u exp(hr_q H_q(wait))`` (the
    untreated cumulative hazard used while waiting is taken off the line's threshold ``-log u``;
    None when nobody waited), or None when the patient left the queue (``st`` updated: next position, or the
    pathway's end)."""
    rows = np.array([j], dtype=np.int64)
    start = float(st.now[j])
    line_no = int(st.line[j])
    hist = st.history
    q = shared.untreated(th.name, res)
    # the untreated course while waiting, on the line's own progression uniform (one progression
    # clock: hazard used while waiting is hazard the line no longer has); detected progression or death
    u = line_pfs_uniform(draws, th.name, rows, hist.get("count", th.name, rows), pat.z[rows], rules.frailty_rho)
    ql = plan_lines(q, therapies, pat, rows, np.array([line_no + 1]), st.now[rows], hist, draws, u, rules)
    hist.get("count", q.name, rows)
    hist.count[q.name][j] += 1                  # next wait for this therapy reads the next slot
    rate = float(disease_rate_now(pat, rows, hist, rules)[0])
    mon, slots = shared.monitors[res.name], shared.slots[res.name]
    req = slots.request(priority=1)
    asked = env.now
    mon.change(env.now, +1)
    limit = min(start + res.max_wait_months, float(ql.end[0]))
    got = yield req | _until(env, t0, limit)
    mon.change(env.now, -1)
    if req in got:
        wait = env.now - asked
        mon.waits.append(wait)
        mon.outcomes.append("started")
        if wait <= 0:
            return wait, req, None
        hist.disease_used[j] += rate * wait
        st.now[j] = start + wait
        events.append((pid, sname, start, line_no, "queue_start", th.name, math.nan))
        events.append((pid, sname, start + wait, line_no, "queue_end", f"{th.name}:started", wait))
        used = progression_hr(q, therapies, pat, rows, hist, rules) * q.pfs.cumhazard(wait)
        return wait, req, np.minimum(u * np.exp(used), 1.0 - 1e-16)
    if req.triggered:                           # granted at the same instant: give the slot back
        slots.release(req)
    else:
        req.cancel()
    wait = limit - start
    mon.waits.append(wait)
    events.append((pid, sname, start, line_no, "queue_start", th.name, math.nan))
    reason = int(ql.reason[0]) if limit == float(ql.end[0]) else -1
    if reason == DEATH:
        mon.outcomes.append("death")
        events.append((pid, sname, limit, line_no, "death", CAUSES[ql.cause[0]], math.nan))
        _end(st, j, limit, END_REASONS.index("death"), float(ql.death[0]), int(ql.cause[0]))
        return None
    if reason == HORIZON:
        mon.outcomes.append("horizon")
        _end(st, j, limit, END_REASONS.index("horizon"), math.inf, 0)
        return None
    outcome = "progression" if reason == PROGRESSION else "max_wait"
    mon.outcomes.append(outcome)
    events.append((pid, sname, limit, line_no, "queue_end", f"{th.name}:{outcome}", wait))
    hist.disease_used[j] += rate * wait
    if reason == PROGRESSION:                    # a detected progression, counted like one on a line
        k = st.n_prog[j]
        if k == 0:
            st.prog1[j] = limit
        elif k == 1:
            st.prog2[j] = limit
        st.n_prog[j] = k + 1
    st.now[j] = limit
    st.pos[j] += 1
    return None


def _end(st: Pathways, j: int, now: float, reason: int, death: float, cause: int) -> None:
    st.now[j], st.done[j], st.end[j], st.death_time[j], st.cause[j] = now, True, reason, death, cause


def _administrations(env, t0, shared, res, first, th, start, on_treatment):
    """The slots of a started course: the first administration holds the granted request
    ``first`` for ``res.slot_months``; each later one (every ``th.dose_interval_months`` while on
    treatment, up to ``th.doses``) requests a slot at its date ahead of new patients (priority 0;
    a delay is counted, the clinical course keeps its dates). A therapy without a fixed course
    needs one slot, at its start."""
    mon, slots = shared.monitors[res.name], shared.slots[res.name]
    mon.served(env.now, res.slot_months)
    yield env.timeout(res.slot_months)
    slots.release(first)
    k = 1
    while th.doses is not None and k < th.doses and k * th.dose_interval_months < on_treatment:
        yield _until(env, t0, start + k * th.dose_interval_months)
        req = slots.request(priority=0)
        asked = env.now
        yield req
        mon.cycle_delays.append(env.now - asked)
        mon.served(env.now, res.slot_months)
        yield env.timeout(res.slot_months)
        slots.release(req)
        k += 1


def _patient_rows(pat: Patients, st: Pathways, rows: np.ndarray, sname: str, horizon: float) -> list[dict]:
    out = outcomes(st, horizon)
    return [dict(patient_id=int(pat.patient_id[j]), strategy=sname, os_months=float(out["os_months"][j]),
                 death=bool(out["death"][j]), death_cause=CAUSES[out["death_cause"][j]],
                 pfs1_months=float(out["pfs1_months"][j]), pfs1_event=bool(out["pfs1_event"][j]),
                 pfs2_months=float(out["pfs2_months"][j]), pfs2_event=bool(out["pfs2_event"][j]),
                 n_lines=int(out["n_lines"][j]), end_reason=END_REASONS[out["end_reason"][j]]) for j in rows]


def simulate(cohort: pd.DataFrame, strategies: Mapping[str, Strategy], therapies: Mapping[str, Therapy],
             rules: ModelRules, lifetable: LifeTable, seed: int, chunk_size: int = 500, progress=None,
             sample: int = 0, centre: Centre | None = None) -> Records:
    """Simulate every patient of ``cohort`` under every strategy (common random numbers).

    ``progress`` is an optional callable receiving the number of patients just finished;
    ``sample`` selects the random streams of a PSA sample (keyed by (seed, name, sample);
    0 is the base case). With ``centre`` (shared resources) the whole cohort is one chunk
    (patients interact), arriving in patient-id order (stream ``arrival`` slot 0), and
    ``Records.queues`` holds the queue statistics.
    """
    rec = Records()
    n = len(cohort)
    step = n if centre is not None else chunk_size
    for a in range(0, n, max(step, 1)):
        chunk = cohort.iloc[a:a + step]
        pat, draws = prepare_chunk(chunk, rules, lifetable, seed, sample)
        arrival = None
        if centre is not None:
            order = np.argsort(pat.patient_id, kind="stable")
            arrival = np.empty(pat.n)
            arrival[order] = arrival_times(draws["arrival"][:, 0][order], centre.arrivals_per_month)
        for strategy in strategies.values():
            env = simpy.Environment()
            st = Pathways(pat)
            shared = None if centre is None else _Shared(env, centre, strategy, arrival, therapies)
            for j in range(pat.n):
                env.process(patient_process(env, j, strategy, therapies, rules, pat, st, draws, rec, shared))
            env.run()
            rec.patients += _patient_rows(pat, st, range(pat.n), strategy.name, rules.horizon_months)
            if shared is not None:
                rec.queues += list(shared.monitors.values())
        if progress is not None:
            progress(pat.n)
    return rec
