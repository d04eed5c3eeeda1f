"""A patient's way through a strategy: the steps both executors take, over arrays of patients.

:class:`Pathways` holds the state of a chunk's pathways under one strategy; at a strategy
position, :func:`pick` says which therapy each patient is offered (a choice line's first rule
that fits, :func:`condition_mask`), :func:`gate` whether the line is given (cap, eligibility,
uptake), :func:`holiday` the treatment holiday before it, and after the line (resolved by
:func:`sim.kernel.line.plan_lines`) :func:`after_line` books it and moves the patient on;
:func:`outcomes` gives the per-patient outcome columns. The vectorised executor applies each step
to every patient at a position at once, the SimPy engine to one patient when its process reaches
it. Strategies themselves (lines, choice lines, rules) are data: :mod:`sim.strategies`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim.events import VOCAB
from sim.kernel.line import (DEATH, DISEASE, HORIZON, OTHER, PROGRESSION, TOXICITY, TREATMENT, History,
                             LineBatch, Patients, eligibility, stream)
from sim.strategies import HISTORY_KEYS, NUMERIC_OPS, Choice, Condition, Strategy
from sim.therapies.definition import Therapy


#: ``end_reason`` codes of a pathway (0: still running)
END_REASONS = ("", "death", "horizon")


class Pathways:
    """State of the pathways of a chunk's patients under one strategy (arrays over the chunk).

    ``pos`` (position in ``strategy.lines``), ``now`` (clock, months), ``line`` (lines given),
    ``active`` (active lines given), ``done``, ``death_time`` (inf if alive), ``cause``
    (:data:`~sim.kernel.line.CAUSES` code), ``end`` (:data:`END_REASONS` code), ``n_prog``
    and ``prog1``, ``prog2`` (times of the first two detected progressions or deaths on a
    non-terminal line) and ``history``.
    """

    def __init__(self, pat: Patients):
        n = pat.n
        self.pos = np.zeros(n, np.int64)
        self.now = np.zeros(n)
        self.line = np.zeros(n, np.int64)
        self.active = np.zeros(n, np.int64)
        self.done = np.zeros(n, bool)
        self.death_time = np.full(n, math.inf)
        self.cause = np.zeros(n, np.int64)
        self.end = np.zeros(n, np.int64)
        self.n_prog = np.zeros(n, np.int64)
        self.prog1 = np.full(n, math.inf)
        self.prog2 = np.full(n, math.inf)
        self.history = History(n, pat.prior)

    def copy(self) -> "Pathways":
        """An independent copy (arrays and history copied)."""
        return copy.deepcopy(self)


@dataclass
class Gate:
    """Outcome of :func:`gate` for the batch rows: ``go`` (the line is given) and the
    ``line_skipped`` events (``skip`` mask, ``detail`` vocabulary codes)."""

    go: np.ndarray
    skip: np.ndarray
    detail: np.ndarray


def gate(strategy: Strategy, therapy: Therapy, pat: Patients, rows: np.ndarray, st: Pathways, draws,
         terminal_pos: int | None = None) -> Gate:
    """Whether the patients ``rows`` at a non-terminal position receive ``therapy`` now.

    In order: the cap ``max_active_lines`` sends them to the terminal line (no event); an
    ineligible patient (:func:`~sim.kernel.line.eligibility`) skips the line (event
    ``line_skipped``) to the next position, or to the terminal line if ``skip_ineligible`` is
    false; an eligible patient declines with probability ``1 - uptake`` (``u >= uptake``,
    stream ``uptake@<therapy>`` at slot = earlier exposures to it; event ``line_skipped``
    ``<therapy>:not_taken``) and moves to the next position (the terminal line if
    ``after_decline`` is terminal). Positions of patients not going are updated in ``st``.
    ``terminal_pos`` is the position a jump to the terminal line goes to (default: the
    strategy's last position).
    """
    m = rows.size
    term = strategy.terminal_index if terminal_pos is None else terminal_pos
    pos = st.pos[rows]
    capped = np.zeros(m, bool)
    if strategy.max_active_lines is not None:
        capped = st.active[rows] >= strategy.max_active_lines
    why = eligibility(therapy, pat, rows, st.history)
    why[capped] = 0
    inel = why != 0
    detail = why
    declined = np.zeros(m, bool)
    if therapy.name in strategy.uptake:
        cand = ~capped & ~inel
        u = draws[stream("uptake", therapy.name)][rows, st.history.get("count", therapy.name, rows)]
        declined = cand & (u >= strategy.uptake[therapy.name])
        detail = np.where(declined, VOCAB.code(f"{therapy.name}:not_taken"), detail)
    new = np.where(capped, term, pos)
    new = np.where(inel, pos + 1 if strategy.skip_ineligible else term, new)
    new = np.where(declined, term if (strategy.after_decline or {}).get(therapy.name) == "terminal" else pos + 1, new)
    st.pos[rows] = new
    return Gate(~capped & ~inel & ~declined, inel | declined, detail)


@dataclass
class Holiday:
    """A holiday before a line for the batch rows: it starts at ``start`` and lasts
    ``months``; ``stop`` is when it ends (the first of its end, disease death, other-cause
    death, horizon); ``ends`` marks pathways that end during it (``died``: with a death event
    at ``stop`` of cause ``cause``)."""

    start: np.ndarray
    months: float
    stop: np.ndarray
    ends: np.ndarray
    died: np.ndarray
    cause: np.ndarray


def holiday(strategy: Strategy, therapy: Therapy, terminal: Therapy, pat: Patients, rows: np.ndarray,
            st: Pathways, draws, horizon: float) -> Holiday | None:
    """A holiday of ``strategy.holiday_months[therapy]`` months before ``therapy`` (None if 0).

    Off treatment the patient is at the terminal line's disease-death hazard: disease death
    at ``now + T``, ``T`` drawn from the terminal therapy's distribution with the patient's
    covariate hazard ratios (stream ``holiday@<therapy>``, slot = earlier exposures to it). Updates ``st`` (clock to the end of the holiday, or the pathway's
    end when death or the horizon come first).
    """
    hol = strategy.holiday_months.get(therapy.name, 0.0)
    if hol <= 0:
        return None
    now = st.now[rows]
    u = draws[stream("holiday", therapy.name)][rows, st.history.get("count", therapy.name, rows)]
    d_hol = now + np.asarray(terminal.pfs.sample(u, pat.hr(terminal)[rows]), float)
    end_h = now + hol
    late = st.history.late_death[rows]           # a late toxicity's death (e.g. after PRRT) competes too
    stop = np.minimum(np.minimum(np.minimum(end_h, d_hol), np.minimum(pat.death_bg[rows], horizon)), late)
    ends = stop < end_h
    hor = ends & (stop >= horizon)
    died = ends & ~hor
    cause = np.where(died, np.where(stop == late, TREATMENT, np.where(stop == d_hol, DISEASE, OTHER)), 0)
    st.now[rows] = stop
    r_end = rows[ends]
    st.done[r_end] = True
    st.end[r_end] = np.where(hor[ends], END_REASONS.index("horizon"), END_REASONS.index("death"))
    st.death_time[r_end] = np.where(died[ends], stop[ends], math.inf)
    st.cause[r_end] = cause[ends]
    return Holiday(now, hol, stop, ends, died, cause)


def count_pfs_events(st: Pathways, rows: np.ndarray, event: np.ndarray, at: np.ndarray) -> None:
    """Count a detected progression (or death) at ``at`` for the patients ``rows`` where ``event``:
    the first two give PFS1 and PFS2 (:func:`outcomes`)."""
    n = st.n_prog[rows]
    st.prog1[rows] = np.where(event & (n == 0), at, st.prog1[rows])
    st.prog2[rows] = np.where(event & (n == 1), at, st.prog2[rows])
    st.n_prog[rows] = n + event


def after_line(strategy: Strategy, therapy: Therapy, rows: np.ndarray, st: Pathways, lb: LineBatch,
               terminal_pos: int | None = None) -> None:
    """Book the resolved line ``lb`` of the patients ``rows``: progressions, the end of the
    pathway (death, horizon, or the terminal line), history, active-line count and the next
    position (the terminal line -- position ``terminal_pos``, default the strategy's last -- after a
    toxicity stop if ``after_toxicity`` is terminal)."""
    terminal = therapy.kind == "terminal"
    st.line[rows] = lb.line
    st.now[rows] = lb.end
    if not terminal:
        count_pfs_events(st, rows, (lb.reason == PROGRESSION) | (lb.reason == DEATH), lb.end)
    ends = (lb.reason == DEATH) | (lb.reason == HORIZON) | terminal
    r_end = rows[ends]
    st.done[r_end] = True
    st.death_time[r_end] = lb.death[ends]
    st.cause[r_end] = lb.cause[ends]
    st.end[r_end] = np.where(lb.reason[ends] == DEATH, END_REASONS.index("death"), END_REASONS.index("horizon"))
    go = ~ends
    if go.any():
        r = rows[go]
        reason = lb.reason[go]
        st.history.record(therapy, r, lb, go)
        st.active[r] += therapy.kind == "active"
        nxt = st.pos[r] + 1
        if strategy.after_toxicity == "terminal":
            nxt = np.where(reason == TOXICITY, strategy.terminal_index if terminal_pos is None else terminal_pos, nxt)
        st.pos[r] = nxt


def outcomes(st: Pathways, horizon: float) -> dict:
    """Per-patient outcome columns of ``patients.parquet`` (codes for the string columns).

    OS is the time to death, censored at the horizon; PFS1 (PFS2) is the time of the first
    (second) detected progression or death on a non-terminal line, else OS with the death
    indicator as event.
    """
    os_t = np.minimum(st.death_time, horizon)
    dead = st.death_time <= horizon
    has1, has2 = st.n_prog >= 1, st.n_prog >= 2
    return dict(
        os_months=os_t, death=dead, death_cause=np.where(dead, st.cause, 0),
        pfs1_months=np.where(has1, st.prog1, os_t), pfs1_event=has1 | dead,
        pfs2_months=np.where(has2, st.prog2, os_t), pfs2_event=has2 | dead,
        n_lines=st.line.copy(), end_reason=np.where(st.end > 0, st.end, np.where(dead, 1, 2)),
    )



def condition_mask(c: Condition, pat: Patients, rows: np.ndarray, history: History, therapies) -> np.ndarray:
    """Whether condition ``c`` holds for each patient ``rows`` now."""
    if c.op in HISTORY_KEYS:
        if c.op == "given":
            return np.logical_or.reduce([history.get("exposed", t, rows) for t in c.value])
        if c.op == "not_given":
            return ~np.logical_or.reduce([history.get("exposed", t, rows) for t in c.value])
        if c.op == "progressed_on":
            return np.logical_or.reduce([history.get("progressed", t, rows) for t in c.value])
        hit = np.logical_or.reduce([history.exposed_to_class(k, therapies, rows) for k in c.value])
        return hit if c.op == "given_class" else ~hit
    x = history.n_active[rows] if c.key == "active_lines" else pat.column(c.key)[rows]
    if c.op in NUMERIC_OPS:
        return NUMERIC_OPS[c.op](x.astype(float), c.value)
    if c.op == "is":
        return x.astype(bool) == c.value
    inside = np.isin(x.astype(str), np.array(c.value, dtype=object).astype(str))
    return inside if c.op == "in" else ~inside


@dataclass
class Pick:
    """Patients ``rows`` at a strategy position get ``therapy`` (None: no rule of a choice line
    applies; they skip it with event detail ``detail``); ``rule`` is the index of the choice rule
    that picked it (-1 on a fixed line)."""

    therapy: Therapy | None
    rows: np.ndarray
    rule: int = -1
    detail: int = 0


def pick(strategy: Strategy, i: int, therapies: Mapping[str, Therapy], pat: Patients, rows: np.ndarray,
         st: Pathways, terminal_pos: int | None = None) -> list[Pick]:
    """The therapy each patient ``rows`` at position ``i`` is offered: the line's therapy on a
    fixed line; on a :class:`Choice` the first rule whose conditions hold and whose therapy the
    patient is eligible for (:func:`~sim.kernel.line.eligibility`). Patients no rule fits skip
    the line (to the next position, or the terminal line -- ``terminal_pos``, default the last --
    if ``skip_ineligible`` is false); their positions are updated in ``st``. Groups in rule order,
    the no-option group last."""
    line = strategy.lines[i]
    if not isinstance(line, Choice):
        return [Pick(therapies[line], rows)]
    left = np.ones(rows.size, bool)
    out = []
    for j, rule in enumerate(line.rules):
        if not left.any():
            break
        th = therapies[rule.give]
        sub = rows[left]
        ok = eligibility(th, pat, sub, st.history) == 0
        for c in rule.when:
            ok &= condition_mask(c, pat, sub, st.history, therapies)
        if ok.any():
            hit = np.flatnonzero(left)[ok]
            out.append(Pick(th, rows[hit], j))
            left[hit] = False
    if left.any():
        r = rows[left]
        term = strategy.terminal_index if terminal_pos is None else terminal_pos
        st.pos[r] = st.pos[r] + 1 if strategy.skip_ineligible else term
        out.append(Pick(None, r, -1, VOCAB.code(f"{line.name}:no_option")))
    return out
