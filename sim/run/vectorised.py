"""Vectorised executor: the model of :mod:`sim.run.engine` run over arrays of patients.

Same signature and same output frames as :func:`sim.run.engine.simulate`. For each chunk of the
cohort and each strategy, one pass over the strategy's positions ``0 .. L-1`` processes at
once every patient whose pathway is still running at that position (a patient's position
only moves forward), calling the clinical functions shared with the SimPy engine
(:func:`sim.kernel.pathway.gate`, :func:`sim.kernel.pathway.holiday`,
:func:`sim.kernel.line.plan_lines`, :func:`sim.kernel.pathway.after_line`). Both executors
read the same named streams at the same slots, so for the same seed they give the same
pathways (floats to round-off).

Valid because no patient affects another in the shipped model (no shared resources, no
capacity queues); see :mod:`sim.run.executors`.

Row order of the frames: strategy (in the order given), patient id, line; a patient's events
by position in the strategy, then (skip, holiday start, holiday end or death during it, the
line's events in time order with the fixed tie order of
:class:`~sim.kernel.line.LineBatch`) -- the order in which the SimPy engine appends them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sim.run.chunk import prepare_chunk
from sim.events import EVENT_CODE, VOCAB
from sim.lifetable import LifeTable
from sim.run.record import RunRecord, patient_ranks, row_key
from sim.kernel.pathway import Pathways, after_line, gate, holiday, outcomes, pick
from sim.strategies import Strategy
from sim.therapies.definition import Therapy
from sim.kernel.line import CAUSES, ModelRules, plan_lines

#: default patients per chunk: bounds memory (~15 streams x 32 uniforms x 8 bytes per patient)
CHUNK = 20_000
#: event order within a patient: position in the strategy x _SEQ + rank within the position
_SEQ = 1 << 12


#: position of a jump to the terminal line while strategies of different lengths share a state
_TERMINAL = 1 << 30


def _share_key(strategy: Strategy, i: int) -> tuple:
    """Strategies with equal keys at position ``i`` give every patient the same pathway up to
    and including position ``i``: same lines so far, same rules, same terminal therapy (the
    holiday death hazard); whether position ``i`` is the terminal one is part of the key."""
    return (strategy.lines[:i + 1], i == strategy.terminal_index, strategy.lines[-1], strategy.skip_ineligible,
            strategy.after_toxicity, strategy.max_active_lines, tuple(sorted(strategy.holiday_months.items())),
            tuple(sorted(strategy.uptake.items())), tuple(sorted((strategy.after_decline or {}).items())))


def _run_tree(members: list, i: int, st: Pathways, therapies, rules, pat, draws, order, bufs) -> None:
    """Positions ``i, i+1, ...`` of the strategies ``members`` (``(rank, strategy)`` pairs) that
    share their pathways up to position ``i - 1``, from the common state ``st``.

    Members are grouped by :func:`_share_key` at ``i``; each group continues from its own copy
    of the state (the last group takes ``st`` itself), so a common prefix of lines is simulated
    once, and its records are written once per member strategy. Patients sent to the terminal
    line while members of different lengths share the state wait at position :data:`_TERMINAL`.
    """
    groups: dict[tuple, list] = {}
    for si, s in members:
        groups.setdefault(_share_key(s, i), []).append((si, s))
    for g, grp in enumerate(groups.values()):
        state = st if g == len(groups) - 1 else st.copy()
        strategy = grp[0][1]
        last = i == strategy.terminal_index
        if last:
            state.pos[state.pos == _TERMINAL] = i
        terminal = i if last else (strategy.terminal_index if len(grp) == 1 else _TERMINAL)
        if len(grp) == 1 and not last:
            state.pos[state.pos == _TERMINAL] = strategy.terminal_index
        _step(grp, i, state, terminal, therapies, rules, pat, draws, order, bufs)
        if last:
            out = outcomes(state, rules.horizon_months)
            for si, _ in grp:
                bufs[0].add(patient_id=pat.patient_id, rank=np.full(pat.n, si), key=row_key(si, order, 0), **out)
        else:
            _run_tree(grp, i + 1, state, therapies, rules, pat, draws, order, bufs)


def _step(grp: list, i: int, st: Pathways, terminal: int, therapies, rules, pat, draws, order, bufs) -> None:
    """Position ``i`` for every patient of the chunk still at it, under the equivalent
    strategies ``grp``; its records are added once per strategy of ``grp``. On a choice line
    the patients are split by the therapy :func:`~sim.kernel.pathway.pick` offers them."""
    strategy = grp[0][1]
    rows = np.flatnonzero((st.pos == i) & ~st.done)
    if rows.size == 0:
        return
    for p in pick(strategy, i, therapies, pat, rows, st, terminal):
        if p.therapy is None:
            _skips(grp, i, st, pat, order, bufs, p.rows, np.full(p.rows.size, p.detail))
        else:
            _give(grp, i, st, terminal, p.therapy, p.rows, therapies, rules, pat, draws, order, bufs)


def _skips(grp, i, st, pat, order, bufs, r, detail) -> None:
    """``line_skipped`` events of the patients ``r`` at position ``i`` (one set per strategy of ``grp``)."""
    for si, _ in grp:
        bufs[2].add(pid=pat.patient_id[r], time=st.now[r], line=st.line[r],
                    code=np.full(r.size, EVENT_CODE["line_skipped"]), detail=detail, value=np.full(r.size, np.nan),
                    rank=np.full(r.size, si), key=row_key(si, order[r], i * _SEQ))


def _give(grp, i, st, terminal, th, rows, therapies, rules, pat, draws, order, bufs) -> None:
    """Therapy ``th`` at position ``i`` for the patients ``rows``: gate, holiday, the line, booking."""
    buf_l, buf_e = bufs[1], bufs[2]
    strategy = grp[0][1]
    horizon = rules.horizon_months
    pid = pat.patient_id
    ranks = [si for si, _ in grp]
    if th.kind != "terminal":
        g = gate(strategy, th, pat, rows, st, draws, terminal)
        if g.skip.any():
            _skips(grp, i, st, pat, order, bufs, rows[g.skip], g.detail[g.skip])
        rows = rows[g.go]
        if rows.size == 0:
            return
        line_before = st.line[rows]
        h = holiday(strategy, th, therapies[strategy.lines[-1]], pat, rows, st, draws, horizon)
        if h is not None:
            m = rows.size
            cause_code = np.array([0] + [VOCAB.code(c) for c in CAUSES[1:]])[h.cause]
            shown = h.died | ~h.ends
            for si in ranks:
                buf_e.add(pid=pid[rows], time=h.start, line=line_before, code=np.full(m, EVENT_CODE["holiday_start"]),
                          detail=np.full(m, VOCAB.code(th.name)), value=np.full(m, h.months),
                          rank=np.full(m, si), key=row_key(si, order[rows], i * _SEQ + 1))
                buf_e.add(pid=pid[rows][shown], time=h.stop[shown], line=line_before[shown],
                          code=np.where(h.died, EVENT_CODE["death"], EVENT_CODE["holiday_end"])[shown],
                          detail=np.where(h.died, cause_code, VOCAB.code(th.name))[shown],
                          value=np.where(h.died, np.nan, h.months)[shown],
                          rank=np.full(int(shown.sum()), si), key=row_key(si, order[rows][shown], i * _SEQ + 2))
            rows = rows[~h.ends]
            if rows.size == 0:
                return
    line = st.line[rows] + 1
    lb = plan_lines(th, therapies, pat, rows, line, st.now[rows], st.history, draws, None, rules)
    m = rows.size
    rr = lb.ev_row
    for si in ranks:
        buf_l.add(line=line, therapy=np.full(m, VOCAB.code(th.name)), start=lb.start, end=lb.end, reason=lb.reason,
                  pfs_true=lb.pfs_true, progression_true=lb.progression_true,
                  progression_detected=lb.progression_detected, pfs_months=lb.pfs_months,
                  on_treatment_months=lb.on_treatment_months, dose_intensity=lb.dose_intensity,
                  response=lb.response, n_ae=lb.n_ae, ae_types=lb.ae_types, n_scans=lb.n_scans,
                  unscheduled_scans=lb.unscheduled_scans, time_ratio=lb.time_ratio, syndrome=lb.syndrome,
                  wait_months=np.zeros(m),
                  patient_id=pid[rows],
                  rank=np.full(m, si), key=row_key(si, order[rows], line))
        buf_e.add(pid=pid[rows][rr], time=lb.ev_time, line=line[rr], code=lb.ev_code, detail=lb.ev_detail,
                  value=lb.ev_value, rank=np.full(rr.size, si), key=row_key(si, order[rows][rr], i * _SEQ + 3 + lb.ev_pos))
    after_line(strategy, th, rows, st, lb, terminal)


def simulate_vectorised(cohort: pd.DataFrame, strategies: Mapping[str, Strategy], therapies: Mapping[str, Therapy],
                        rules: ModelRules, lifetable: LifeTable, seed: int, chunk_size: int | None = None,
                        progress=None, sample: int = 0) -> RunRecord:
    """Simulate every patient of ``cohort`` under every strategy, vectorised over patients.

    Same model, streams and output as :func:`sim.run.engine.simulate`. ``chunk_size`` patients
    are processed at once (default :data:`CHUNK`; results do not depend on it);
    ``progress`` is an optional callable receiving the number of patients just finished;
    ``sample`` selects the random streams of a PSA sample (0: base case).
    """
    chunk_size = CHUNK if chunk_size is None else int(chunk_size)
    rec = RunRecord(list(strategies))
    bufs = (rec.patients, rec.lines, rec.events)
    n = len(cohort)
    rank_of = patient_ranks(cohort["patient_id"].to_numpy(np.int64))
    members = list(enumerate(strategies.values()))
    for a in range(0, n, chunk_size):
        chunk = cohort.iloc[a:a + chunk_size]
        pat, draws = prepare_chunk(chunk, rules, lifetable, seed, sample)
        _run_tree(members, 0, Pathways(pat), therapies, rules, pat, draws, rank_of[a:a + chunk_size], bufs)
        if progress is not None:
            progress(pat.n)
    return rec
