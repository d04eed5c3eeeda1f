"""Exact continuous discounting on the model clock (months), vectorised with numpy.

An annual rate ``d`` corresponds to the continuous monthly rate ``r = ln(1 + d) / 12``, so that
``exp(-r * 12) = 1 / (1 + d)``: one year later is worth ``1 / (1 + d)`` as in the annual
convention, but without the half-cycle approximations of cycle-based models.

* a flow of ``c`` per month over ``[a, b]`` is worth
  ``c * integral_a^b exp(-r t) dt = c * (exp(-r a) - exp(-r b)) / r`` (``c * (b - a)`` if ``r = 0``);
* a one-off ``c`` at ``t`` is worth ``c * exp(-r t)``;
* ``n`` one-offs at ``t0, t0 + h, ..., t0 + (n - 1) h`` are worth
  ``exp(-r t0) * (1 - q^n) / (1 - q)`` with ``q = exp(-r h)`` (``n`` if ``r = 0``).
"""

from __future__ import annotations

import numpy as np

from sim.errors import check
from sim.units import MONTHS_PER_YEAR


def monthly_rate(annual: float) -> float:
    """Continuous monthly rate ``r = ln(1 + annual) / 12`` of an annual rate in [0, 1)."""
    check(isinstance(annual, (int, float, np.floating)) and 0.0 <= annual < 1.0, "discount rate", annual,
          "must be an annual rate in [0, 1)")
    return float(np.log1p(annual) / MONTHS_PER_YEAR)


def interval_factor(a, b, annual: float) -> np.ndarray:
    """``integral_a^b exp(-r t) dt`` in months (0 where ``b <= a``), elementwise.

    Computed as ``exp(-r a) * (-expm1(-r (b - a))) / r`` for accuracy when ``r (b - a)`` is small;
    ``b - a`` when ``annual == 0``. ``b`` may be ``inf`` (then ``exp(-r a) / r`` for ``r > 0``).
    """
    r = monthly_rate(annual)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    length = np.clip(b - a, 0.0, None)
    length = np.where(np.isnan(length), 0.0, length)
    if r == 0.0:
        return length
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.exp(-r * a) * (-np.expm1(-r * length)) / r
    return np.where(length > 0, out, 0.0)


def point_factor(t, annual: float) -> np.ndarray:
    """``exp(-r t)`` elementwise (1 when ``annual == 0``)."""
    r = monthly_rate(annual)
    t = np.asarray(t, dtype=float)
    return np.exp(-r * t) if r > 0 else np.ones_like(t)


def series_factor(t0, step, n, annual: float) -> np.ndarray:
    """``sum_{k=0}^{n-1} exp(-r (t0 + k step))`` elementwise (``n`` when ``annual == 0``).

    ``n`` holds whole counts as floats; ``n <= 0`` gives 0.
    """
    r = monthly_rate(annual)
    t0, step, n = (np.asarray(x, dtype=float) for x in (t0, step, n))
    n = np.clip(np.nan_to_num(n, nan=0.0), 0.0, None)
    if r == 0.0:
        return n * np.ones_like(t0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # (1 - q^n) / (1 - q) with q = exp(-r step), computed as expm1(-r step n) / expm1(-r step)
        ratio = np.expm1(-r * step * n) / np.expm1(-r * step)
    ratio = np.where(step > 0, ratio, n)
    return np.exp(-r * t0) * np.where(n > 0, ratio, 0.0)


class Accruals:
    """Money or health accruing to patients, kept undiscounted and valued at any rate.

    Three kinds of accrual, each with the patient row it belongs to:

    * a **flow** of ``rate`` per month over ``[a, b]`` -> ``rate * interval_factor(a, b)``;
    * a **one-off** ``amount`` at ``t`` -> ``amount * point_factor(t)``;
    * a **series** of ``n`` one-offs ``amount`` at ``t0, t0 + step, ...`` -> ``amount * series_factor``.

    :meth:`value` sums them per patient at an annual discount rate (0: undiscounted), so the
    structure of a run (segments, schedules, events) is worked out once for every rate.
    """

    def __init__(self, n: int):
        self.n = n
        self._flows, self._points, self._series = [], [], []

    def flow(self, patient, a, b, rate) -> None:
        self._flows.append(tuple(np.broadcast_arrays(np.asarray(patient), np.asarray(a, float),
                                                     np.asarray(b, float), np.asarray(rate, float))))

    def one_off(self, patient, t, amount) -> None:
        self._points.append(tuple(np.broadcast_arrays(np.asarray(patient), np.asarray(t, float),
                                                      np.asarray(amount, float))))

    def series(self, patient, t0, step, n, amount) -> None:
        self._series.append(tuple(np.broadcast_arrays(np.asarray(patient), np.asarray(t0, float),
                                                      np.asarray(step, float), np.asarray(n, float),
                                                      np.asarray(amount, float))))

    def value(self, annual: float) -> np.ndarray:
        """Per-patient total (length ``n``) discounted at the annual rate ``annual``."""
        out = np.zeros(self.n)
        for p, a, b, rate in self._flows:
            out += np.bincount(p.ravel(), (rate * interval_factor(a, b, annual)).ravel(), minlength=self.n)
        for p, t, amount in self._points:
            out += np.bincount(p.ravel(), (amount * point_factor(t, annual)).ravel(), minlength=self.n)
        for p, t0, step, n, amount in self._series:
            out += np.bincount(p.ravel(), (amount * series_factor(t0, step, n, annual)).ravel(), minlength=self.n)
        return out
