"""PFS fits per therapy from the evidence table, driven by a fit specification.

The specification (``configs/fit/pfs.yaml``; keys documented there and in ``docs/fitting.md``)
names, per therapy, the family and the evidence rows to fit: a median (with its CI and n when
the row has them), landmark rates ``pfs_rate_<N>m`` (with n), parameters fixed at an assumption,
or a hazard ratio against a reference therapy of the same trial. :func:`fit_all` runs
:func:`sim.fitting.summary.fit_summary` for each entry (references first); :func:`write_fits`
writes ``data/fits/pfs_fits.yaml`` and ``.csv``; :func:`compare_with_configs` lists where the
therapy configs disagree with the fits (``pnetsim-fit --check``).

The fitted curve is given in the config parameterisation of ``sim.therapies.pfs.build_pfs``:
``{family, median, <shape parameters>}`` with the median :math:`S^{-1}(1/2)` of the fit, so a
config block can be copied as is.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sim.distributions import FAMILIES, SurvivalDistribution
from sim.errors import UserError
from sim.evidence import endpoint_base, load_evidence, lookup
from sim.fitting.summary import PH_FAMILIES, HazardRatio, Landmark, Median, fit_summary

__all__ = [
    "DEFAULT_ASSUMPTIONS",
    "DEFAULT_FITS",
    "DEFAULT_SPEC",
    "compare_with_configs",
    "config_pfs",
    "fit_all",
    "load_spec",
    "read_fits",
    "write_fits",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / "configs" / "fit" / "pfs.yaml"
DEFAULT_FITS = ROOT / "data" / "fits" / "pfs_fits.yaml"
DEFAULT_ASSUMPTIONS = ROOT / "data" / "evidence" / "assumptions.csv"
THERAPY_DIR = ROOT / "configs" / "therapy"
#: significant digits written for fitted numbers
DIGITS = 6
#: relative tolerance of ``--check`` (configs print 3-4 significant digits)
CHECK_RTOL = 1e-4
#: horizon (months) of the restricted mean and of the long-term survival in the comparison table
HORIZON = 120.0
_SPEC_KEYS = {"family", "median", "landmarks", "fixed", "reference", "hazard_ratio", "effect", "compare", "checks"}
_SHAPE_KEYS = {"exponential": (), "weibull": ("shape",), "gompertz": ("shape",), "loglogistic": ("shape",),
               "lognormal": ("sigma",), "gengamma": ("sigma", "Q")}


def _sig(x: float, digits: int = DIGITS) -> float:
    """``x`` rounded to ``digits`` significant digits (plain float for YAML)."""
    x = float(x)
    if x == 0.0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


# ---------------------------------------------------------------------------
# specification and inputs
# ---------------------------------------------------------------------------
def load_spec(path: str | Path = DEFAULT_SPEC) -> dict:
    """Read and check a fit specification (mapping therapy -> entry)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"fit spec must be an existing YAML file, got {str(path)!r}")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, Mapping):
        raise UserError(f"fit spec must map therapy names to entries, got {type(spec).__name__}")
    for name, entry in spec.items():
        if not isinstance(entry, Mapping):
            raise UserError(f"{name} must be a mapping of fit keys, got {entry!r}")
        unknown = set(entry) - _SPEC_KEYS
        if unknown:
            raise UserError(f"{name} keys must be among {sorted(_SPEC_KEYS)}, got {sorted(unknown)}")
        if entry.get("family") not in FAMILIES:
            raise UserError(f"{name}.family must be one of {sorted(FAMILIES)}, got {entry.get('family')!r}")
        ref = entry.get("reference")
        if ref is not None and ref not in spec:
            raise UserError(f"{name}.reference must be a therapy of the fit spec, got {ref!r}")
    return dict(spec)


def _row(key: str, evidence_id, table: pd.DataFrame) -> pd.Series:
    if not isinstance(evidence_id, str):
        raise UserError(f"{key} must be an evidence id, got {evidence_id!r}")
    try:
        return lookup(evidence_id, table)
    except KeyError as exc:  # lookup raises KeyError naming the id and close matches
        raise UserError(f"{key} must be an evidence id: {exc.args[0]}") from None


def _n(row: pd.Series) -> int | None:
    return int(row["n"]) if pd.notna(row["n"]) else None


def _ci(row: pd.Series):
    if str(row["unit"]).endswith("_range") or pd.isna(row["ci_low"]) or pd.isna(row["ci_high"]):
        return None
    return float(row["ci_low"]), float(row["ci_high"])


