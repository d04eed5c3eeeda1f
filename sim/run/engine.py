"""SimPy engine: one generator process per patient, the reference executor.

Each process walks its patient through a strategy and, whenever the patient reaches a
decision (is the next line given? a holiday first? how does the line go?), calls the
clinical functions shared with the vectorised executor (:func:`sim.kernel.pathway.gate`,
:func:`sim.kernel.pathway.holiday`, :func:`sim.kernel.line.plan_lines`,
:func:`sim.kernel.pathway.after_line`) on a batch of one patient, then yields ``env.timeout``
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
from dataclasses import replace

import numpy as np
import pandas as pd
import simpy

from sim.events import EVENT_CODE, VOCAB
from sim.kernel.line import CAUSES, ModelRules, Patients, plan_lines
from sim.kernel.pathway import Pathways, after_line, gate, holiday, outcomes, pick
from sim.kernel.waiting import begin_wait, leave_wait, start_after_wait
from sim.lifetable import LifeTable
from sim.resources import Centre, QueueMonitor, Resource, arrival_times
from sim.run.chunk import prepare_chunk
from sim.run.record import LINE_FIELDS, RunRecord, patient_ranks, row_key
from sim.strategies import Strategy
from sim.therapies.definition import Therapy


class _Log:
    """The rows one strategy's environment writes, as Python lists of codes, turned into
    :class:`~sim.run.record.RunRecord` columns once the environment has run (:meth:`flush`)."""

    def __init__(self):
        self.ev: list[tuple] = []        # (row, time, line, event code, detail code, value)
        self.lines: list[tuple] = []     # (row, LineBatch, wait)

    def event(self, j: int, t: float, line: int, event: str, detail: int, value: float) -> None:
        self.ev.append((j, float(t), int(line), EVENT_CODE[event], int(detail), float(value)))

    def flush(self, rec: RunRecord, rank: int, pat: Patients, order: np.ndarray, st: Pathways,
              horizon: float) -> None:
        """Append the environment's patients, lines and events (strategy ``rank``; ``order``: the
        chunk rows' patient ranks) to ``rec``. A patient's events keep the order they happened in:
        the sequence number of :func:`~sim.run.record.row_key` is their position among the patient's."""
        out = outcomes(st, horizon)
        rec.patients.add(patient_id=pat.patient_id, rank=np.full(pat.n, rank), key=row_key(rank, order, 0), **out)
        if self.lines:
            rows = np.array([j for j, _, _ in self.lines], np.int64)
            cols = {c: np.array([getattr(lb, c)[0] for _, lb, _ in self.lines]) for c in _LINE_BATCH_FIELDS}
            rec.lines.add(**cols, therapy=np.array([VOCAB.code(lb.therapy) for _, lb, _ in self.lines], np.int64),
                          wait_months=np.array([w for _, _, w in self.lines], float),
                          patient_id=pat.patient_id[rows], rank=np.full(rows.size, rank),
                          key=row_key(rank, order[rows], cols["line"]))
        if self.ev:
            j, t, line, code, detail, value = (np.array(x) for x in zip(*self.ev))
            j = j.astype(np.int64)
            by = np.argsort(j, kind="stable")        # per patient, in the order appended
            first = np.searchsorted(j[by], j[by])
            seq = np.empty(j.size, np.int64)
            seq[by] = np.arange(j.size) - first
            rec.events.add(pid=pat.patient_id[j], time=t.astype(float), line=line.astype(np.int64),
                           code=code.astype(np.int64), detail=detail.astype(np.int64), value=value.astype(float),
                           rank=np.full(j.size, rank), key=row_key(rank, order[j], seq))


#: columns of ``lines`` taken from the :class:`~sim.kernel.line.LineBatch` of the line
_LINE_BATCH_FIELDS = tuple(c for c in LINE_FIELDS if c not in ("therapy", "wait_months", "patient_id", "rank", "key"))


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
                    rules: ModelRules, pat: Patients, st: Pathways, draws, log: _Log, shared: _Shared | None = None):
    """The pathway of chunk row ``j`` under ``strategy`` (a SimPy generator); its state lives in
    row ``j`` of ``st`` (times measured from the patient's arrival ``t0``: 0 without resources)."""
    rows = np.array([j], dtype=np.int64)
    terminal = therapies[strategy.lines[-1]]
    t0 = 0.0
    if shared is not None:
        t0 = float(shared.arrival[j])
        yield env.timeout(t0)
    while True:
        p, = pick(strategy, int(st.pos[j]), therapies, pat, rows, st)
        if p.therapy is None:
            log.event(j, st.now[j], st.line[j], "line_skipped", p.detail, math.nan)
            continue
        th = p.therapy
        wait, slot, u_pfs = 0.0, None, None
        if th.kind != "terminal":
            g = gate(strategy, th, pat, rows, st, draws)
            if g.skip[0]:
                log.event(j, st.now[j], st.line[j], "line_skipped", g.detail[0], math.nan)
            if not g.go[0]:
                continue
            line = int(st.line[j])
            h = holiday(strategy, th, terminal, pat, rows, st, draws, rules.horizon_months)
            if h is not None:
                log.event(j, h.start[0], line, "holiday_start", VOCAB.code(th.name), h.months)
                yield _until(env, t0, float(h.stop[0]))
                if h.ends[0]:
                    if h.died[0]:
                        log.event(j, h.stop[0], line, "death", VOCAB.code(CAUSES[h.cause[0]]), math.nan)
                    break
                log.event(j, h.stop[0], line, "holiday_end", VOCAB.code(th.name), h.months)
            res = shared.centre.resource_of(th.name) if shared is not None else None
            if res is not None:
                got = yield from _wait_for_slot(env, t0, j, th, res, shared, therapies, rules, pat, st, draws, log)
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
        sel = np.argsort(lb.ev_pos, kind="stable")          # the line's events in output order
        for t, code, detail, value in zip(lb.ev_time[sel].tolist(), lb.ev_code[sel].tolist(),
                                          lb.ev_detail[sel].tolist(), lb.ev_value[sel].tolist()):
            if t0 + t > env.now:
                yield env.timeout(t0 + t - env.now)
            log.ev.append((j, t, n, code, detail, value))
        log.lines.append((j, lb, wait))
        after_line(strategy, th, rows, st, lb)
        if st.done[j]:
            break
        if t0 + st.now[j] > env.now:
            yield env.timeout(t0 + float(st.now[j]) - env.now)


