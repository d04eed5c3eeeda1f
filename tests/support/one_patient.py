"""The one-patient form of the line kernel, for tests: one patient as a mapping, the earlier lines as a
list of :class:`LineHistory`, and the patient's uniforms as a callable ``U(stream, slot)``.

:func:`plan_line` runs :func:`sim.kernel.line.plan_lines` on a batch of one patient and :func:`eligible`
runs :func:`sim.kernel.line.eligibility` on it; both executors call the batch kernel directly, so
nothing in ``sim/`` uses this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.events import VOCAB
from sim.therapies.definition import Therapy
from sim.kernel.line import CAUSES, DEATH, REASONS, History, ModelRules, Patients, eligibility, plan_lines


@dataclass
class LineHistory:
    """A line already given (or reported as prior therapy), as seen by later lines."""

    therapy: str
    start: float
    end: float
    reason: str          # progression | toxicity | death | horizon | prior
    pfs: float           # months from start to detected progression (nan if not progressed)


@dataclass(slots=True)
class LineResult:
    """One patient's resolved line: dated events and the summary row of ``lines.parquet``."""

    events: list = field(default_factory=list)   # (abs time, event, detail, value)
    record: dict = field(default_factory=dict)
    end: float = 0.0
    reason: str = ""
    death_time: float = math.inf
    death_cause: str = ""


def one_patient(patient, rules: ModelRules) -> Patients:
    """A batch of the single patient ``patient`` (a mapping of baseline columns)."""
    cols = {k: [patient[k]] for k in ("tempo", "ki67", "hepatic_burden", "grade", "ecog", "mgmt_low",
                                      "sstr_positive", "diabetes", "functional_status")}
    cols["patient_id"] = [patient.get("patient_id", 0)]
    cols["prior_therapies"] = [patient.get("prior_therapies", "")]
    return Patients(cols, rules)


def history_from_list(history: list[LineHistory]) -> History:
    """A one-patient history from :class:`LineHistory` entries (oldest first): eligibility only."""
    h = History(1)
    for e in history:
        h._ensure(e.therapy)
        d = e.therapy
        h.exposed[d][0] = True
        h.prior[d][0] = e.reason == "prior"
        h.progressed[d][0] |= e.reason in ("prior", "progression")
        h.end[d][0], h.pfs[d][0] = e.end, (math.nan if e.reason == "prior" else e.pfs)
    return h


def eligible(therapy: Therapy, patient, history: list[LineHistory]) -> str | None:
    """``None`` if the patient (a mapping) may receive ``therapy`` now, else the reason not."""
    pat = one_patient(patient, ModelRules(1.0, 0.0, {}, 1.0))
    why = int(eligibility(therapy, pat, np.zeros(1, dtype=np.int64), history_from_list(history))[0])
    return None if why == 0 else VOCAB.string(why).split(":", 1)[1]


class _CallableDraws:
    """``draws[stream][rows, slot]`` of a batch of one patient, from a callable ``U(stream, slot)``."""

    class _Stream:
        def __init__(self, U, name):
            self.U, self.name = U, name

        def __getitem__(self, idx):
            _, k = idx
            return np.array([self.U(self.name, int(s)) for s in np.atleast_1d(k)], dtype=float).reshape(np.shape(k))

    def __init__(self, U):
        self.U = U

    def __getitem__(self, stream):
        return self._Stream(self.U, stream)


def plan_line(therapy: Therapy, therapies: dict, patient, line: int, start: float, death_bg: float,
              history: list[LineHistory], U, u_pfs: float, rules: ModelRules) -> LineResult:
    """One patient's line: :func:`~sim.kernel.line.plan_lines` on a batch of one.

    ``patient`` is a mapping of baseline columns; ``U(stream, slot)`` returns the patient's
    uniform; ``u_pfs`` is the line's frailty-mixed PFS uniform; ``death_bg`` the absolute
    time of other-cause death; ``history`` the earlier lines (oldest first).
    """
    pat = one_patient(patient, rules)
    pat.death_bg[0] = death_bg
    rows = np.zeros(1, dtype=np.int64)
    lb = plan_lines(therapy, therapies, pat, rows, np.array([line]), np.array([float(start)]),
                    history_from_list(history), _CallableDraws(U), np.array([float(u_pfs)]), rules)
    dies = lb.reason[0] == DEATH
    return LineResult(events=lb.row_events(0), record=lb.row_record(0), end=float(lb.end[0]),
                      reason=REASONS[lb.reason[0]], death_time=float(lb.death[0]) if dies else math.inf,
                      death_cause=CAUSES[lb.cause[0]])
