"""Shared treatment capacity (config group ``resources``): definitions, validation and queue statistics.

A resource is a number of administration slots per week at the treating centre, each
administration of one of its therapies needing one slot for ``slot_weeks`` (default one week,
so ``slots_per_week`` administrations can start per week). Patients then compete for the slots,
which is what the SimPy engine (:mod:`sim.run.engine`) is for: ``engine=auto`` picks it whenever the
model has a resource, and the vectorised executor refuses one.

The patients of the cohort are the centre's incident patients, arriving one after another in
patient-id order with exponential gaps of mean ``12 / arrivals_per_year`` months (stream
``arrival`` slot 0, so arrivals are common random numbers across strategies); every time in the
output tables stays measured from the patient's own arrival (the start of the first line).

Queue (first come, first served among first administrations; the later administrations of a
started course are booked ahead and go first). While a patient waits for the first administration
of a line, the disease goes on (:mod:`sim.kernel.waiting`). Progression runs on one clock with the line's own threshold
``E = -log u`` (``u`` the line's frailty-mixed progression uniform, stream ``pfs@<therapy>``):
while waiting it accrues the ``untreated`` therapy's cumulative hazard ``hr_q H_q(t)`` (the patient's
covariates; progression in the queue when it reaches ``E``, detected at a scan or clinically,
stream ``detection@queue:<therapy>``); once the line starts, its own ``hr H(t)`` takes over from what
is left, ``T = H^{-1}((E - hr_q H_q(w)) / hr)``, so a wait ``w`` shortens the line's PFS by the
hazard it used (a patient whose disease progressed undetected in the queue starts the line with
nothing left and is found progressed at its first scan). The patient's disease-death clock keeps
using hazard while waiting, and other-cause and late-toxicity death compete as on any line. The
wait ends at the first of

* the slot: the line starts then (``wait_months`` in ``lines.parquet``), and the rest of the
  pathway follows from that date;
* a detected progression while waiting: the patient leaves the queue for the next line (it counts
  as a progression in PFS1 / PFS2, like one on a line);
* death (the pathway ends) or the horizon;
* ``max_wait_weeks``: the patient leaves the queue for the next line.

With enough slots nobody waits and the pathways are exactly those of the model without the resource.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import UserError, check, mapping, number, sequence_of_str, whole
from sim.units import MONTHS_PER_WEEK, MONTHS_PER_YEAR, weeks

WEEKS_PER_MONTH = 1.0 / MONTHS_PER_WEEK

#: how a wait for a first administration ended (``queue_end`` event detail, ``resources.csv`` counts)
QUEUE_OUTCOMES = ("started", "progression", "max_wait", "death", "horizon")


@dataclass(frozen=True)
class Resource:
    """Administration slots shared by the patients of a centre.

    Attributes
    ----------
    name : str
        Resource name (``resources.csv``, figure).
    label : str
    therapies : tuple of str
        Therapies whose every administration needs a slot.
    slots : int
        Slots per week (concurrent administrations a week); capacity of the SimPy resource.
    slot_months : float
        Time one administration holds its slot (``slot_weeks``, in months).
    max_wait_months : float
        Longest wait for a first administration before the patient moves to the next line (inf: none).
    untreated : str
        Therapy whose PFS is the untreated progression while waiting.
    """

    name: str
    label: str
    therapies: tuple[str, ...]
    slots: int
    slot_months: float
    max_wait_months: float
    untreated: str


@dataclass(frozen=True)
class Centre:
    """The shared resources and the arrival rate of the centre's patients (per month)."""

    resources: tuple[Resource, ...]
    arrivals_per_month: float

    def resource_of(self, therapy: str) -> Resource | None:
        """The resource ``therapy``'s administrations need, or None."""
        for r in self.resources:
            if therapy in r.therapies:
                return r
        return None


