"""Fitting survival distributions to trial evidence.

* :func:`fit_ipd` -- maximum likelihood on right-censored individual patient data;
  :func:`compare_families` ranks families by AIC/BIC.
* :func:`fit_summary` -- maximum likelihood on published summaries (median with CI,
  landmark survival with n, hazard ratio against a fitted reference arm), on the reported
  scale or -- with a :class:`Detection` -- on the scale of progression seen at assessments.
* :func:`reconstruct_ipd` -- Guyot et al. (2012) IPD from digitised Kaplan-Meier curves;
  :func:`kaplan_meier` (lifelines) for the curve of IPD.
* :mod:`sim.fitting.evidence_fits` -- PFS per therapy from the evidence table and
  ``configs/fit/pfs.yaml`` (the ``pnetsim-fit`` command, ``experiments/fit.py``).

All fits keep their estimate and covariance on an unconstrained scale
(:mod:`sim.fitting.parameterisation`) and can :meth:`~ParametricFit.draw` correlated
parameter sets. See ``docs/fitting.md``.
"""

from sim.fitting.detection import Detection
from sim.fitting.guyot import ReconstructedIPD, reconstruct_ipd
from sim.fitting.ipd import compare_families, fit_ipd, kaplan_meier
from sim.fitting.parameterisation import THETA_NAMES, from_theta, to_natural, to_theta
from sim.fitting.result import FitResult, ParametricFit, SummaryFit
from sim.fitting.summary import HazardRatio, Landmark, Median, TimeRatio, fit_summary

__all__ = [
    "THETA_NAMES",
    "Detection",
    "FitResult",
    "HazardRatio",
    "Landmark",
    "Median",
    "ParametricFit",
    "ReconstructedIPD",
    "SummaryFit",
    "TimeRatio",
    "compare_families",
    "fit_ipd",
    "fit_summary",
    "from_theta",
    "kaplan_meier",
    "reconstruct_ipd",
    "to_natural",
    "to_theta",
]
