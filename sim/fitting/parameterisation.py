"""Unconstrained parameterisations of the survival families used by the fitters.

Every fitter optimises, and reports its covariance, on an unconstrained vector
:math:`\\theta \\in \\mathbb{R}^k` so that Wald intervals and multivariate-normal
draws never leave the parameter space:

============  ==============================  =====================================
family        natural parameters              unconstrained :math:`\\theta`
============  ==============================  =====================================
exponential   scale :math:`\\lambda`           ``log_scale`` = :math:`\\log\\lambda`
weibull       scale :math:`\\lambda`, shape k  ``log_scale``, ``log_shape``
gompertz      rate a, shape b                 ``log_rate`` = :math:`\\log a`, ``shape`` = b
loglogistic   scale :math:`\\alpha`, shape β   ``log_scale``, ``log_shape``
lognormal     mu, sigma                       ``mu``, ``log_sigma``
gengamma      mu, sigma, Q                    ``mu``, ``log_sigma``, ``Q``
============  ==============================  =====================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from sim.distributions import FAMILIES, SurvivalDistribution, make_distribution
from sim.errors import UserError

__all__ = ["THETA_NAMES", "check_family", "from_theta", "natural_index", "to_natural", "to_theta"]

#: Names of the unconstrained parameters per family (order of ``estimate`` and ``cov``).
THETA_NAMES: dict[str, tuple[str, ...]] = {
    "exponential": ("log_scale",),
    "weibull": ("log_scale", "log_shape"),
    "gompertz": ("log_rate", "shape"),
    "loglogistic": ("log_scale", "log_shape"),
    "lognormal": ("mu", "log_sigma"),
    "gengamma": ("mu", "log_sigma", "Q"),
}

# natural parameter name -> (theta name, is_log)
_MAP: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "exponential": (("scale", "log_scale", True),),
    "weibull": (("scale", "log_scale", True), ("shape", "log_shape", True)),
    "gompertz": (("rate", "log_rate", True), ("shape", "shape", False)),
    "loglogistic": (("scale", "log_scale", True), ("shape", "log_shape", True)),
    "lognormal": (("mu", "mu", False), ("sigma", "log_sigma", True)),
    "gengamma": (("mu", "mu", False), ("sigma", "log_sigma", True), ("Q", "Q", False)),
}


def check_family(family, key: str = "family") -> str:
    """Return ``family`` if it is one of :data:`sim.distributions.FAMILIES`, else raise UserError."""
    if family not in FAMILIES:
        raise UserError(f"{key} must be one of {sorted(FAMILIES)}, got {family!r}")
    return family


def to_natural(family: str, theta) -> dict[str, float]:
    """Natural parameters ``{name: value}`` (constructor names) from ``theta``."""
    theta = np.asarray(theta, dtype=float)
    return {
        nat: (math.exp(v) if is_log else float(v))
        for (nat, _, is_log), v in zip(_MAP[family], theta, strict=True)
    }


def to_theta(family: str, params: Mapping[str, float]) -> np.ndarray:
    """Unconstrained vector from natural parameters (inverse of :func:`to_natural`)."""
    return np.array([
        math.log(params[nat]) if is_log else float(params[nat]) for nat, _, is_log in _MAP[family]
    ])


def from_theta(family: str, theta) -> SurvivalDistribution:
    """Distribution of ``family`` at the unconstrained parameters ``theta``."""
    return make_distribution(family, **to_natural(family, theta))


def natural_index(family: str, name: str, key: str = "fixed") -> int:
    """Position in :math:`\\theta` of the natural parameter ``name`` of ``family`` (UserError if unknown)."""
    names = [nat for nat, _, _ in _MAP[family]]
    if name not in names:
        raise UserError(f"{key} must name {family} parameters {names}, got {name!r}")
    return names.index(name)