def _until(env: simpy.Environment, t0: float, t: float) -> simpy.Timeout:
    """A timeout to pathway time ``t`` (months since the arrival ``t0``; never negative)."""
    return env.timeout(max(0.0, t0 + t - env.now))


def _wait_for_slot(env, t0, j, th, res, shared, therapies, rules, pat, st, draws, log):
    """Queue chunk row ``j`` for a first administration of ``th`` (a sub-generator of
    :func:`patient_process`; the rules: :mod:`sim.resources`, what the wait does to the patient:
    :mod:`sim.kernel.waiting`). Returns ``(wait, request, u_pfs)`` when the slot comes first (the
    line starts ``wait`` months after the request with the progression uniform ``u_pfs``, None when
    nobody waited), or None when the patient left the queue (next position, or the pathway's end)."""
    w = begin_wait(th, shared.untreated(th.name, res), therapies, pat, j, st, draws, rules)
    line_no = int(st.line[j])
    mon, slots = shared.monitors[res.name], shared.slots[res.name]
    req = slots.request(priority=1)
    asked = env.now
    mon.change(env.now, +1)
    limit = min(w.start + res.max_wait_months, w.course_end)
    got = yield req | _until(env, t0, limit)
    mon.change(env.now, -1)
    if req in got:
        wait = env.now - asked
        mon.waits.append(wait)
        mon.outcomes.append("started")
        u_pfs = start_after_wait(w, wait, therapies, pat, st, rules)
        if u_pfs is not None:
            log.event(j, w.start, line_no, "queue_start", VOCAB.code(th.name), math.nan)
            log.event(j, w.start + wait, line_no, "queue_end", VOCAB.code(f"{th.name}:started"), wait)
        return wait, req, u_pfs
    if req.triggered:                           # granted at the same instant: give the slot back
        slots.release(req)
    else:
        req.cancel()
    mon.waits.append(limit - w.start)
    log.event(j, w.start, line_no, "queue_start", VOCAB.code(th.name), math.nan)
    outcome = leave_wait(w, limit, st)
    mon.outcomes.append(outcome)
    if outcome == "death":
        log.event(j, limit, line_no, "death", VOCAB.code(CAUSES[w.course.cause[0]]), math.nan)
    elif outcome != "horizon":
        log.event(j, limit, line_no, "queue_end", VOCAB.code(f"{th.name}:{outcome}"), limit - w.start)
    return None


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


def simulate(cohort: pd.DataFrame, strategies: Mapping[str, Strategy], therapies: Mapping[str, Therapy],
             rules: ModelRules, lifetable: LifeTable, seed: int, chunk_size: int = 500, progress=None,
             sample: int = 0, centre: Centre | None = None) -> RunRecord:
    """Simulate every patient of ``cohort`` under every strategy (common random numbers).

    ``progress`` is an optional callable receiving the number of patients just finished;
    ``sample`` selects the random streams of a PSA sample (keyed by (seed, name, sample);
    0 is the base case). With ``centre`` (shared resources) the whole cohort is one chunk
    (patients interact), arriving in patient-id order (stream ``arrival`` slot 0), and
    ``RunRecord.queues`` holds the queue statistics.
    """
    rec = RunRecord(list(strategies))
    n = len(cohort)
    rank_of = patient_ranks(cohort["patient_id"].to_numpy(np.int64))
    step = max(n if centre is not None else chunk_size, 1)
    for a in range(0, n, step):
        chunk = cohort.iloc[a:a + step]
        pat, draws = prepare_chunk(chunk, rules, lifetable, seed, sample)
        arrival = None
        if centre is not None:
            order = np.argsort(pat.patient_id, kind="stable")
            arrival = np.empty(pat.n)
            arrival[order] = arrival_times(draws["arrival"][:, 0][order], centre.arrivals_per_month)
        for rank, strategy in enumerate(strategies.values()):
            env = simpy.Environment()
            st = Pathways(pat)
            log = _Log()
            shared = None if centre is None else _Shared(env, centre, strategy, arrival, therapies)
            for j in range(pat.n):
                env.process(patient_process(env, j, strategy, therapies, rules, pat, st, draws, log, shared))
            env.run()
            log.flush(rec, rank, pat, rank_of[a:a + step], st, rules.horizon_months)
            if shared is not None:
                rec.queues += list(shared.monitors.values())
        if progress is not None:
            progress(pat.n)
    return rec
