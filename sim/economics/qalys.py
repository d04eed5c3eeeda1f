"""Life-years and QALYs of a run (:class:`~sim.economics.records.RunArrays`) as accruals (vectorised).

Health-state convention (the true disease state, not the observed one):

* on each non-terminal line, ``[start, min(progression_true, end))`` is **progression-free**
  (each new line starts progression-free: the patient is stable on the new therapy);
* ``[progression_true, end)`` -- the detection lag until the scan that sees the progression --
  is **progressed** (the disease has progressed whether or not a scan has shown it yet);
* a terminal line (best supportive care; ``pfs_true`` NaN) is **progressed** throughout;
* time between lines (treatment holidays) and after the last line until death/horizon keeps the
  state at the end of the previous line; time before the first line is progression-free;
* a line ended by death or toxicity before progression is progression-free until it ends.

With utilities ``u_PF``, ``u_PD`` per year, AE decrements ``delta_a`` over the AE duration
``w_a`` (weeks, the event's value), continuous monthly rate ``r`` and horizon ``H``::

    LY   = D(0, min(OS, H)) / 12
    QALY = [u_PF * sum_PF D(a, b) + u_PD * sum_PD D(a, b)
            - sum_AE delta_a * D(t_a, min(t_a + w_a, OS, H))] / 12

with ``D(a, b) = integral_a^b exp(-r t) dt`` over segments clipped to ``[0, H]``. A patient with a
functioning tumour loses ``delta_S`` (``utilities.uncontrolled_syndrome``, per year) over every segment
whose syndrome is uncontrolled (``qaly_syndrome_loss``, subtracted like the AE loss): the segments of
lines on which the line's therapy did not control it (``syndrome`` column of the lines; the gap after a
line keeps its state, as for progression) and the time before the first line. Each term is an
:class:`~sim.economics.discount.Accruals` (flows per patient), valued at any discount rate.
"""

from __future__ import annotations

import numpy as np

from sim.economics.discount import Accruals
from sim.economics.records import RunArrays
from sim.economics.spec import EconomicsSpec
from sim.events import EVENT_CODE
from sim.kernel.line import NO_SYNDROME, UNCONTROLLED
from sim.units import MONTHS_PER_YEAR, weeks

_AE = EVENT_CODE["adverse_event"]


def state_segments(ra: RunArrays, with_line: bool = False) -> tuple[np.ndarray, ...]:
    """All lived time as segments ``(patient row, a, b, progressed)`` covering ``[0, OS]``
    (only segments with ``b > a``); with ``with_line`` also the row in the line arrays of the
    line each segment belongs to (a gap after a line belongs to it; -1 before the first line)."""
    p, start, end = ra.line_patient, ra.start, ra.end
    terminal = np.isnan(ra.pfs_true)
    prog = ra.progression_true
    progressed_in_line = ~terminal & np.isfinite(prog) & (prog <= end)
    pf_end = np.where(terminal, start, np.where(progressed_in_line, prog, end))
    same_next = np.append(p[1:] == p[:-1], False)                  # lines are sorted by (patient, line)
    gap_end = np.where(same_next, np.append(start[1:], 0.0), ra.os_months[p])
    first = np.insert(p[1:] != p[:-1], 0, True) if p.size else np.zeros(0, bool)
    no_lines = np.setdiff1d(np.arange(ra.n), p)
    rows = np.arange(p.size)
    nf = int(first.sum())
    parts = [
        (p, start, pf_end, np.zeros(p.size, bool), rows),                     # progression-free on line
        (p, pf_end, end, np.ones(p.size, bool), rows),                        # lag / terminal line
        (p, end, gap_end, terminal | progressed_in_line, rows),               # holidays, tail
        (p[first], np.zeros(nf), start[first], np.zeros(nf, bool), np.full(nf, -1)),  # before line 1
        (no_lines, np.zeros(no_lines.size), ra.os_months[no_lines], np.zeros(no_lines.size, bool),
         np.full(no_lines.size, -1)),
    ]
    seg = [np.concatenate(x) for x in zip(*parts)]
    keep = seg[2] > seg[1]
    return tuple(x[keep] for x in seg[:5 if with_line else 4])


def uncontrolled_segments(ra: RunArrays, p: np.ndarray, seg_line: np.ndarray) -> np.ndarray:
    """Whether each segment of :func:`state_segments` (patient rows ``p``, line rows ``seg_line``, -1
    before the first line) is lived with an uncontrolled functional syndrome: the patient has a
    functioning tumour (some line records a syndrome) and the segment's line did not control it (the
    time before the first line is uncontrolled)."""
    if ra.syndrome.size == 0:
        return np.zeros(p.size, bool)
    functional = np.zeros(ra.n, bool)
    functional[ra.line_patient[ra.syndrome != NO_SYNDROME]] = True
    state = np.where(seg_line >= 0, ra.syndrome[np.maximum(seg_line, 0)], UNCONTROLLED)
    return functional[p] & (state == UNCONTROLLED)


def effect_accruals(ra: RunArrays, spec: EconomicsSpec) -> dict[str, Accruals]:
    """``ly``, ``pf_ly``, ``pd_ly`` (years lived, progression-free, progressed) and
    ``qaly_ae_loss`` and ``qaly_syndrome_loss`` as accruals per patient (module docstring);
    ``qaly_pf = u_PF pf_ly`` and ``qaly_pd = u_PD pd_ly`` follow by scaling."""
    H = spec.horizon_months
    acc = {c: Accruals(ra.n) for c in ("ly", "pf_ly", "pd_ly", "qaly_ae_loss", "qaly_syndrome_loss")}
    per_year = 1.0 / MONTHS_PER_YEAR
    acc["ly"].flow(np.arange(ra.n), 0.0, np.minimum(ra.os_months, H), per_year)
    p, a, b, progressed, seg_line = state_segments(ra, with_line=True)
    a, b = np.minimum(a, H), np.minimum(b, H)
    if spec.uncontrolled_syndrome > 0:
        off = uncontrolled_segments(ra, p, seg_line)
        acc["qaly_syndrome_loss"].flow(p[off], a[off], b[off], spec.uncontrolled_syndrome * per_year)
    acc["pf_ly"].flow(p[~progressed], a[~progressed], b[~progressed], per_year)
    acc["pd_ly"].flow(p[progressed], a[progressed], b[progressed], per_year)
    ae = np.flatnonzero(ra.ev_event == _AE)
    if ae.size:
        pe, t = ra.ev_patient[ae], ra.ev_time[ae]
        stop = np.minimum(np.minimum(t + weeks(np.nan_to_num(ra.ev_value[ae])), ra.os_months[pe]), H)
        dec = np.array([spec.ae_decrement(str(x)) for x in ra.detail_names], dtype=float)[ra.ev_detail[ae]]
        acc["qaly_ae_loss"].flow(pe, np.minimum(t, H), stop, dec * per_year)
    return acc