def _landmark_time(key: str, row: pd.Series) -> float:
    """Months of a ``pfs_rate_<N>m`` / ``..._<N>y`` endpoint."""
    m = re.fullmatch(r"pfs_rate_(\d+)([my])", endpoint_base(str(row["endpoint"])))
    if m is None:
        raise UserError(f"{key} must be a pfs_rate_<N>m evidence row, got endpoint {row['endpoint']!r}")
    return float(m.group(1)) * (12.0 if m.group(2) == "y" else 1.0)


def _assumption(key: str, ref, assumptions: pd.DataFrame) -> float:
    if not (isinstance(ref, str) and ref.startswith("assumption:")):
        raise UserError(f"{key} must be 'assumption:<id>' (a row of assumptions.csv), got {ref!r}")
    aid = ref.split(":", 1)[1]
    hit = assumptions.loc[assumptions["id"] == aid, "value"]
    if hit.empty:
        raise UserError(f"{key} must name a row of assumptions.csv, got {aid!r}")
    return float(hit.iloc[0])


def _information(name: str, entry: Mapping, table: pd.DataFrame, assumptions: pd.DataFrame) -> dict:
    """Summary-statistic objects and their sources for one spec entry."""
    info: dict = {"median": None, "landmarks": [], "fixed": {}, "hazard_ratio": None, "sources": {}}
    if entry.get("median") is not None:
        row = _row(f"{name}.median", entry["median"], table)
        info["median"] = Median(float(row["value"]), ci=_ci(row), n=_n(row))
        info["sources"]["median"] = f"evidence:{entry['median']}"
    for i, eid in enumerate(entry.get("landmarks") or []):
        row = _row(f"{name}.landmarks.{i}", eid, table)
        info["landmarks"].append(Landmark(_landmark_time(f"{name}.landmarks.{i}", row), float(row["value"]),
                                          n=_n(row)))
        info["sources"][f"landmarks.{i}"] = f"evidence:{eid}"
    for pname, ref in (entry.get("fixed") or {}).items():
        info["fixed"][pname] = _assumption(f"{name}.fixed.{pname}", ref, assumptions)
        info["sources"][f"fixed.{pname}"] = ref
    if entry.get("hazard_ratio") is not None:
        row = _row(f"{name}.hazard_ratio", entry["hazard_ratio"], table)
        info["hazard_ratio"] = HazardRatio(float(row["value"]), ci=_ci(row))
        info["sources"]["hazard_ratio"] = f"evidence:{entry['hazard_ratio']}"
    return info


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------
def config_pfs(dist: SurvivalDistribution) -> dict:
    """``{family, median, <shape parameters>}``: the ``build_pfs`` form of ``dist`` (rounded)."""
    out = {"family": dist.family, "median": _sig(dist.median())}
    params = dist.params()
    for k in _SHAPE_KEYS[dist.family]:
        out[k] = _sig(params[k])
    return out


def _restricted_mean(dist: SurvivalDistribution, horizon: float = HORIZON) -> float:
    """:math:`\\int_0^{T} S(t)\\,dt` by the trapezoidal rule on 2401 points."""
    t = np.linspace(0.0, horizon, 2401)
    s = np.asarray(dist.survival(t), dtype=float)
    return float(np.sum(0.5 * (s[1:] + s[:-1]) * np.diff(t)))


def _curve_summary(dist: SurvivalDistribution) -> dict:
    return {
        "median": _sig(dist.median()),
        "S_24": _sig(float(dist.survival(24.0))),
        "S_60": _sig(float(dist.survival(60.0))),
        f"S_{HORIZON:g}": _sig(float(dist.survival(HORIZON))),
        f"rmst_{HORIZON:g}": _sig(_restricted_mean(dist)),
        "hazard_24": _sig(float(dist.hazard(24.0))),
        "hazard_60": _sig(float(dist.hazard(60.0))),
    }


def _objective(fit) -> float:
    """:math:`-\\ell = \\tfrac12\\sum z_j^2` of a summary fit (0 below 1e-12: constraints met)."""
    value = -float(fit.loglik)
    return 0.0 if value < 1e-12 else _sig(value)


def _fit_one(name: str, entry: Mapping, family: str, info: dict, fits: dict):
    ref_name = entry.get("reference")
    reference = fits[ref_name]["fit"] if ref_name else None
    if reference is not None and reference.family != family:
        return None
    return fit_summary(
        family,
        median=info["median"],
        landmarks=info["landmarks"],
        hazard_ratio=info["hazard_ratio"],
        reference=reference,
        effect=entry.get("effect"),
        fixed={k: v for k, v in info["fixed"].items() if k in _SHAPE_KEYS[family]} or None,
    )


