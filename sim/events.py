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
"""

from __future__ import annotations

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
    "progression_detected": ("'scan': progression seen at a scheduled scan", "months since line start"),
    "line_end": ("reason other than progression or death (toxicity)", "NaN"),
    "death": ("cause: 'disease' or 'other' (background mortality)", "NaN"),
}

COLUMNS = ("patient_id", "strategy", "time", "line", "event", "detail", "value")
