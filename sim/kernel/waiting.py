"""Waiting for a shared resource: the clinical side of a wait for a first administration.

The SimPy engine decides *when* a wait ends (a free slot, the maximum wait, or the patient's own
course, :mod:`sim.resources`); what the wait does to the patient is here, over the patient's state:

* :func:`begin_wait`: the untreated course from the start of the wait, on the line's own
  progression uniform ``u`` (one progression clock: ``-log u`` is the threshold both of the
  untreated hazard while waiting and of the line's hazard afterwards). Its end is the detected
  progression, death or the horizon, whichever first;
* :func:`start_after_wait`: the slot came after ``w`` months: the disease-death clock has used
  ``lambda_i w``, the clock moves to the slot, and the line's progression uniform becomes
  ``u exp(hr_q H_q(w))`` (the untreated cumulative hazard used is taken off ``-log u``);
* :func:`leave_wait`: the wait ended without a slot: death or the horizon end the pathway; a
  detected progression (counted in PFS1 / PFS2 like one on a line) or the maximum wait move the
  patient to the next position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim.kernel.line import (DEATH, HORIZON, PROGRESSION, LineBatch, ModelRules, Patients, disease_rate_now,
                             line_pfs_uniform, plan_lines, progression_hr)
from sim.kernel.pathway import END_REASONS, Pathways, count_pfs_events
from sim.therapies.definition import Therapy


@dataclass
class Wait:
    """A patient (chunk row ``j``) waiting from ``start`` for a first administration of
    ``therapy``: the ``untreated`` course (a therapy named ``queue:<therapy>``, whose streams are
    its own), its resolution ``course``, the line's progression uniform ``u`` and the
    disease-death hazard ``rate`` (per month) while waiting."""

    j: int
    therapy: Therapy
    untreated: Therapy
    start: float
    course: LineBatch
    u: np.ndarray
    rate: float

    @property
    def course_end(self) -> float:
        """When the untreated course ends (detected progression, death or the horizon)."""
        return float(self.course.end[0])


def begin_wait(therapy: Therapy, untreated: Therapy, therapies: Mapping[str, Therapy], pat: Patients, j: int,
               st: Pathways, draws, rules: ModelRules) -> Wait:
    """The untreated course of chunk row ``j`` from now (module docstring); the next wait for the
    same therapy reads the next slot of the ``queue:<therapy>`` streams."""
    rows = np.array([j], dtype=np.int64)
    hist = st.history
    u = line_pfs_uniform(draws, therapy.name, rows, hist.get("count", therapy.name, rows), pat.z[rows],
                         rules.frailty_rho)
    course = plan_lines(untreated, therapies, pat, rows, st.line[rows] + 1, st.now[rows], hist, draws, u, rules)
    hist.get("count", untreated.name, rows)
    hist.count[untreated.name][j] += 1
    rate = float(disease_rate_now(pat, rows, hist, rules)[0])
    return Wait(j, therapy, untreated, float(st.now[j]), course, u, rate)


def start_after_wait(w: Wait, wait: float, therapies: Mapping[str, Therapy], pat: Patients, st: Pathways,
                     rules: ModelRules) -> np.ndarray | None:
    """The slot came ``wait`` months after the start of ``w``: book the disease hazard used and the
    clock, and return the line's progression uniform ``u exp(hr_q H_q(wait))`` (below 1; None when
    nobody waited: the line's own draw)."""
    if wait <= 0:
        return None
    j = w.j
    st.history.disease_used[j] += w.rate * wait
    st.now[j] = w.start + wait
    rows = np.array([j], dtype=np.int64)
    used = progression_hr(w.untreated, therapies, pat, rows, st.history, rules) * w.untreated.pfs.cumhazard(wait)
    return np.minimum(w.u * np.exp(used), 1.0 - 1e-16)


def leave_wait(w: Wait, at: float, st: Pathways) -> str:
    """The wait ``w`` ended at ``at`` without a slot: book it in ``st`` and return how it ended,
    ``death``, ``horizon`` (the pathway ends), ``progression`` or ``max_wait`` (next position)."""
    j = w.j
    reason = int(w.course.reason[0]) if at == w.course_end else -1
    st.now[j] = at
    if reason == DEATH:
        st.done[j], st.end[j] = True, END_REASONS.index("death")
        st.death_time[j], st.cause[j] = float(w.course.death[0]), int(w.course.cause[0])
        return "death"
    if reason == HORIZON:
        st.done[j], st.end[j], st.death_time[j], st.cause[j] = True, END_REASONS.index("horizon"), math.inf, 0
        return "horizon"
    st.history.disease_used[j] += w.rate * (at - w.start)
    if reason == PROGRESSION:
        count_pfs_events(st, np.array([j]), np.array([True]), np.array([at]))
    st.pos[j] += 1
    return "progression" if reason == PROGRESSION else "max_wait"