def build_centre(cfg, therapies: Mapping) -> Centre | None:
    """The :class:`Centre` of the ``resources`` group (None when the group is absent or null).

    Keys: ``arrivals_per_year`` (> 0) and one mapping per resource with ``therapies`` (known
    therapy names), ``slots_per_week`` (whole number >= 1), ``slot_weeks`` (> 0, default 1),
    ``max_wait_weeks`` (> 0 or null: no limit), ``untreated`` (a known therapy with a PFS,
    not terminal); ``label``, ``sources``.
    Every problem is a :class:`UserError` naming the key and the value.
    """
    if cfg is None:
        return None
    c = mapping("resources", cfg)
    names = set(c) - {"arrivals_per_year", "sources"}           # every other key is a resource
    check("arrivals_per_year" in c, "resources.arrivals_per_year", None, "is required")
    rate = number("resources.arrivals_per_year", c["arrivals_per_year"], 0, lo_open=True) / MONTHS_PER_YEAR
    out, seen = [], {}
    for name in sorted(names):
        key = f"resources.{name}"
        r = mapping(key, c[name])
        extra = set(r) - {"label", "therapies", "slots_per_week", "slot_weeks", "max_wait_weeks", "untreated",
                          "sources"}
        check(not extra, f"{key}.{sorted(extra)[0]}" if extra else key, r.get(sorted(extra)[0]) if extra else None,
              "is not a resource key (label, therapies, slots_per_week, slot_weeks, max_wait_weeks, untreated)")
        listed = sequence_of_str(f"{key}.therapies", r.get("therapies"))
        check(len(listed) > 0, f"{key}.therapies", listed, "must name at least one therapy")
        for t in listed:
            check(t in therapies, f"{key}.therapies", t, f"must name a therapy of {sorted(therapies)}")
            check(therapies[t].kind != "terminal", f"{key}.therapies", t, "must not be a terminal therapy")
            check(t not in seen, f"{key}.therapies", t, f"is already a therapy of resources.{seen.get(t)}")
            seen[t] = name
        slots = whole(f"{key}.slots_per_week", r.get("slots_per_week"), 1)
        slot_w = number(f"{key}.slot_weeks", r.get("slot_weeks", 1), 0, lo_open=True)
        mw = r.get("max_wait_weeks")
        max_wait = math.inf if mw is None else weeks(number(f"{key}.max_wait_weeks", mw, 0, lo_open=True,
                                                             nonfinite=None))
        un = r.get("untreated")
        check(isinstance(un, str) and un in therapies, f"{key}.untreated", un,
              f"must name a therapy of {sorted(therapies)}")
        check(therapies[un].kind != "terminal", f"{key}.untreated", un,
              "must be a non-terminal therapy (its PFS is used)")
        label = r.get("label", name)
        check(isinstance(label, str), f"{key}.label", label, "must be text")
        out.append(Resource(name, label, tuple(listed), int(slots), weeks(slot_w), max_wait, un))
    if not out:
        raise UserError("resources must define at least one resource (a mapping with therapies and slots_per_week), "
                        f"got {sorted(c)!r}")
    return Centre(tuple(out), rate)


def arrival_times(u: np.ndarray, rate_per_month: float) -> np.ndarray:
    """Arrival times (months) of patients in id order: cumulative sums of exponential gaps,
    ``a_k = sum_{j <= k} -log(u_j) / rate`` (``u`` the patients' uniforms in id order)."""
    return np.cumsum(-np.log(np.asarray(u, float)) / rate_per_month)


