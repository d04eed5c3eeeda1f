"""Progression-free survival on a line, built from traceable summary numbers.

Two simple fits (the fitting pipeline of ``sim.fitting`` will write fuller ones):

* ``median`` + ``shape`` (assumed shape) -> ``from_median(family, median, shape=...)``;
* Weibull through a ``median`` and one landmark ``S(landmark_months) = landmark_survival``:
  ``k = log(log(S_L) / log(1/2)) / log(t_L / m)``, ``lambda = m / log(2)^(1/k)``.

Optionally ``hazard_ratio`` turns the reference curve into a treated one under proportional
hazards, ``S_trt(t) = S_ref(t)^HR`` (e.g. CLARINET: placebo curve and HR 0.47); for a
Weibull this is again a Weibull with ``lambda_trt = lambda_ref * HR^(-1/k)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sim.distributions import FAMILIES, SurvivalDistribution, from_median, make_distribution
from sim.errors import UserError, check, is_number, mapping


def build_pfs(key: str, spec: Mapping) -> SurvivalDistribution:
    """Distribution described by the config mapping ``spec`` (``key`` names it in errors)."""
    spec = mapping(key, spec)
    family = spec.get("family")
    check(isinstance(family, str) and family in FAMILIES, f"{key}.family", family,
          f"must be one of {sorted(FAMILIES)}")
    median = spec.get("median")
    check(is_number(median) and median > 0, f"{key}.median", median, "must be a positive number of months")
    hr = spec.get("hazard_ratio", 1.0)
    hr = 1.0 if hr is None else hr
    check(is_number(hr) and hr > 0, f"{key}.hazard_ratio", hr, "must be > 0")
    if spec.get("landmark_months") is not None:
        check(family == "weibull", f"{key}.family", family, "must be weibull for a median + landmark fit")
        t_l, s_l = spec["landmark_months"], spec.get("landmark_survival")
        check(isinstance(t_l, (int, float)) and t_l > 0 and t_l != median, f"{key}.landmark_months", t_l,
              "must be a positive time different from the median")
        check(isinstance(s_l, (int, float)) and 0 < s_l < 1, f"{key}.landmark_survival", s_l, "must be in (0, 1)")
        shape = math.log(math.log(s_l) / math.log(0.5)) / math.log(t_l / median)
        check(shape > 0, key, dict(spec), "landmark and median are inconsistent (survival must fall after the median)")
        scale = median / math.log(2) ** (1 / shape)
        return make_distribution("weibull", scale=scale * hr ** (-1 / shape), shape=shape)
    shape_args = {k: v for k, v in spec.items() if k in ("shape", "sigma", "Q")}
    try:
        dist = from_median(family, float(median), **shape_args)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{key}: {exc}") from None
    if hr != 1.0:
        check(family in ("exponential", "weibull"), f"{key}.hazard_ratio", hr,
              "applies to exponential or weibull reference curves only")
        p = dist.params()
        return make_distribution(family, **{**p, "scale": p["scale"] * hr ** (-1 / p.get("shape", 1.0))})
    return dist
