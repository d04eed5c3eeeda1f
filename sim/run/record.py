"""The run record: what both executors write, once, as coded columns.

A :class:`RunRecord` has three tables, each a :class:`ColumnBuffer` of arrays appended chunk by
chunk:

* ``patients``: ``patient_id``, the outcome columns of :func:`sim.kernel.pathway.outcomes` (codes for
  ``death_cause`` and ``end_reason``), ``rank``, ``key``;
* ``lines``: the columns of :data:`sim.events.LINE_COLUMNS` but ``strategy`` (``therapy`` and
  ``ae_types`` as :data:`sim.events.VOCAB` codes, ``reason`` as a code of
  :data:`sim.kernel.line.REASONS`), ``rank``, ``key``;
* ``events``: ``pid``, ``time``, ``line``, ``code`` (:data:`sim.events.EVENT_CODE`), ``detail``
  (a :data:`~sim.events.VOCAB` code), ``value``, ``rank``, ``key``.

``rank`` is the strategy's position in the run. ``key`` orders the rows of the output (the row
order of ``docs/outputs.md``): :func:`row_key` packs, from the high bits down, the strategy rank
(bits 50 and up), the patient's rank by id in the cohort (bits 20-49) and a sequence number within
the patient (bits 0-19: the line number for lines, the order of occurrence for events; 0 for
patients). :func:`patient_bits` keeps the first two, which is how a line or an event finds its
patient row without a join (:meth:`sim.economics.records.RunArrays.from_record`).

Frames (typed, ordered ``patients``, ``lines``, ``events``) are built once, on first use of
:meth:`RunRecord.frames`; a reader of arrays (the probabilistic analysis) never builds them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sim.events import EVENT_DTYPES, EVENT_NAMES, LINE_COLUMNS, PATIENT_COLUMNS, VOCAB
from sim.kernel.pathway import END_REASONS
from sim.kernel.line import CAUSES, REASONS

#: bit position of the strategy rank and of the patient rank in :func:`row_key`
STRATEGY_SHIFT, PATIENT_SHIFT = 50, 20
#: sequence numbers within a patient must stay below this
SEQ_LIMIT = 1 << PATIENT_SHIFT

PATIENT_FIELDS = ("patient_id", "rank", "key", "os_months", "death", "death_cause", "pfs1_months", "pfs1_event",
                  "pfs2_months", "pfs2_event", "n_lines", "end_reason")
LINE_FIELDS = tuple(c for c in LINE_COLUMNS if c != "strategy") + ("rank", "key")
EVENT_FIELDS = ("pid", "time", "line", "code", "detail", "value", "rank", "key")


def row_key(rank, order, seq) -> np.ndarray:
    """Sort key of output rows: strategy ``rank``, patient rank ``order`` (by id), then ``seq`` (< 2^20)."""
    return ((np.int64(rank) << STRATEGY_SHIFT) | (np.asarray(order, np.int64) << PATIENT_SHIFT)
            | np.asarray(seq, np.int64))


def patient_bits(key) -> np.ndarray:
    """The strategy and patient part of a :func:`row_key` (the key of the patient's own row)."""
    return np.asarray(key, np.int64) & ~np.int64(SEQ_LIMIT - 1)


def patient_ranks(ids) -> np.ndarray:
    """Rank of each patient id among ``ids`` (the ``order`` of :func:`row_key`)."""
    ids = np.asarray(ids, np.int64)
    rank = np.empty(ids.size, np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(ids.size)
    return rank


class ColumnBuffer(Mapping):
    """Column chunks of one output table: ``add`` appends arrays; ``buf[column]`` is the whole
    column, concatenated on first access (a reader that needs a few columns pays for those)."""

    def __init__(self, names):
        self.cols = {c: [] for c in names}

    def add(self, **arrays):
        for c, v in arrays.items():
            self.cols[c].append(v)

    def __getitem__(self, c: str) -> np.ndarray:
        v = self.cols[c]
        if not isinstance(v, np.ndarray):
            v = self.cols[c] = np.concatenate(v) if v else np.zeros(0, np.int64)
        return v

    def __iter__(self):
        return iter(self.cols)

    def __len__(self) -> int:
        return len(self.cols)


class RunRecord:
    """The record of one run (module docstring): ``patients``, ``lines``, ``events`` buffers, the
    strategy names in rank order and, with shared resources, the queue monitors (``queues``)."""

    def __init__(self, strategies: list[str]):
        self.strategies = list(strategies)
        self.patients = ColumnBuffer(PATIENT_FIELDS)
        self.lines = ColumnBuffer(LINE_FIELDS)
        self.events = ColumnBuffer(EVENT_FIELDS)
        self.queues: list = []
        self._frames = None

    def __getstate__(self):  # vocabulary codes are per process: pickle the frames
        return {"strategies": self.strategies, "queues": self.queues, "_frames": self.frames(),
                "patients": None, "lines": None, "events": None}

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Typed frames (``docs/outputs.md`` columns) in output order, built once."""
        if self._frames is None:
            self._frames = _frames(self.patients, self.lines, self.events, self.strategies)
        return self._frames


def _frames(p: Mapping, ln: Mapping, ev: Mapping, names: list[str]):
    snames = np.array(names, dtype=object)
    causes, reasons, ends = (np.array(x, dtype=object) for x in (CAUSES, REASONS, END_REASONS))
    i = np.argsort(p["key"], kind="stable")
    patients = pd.DataFrame({
        "patient_id": p["patient_id"][i], "strategy": snames[p["rank"][i].astype(np.int64)],
        "os_months": p["os_months"][i], "death": p["death"][i], "death_cause": causes[p["death_cause"][i].astype(int)],
        "pfs1_months": p["pfs1_months"][i], "pfs1_event": p["pfs1_event"][i], "pfs2_months": p["pfs2_months"][i],
        "pfs2_event": p["pfs2_event"][i], "n_lines": p["n_lines"][i],
        "end_reason": ends[p["end_reason"][i].astype(int)]}, columns=list(PATIENT_COLUMNS), copy=False)
    i = np.argsort(ln["key"], kind="stable")
    cols = {}
    for c in LINE_COLUMNS:
        if c == "strategy":
            cols[c] = snames[ln["rank"][i].astype(np.int64)]
        elif c in ("therapy", "ae_types"):
            cols[c] = VOCAB.strings(ln[c][i].astype(np.int64))
        elif c == "reason":
            cols[c] = reasons[ln[c][i].astype(np.int64)]
        else:
            cols[c] = ln[c][i]
    lines = pd.DataFrame(cols, columns=list(LINE_COLUMNS), copy=False)
    i = np.argsort(ev["key"], kind="stable")
    events = pd.DataFrame({
        "patient_id": ev["pid"][i], "strategy": snames[ev["rank"][i].astype(np.int64)], "time": ev["time"][i],
        "line": ev["line"][i], "event": np.array(EVENT_NAMES, dtype=object)[ev["code"][i].astype(np.int64)],
        "detail": VOCAB.strings(ev["detail"][i].astype(np.int64)), "value": ev["value"][i]},
        columns=list(EVENT_DTYPES), copy=False)
    return tuple(_typed(df, dt) for df, dt in ((patients, PATIENT_COLUMNS), (lines, LINE_COLUMNS),
                                               (events, EVENT_DTYPES)))


def _typed(df: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    """``df`` with the schema dtypes (a no-op unless the frame is empty or a column came out of
    another type, e.g. all-integer values of a float column)."""
    if all(str(df[c].dtype) == t for c, t in dtypes.items()):
        return df
    return df.astype(dtypes)