class QueueMonitor:
    """Statistics of one resource under one strategy, collected by the SimPy engine.

    The queue of first administrations is tracked as a step function (``trace``: times and
    lengths after each change); waits and their outcomes per queue entry; slot-busy time.
    """

    def __init__(self, resource: Resource, strategy: str):
        self.resource, self.strategy = resource, strategy
        self.length = 0
        self.trace_t: list[float] = [0.0]
        self.trace_n: list[int] = [0]
        self.waits: list[float] = []
        self.outcomes: list[str] = []
        self.holds: list[float] = []
        self.administrations = 0
        self.cycle_delays: list[float] = []
        self.last = 0.0

    def change(self, now: float, delta: int) -> None:
        """The queue length changes by ``delta`` at time ``now``."""
        self.length += delta
        self.trace_t.append(now)
        self.trace_n.append(self.length)
        self.last = max(self.last, now)

    def served(self, start: float, hold: float) -> None:
        """One administration held a slot from ``start`` for ``hold`` months."""
        self.holds.append(start)
        self.administrations += 1
        self.last = max(self.last, start + hold)

    def summary(self) -> dict:
        """Row of ``resources.csv``. Over the whole run ``[0, T]`` (``T`` the last queue change or
        slot release, when the queue is empty again): the time-average queue length
        ``L = (1 / T) int q(t) dt``, the arrival rate to the queue ``lambda = entries / T`` and the
        waits (months; mean ``W`` over all entries, zero waits included, and 95th percentile), so that
        Little's law ``L = lambda W`` holds. Utilisation is the share of slot time in use over the
        middle 80 % of referrals, between the 10th and 90th percentiles of the queue-entry times
        (the ramp-up while the first patients reach the therapy and the drain after the last one
        would dilute it)."""
        t = np.asarray(self.trace_t + [self.last])
        q = np.asarray(self.trace_n, float)
        horizon = max(self.last, 1e-12)
        area = float(np.sum(q * np.diff(t)))
        w = np.asarray(self.waits, float)
        counts = {o: self.outcomes.count(o) for o in QUEUE_OUTCOMES}
        r = self.resource
        entry = np.asarray(self.trace_t[1:], float)[np.diff(self.trace_n) > 0]
        a, b = (np.quantile(entry, [0.1, 0.9]) if entry.size else (0.0, 0.0))
        h = np.asarray(self.holds, float)
        busy = float(np.clip(np.minimum(h + r.slot_months, b) - np.maximum(h, a), 0.0, None).sum())
        return {
            "strategy": self.strategy, "resource": r.name, "slots_per_week": r.slots,
            "window_months": horizon, "administrations": self.administrations,
            "utilisation": busy / (r.slots * (b - a)) if b > a else 0.0,
            "queue_entries": int(w.size), "arrival_rate_per_month": w.size / horizon,
            "mean_wait_months": float(w.mean()) if w.size else 0.0,
            "p95_wait_months": float(np.quantile(w, 0.95)) if w.size else 0.0,
            "mean_queue_length": area / horizon,
            **{f"n_{o}": counts[o] for o in QUEUE_OUTCOMES},
            "mean_cycle_delay_months": float(np.mean(self.cycle_delays)) if self.cycle_delays else 0.0,
        }

    def trace(self) -> pd.DataFrame:
        """The queue length as a step function: ``time`` (months since the first arrival) and
        ``queue_length`` from then on."""
        return pd.DataFrame({"strategy": self.strategy, "resource": self.resource.name,
                             "time": np.asarray(self.trace_t, float), "queue_length": np.asarray(self.trace_n)})


def resource_table(monitors: list[QueueMonitor]) -> pd.DataFrame:
    """``resources.csv``: one row per (strategy, resource) of :meth:`QueueMonitor.summary`."""
    return pd.DataFrame([m.summary() for m in monitors])


def queue_trace(monitors: list[QueueMonitor]) -> pd.DataFrame:
    """``resource_queue.parquet``: the queue length over time of every (strategy, resource)."""
    return pd.concat([m.trace() for m in monitors], ignore_index=True)


def format_resources(table: pd.DataFrame) -> str:
    """Human-readable queue statistics per strategy and resource (waits in weeks)."""
    out = ["Shared capacity (waits for a first administration, weeks; utilisation while patients are referred):"]
    for r in table.itertuples():
        out.append(f"  {r.strategy} / {r.resource} ({r.slots_per_week} slots): utilisation {r.utilisation:.2f}, "
                   f"{r.queue_entries} waits, mean {r.mean_wait_months * WEEKS_PER_MONTH:.2f}, "
                   f"95th percentile {r.p95_wait_months * WEEKS_PER_MONTH:.2f}, mean queue {r.mean_queue_length:.2f}; "
                   f"left the queue: {r.n_progression} progressed, {r.n_max_wait} at the maximum wait, "
                   f"{r.n_death} died")
    return "\n".join(out)
