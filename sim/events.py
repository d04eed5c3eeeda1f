"""Event-log schema: the long table ``events.parquet`` (one row per dated event).

============= ======= =====================================================================
column        type    meaning
============= ======= =====================================================================
patient_id    int     patient
strategy      str     strategy name
time          float   months since the start of the first simulated line
line          int     line number (1-based; 0 before the first line)
event         str     one of :data:`EVENT_TYPES`
detail        str     therapy name, AE type, cause of death, reason ...
value         float   event-specific number (see :data:`EVENT_TYPES`), NaN if none
============= ======= =====================================================================

Row order (both executors): strategy in the order given, patient id, then the patient's
events in the order they happen. Within a strategy position: ``line_skipped``;
``holiday_start``; ``holiday_end`` or a ``death`` during the holiday; then the line's events
by time, ties in the fixed order ``line_start``, per AE in onset order (``adverse_event``,
its consequence -- ``dose_change`` / ``interruption`` / ``discontinuation`` --, its
``dose_change`` ``resume``), ``course_end``, ``progression``, then the line's end event
(``progression_detected``, ``death`` or ``line_end``). A ``resume`` is logged when an
interruption window ends before the end of treatment and outside any other interruption
window; its value is the dose level then (the product of the dose reductions so far, so a
reduction during an interruption applies from the resumption on).
"""

from __future__ import annotations

import numpy as np

#: event -> (meaning of ``detail``, meaning of ``value``)
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "line_start": ("therapy", "line number"),
    "line_skipped": ("therapy:reason (e.g. lu177_dotatate:sstr_negative, everolimus:not_taken)", "NaN"),
    "holiday_start": ("therapy the holiday precedes", "planned months"),
    "holiday_end": ("therapy the holiday precedes", "months"),
    "adverse_event": ("grade 3/4 AE type", "AE duration, weeks"),
    "dose_change": ("AE causing it, or 'resume'", "new relative dose level"),
    "interruption": ("AE causing it", "0 (dose level while interrupted)"),
    "discontinuation": ("AE causing it", "NaN"),
    "course_end": ("therapy", "number of doses/cycles completed"),
    "progression": ("'true': the unobserved time of progression", "months since line start"),
    "progression_detected": ("'scan': seen at a scheduled scan; 'clinical': clinically apparent between scans "
                             "(confirmed by an unscheduled scan)", "months since line start"),
    "line_end": ("reason other than progression or death (toxicity)", "NaN"),
    "death": ("cause: 'disease', 'other' (background mortality) or 'treatment' (a procedure's mortality)", "NaN"),
    "queue_start": ("therapy waited for (a shared resource, configs/resources)", "NaN"),
    "queue_end": ("therapy:outcome of the wait (started, progression, max_wait)", "months waited"),
}

COLUMNS = ("patient_id", "strategy", "time", "line", "event", "detail", "value")

#: integer code of each event type (index in :data:`EVENT_TYPES`), used by the array executors
EVENT_CODE: dict[str, int] = {name: i for i, name in enumerate(EVENT_TYPES)}
EVENT_NAMES = list(EVENT_TYPES)

#: columns and dtypes of ``patients.parquet`` as simulated (baseline columns are merged later)
PATIENT_COLUMNS: dict[str, str] = {
    "patient_id": "int64", "strategy": "object", "os_months": "float64", "death": "bool",
    "death_cause": "object", "pfs1_months": "float64", "pfs1_event": "bool", "pfs2_months": "float64",
    "pfs2_event": "bool", "n_lines": "int64", "end_reason": "object",
}

#: columns and dtypes of ``lines.parquet`` as simulated (order of the records)
LINE_COLUMNS: dict[str, str] = {
    "line": "int64", "therapy": "object", "start": "float64", "end": "float64", "reason": "object",
    "pfs_true": "float64", "progression_true": "float64", "progression_detected": "float64",
    "pfs_months": "float64", "on_treatment_months": "float64", "dose_intensity": "float64",
    "response": "bool", "n_ae": "int64", "ae_types": "object", "n_scans": "int64", "unscheduled_scans": "int64",
    "time_ratio": "float64", "syndrome": "int64", "wait_months": "float64",
    "patient_id": "int64", "strategy": "object",
}

#: columns and dtypes of ``events.parquet``
EVENT_DTYPES: dict[str, str] = {
    "patient_id": "int64", "strategy": "object", "time": "float64", "line": "int64", "event": "object",
    "detail": "object", "value": "float64",
}


class Vocabulary:
    """Interned strings (therapy names, AE types, details) as small integer codes.

    Code 0 is the empty string. The executors carry string-valued columns as codes in
    their arrays and turn them back into strings once, when the output frames are built.
    """

    def __init__(self):
        self._code: dict[str, int] = {"": 0}
        self._strings: list[str] = [""]
        self._array = None

    def code(self, s: str) -> int:
        """The code of ``s`` (a new code the first time ``s`` is seen)."""
        c = self._code.get(s)
        if c is None:
            c = self._code[s] = len(self._strings)
            self._strings.append(s)
            self._array = None
        return c

    def string(self, c: int) -> str:
        return self._strings[c]

    def __len__(self) -> int:
        return len(self._strings)

    def strings(self, codes):
        """Object array of the strings of ``codes`` (any shape)."""
        if self._array is None or len(self._array) != len(self._strings):
            self._array = np.array(self._strings, dtype=object)
        return self._array[codes]


#: process-wide vocabulary shared by both executors
VOCAB = Vocabulary()
