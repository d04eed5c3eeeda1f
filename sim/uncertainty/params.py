"""Parameter distributions for probabilistic (PSA) and ranges for deterministic (DSA)
sensitivity analysis, addressed by config path.

A parameter is a dotted path into the composed config (e.g.
``therapies.sunitinib_rechallenge.rechallenge.time_ratio``). Its distribution is centred on
the path's *current* (base-case) value and described in ``psa.parameters`` (see
``configs/psa/default.yaml``)::

    <path>: {dist: lognormal, se_log: 0.1, source: "assumption:..."}        # SE of the log given
    <path>: {dist: lognormal, ci: "evidence:<id>"}                          # SE of log from a 95 % CI
    <path>: {dist: beta, range: economics}          # mean = base, SE = (high - low) / 3.92 from economics.ranges
    <path>: {dist: beta, se: 0.03}                  # method of moments from mean and SE
    <path>: {dist: gamma, range: economics}         # costs: method of moments
    <path>: {dist: uniform | loguniform, range: "assumption:<id>", low: .., high: .., centre: median}
    <name>: {dist: dirichlet, paths: [p1, p2, p3], concentration: 50}     # shares summing to one
    <name>: {dist: mvnormal, paths: [p1, p2], cov: [[..]], scale: log | identity}
    <pfs node>: {dist: fit, fit: <therapy>, file: data/fits/pfs_fits.yaml}   # Weibull fit covariance

``range: "assumption:<id>"`` reads ``low`` / ``high`` of row ``id`` in
``data/evidence/assumptions.csv``; when that file or row is missing the ``low`` / ``high``
given in the entry are used and the source says so. ``range: economics`` reads
``economics.ranges.<path without 'economics.'>``.

Centring. Every distribution states which of its summaries equals the base-case value
(``centre``, the ``centred_on`` column of :meth:`ParamSet.table`): ``median`` for log-normal
(default; ``centre: mean`` sets ``mu = log(base) - sigma^2 / 2``), ``mean`` for beta, gamma and
normal, and for uniform / log-uniform either the plain distribution when the base case is its
mean or median (the midpoint; the geometric midpoint for log-uniform), or ``centre: median``:
a two-piece distribution with half its mass uniform (log-uniform) on ``[low, base]`` and half
on ``[base, high]``, so the median is the base case and the range is kept; ``centre: none``
states that the base case is neither (e.g. at the end of the range). In a PSA
(:func:`build_paramset`) a uniform / log-uniform whose base case is neither its mean nor its
median without ``centre`` is an error. Dirichlet shares: ``alpha_j = concentration x base_j``,
so the mean of each share is its base value (the base values must sum to one).

Draws are inverse transforms of uniforms from a named stream per parameter,
``"psa/<path>"`` at PSA sample ``s`` (:func:`sim.rng.uniforms` with ``sample=s``): adding
a parameter never changes another's draws, and sample ``s`` is the same whatever the number
of samples or the order in which samples are run. With ``psa.sampling: sobol`` the uniforms
of sample ``s`` are instead point ``s`` of a scrambled Sobol sequence (``scipy.stats.qmc.Sobol``,
seeded by the master seed) over all parameters in their listed order (joint blocks last):
still the same whatever the number of samples or block split, but adding a parameter changes
the draws of those after it; use a power of two samples for the sequence's balance.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf
from scipy import stats
from scipy.special import ndtri
from scipy.stats import qmc

from sim.errors import UserError, check, is_number, number, sequence_of_str
from sim.evidence import lookup
from sim.rng import column, uniforms

Z95 = 1.959963984540054
DISTS = ("lognormal", "normal", "beta", "gamma", "uniform", "loguniform", "mvnormal", "fit", "dirichlet", "fixed")
CENTRES = ("mean", "median", "none")
ASSUMPTIONS = Path(__file__).resolve().parents[2] / "data" / "evidence" / "assumptions.csv"
MISSING = object()


def get_path(cfg: Mapping, path: str, default=MISSING):
    """Value at dotted ``path`` of a nested mapping (UserError naming the path if absent)."""
    node = cfg
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            if default is not MISSING:
                return default
            raise UserError(f"parameter path {path} does not exist in the configuration (missing {part!r})")
    return node


def set_path(cfg: dict, path: str, value) -> None:
    """Set dotted ``path`` of a nested dict in place (the path must exist)."""
    parts = path.split(".")
    node = get_path(cfg, ".".join(parts[:-1])) if len(parts) > 1 else cfg
    check(isinstance(node, dict) and parts[-1] in node, path, value, "must be an existing configuration key")
    node[parts[-1]] = value


def load_assumptions(path: Path = ASSUMPTIONS) -> pd.DataFrame | None:
    """``assumptions.csv`` (id, parameter, value, low, high, ...) or None if not written yet."""
    if not Path(path).exists():
        return None
    t = pd.read_csv(path)
    if "id" not in t.columns:
        raise UserError(f"{path} must have an 'id' column, got {list(t.columns)}")
    return t.set_index("id")


def _evidence_ci(ref: str) -> tuple[float, float, float]:
    eid = ref.split(":", 1)[1] if ref.startswith("evidence:") else ref
    try:
        row = lookup(eid)
    except KeyError:
        raise UserError(f"evidence id {eid!r} (in psa ci) is not in data/evidence/evidence.csv") from None
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if pd.isna(lo) or pd.isna(hi):
        raise UserError(f"evidence {eid} has no 95 % CI (ci_low/ci_high), got {lo!r}, {hi!r}")
    return float(row["value"]), float(lo), float(hi)


@dataclass(frozen=True)
class Param:
    """One uncertain parameter: a path, a distribution centred on the base value, a source."""

    path: str
    dist: str
    base: float
    a: float = math.nan       # distribution parameters (meaning depends on dist, see ppf)
    b: float = math.nan
    low: float = math.nan     # DSA range (2.5 % / 97.5 % quantiles unless a range is given)
    high: float = math.nan
    source: str = ""
    centre: str = ""          # which summary equals the base value: mean, median or none
    split: bool = False       # uniform / log-uniform in two pieces with the median at the base value

    def ppf(self, u: np.ndarray | float):
        """Inverse CDF at ``u``."""
        u = np.asarray(u, float)
        if self.split:                        # two pieces: [a, base] below u = 1/2, [base, b] above
            f = (lambda v: v) if self.dist == "uniform" else np.log
            inv = (lambda v: v) if self.dist == "uniform" else np.exp
            lo, mid, hi = f(self.a), f(self.base), f(self.b)
            return inv(np.where(u < 0.5, lo + (mid - lo) * 2 * u, mid + (hi - mid) * (2 * u - 1)))
        if self.dist == "lognormal":          # a = mu (log), b = sigma (log)
            return np.exp(self.a + self.b * ndtri(u))
        if self.dist == "normal":
            return self.a + self.b * ndtri(u)
        if self.dist == "beta":               # a, b shape parameters
            return stats.beta.ppf(u, self.a, self.b)
        if self.dist == "gamma":              # a = shape, b = scale
            return stats.gamma.ppf(u, self.a, scale=self.b)
        if self.dist == "uniform":
            return self.a + (self.b - self.a) * u
        if self.dist == "loguniform":
            return np.exp(math.log(self.a) + (math.log(self.b) - math.log(self.a)) * u)
        if self.dist == "fixed":
            return np.full_like(u, self.base)
        raise AssertionError(self.dist)

    def describe(self) -> str:
        f = {"lognormal": f"LogNormal(mu={self.a:.4g}, sigma={self.b:.4g})",
             "normal": f"Normal({self.a:.4g}, {self.b:.4g})",
             "beta": f"Beta({self.a:.4g}, {self.b:.4g})",
             "gamma": f"Gamma(shape={self.a:.4g}, scale={self.b:.4g})",
             "uniform": f"Uniform({self.a:.4g}, {self.b:.4g})",
             "loguniform": f"LogUniform({self.a:.4g}, {self.b:.4g})",
             "fixed": "fixed"}
        if self.split:
            name = "Uniform" if self.dist == "uniform" else "LogUniform"
            return f"two-piece {name}({self.a:.4g}, {self.base:.4g}, {self.b:.4g})"
        return f.get(self.dist, self.dist)


@dataclass(frozen=True)
class MvNormal:
    """Jointly normal parameters (e.g. fitted survival parameters with their covariance) on
    the identity or log scale; the mean is the base-case value(s)."""

    name: str
    paths: tuple[str, ...]
    base: tuple[float, ...]
    chol: np.ndarray
    scale: str
    source: str = ""

    def draw(self, u: np.ndarray) -> np.ndarray:
        """Values of ``paths`` at the uniforms ``u`` (one per path): ``m + L ndtri(u)`` on the
        chosen scale, ``L`` the Cholesky factor of ``cov``."""
        z = self.chol @ ndtri(u)
        m = np.log(self.base) if self.scale == "log" else np.asarray(self.base)
        x = m + z
        return np.exp(x) if self.scale == "log" else x

    def table_rows(self) -> list[dict]:
        sd = np.sqrt(np.sum(self.chol ** 2, axis=1))
        rows = []
        for p, b, s in zip(self.paths, self.base, sd):
            lo, hi = ((b * math.exp(-Z95 * s), b * math.exp(Z95 * s)) if self.scale == "log"
                      else (b - Z95 * s, b + Z95 * s))
            rows.append(dict(path=p, distribution=f"MvNormal[{self.name}] ({self.scale})", base=b, low=lo, high=hi,
                             q025=lo, q975=hi, source=self.source,
                             centred_on="median" if self.scale == "log" else "mean"))
        return rows


LN2 = math.log(2.0)
FITS = Path(__file__).resolve().parents[2] / "data" / "fits" / "pfs_fits.yaml"


@dataclass(frozen=True)
class WeibullFit:
    """A Weibull PFS curve drawn from the multivariate normal of a fit's unconstrained
    parameters ``theta = (log scale, log shape)`` with the fit's covariance (``data/fits``,
    written by ``pnetsim-fit``), centred on the *configured* curve.

    ``S(t) = exp(-(t / scale)^shape)``. The configured node (``path``) is either
    ``{median, shape}`` or ``{median, landmark_months, landmark_survival}`` (a curve through the
    median and one landmark); its ``theta0`` follows from ``median = scale (ln 2)^(1/shape)`` and,
    for the landmark form, ``shape = ln(ln(1/S_L) / ln 2) / ln(L / median)``. A draw is
    ``theta = theta0 + C z`` (``C`` Cholesky factor of the fit's covariance, ``z`` standard
    normal), returned in the node's own keys: ``median`` and ``shape`` or ``landmark_survival``.
    """

    name: str
    paths: tuple[str, ...]
    theta0: tuple[float, float]
    chol: np.ndarray
    form: str          # "shape" or "landmark"
    landmark: float = math.nan
    source: str = ""

    def values(self, theta: np.ndarray) -> np.ndarray:
        scale, shape = math.exp(theta[0]), math.exp(theta[1])
        median = scale * LN2 ** (1.0 / shape)
        other = shape if self.form == "shape" else math.exp(-(self.landmark / scale) ** shape)
        return np.array([median, other])

    def draw(self, u: np.ndarray) -> np.ndarray:
        return self.values(np.asarray(self.theta0) + self.chol @ ndtri(np.asarray(u, float)))

    def table_rows(self) -> list[dict]:
        """Rows of :meth:`ParamSet.table`: base values and the 2.5 / 97.5 % quantiles of each
        drawn value, by quasi-Monte Carlo over 2^14 - 1 unscrambled Sobol points (deterministic)."""
        u = qmc.Sobol(d=2, scramble=False).random_base2(14)[1:]      # the first point is (0, 0)
        theta = np.asarray(self.theta0)[:, None] + self.chol @ ndtri(u).T
        scale, shape = np.exp(theta[0]), np.exp(theta[1])
        vals = [scale * LN2 ** (1.0 / shape),
                shape if self.form == "shape" else np.exp(-(self.landmark / scale) ** shape)]
        base = self.values(np.asarray(self.theta0))
        return [dict(path=p, distribution=f"MvNormal[{self.name}] (Weibull log scale, log shape)",
                     base=float(b), low=float(lo), high=float(hi), q025=float(lo), q975=float(hi), source=self.source,
                     centred_on="mean of (log scale, log shape)")
                for p, b, v in zip(self.paths, base, vals) for lo, hi in [np.quantile(v, [0.025, 0.975])]]


@dataclass(frozen=True)
class Dirichlet:
    """Shares that sum to one (``paths``), Dirichlet with ``alpha_j = concentration x base_j``:
    the mean of every share is its base value. A draw is ``g_j / sum_k g_k`` with ``g_j`` the
    inverse gamma CDF (shape ``alpha_j``) at the path's uniform; each share is marginally
    ``Beta(alpha_j, alpha_0 - alpha_j)``."""

    name: str
    paths: tuple[str, ...]
    base: tuple[float, ...]
    concentration: float
    source: str = ""

    @property
    def alpha(self) -> np.ndarray:
        return self.concentration * np.asarray(self.base)

    def draw(self, u: np.ndarray) -> np.ndarray:
        g = stats.gamma.ppf(np.clip(np.asarray(u, float), 1e-15, 1 - 1e-15), self.alpha)
        return g / g.sum()

    def table_rows(self) -> list[dict]:
        a0 = self.concentration
        rows = []
        for p, b, a in zip(self.paths, self.base, self.alpha):
            lo, hi = stats.beta.ppf([0.025, 0.975], a, a0 - a)
            rows.append(dict(path=p, distribution=f"Dirichlet[{self.name}] (alpha {a:.4g} of {a0:.4g})", base=b,
                             low=float(lo), high=float(hi), q025=float(lo), q975=float(hi), source=self.source,
                             centred_on="mean"))
        return rows


def make_dirichlet(name: str, spec: Mapping, cfg: Mapping) -> Dirichlet:
    """:class:`Dirichlet` from ``{dist: dirichlet, paths: [...], concentration: c, source: ...}``."""
    key = f"psa.parameters.{name}"
    paths = tuple(spec.get("paths") or ())
    check(len(paths) >= 2, f"{key}.paths", list(paths), "must list at least two config paths (shares summing to one)")
    base = tuple(number(p, get_path(cfg, p), 0, lo_open=True) for p in paths)
    check(math.isclose(sum(base), 1.0, rel_tol=1e-6), f"{key}.paths", dict(zip(paths, base)),
          "base-case shares must sum to 1")
    conc = number(f"{key}.concentration", spec.get("concentration"), 0, lo_open=True)
    return Dirichlet(name, paths, base, conc, str(spec.get("source", "")))


def _range(key: str, path: str, spec: Mapping, cfg: Mapping, assumptions) -> tuple[float, float, str]:
    ref = spec.get("range")
    if ref == "economics":
        rel = path.split(".", 1)[1] if path.startswith("economics.") else path
        r = get_path(cfg, "economics.ranges", {}).get(rel) if isinstance(get_path(cfg, "economics.ranges", {}), Mapping) else None
        check(isinstance(r, Mapping), f"{key}.range", ref, f"needs economics.ranges.{rel} (low, high)")
        return number(f"economics.ranges.{rel}.low", r["low"]), number(f"economics.ranges.{rel}.high", r["high"]), \
            f"economics.ranges.{rel}: {r.get('why', '')}".strip()
    if isinstance(ref, str) and ref.startswith("assumption:"):
        aid = ref.split(":", 1)[1]
        if assumptions is not None and aid in assumptions.index:
            row = assumptions.loc[aid]
            return number(f"assumptions.csv {aid}.low", float(row["low"])), \
                number(f"assumptions.csv {aid}.high", float(row["high"])), f"{ref} (data/evidence/assumptions.csv)"
        check("low" in spec and "high" in spec, key, dict(spec),
              f"needs low/high: {aid} is not in data/evidence/assumptions.csv")
        return number(f"{key}.low", spec["low"]), number(f"{key}.high", spec["high"]), \
            f"{ref} (fallback range in psa config; assumptions.csv row missing)"
    check("low" in spec and "high" in spec, key, dict(spec), "needs range (economics | assumption:<id>) or low and high")
    return number(f"{key}.low", spec["low"]), number(f"{key}.high", spec["high"]), str(spec.get("source", "psa config range"))


def make_param(path: str, spec: Mapping, cfg: Mapping, assumptions=MISSING, require_centre: bool = False) -> Param:
    """Build one :class:`Param` from its ``psa.parameters`` entry and the base config
    (``assumptions``: the table of :func:`load_assumptions`, read when not given).
    ``require_centre``: a uniform / log-uniform whose base case is neither its mean nor its
    median must state ``centre`` (see the module docstring)."""
    if assumptions is MISSING:
        assumptions = load_assumptions()
    key = f"psa.parameters.{path}"
    check(isinstance(spec, Mapping), key, spec, "must be a mapping with 'dist'")
    dist = spec.get("dist")
    check(dist in DISTS and dist not in ("mvnormal", "fit", "dirichlet"), f"{key}.dist", dist,
          f"must be one of {list(DISTS)}")
    centre = spec.get("centre")
    check(centre is None or centre in CENTRES, f"{key}.centre", centre, f"must be one of {list(CENTRES)}")
    base = get_path(cfg, path, None)
    check(base is not None, key, path, "must name an existing configuration key")
    check(is_number(base), path, base, "must be a number to be varied")
    base = float(base)
    src = str(spec.get("source", ""))
    if dist == "fixed":
        return Param(path, dist, base, source=src, centre="fixed")
    if dist in ("uniform", "loguniform"):
        lo, hi, s = _range(key, path, spec, cfg, assumptions)
        check(lo < hi, f"{key}", (lo, hi), "range must have low < high")
        if dist == "loguniform":
            check(lo > 0, f"{key}.low", lo, "must be > 0 for a log-uniform distribution")
        mid = (lo + hi) / 2 if dist == "uniform" else math.sqrt(lo * hi)
        at_mid = math.isclose(base, mid, rel_tol=1e-9, abs_tol=1e-12)
        if centre == "median" and not at_mid:
            check(lo < base < hi, key, base, f"base case must lie inside ({lo:g}, {hi:g}) for centre: median")
            return Param(path, dist, base, lo, hi, lo, hi, src or s, "median", split=True)
        if centre is None:
            what = "mean and median" if dist == "uniform" else "median"
            check(at_mid or not require_centre, key, base,
                  f"base case is not the {what} ({mid:.4g}) of {dist} [{lo:g}, {hi:g}]: state centre: median "
                  f"(two-piece, median = base case) or centre: none")
            centre = ("mean" if dist == "uniform" else "median") if at_mid else "none"
        elif centre == "mean":
            check(at_mid and dist == "uniform", f"{key}.centre", centre,
                  f"needs a uniform with the base case {base:g} at the midpoint {mid:.4g}")
        return Param(path, dist, base, lo, hi, lo, hi, src or s, centre)
    if dist == "lognormal":
        check(base > 0, path, base, "must be > 0 for a log-normal distribution")
        if "ci" in spec:
            v, lo, hi = _evidence_ci(str(spec["ci"]))
            check(lo > 0 and hi > lo, f"{key}.ci", (lo, hi), "must be a positive CI with low < high")
            sigma = (math.log(hi) - math.log(lo)) / (2 * Z95)
            src = src or f"{spec['ci']} (SE of log from 95 % CI {lo:g}-{hi:g})"
        elif "se_log" in spec:
            sigma = number(f"{key}.se_log", spec["se_log"], 0, lo_open=True)
        elif "range" in spec or ("low" in spec and "high" in spec):
            lo, hi, s = _range(key, path, spec, cfg, assumptions)
            check(0 < lo < hi, key, (lo, hi), "range must have 0 < low < high")
            sigma, src = (math.log(hi) - math.log(lo)) / (2 * Z95), src or s
        else:
            raise UserError(f"{key} needs ci, se_log or range for a log-normal distribution, got {dict(spec)!r}")
        check(centre in (None, "median", "mean"), f"{key}.centre", centre, "must be median or mean for a log-normal")
        mu = math.log(base) - (sigma ** 2 / 2 if centre == "mean" else 0.0)   # median (default) or mean = base
        return Param(path, dist, base, mu, sigma, math.exp(mu - Z95 * sigma), math.exp(mu + Z95 * sigma), src,
                     centre or "median")
    # beta / gamma / normal: mean = base, SE given or from a range
    check(centre in (None, "mean"), f"{key}.centre", centre, f"must be mean for a {dist} distribution")
    if "se" in spec:
        se = number(f"{key}.se", spec["se"], 0, lo_open=True)
        lo, hi = base - Z95 * se, base + Z95 * se
    else:
        lo, hi, s = _range(key, path, spec, cfg, assumptions)
        check(lo < hi, key, (lo, hi), "range must have low < high")
        se, src = (hi - lo) / (2 * Z95), src or s
    if dist == "normal":
        return Param(path, dist, base, base, se, lo, hi, src, "mean")
    if dist == "beta":
        check(0 < base < 1, path, base, "must be in (0, 1) for a beta distribution")
        k = base * (1 - base) / se ** 2 - 1
        check(k > 0, f"{key}.se", se, f"is too large for a beta with mean {base} (need se^2 < mean(1-mean))")
        return Param(path, dist, base, base * k, (1 - base) * k, lo, hi, src, "mean")
    check(base > 0, path, base, "must be > 0 for a gamma distribution")
    shape = (base / se) ** 2
    return Param(path, "gamma", base, shape, se ** 2 / base, lo, hi, src, "mean")


def make_mvnormal(name: str, spec: Mapping, cfg: Mapping) -> MvNormal:
    key = f"psa.parameters.{name}"
    paths = tuple(spec.get("paths") or ())
    check(len(paths) >= 1, f"{key}.paths", paths, "must list config paths")
    base = tuple(float(get_path(cfg, p)) for p in paths)
    cov = np.asarray(spec.get("cov"), float)
    check(cov.shape == (len(paths), len(paths)), f"{key}.cov", spec.get("cov"), f"must be a {len(paths)}x{len(paths)} matrix")
    scale = spec.get("scale", "log")
    check(scale in ("log", "identity"), f"{key}.scale", scale, "must be log or identity")
    if scale == "log":
        check(all(b > 0 for b in base), key, base, "base values must be > 0 on the log scale")
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise UserError(f"{key}.cov must be symmetric positive definite, got {cov.tolist()!r}") from None
    return MvNormal(name, paths, base, chol, scale, str(spec.get("source", "")))


def make_weibull_fit(path: str, spec: Mapping, cfg: Mapping) -> WeibullFit:
    """:class:`WeibullFit` for the PFS node ``path`` from ``{dist: fit, fit: <name>, file: <yaml>}``."""
    key = f"psa.parameters.{path}"
    node = get_path(cfg, path, None)
    check(node is not None, key, path, "must name an existing configuration key")
    check(isinstance(node, Mapping) and node.get("family") == "weibull", path, node,
          "must be a Weibull PFS node ({family: weibull, ...}) for dist: fit")
    file = Path(spec.get("file") or FITS)
    if not file.is_absolute():
        file = Path(__file__).resolve().parents[2] / file
    check(file.is_file(), f"{key}.file", str(file), "must be an existing fit file (pnetsim-fit writes data/fits)")
    fits = yaml.safe_load(file.read_text()) or {}
    name = spec.get("fit")
    check(name in fits, f"{key}.fit", name, f"must be a fit of {file.name}: {sorted(fits)}")
    th = (fits[name] or {}).get("theta") or {}
    check(th.get("names") == ["log_scale", "log_shape"], f"{key}.fit", name, "must be a Weibull fit (log_scale, log_shape)")
    cov = np.asarray([[np.nan if v is None else v for v in row] for row in th.get("cov") or []], float)
    check(cov.shape == (2, 2) and np.all(np.isfinite(cov)), f"{key}.fit", name,
          "has no finite covariance (a median without CI); use dist: lognormal with a stated se_log")
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise UserError(f"{key}.fit {name} covariance is not positive definite: {cov.tolist()!r}") from None
    med = number(f"{path}.median", node.get("median"), 0, lo_open=True)
    if "shape" in node and node.get("landmark_months") is None:
        shape, form, lm = number(f"{path}.shape", node["shape"], 0, lo_open=True), "shape", math.nan
        paths = (f"{path}.median", f"{path}.shape")
    else:
        lm = number(f"{path}.landmark_months", node.get("landmark_months"), 0, lo_open=True)
        sl = number(f"{path}.landmark_survival", node.get("landmark_survival"), 0, lo_open=True)
        check(sl < 1 and lm != med, path, dict(node), "needs landmark_survival < 1 at a time other than the median")
        shape, form = math.log(math.log(1 / sl) / LN2) / math.log(lm / med), "landmark"
        check(shape > 0, path, dict(node), "landmark and median are inconsistent (survival must fall after the median)")
        paths = (f"{path}.median", f"{path}.landmark_survival")
    scale = med / LN2 ** (1 / shape)
    src = str(spec.get("source") or f"fit {name} of {file.name} (covariance of log scale, log shape)")
    return WeibullFit(path, paths, (math.log(scale), math.log(shape)), chol, form, lm, src)


@dataclass(frozen=True)
class ParamSet:
    """All uncertain parameters of a PSA, drawn by sample number."""

    params: tuple[Param, ...]
    joint: tuple[MvNormal | WeibullFit | Dirichlet, ...]
    seed: int
    sampling: str = "random"

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.params] + [p for j in self.joint for p in j.paths]

    def sobol_point(self, s: int) -> np.ndarray:
        """Point ``s`` of the scrambled Sobol sequence of this parameter set (one uniform per path,
        params then joint blocks), clipped into the open unit interval."""
        d = len(self.params) + sum(len(j.paths) for j in self.joint)
        eng = qmc.Sobol(d=d, scramble=True, seed=self.seed)
        if s:
            eng.fast_forward(s)
        return np.clip(eng.random(1)[0], 1e-12, 1 - 1e-12)

    def draw(self, s: int) -> dict[str, float]:
        """Overrides ``{path: value}`` of PSA sample ``s``."""
        out = {}
        if self.sampling == "sobol":
            u = self.sobol_point(s)
            for i, p in enumerate(self.params):
                out[p.path] = float(p.ppf(u[i]))
            at = len(self.params)
            for j in self.joint:
                out.update(zip(j.paths, map(float, j.draw(u[at:at + len(j.paths)]))))
                at += len(j.paths)
            return out
        for p in self.params:
            out[p.path] = float(p.ppf(column(self.seed, f"psa/{p.path}", 0, 0, 1, sample=s)[0]))
        for j in self.joint:
            u = uniforms(self.seed, f"psa/{j.name}", 0, 1, sample=s, width=len(j.paths))[0]
            out.update(zip(j.paths, map(float, j.draw(u))))
        return out

    def table(self) -> pd.DataFrame:
        """One row per parameter: ``path, distribution, base`` (base-case value), ``low, high``
        (the range that set the spread: the stated range, or base-case +- 1.96 SE), ``centred_on``
        (the summary of the distribution that equals the base value), ``q025, q975``
        (2.5 % and 97.5 % quantiles of the distribution actually sampled), ``source``."""
        rows = [dict(path=p.path, distribution=p.describe(), base=p.base, low=p.low, high=p.high,
                     q025=float(p.ppf(0.025)), q975=float(p.ppf(0.975)), source=p.source, centred_on=p.centre)
                for p in self.params]
        for j in self.joint:
            rows += j.table_rows()
        return pd.DataFrame(rows, columns=["path", "distribution", "base", "centred_on", "low", "high", "q025", "q975",
                                           "source"])


def build_paramset(cfg: Mapping, spec: Mapping, seed: int, assumptions=MISSING, sampling: str = "random") -> ParamSet:
    """:class:`ParamSet` from ``psa.parameters`` (``spec``) and the plain base config;
    ``sampling``: ``random`` (named streams) or ``sobol`` (quasi-Monte Carlo outer loop)."""
    check(sampling in ("random", "sobol"), "psa.sampling", sampling, "must be random or sobol")
    if assumptions is MISSING:
        assumptions = load_assumptions()
    check(isinstance(spec, Mapping) and len(spec) > 0, "psa.parameters", spec, "must map config paths to distributions")
    params, joint = [], []
    for path, s in spec.items():
        if isinstance(s, Mapping) and s.get("dist") == "mvnormal":
            joint.append(make_mvnormal(path, s, cfg))
        elif isinstance(s, Mapping) and s.get("dist") == "fit":
            joint.append(make_weibull_fit(path, s, cfg))
        elif isinstance(s, Mapping) and s.get("dist") == "dirichlet":
            joint.append(make_dirichlet(path, s, cfg))
        else:
            params.append(make_param(path, s, cfg, assumptions, require_centre=True))
    ps = ParamSet(tuple(params), tuple(joint), int(seed), sampling)
    dup = pd.Series(ps.paths)
    check(not dup.duplicated().any(), "psa.parameters", sorted(set(dup[dup.duplicated()])), "a path appears twice")
    return ps


def expand_groups(groups: Mapping, paths: list[str]) -> dict[str, list[str]]:
    """Parameter groups ``{name: [patterns]}`` -> ``{name: [paths]}`` (fnmatch patterns).
    A group matching no parameter is an error naming it."""
    out = {}
    for name, pats in (groups or {}).items():
        pats = [pats] if isinstance(pats, str) else sequence_of_str(f"psa.evppi.groups.{name}", pats, allow_none=True)
        hit = [p for p in paths if any(fnmatchcase(p, pat) for pat in pats)]
        check(len(hit) > 0, f"psa.evppi.groups.{name}", pats, "matches no PSA parameter")
        out[name] = hit
    return out


def apply_overrides(cfg, overrides: Mapping[str, float]):
    """A copy of ``cfg`` with ``overrides`` set (paths must exist).

    With an (unresolved) ``DictConfig`` the values are set before interpolations are
    resolved, so a value that others interpolate (``therapies.sunitinib.pfs`` is also the
    rechallenge's) changes everywhere it is used; a plain dict is deep-copied and set.
    """
    if isinstance(cfg, DictConfig):
        c = copy.deepcopy(cfg)
        for p, v in overrides.items():
            old = OmegaConf.select(c, p, default=MISSING)
            if old is MISSING:
                raise UserError(f"parameter path {p} does not exist in the configuration")
            if isinstance(old, int) and not isinstance(old, bool) and float(v).is_integer():
                v = int(v)
            OmegaConf.update(c, p, v, merge=False, force_add=False)
        return c
    c = copy.deepcopy(dict(cfg))
    for p, v in overrides.items():
        old = get_path(c, p)
        set_path(c, p, int(v) if isinstance(old, int) and not isinstance(old, bool) and float(v).is_integer() else v)
    return c