def _check(name: str, item, fit, fits: dict, table: pd.DataFrame) -> dict:
    """A reported number not used by the fit against the fit's prediction."""
    dist = fit.distribution
    if isinstance(item, str):
        row = _row(f"{name}.checks", item, table)
        base = endpoint_base(str(row["endpoint"]))
        if base == "median_pfs":
            predicted, what = dist.median(), "median"
        else:
            t = _landmark_time(f"{name}.checks", row)
            predicted, what = float(dist.survival(t)), f"S({t:g})"
        return {"check": what, "source": f"evidence:{item}", "reported": float(row["value"]),
                "predicted": _sig(predicted)}
    if isinstance(item, Mapping) and set(item) == {"hazard_ratio", "reference"}:
        row = _row(f"{name}.checks.hazard_ratio", item["hazard_ratio"], table)
        if item["reference"] not in fits:
            raise UserError(f"{name}.checks.reference must be a fitted therapy, got {item['reference']!r}")
        ref = fits[item["reference"]]["fit"].distribution
        # ratio of cumulative hazards at the trial arm's median: constant (= the HR) under PH
        predicted = float(dist.cumhazard(dist.median()) / ref.cumhazard(dist.median()))
        out = {"check": f"hazard_ratio vs {item['reference']}", "source": f"evidence:{item['hazard_ratio']}",
               "reported": float(row["value"]), "predicted": _sig(predicted)}
        if dist.family == ref.family == "weibull":
            # Weibull PH with a common shape k: HR = (m_ref / m_trt)^k, so k = log HR / log(m_ref / m_trt)
            out["implied_weibull_shape"] = _sig(math.log(float(row["value"])) / math.log(ref.median() / dist.median()))
        ci = _ci(row)
        if ci is not None:
            out["reported_ci"] = list(ci)
            out["within_ci"] = bool(ci[0] <= predicted <= ci[1])
        return out
    raise UserError(f"{name}.checks items must be evidence ids or {{hazard_ratio, reference}}, got {item!r}")


def fit_all(spec: Mapping, evidence: pd.DataFrame | None = None,
            assumptions: pd.DataFrame | None = None) -> dict:
    """Fit every therapy of ``spec`` (references first).

    Returns
    -------
    dict
        therapy -> ``{"fit": SummaryFit, "record": dict}`` where ``record`` is the
        YAML-ready result (see :func:`write_fits`).
    """
    table = load_evidence() if evidence is None else evidence
    assum = pd.read_csv(DEFAULT_ASSUMPTIONS) if assumptions is None else assumptions
    fits: dict = {}

    def visit(name: str, stack: tuple = ()):
        if name in fits:
            return
        if name in stack:
            raise UserError(f"{name}.reference must not form a cycle, got {' -> '.join((*stack, name))}")
        entry = spec[name]
        if entry.get("reference"):
            visit(entry["reference"], (*stack, name))
        info = _information(name, entry, table, assum)
        family = entry["family"]
        fit = _fit_one(name, entry, family, info, fits)
        record = {
            "family": family,
            "pfs": config_pfs(fit.distribution),
            "params": {k: _sig(v) for k, v in fit.params.items()},
            "theta": {"names": list(fit.param_names), "estimate": [_sig(v) for v in fit.estimate],
                      "cov": [[_sig(v) if math.isfinite(v) else None for v in r] for r in np.asarray(fit.cov)]},
            "fit": {"exact": bool(fit.exact), "converged": bool(fit.converged),
                    "fixed": list(fit.fixed), "reference": entry.get("reference"),
                    "effect": (entry.get("effect") or "ph") if entry.get("reference") else None,
                    "objective": _objective(fit)},
            "constraints": [
                {k: (_sig(v) if isinstance(v, float) and math.isfinite(v) else
                     (None if isinstance(v, float) else v)) for k, v in row.items()}
                for row in fit.constraints.to_dict("records")
            ],
            "summary": _curve_summary(fit.distribution),
            "sources": info["sources"],
        }
        if fit.joint_estimate is not None:
            record["joint"] = {"names": list(fit.joint_names),
                               "estimate": [_sig(v) for v in fit.joint_estimate],
                               "cov": [[_sig(v) if math.isfinite(v) else None for v in r]
                                       for r in np.asarray(fit.joint_cov)]}
        comparison = []
        for fam in [family, *(entry.get("compare") or [])]:
            if fam not in FAMILIES:
                raise UserError(f"{name}.compare must list families of {sorted(FAMILIES)}, got {fam!r}")
            if entry.get("reference") and (entry.get("effect") or "ph") == "ph" and fam not in PH_FAMILIES:
                continue
            alt = fit if fam == family else _fit_one(name, entry, fam, info, fits)
            if alt is None:
                continue
            comparison.append({"family": fam, "chosen": fam == family, "params": {k: _sig(v) for k, v in alt.params.items()},
                               "objective": _objective(alt), "exact": bool(alt.exact),
                               **_curve_summary(alt.distribution)})
        record["comparison"] = comparison
        fits[name] = {"fit": fit, "record": record}

    for name in spec:
        visit(name)
    # checks may refer to any therapy: computed once all are fitted
    for name, entry in spec.items():
        fits[name]["record"]["checks"] = [_check(name, item, fits[name]["fit"], fits, table)
                                          for item in (entry.get("checks") or [])]
    return {name: fits[name] for name in spec}


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------
HEADER = "# generated by pnetsim-fit from data/evidence/evidence.csv on {date}; do not edit\n"


