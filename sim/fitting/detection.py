"""Observed (detected) PFS implied by a true-time PFS distribution and a trial's assessment rules.

Trials report PFS as the time to progression *seen* at an assessment, or death; the model
draws the true event time ``T`` and observes it by the rules of
:func:`sim.kernel.line.plan_lines`:

* a progression at ``T`` is seen at ``Y = min(ceil(T / dt) dt, T + D)``: the next scheduled
  scan (every ``dt`` months) or earlier when it becomes clinically apparent after
  ``D ~ Exp(mean c)`` (``model.clinical_detection_months``; ``c = inf``: scans only);
* death without progression competes with it at a constant hazard ``lambda`` (the model's
  disease-death hazard plus background mortality at the trial's age), seen at once.

Survival of the observed time (an interval-censoring view of the trial's KM curve): with
``a = floor(t / dt) dt`` the last scheduled scan at or before ``t``, a progression at
``T <= t`` is still unseen at ``t`` iff ``T > a`` and ``T + D > t``, so

.. math::

    S_Y(t) = e^{-\\lambda t} \\Big[S(t) + \\int_a^t f(x) e^{-(t - x)/c} dx\\Big]
           = e^{-\\lambda t} \\Big[S(a) e^{-(t - a)/c} + \\frac1c \\int_a^t S(x) e^{-(t - x)/c} dx\\Big]

(integration by parts; the second form integrates the bounded ``S``, evaluated by
Gauss-Legendre quadrature, exact to ~1e-12 for the smooth survival curves used). With
``c = inf`` this is ``e^{-lambda t} S(a)``. ``S_Y`` is right-continuous and decreasing,
with downward jumps at the scheduled scans (the progressions seen there); its median is
``inf{t : S_Y(t) <= 1/2}`` (:meth:`Detection.median`), which is what the Kaplan-Meier
median of a large simulated trial estimates. A reported (rounded) median is matched by
:meth:`Detection.median_window_survival` (1/2 = the average of ``S_Y`` at the ends of the
rounding window), which is robust to a scan falling next to the reported value.

Not included: the covariate hazard multipliers of individual patients and the age spread of
background mortality (small in the trial populations; the validation experiment simulates them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from sim.distributions import SurvivalDistribution
from sim.errors import UserError

__all__ = ["Detection"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


@dataclass(frozen=True)
class Detection:
    """Assessment rules of a trial as seen by the model.

    Parameters
    ----------
    interval : float
        Months between scheduled scans (``> 0``).
    clinical_mean : float
        Mean delay (months) after which a progression becomes clinically apparent between
        scans; ``inf`` = scheduled scans only.
    death_rate : float
        Hazard (per month) of death without progression, competing with progression and
        observed at once, ``>= 0``.
    median_halfwidth : float
        Half the rounding unit of reported medians (months; 0.05: reported to 0.1 month), the
        window of :meth:`median_window_survival`.
    procedure_death : float
        Probability of death from a procedure at the start (e.g. an embolisation's 30-day
        mortality), uniform over the first ``procedure_window`` months and independent of the
        rest; observed at once, so ``S_Y`` is multiplied by ``1 - p min(t / w, 1)``.
    procedure_window : float
        Months over which a procedure death happens (``> 0`` when ``procedure_death > 0``).
    """

    interval: float
    clinical_mean: float = math.inf
    death_rate: float = 0.0
    median_halfwidth: float = 0.05
    procedure_death: float = 0.0
    procedure_window: float = 0.0

    def __post_init__(self):
        for name, v, ok in (("interval", self.interval, lambda x: math.isfinite(x) and x > 0),
                            ("clinical_mean", self.clinical_mean, lambda x: x > 0),
                            ("death_rate", self.death_rate, lambda x: math.isfinite(x) and x >= 0.0),
                            ("median_halfwidth", self.median_halfwidth, lambda x: 0.0 <= x < self.interval / 2),
                            ("procedure_death", self.procedure_death, lambda x: 0.0 <= x < 1.0),
                            ("procedure_window", self.procedure_window,
                             lambda x: math.isfinite(x) and (x > 0 or (x == 0 and self.procedure_death == 0)))):
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise UserError(f"detection.{name} must be a number, got {v!r}") from None
            if not ok(x):
                raise UserError(f"detection.{name} has an invalid value {v!r}")
            object.__setattr__(self, name, x)

    def as_dict(self) -> dict:
        out = {"interval_months": self.interval, "clinical_mean_months": self.clinical_mean,
               "death_rate_per_month": self.death_rate, "median_halfwidth_months": self.median_halfwidth}
        if self.procedure_death > 0:
            out.update(procedure_death=self.procedure_death, procedure_window_months=self.procedure_window)
        return out

    def _no_procedure_death(self, t: np.ndarray) -> np.ndarray:
        """``1 - p min(t / w, 1)``: no death from the procedure by ``t``."""
        if self.procedure_death == 0:
            return np.ones_like(t)
        return 1.0 - self.procedure_death * np.minimum(t / self.procedure_window, 1.0)

    # ------------------------------------------------------------------ observed-time survival
    def survival(self, dist: SurvivalDistribution, t) -> np.ndarray:
        """``S_Y(t)`` elementwise (see the module docstring); ``t >= 0``."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        dt, c = self.interval, self.clinical_mean
        a = np.floor(t / dt + 1e-12) * dt
        a = np.minimum(a, t)
        alive = np.exp(-self.death_rate * t) * self._no_procedure_death(t)
        s_a = np.asarray(dist.survival(a), dtype=float)
        if not math.isfinite(c):
            return alive * s_a
        w = t - a
        # (1/c) int_a^t S(x) exp(-(t - x)/c) dx on Gauss-Legendre nodes x = a + w (1 + u) / 2
        x = a[:, None] + 0.5 * w[:, None] * (1.0 + _NODES[None, :])
        sx = np.asarray(dist.survival(x.ravel()), dtype=float).reshape(x.shape)
        integral = 0.5 * w * np.sum(_WEIGHTS[None, :] * sx * np.exp(-(t[:, None] - x) / c), axis=1) / c
        return alive * (s_a * np.exp(-w / c) + integral)

    def survival_at(self, dist: SurvivalDistribution, t: float) -> float:
        return float(self.survival(dist, [t])[0])

    def median_window_survival(self, dist: SurvivalDistribution, m: float) -> float:
        """``(S_Y(m - h) + S_Y(m + h)) / 2`` with ``h`` = :attr:`median_halfwidth`.

        A median reported as ``m`` (rounded) says the observed KM curve crosses 1/2 somewhere in
        ``[m - h, m + h]``. Where ``S_Y`` is smooth this average is ``S_Y(m)`` to second order;
        where a scheduled scan falls inside the window, ``S_Y`` jumps there and the average
        places 1/2 in the middle of the jump (setting it to 1/2 is the symmetric choice among
        the curves whose median rounds to ``m``) instead of at its upper end, which would make
        the fitted curve depend on which side of the scan the rounding fell.
        """
        h = self.median_halfwidth
        if h == 0.0:
            return self.survival_at(dist, m)
        return float(np.mean(self.survival(dist, [max(m - h, 0.0), m + h])))

    def median(self, dist: SurvivalDistribution, p: float = 0.5) -> float:
        """``inf{t : S_Y(t) <= p}``: the observed-PFS quantile the KM median estimates."""
        dt, lam = self.interval, self.death_rate
        # S_Y(k dt) = e^{-lambda k dt} S(k dt): at a scheduled scan every earlier progression has been seen
        s_scan = lambda j: (math.exp(-lam * j * dt) * float(self._no_procedure_death(np.array([j * dt]))[0])  # noqa: E731
                            * float(dist.survival(j * dt)))
        t_true = float(dist.inverse_survival(p))
        k = max(1, math.ceil(t_true / dt - 1e-12))
        while s_scan(k) > p:   # guard against round-off in the quantile
            k += 1
        while k > 1 and s_scan(k - 1) <= p:
            k -= 1
        lo, hi = (k - 1) * dt, k * dt
        left = self.survival_at(dist, hi * (1.0 - 1e-13))     # S_Y(k dt -)
        if left > p:
            return hi                                        # the crossing is the jump at the scan
        if self.survival_at(dist, lo) <= p:                   # only when deaths or c tiny close the gap
            return lo
        return float(brentq(lambda u: self.survival_at(dist, u) - p, lo, hi * (1.0 - 1e-13), xtol=1e-12, rtol=1e-12))

    def sample(self, dist: SurvivalDistribution, u_t, u_death, u_delay) -> np.ndarray:
        """Observed times from uniforms (the model's rule; for tests and checks): the earlier of
        the detected progression and the death ``-log(u_death) / lambda``."""
        t = np.asarray(dist.sample(np.asarray(u_t, float)), dtype=float)
        grid = np.maximum(1.0, np.ceil(t / self.interval - 1e-12)) * self.interval
        if math.isfinite(self.clinical_mean):
            grid = np.minimum(grid, t - self.clinical_mean * np.log(np.asarray(u_delay, float)))
        with np.errstate(divide="ignore"):
            death = -np.log(np.asarray(u_death, float)) / self.death_rate if self.death_rate > 0 else np.inf
        return np.minimum(grid, death)
