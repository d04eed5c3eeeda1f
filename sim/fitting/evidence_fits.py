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

import dataclasses
import datetime as _dt
import math
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf

from sim.distributions import FAMILIES, SurvivalDistribution
from sim.errors import UserError, dotted, number
from sim.evidence import endpoint_base, load_evidence, lookup
from sim.fitting.detection import Detection
from sim.fitting.summary import PH_FAMILIES, HazardRatio, Landmark, Median, fit_summary
from sim.lifetable import DEFAULT_TABLE, LifeTable
from sim.therapies.pfs import build_pfs
from sim.units import DAYS_PER_MONTH, weeks

__all__ = [
    "DEFAULT_ASSUMPTIONS",
    "DEFAULT_FITS",
    "DEFAULT_SPEC",
    "compare_with_configs",
    "detection_settings",
    "config_pfs",
    "fit_all",
    "load_spec",
    "read_fits",
    "therapies_of",
    "write_fits",
    "write_therapy_files",
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
_SPEC_KEYS = {"family", "median", "landmarks", "fixed", "reference", "hazard_ratio", "effect", "compare", "checks",
              "detection", "procedure_death"}
#: top-level spec keys that are settings, not therapies
RESERVED = ("detection",)
DEFAULT_MODEL = ROOT / "configs" / "model" / "default.yaml"
#: detection settings and the model-config key each one reads when given as ``model``
_DETECTION_KEYS = {"imaging_interval_weeks": "imaging_interval_weeks",
                   "clinical_detection_months": "clinical_detection_months",
                   "death_rate_per_year": "disease_death.rate_per_year"}
#: age (years) at which background mortality enters the death rate of the fits: the cohort's mean age
DEFAULT_COHORT = ROOT / "configs" / "cohort" / "default.yaml"
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
    for key in RESERVED:
        if key in spec and spec[key] is not None and not isinstance(spec[key], Mapping):
            raise UserError(f"{key} must be a mapping of settings or null, got {spec[key]!r}")
    for name, entry in therapies_of(spec).items():
        if not isinstance(entry, Mapping):
            raise UserError(f"{name} must be a mapping of fit keys, got {entry!r}")
        unknown = set(entry) - _SPEC_KEYS
        if unknown:
            raise UserError(f"{name} keys must be among {sorted(_SPEC_KEYS)}, got {sorted(unknown)}")
        if entry.get("family") not in FAMILIES:
            raise UserError(f"{name}.family must be one of {sorted(FAMILIES)}, got {entry.get('family')!r}")
        ref = entry.get("reference")
        if ref is not None and ref not in therapies_of(spec):
            raise UserError(f"{name}.reference must be a therapy of the fit spec, got {ref!r}")
    return dict(spec)


def therapies_of(spec: Mapping) -> dict:
    """The therapy entries of a spec (without the settings keys of :data:`RESERVED`)."""
    return {k: v for k, v in spec.items() if k not in RESERVED}


def detection_settings(spec: Mapping, entry: Mapping | None = None, model_file: str | Path = DEFAULT_MODEL,
                       model_values: Mapping | None = None) -> tuple[Detection | None, dict]:
    """The :class:`Detection` of a therapy's trial and where each setting comes from.

    ``spec["detection"]`` (overridden key by key by ``entry["detection"]``) maps
    ``imaging_interval_weeks``, ``clinical_detection_months`` and ``death_rate_per_year`` (death
    without progression) to a number or to ``model`` (the value of ``configs/model/default.yaml``,
    i.e. the rules the model simulates the trials with; for the death rate the disease-death
    rate at the reference covariates plus the background mortality of the life table at the
    cohort's mean age, :func:`background_rate_per_year`). ``clinical_detection_months`` null = scans only;
    ``median_rounding_months`` (default 0.1) is the unit reported medians are rounded to
    (:meth:`Detection.median_window_survival`). ``model_values`` overrides values of the model
    file by dotted key (the OS calibration refits the PFS at each candidate disease-death rate). No
    ``detection`` block (or null): the reported numbers are fitted as true-time ones.
    """
    top = spec.get("detection")
    over = (entry or {}).get("detection")
    if top is None and over is None:
        return None, {}
    settings = {**(top or {}), **(over or {})}
    unknown = set(settings) - set(_DETECTION_KEYS) - {"median_rounding_months"}
    if unknown:
        raise UserError(f"detection keys must be among {sorted([*_DETECTION_KEYS, 'median_rounding_months'])}, "
                        f"got {sorted(unknown)}")
    model = None
    values, sources = {}, {}
    for key, model_key in _DETECTION_KEYS.items():
        v = settings.get(key, "model")
        if v == "model":
            if model is None:
                model = yaml.safe_load(Path(model_file).read_text()) or {}
            v = (model_values or {}).get(model_key, dotted(model, model_key))
            if v is None and key != "clinical_detection_months":
                raise UserError(f"detection.{key} is 'model' but {model_file} has no {model_key}")
            if key == "death_rate_per_year":
                v = _number(f"detection.{key}", v) + background_rate_per_year(model)
            sources[key] = f"model:{model_key}" + ("+background" if key == "death_rate_per_year" else "")
        else:
            sources[key] = "spec"
        values[key] = v
    cd = values["clinical_detection_months"]
    rounding = _number("detection.median_rounding_months", settings.get("median_rounding_months", 0.1))
    sources["median_rounding_months"] = "spec" if "median_rounding_months" in settings else "default 0.1"
    det = Detection(weeks(_number("detection.imaging_interval_weeks", values["imaging_interval_weeks"])),
                    math.inf if cd is None else _number("detection.clinical_detection_months", cd),
                    _number("detection.death_rate_per_year", values["death_rate_per_year"]) / 12.0,
                    rounding / 2.0)
    return det, sources


def background_rate_per_year(model: Mapping, cohort_file: str | Path = DEFAULT_COHORT) -> float:
    """Other-cause death hazard per year at the cohort's mean age: the mean over the sexes of
    the life table's cumulative hazard over the year after that age."""
    table = (dotted(model, "background_mortality.table") or DEFAULT_TABLE)
    age = float((yaml.safe_load(Path(cohort_file).read_text()) or {}).get("age", {}).get("mean", 58))
    lt = LifeTable.load(table)
    h = [float(lt.cumhazard(np.array([age + 1.0]), s)[0] - lt.cumhazard(np.array([age]), s)[0]) for s in sorted(lt.mu)]
    return float(np.mean(h))


#: :func:`sim.errors.number` without bounds, NaN and infinities accepted
_number = partial(number, nonfinite=None)


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
def config_pfs(dist: SurvivalDistribution, hazard_ratio: float | None = None) -> dict:
    """``{family, median, <shape parameters>}``: the ``build_pfs`` form of ``dist`` (rounded).

    With ``hazard_ratio`` (a treated arm under PH, exponential or Weibull): the form
    ``{family, median, shape, hazard_ratio}`` of the *reference* curve and the HR, which
    ``build_pfs`` turns back into ``dist`` (``median_ref = median_trt HR^(1/k)``), so the
    configured HR can be varied on its own (DSA/PSA).
    """
    params = dist.params()
    if hazard_ratio is None:
        out = {"family": dist.family, "median": _sig(dist.median())}
    else:
        k = params.get("shape", 1.0)
        out = {"family": dist.family, "median": _sig(dist.median() * hazard_ratio ** (1.0 / k))}
    for k in _SHAPE_KEYS[dist.family]:
        out[k] = _sig(params[k])
    if hazard_ratio is not None:
        out["hazard_ratio"] = _sig(hazard_ratio)
    return out


def _restricted_mean(dist: SurvivalDistribution, horizon: float = HORIZON) -> float:
    """:math:`\\int_0^{T} S(t)\\,dt` by the trapezoidal rule on 2401 points."""
    t = np.linspace(0.0, horizon, 2401)
    s = np.asarray(dist.survival(t), dtype=float)
    return float(np.sum(0.5 * (s[1:] + s[:-1]) * np.diff(t)))


def _curve_summary(dist: SurvivalDistribution, detection: Detection | None = None) -> dict:
    observed = {} if detection is None else {
        "median_observed": _sig(detection.median(dist)),
        "S_observed_12": _sig(detection.survival_at(dist, 12.0)),
        "S_observed_24": _sig(detection.survival_at(dist, 24.0)),
    }
    return {
        "median": _sig(dist.median()),
        **observed,
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


def _fit_one(name: str, entry: Mapping, family: str, info: dict, fits: dict, detection: Detection | None = None):
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
        detection=detection,
    )


def _check(name: str, item, fit, fits: dict, table: pd.DataFrame, detection: Detection | None = None) -> dict:
    """A reported number not used by the fit against the fit's prediction (observed scale
    with ``detection``)."""
    dist = fit.distribution
    if isinstance(item, str):
        row = _row(f"{name}.checks", item, table)
        base = endpoint_base(str(row["endpoint"]))
        if base == "median_pfs":
            predicted = dist.median() if detection is None else detection.median(dist)
            what = "median"
        else:
            t = _landmark_time(f"{name}.checks", row)
            predicted = float(dist.survival(t)) if detection is None else detection.survival_at(dist, t)
            what = f"S({t:g})"
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


def _with_procedure_death(name: str, spec: Mapping, det: Detection, table: pd.DataFrame,
                          assumptions: pd.DataFrame, sources: dict) -> Detection:
    """``det`` with the therapy's procedure death (``{probability: <evidence id>, window_days:
    assumption:<id>}``): the published PFS counts those deaths, which the model draws apart from
    the fitted progression curve (``procedure_death`` of the therapy config)."""
    key = f"{name}.procedure_death"
    if not isinstance(spec, Mapping) or set(spec) != {"probability", "window_days"}:
        raise UserError(f"{key} must be {{probability: <evidence id>, window_days: assumption:<id>}}, got {spec!r}")
    p = float(_row(f"{key}.probability", spec["probability"], table)["value"])
    w = _assumption(f"{key}.window_days", spec["window_days"], assumptions)
    sources["procedure_death.probability"] = f"evidence:{spec['probability']}"
    sources["procedure_death.window_days"] = spec["window_days"]
    return dataclasses.replace(det, procedure_death=p, procedure_window=w / DAYS_PER_MONTH)


def fit_all(spec: Mapping, evidence: pd.DataFrame | None = None,
            assumptions: pd.DataFrame | None = None, model_file: str | Path = DEFAULT_MODEL,
            model_values: Mapping | None = None, compare: bool = True) -> dict:
    """Fit every therapy of ``spec`` (references first), on the observed scale of
    :func:`detection_settings` when the spec has a ``detection`` block (``model_values``
    override the model file's rules; ``compare=False`` skips the family comparison).

    Returns
    -------
    dict
        therapy -> ``{"fit": SummaryFit, "record": dict}`` where ``record`` is the
        YAML-ready result (see :func:`write_fits`).
    """
    table = load_evidence() if evidence is None else evidence
    assum = pd.read_csv(DEFAULT_ASSUMPTIONS) if assumptions is None else assumptions
    therapies = therapies_of(spec)
    fits: dict = {}
    detections: dict = {}

    def visit(name: str, stack: tuple = ()):
        if name in fits:
            return
        if name in stack:
            raise UserError(f"{name}.reference must not form a cycle, got {' -> '.join((*stack, name))}")
        entry = therapies[name]
        if entry.get("reference"):
            visit(entry["reference"], (*stack, name))
        info = _information(name, entry, table, assum)
        family = entry["family"]
        det, det_sources = detection_settings(spec, entry, model_file, model_values)
        if det is not None and entry.get("procedure_death"):
            det = _with_procedure_death(name, entry["procedure_death"], det, table, assum, info["sources"])
        detections[name] = det
        fit = _fit_one(name, entry, family, info, fits, det)
        ph_form = (entry.get("reference") and (entry.get("effect") or "ph") == "ph"
                   and family in ("exponential", "weibull") and fit.joint_estimate is not None)
        hr = math.exp(float(fit.joint_estimate[-1])) if ph_form else None
        record = {
            "family": family,
            "pfs": config_pfs(fit.distribution, hr),
            "params": {k: _sig(v) for k, v in fit.params.items()},
            "theta": {"names": list(fit.param_names), "estimate": [_sig(v) for v in fit.estimate],
                      "cov": [[_sig(v) if math.isfinite(v) else None for v in r] for r in np.asarray(fit.cov)]},
            "fit": {"exact": bool(fit.exact), "converged": bool(fit.converged),
                    "fixed": list(fit.fixed), "reference": entry.get("reference"),
                    "effect": (entry.get("effect") or "ph") if entry.get("reference") else None,
                    "objective": _objective(fit),
                    "scale": "true event time (median and landmarks fitted as observed at assessments)"
                    if det is not None else "as reported",
                    "detection": None if det is None else {
                        **{k: (_sig(v) if math.isfinite(v) else None) for k, v in det.as_dict().items()},
                        "sources": det_sources}},
            "constraints": [
                {k: (_sig(v) if isinstance(v, float) and math.isfinite(v) else
                     (None if isinstance(v, float) else v)) for k, v in row.items()}
                for row in fit.constraints.to_dict("records")
            ],
            "summary": _curve_summary(fit.distribution, det),
            "sources": info["sources"],
        }
        if fit.joint_estimate is not None:
            record["joint"] = {"names": list(fit.joint_names),
                               "estimate": [_sig(v) for v in fit.joint_estimate],
                               "cov": [[_sig(v) if math.isfinite(v) else None for v in r]
                                       for r in np.asarray(fit.joint_cov)]}
        comparison = []
        for fam in [family, *((entry.get("compare") or []) if compare else [])]:
            if fam not in FAMILIES:
                raise UserError(f"{name}.compare must list families of {sorted(FAMILIES)}, got {fam!r}")
            if entry.get("reference") and (entry.get("effect") or "ph") == "ph" and fam not in PH_FAMILIES:
                continue
            alt = fit if fam == family else _fit_one(name, entry, fam, info, fits, det)
            if alt is None:
                continue
            comparison.append({"family": fam, "chosen": fam == family, "params": {k: _sig(v) for k, v in alt.params.items()},
                               "objective": _objective(alt), "exact": bool(alt.exact),
                               **_curve_summary(alt.distribution, det)})
        record["comparison"] = comparison
        fits[name] = {"fit": fit, "record": record}

    for name in therapies:
        visit(name)
    # checks may refer to any therapy: computed once all are fitted
    for name, entry in therapies.items():
        fits[name]["record"]["checks"] = [_check(name, item, fits[name]["fit"], fits, table, detections[name])
                                          for item in (entry.get("checks") or [])]
    return {name: fits[name] for name in therapies}


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


GENERATED_MARK = "# generated by pnetsim-fit (data/fits/pfs_fits.yaml); do not edit"
_PFS_LINE = re.compile(r"(?m)^pfs:.*$")
_PFS_SOURCE = re.compile(r"(?m)^  pfs(\.[A-Za-z0-9_.]+)?:.*\n")


def pfs_line(record: Mapping) -> str:
    """The ``pfs:`` line written to a therapy config: the fitted block in flow style + mark."""
    flow = yaml.safe_dump(dict(record["pfs"]), default_flow_style=True, sort_keys=False, width=1000).strip()
    return f"pfs: {flow}   {GENERATED_MARK}"


def write_therapy_files(fits: Mapping, therapy_dir: str | Path = THERAPY_DIR) -> list[Path]:
    """Regenerate the ``pfs`` block of each fitted therapy's config (``configs/therapy/<name>.yaml``).

    The ``pfs:`` line is replaced by the fitted block (marked as generated) and the ``sources``
    entries of ``pfs`` by one entry ``pfs: fit:<name>`` (the fit record in
    ``data/fits/pfs_fits.yaml`` lists the evidence and assumption rows it was made from; see
    ``tests/test_traceability.py``). Other lines (comments, response, AEs, ...) are kept.
    """
    new = {}
    for name, f in fits.items():
        record = f["record"] if "record" in f else f
        path = Path(therapy_dir) / f"{name}.yaml"
        if not path.is_file():
            raise UserError(f"{name} must have a therapy config to regenerate, got no file {str(path)!r}")
        text = path.read_text()
        line = pfs_line(record)
        text, k = _PFS_LINE.subn(lambda _m: line, text, count=1)
        if k != 1:
            raise UserError(f"{path} must contain one top-level 'pfs:' line to regenerate")
        text = _PFS_SOURCE.sub("", text)
        text, k = re.subn(r"(?m)^sources:[^\n]*\n", lambda m: m.group(0) + f"  pfs: fit:{name}\n", text, count=1)
        if k != 1:
            raise UserError(f"{path} must contain a top-level 'sources:' mapping")
        new[path] = text
    for path, text in new.items():  # every file checked before any is written
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return list(new)


def read_fits(path: str | Path = DEFAULT_FITS) -> dict:
    """The records of a written fits file (therapy -> record)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"fits file must exist (run pnetsim-fit), got {str(path)!r}")
    return yaml.safe_load(path.read_text()) or {}


def _therapy_pfs_specs(therapy_dir: Path) -> dict:
    """``pfs`` blocks of the therapy configs, with ``${therapies.x.pfs}`` interpolations resolved."""
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
