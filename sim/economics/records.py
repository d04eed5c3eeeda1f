"""A run's event records as integer-keyed arrays, the input of the economics layer.

:class:`RunArrays` holds the columns of ``patients``, ``lines`` and ``events`` that costs and
QALYs need, with every row of ``lines`` and ``events`` pointing to its patient row
(``line_patient``, ``ev_patient``: index into the patient arrays) and string columns as codes
into name lists. It is built either from the frames of any executor (:meth:`from_frames`) or
directly from the coded columns of the run record (:meth:`from_record`, no frames built: the
probabilistic analysis path). Per-patient results are then sums over rows by
``np.bincount`` on those indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import UserError
from sim.events import EVENT_CODE, VOCAB
from sim.run.record import patient_bits
from sim.kernel.line import CAUSES

KEYS = ["strategy", "patient_id"]
_LINE_COLUMNS = ["line", "therapy", "start", "end", "pfs_true", "progression_true", "progression_detected",
                 "on_treatment_months", "dose_intensity", "n_scans"]
_EVENT_COLUMNS = ["time", "line", "event", "detail", "value"]


@dataclass
class RunArrays:
    """Patients, lines and events of one run as arrays (see the module docstring).

    Patient arrays (length ``n``): ``strategy`` (code into ``strategy_names``), ``patient_id``,
    ``os_months``, ``death``, ``disease_death`` (death from the disease). Line arrays: ``line_patient``, ``line``, ``therapy`` (code into ``therapy_names``),
    ``start``, ``end``, ``pfs_true`` (NaN on a terminal line), ``progression_true``,
    ``on_treatment``, ``dose_intensity``, ``n_scans``, ``unscheduled_scans`` (0 or 1: a
    progression seen between scans), ``progression_detected``, ``syndrome`` (functional syndrome
    none / controlled / uncontrolled on the line); lines are sorted by (patient, line).
    Event arrays: ``ev_patient``, ``ev_line``, ``ev_time``, ``ev_event`` (:data:`sim.events.EVENT_CODE`),
    ``ev_detail`` (code into ``detail_names``), ``ev_value``.
    """

    strategy: np.ndarray
    strategy_names: list
    patient_id: np.ndarray
    os_months: np.ndarray
    death: np.ndarray
    disease_death: np.ndarray
    line_patient: np.ndarray
    line: np.ndarray
    therapy: np.ndarray
    therapy_names: list
    start: np.ndarray
    end: np.ndarray
    pfs_true: np.ndarray
    progression_true: np.ndarray
    on_treatment: np.ndarray
    dose_intensity: np.ndarray
    n_scans: np.ndarray
    unscheduled_scans: np.ndarray
    progression_detected: np.ndarray
    #: functional syndrome on each line (codes of :data:`sim.kernel.line.SYNDROME`; 0 when not recorded)
    syndrome: np.ndarray
    ev_patient: np.ndarray
    ev_line: np.ndarray
    ev_time: np.ndarray
    ev_event: np.ndarray
    ev_detail: np.ndarray
    detail_names: list
    ev_value: np.ndarray

    @property
    def n(self) -> int:
        return len(self.os_months)

    def line_row_of_events(self, mask: np.ndarray) -> np.ndarray:
        """Row in the line arrays of each event selected by ``mask`` (-1 if it has no line row,
        e.g. a skip or a holiday before the patient's first line)."""
        width = int(max(self.line.max(initial=0), self.ev_line.max(initial=0))) + 1
        lk = self.line_patient.astype(np.int64) * width + self.line      # sorted: lines are by (patient, line)
        ek = self.ev_patient[mask].astype(np.int64) * width + self.ev_line[mask]
        if lk.size == 0:
            return np.full(ek.size, -1)
        pos = np.minimum(np.searchsorted(lk, ek), lk.size - 1)
        return np.where(lk[pos] == ek, pos, -1)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_records(cls, rec) -> "RunArrays":
        """From an executor's :class:`~sim.run.record.RunRecord`: its coded columns while it has them
        (no frames built), else its ``frames()`` (a record that travelled between processes)."""
        if rec.patients is not None:
            return cls.from_record(rec)
        return cls.from_frames(*rec.frames())
    @classmethod
    def from_frames(cls, patients: pd.DataFrame, lines: pd.DataFrame, events: pd.DataFrame) -> "RunArrays":
        """From the ``patients``, ``lines`` and ``events`` tables of a run (any row order)."""
        for df, name, cols in ((patients, "patients", KEYS + ["os_months", "death", "death_cause"]),
                               (lines, "lines", KEYS + _LINE_COLUMNS), (events, "events", KEYS + _EVENT_COLUMNS)):
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise UserError(f"{name} table lacks columns {missing}")
        pidx = pd.MultiIndex.from_arrays([patients[k].to_numpy() for k in KEYS])
        if not pidx.is_unique:
            raise UserError("patients table has duplicate (strategy, patient_id) rows")

        def patient_row(df: pd.DataFrame) -> np.ndarray:
            r = pidx.get_indexer(pd.MultiIndex.from_arrays([df[k].to_numpy() for k in KEYS]))
            if (r < 0).any():
                raise UserError("lines or events table has rows of a (strategy, patient_id) not in the patients table")
            return r

        lp = patient_row(lines)
        order = np.lexsort((lines["line"].to_numpy(), lp))
        li = lines.iloc[order]
        lp = lp[order]
        th_code, th_names = pd.factorize(li["therapy"].astype(str).to_numpy())
        ev_code, ev_names = pd.factorize(events["event"].astype(str).to_numpy())
        unknown = [e for e in ev_names if e not in EVENT_CODE]
        if unknown:
            raise UserError(f"events table has unknown event types {unknown}")
        det_code, det_names = pd.factorize(events["detail"].astype(str).to_numpy())
        f = lambda df, c: df[c].to_numpy(float)  # noqa: E731
        st_code, st_names = pd.factorize(patients["strategy"].astype(str).to_numpy())
        return cls(
            strategy=st_code, strategy_names=list(st_names), patient_id=patients["patient_id"].to_numpy(np.int64),
            os_months=f(patients, "os_months"), death=patients["death"].to_numpy(bool),
            disease_death=patients["death"].to_numpy(bool) & (patients["death_cause"].astype(str).to_numpy() == "disease"),
            line_patient=lp, line=li["line"].to_numpy(np.int64), therapy=th_code, therapy_names=list(th_names),
            start=f(li, "start"), end=f(li, "end"), pfs_true=f(li, "pfs_true"),
            progression_true=f(li, "progression_true"), on_treatment=f(li, "on_treatment_months"),
            dose_intensity=f(li, "dose_intensity"), n_scans=f(li, "n_scans"),
            unscheduled_scans=(f(li, "unscheduled_scans") if "unscheduled_scans" in li else np.zeros(len(li))),
            progression_detected=f(li, "progression_detected"),
            syndrome=(li["syndrome"].to_numpy(np.int64) if "syndrome" in li else np.zeros(len(li), np.int64)),
            ev_patient=patient_row(events), ev_line=events["line"].to_numpy(np.int64), ev_time=f(events, "time"),
            ev_event=np.array([EVENT_CODE[e] for e in ev_names], dtype=np.int64)[ev_code],
            ev_detail=det_code, detail_names=list(det_names), ev_value=f(events, "value"))

    @classmethod
    def from_record(cls, rec) -> "RunArrays":
        """From the coded columns of a :class:`~sim.run.record.RunRecord` (:data:`sim.events.VOCAB` codes).

        Patient rows are in output order (sorted ``key``); a line's or event's patient row is
        found from the strategy and patient part of its key (:func:`sim.run.record.patient_bits`).
        """
        patients, lines, events = rec.patients, rec.lines, rec.events
        po = np.argsort(patients["key"], kind="stable")
        pkey = patients["key"][po]
        lp = np.searchsorted(pkey, patient_bits(lines["key"]))
        order = np.lexsort((lines["line"], lp))
        lp = lp[order]
        lt = {c: np.asarray(lines[c])[order] for c in ("line", "therapy", "start", "end", "pfs_true", "progression_true",
                                                      "progression_detected", "on_treatment_months",
                                                      "dose_intensity", "n_scans", "unscheduled_scans",
                                                      "syndrome")}
        names = list(VOCAB.strings(np.arange(len(VOCAB))))
        cause = patients["death_cause"][po].astype(np.int64)
        return cls(
            strategy=patients["rank"][po].astype(np.int64), strategy_names=list(rec.strategies),
            patient_id=patients["patient_id"][po].astype(np.int64),
            os_months=patients["os_months"][po].astype(float), death=patients["death"][po].astype(bool),
            disease_death=patients["death"][po].astype(bool) & (cause == CAUSES.index("disease")),
            line_patient=lp, line=lt["line"].astype(np.int64), therapy=lt["therapy"].astype(np.int64),
            therapy_names=names, start=lt["start"], end=lt["end"], pfs_true=lt["pfs_true"],
            progression_true=lt["progression_true"], on_treatment=lt["on_treatment_months"],
            dose_intensity=lt["dose_intensity"], n_scans=lt["n_scans"].astype(float),
            unscheduled_scans=lt["unscheduled_scans"].astype(float), progression_detected=lt["progression_detected"],
            syndrome=lt["syndrome"].astype(np.int64),
            ev_patient=np.searchsorted(pkey, patient_bits(events["key"])), ev_line=events["line"].astype(np.int64),
            ev_time=events["time"], ev_event=events["code"].astype(np.int64),
            ev_detail=events["detail"].astype(np.int64), detail_names=names, ev_value=events["value"])