def write_fits(fits: Mapping, path: str | Path = DEFAULT_FITS, date: str | None = None) -> tuple[Path, Path]:
    """Write ``<path>`` (YAML, one block per therapy) and ``<path>.csv`` (one row per therapy x family)."""
    path = Path(path)
    date = date or _dt.date.today().isoformat()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {name: f["record"] for name, f in fits.items()}
    text = HEADER.format(date=date) + (
        "# Per therapy: pfs (config parameterisation of sim.therapies.pfs.build_pfs), params (natural),\n"
        "# theta (unconstrained estimate and covariance for PSA draws, sim.fitting.parameterisation),\n"
        "# constraints (each target vs fitted, se, z, binds), comparison (families on the same information),\n"
        "# checks (reported numbers not used by the fit vs its prediction). See docs/fitting.md.\n"
    ) + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=110)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    rows = []
    for name, f in fits.items():
        for c in f["record"]["comparison"]:
            rows.append({"therapy": name, "family": c["family"], "chosen": c["chosen"], "exact": c["exact"],
                         "objective": c["objective"],
                         **{f"param_{k}": v for k, v in c["params"].items()},
                         **{k: v for k, v in c.items() if k not in ("family", "chosen", "params", "objective", "exact")}})
    csv_path = path.with_suffix(".csv")
    frame = pd.DataFrame(rows)
    with open(csv_path.with_suffix(".csv.tmp"), "w") as fh:
        fh.write(HEADER.format(date=date))
        frame.to_csv(fh, index=False)
    csv_path.with_suffix(".csv.tmp").replace(csv_path)
    return path, csv_path


def read_fits(path: str | Path = DEFAULT_FITS) -> dict:
    """The records of a written fits file (therapy -> record)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"fits file must exist (run pnetsim-fit), got {str(path)!r}")
    return yaml.safe_load(path.read_text()) or {}


def _therapy_pfs_specs(therapy_dir: Path) -> dict:
    """``pfs`` blocks of the therapy configs, with ``${therapies.x.pfs}`` interpolations resolved."""
    from omegaconf import OmegaConf

    raw = {p.stem: OmegaConf.load(p) for p in sorted(therapy_dir.glob("*.yaml"))}
    root = OmegaConf.create({"therapies": raw})
    return {name: OmegaConf.to_container(root.therapies[name].pfs, resolve=True)
            for name in raw if "pfs" in root.therapies[name]}


def compare_with_configs(fits: Mapping, therapy_dir: str | Path = THERAPY_DIR,
                         rtol: float = CHECK_RTOL) -> list[dict]:
    """Therapies whose config PFS curve differs from the fit (natural parameters, relative ``rtol``).

    The config block is turned into a distribution with ``sim.therapies.pfs.build_pfs`` (so a
    median + landmark or + hazard-ratio form and the fitted median + shape form compare equal
    when they describe the same curve). Returns one dict per disagreement (empty = all agree).
    """
    from sim.therapies.pfs import build_pfs

    configs = _therapy_pfs_specs(Path(therapy_dir))
    problems = []
    for name, f in fits.items():
        record = f["record"] if "record" in f else f
        if name not in configs:
            problems.append({"therapy": name, "problem": "no configs/therapy file with a pfs block"})
            continue
        cfg = build_pfs(f"therapies.{name}.pfs", configs[name])
        fitted = build_pfs(f"fits.{name}.pfs", record["pfs"])
        if cfg.family != fitted.family:
            problems.append({"therapy": name, "problem": "family", "config": cfg.family, "fit": fitted.family})
            continue
        for k, v in fitted.params().items():
            c = cfg.params()[k]
            if not math.isclose(c, v, rel_tol=rtol, abs_tol=1e-12):
                problems.append({"therapy": name, "problem": k, "config": c, "fit": v,
                                 "config_pfs": configs[name], "fit_pfs": record["pfs"]})
    return problems
