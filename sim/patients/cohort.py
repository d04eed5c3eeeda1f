"""Generate a virtual cohort with correlated covariates (Gaussian copula).

Each patient ``i`` has a latent normal vector ``z = L eps`` where ``eps_k = Phi^{-1}(u_k)``,
``u_k`` is slot ``k`` of the patient's ``"baseline"`` random stream and ``L`` is the
Cholesky factor of the latent correlation matrix ``R`` (``cohort.correlations``). Each
covariate is a monotone transform of its latent coordinate, so its marginal is exactly the
configured one while covariates are correlated (e.g. higher grade with rapid tempo):

* binary ``x = 1[Phi(z) > 1 - p]``; ordinal / categorical: the category whose cumulative
  probability interval contains ``Phi(z)``;
* age: truncated normal by inverse transform;
* Ki-67: log-uniform within the WHO range of the patient's grade, placed by the
  conditional rank of ``Phi(z_grade)`` inside the grade's interval (so Ki-67 and grade
  are consistent and perfectly rank-correlated);
* SSTR positivity depends on the functional subtype (lower in insulinoma).

Because draws come from the patient's own named stream, a patient's baseline is the same
in every strategy and whatever the cohort size (common random numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from sim.errors import UserError, check, is_number, probability
from sim.patients.schema import FUNCTIONAL, GRADES, HEPATIC, normalise_prior
from sim.rng import uniforms

#: latent coordinates, in slot order of the "baseline" stream (append only: never reorder)
LATENT = (
    "age", "sex", "ecog", "grade", "functional", "sstr", "hepatic_burden",
    "tempo", "symptomatic_bulk", "diabetes", "mgmt", "functional_subtype",
)


#: keys of the ``cohort`` group (docs/cohort.md); any other key is refused (a misspelt ``nn`` is not ``n``)
KEYS = ("n", "source", "age", "male", "ecog", "grade", "ki67_range", "non_functioning", "functional_mix",
        "sstr_positive", "hepatic_burden", "rapid_tempo", "symptomatic_bulk", "diabetes", "mgmt_low",
        "prior_therapies", "correlations", "sources")
AGE_KEYS = ("mean", "sd", "min", "max")


def check_keys(cfg: Mapping) -> None:
    """Refuse any key of the ``cohort`` group (or of ``cohort.age``) that is not a cohort parameter."""
    _mapping("cohort", cfg)
    for k in cfg:
        check(k in KEYS, f"cohort.{k}", cfg[k], f"is not a cohort parameter (known: {', '.join(KEYS)})")
    age = cfg.get("age")
    if isinstance(age, Mapping):
        for k in age:
            check(k in AGE_KEYS, f"cohort.age.{k}", age[k], f"is not a cohort parameter (known: {', '.join(AGE_KEYS)})")


def _get(cfg: Mapping, key: str, name: str):
    """``cfg[name]``, or a :class:`UserError` naming ``key`` when it is missing."""
    check(isinstance(cfg, Mapping), key.rsplit(".", 1)[0], cfg, "must be a mapping")
    check(name in cfg, key, None, "is required")
    return cfg[name]


def _mapping(key: str, v) -> Mapping:
    check(isinstance(v, Mapping), key, v, "must be a mapping")
    return v


def _sequence(key: str, v) -> list:
    check(isinstance(v, (list, tuple)), key, v, "must be a list")
    return list(v)


def _probs(key: str, mapping, names: tuple[str, ...]) -> np.ndarray:
    _mapping(key, mapping)
    check(set(mapping) == set(names), key, dict(mapping), f"must give exactly the categories {list(names)}")
    for n in names:
        _prob(f"{key}.{n}", mapping[n])
    p = np.array([float(mapping[n]) for n in names])
    check(abs(p.sum() - 1.0) < 1e-6, key, dict(mapping), "must sum to 1")
    return p


#: :func:`sim.errors.probability`; a value that is no number: ``must be a number``
_prob = partial(probability, not_number="must be a number")


@dataclass(frozen=True)
class CohortSpec:
    """Marginals and latent correlations of a generated cohort (all validated).

    Sources for every default are listed in ``configs/cohort/default.yaml`` (``sources``).
    """

    n: int
    age_mean: float
    age_sd: float
    age_min: float
    age_max: float
    male: float
    ecog: tuple[float, ...]
    grade: tuple[float, float, float]
    ki67_range: tuple[tuple[float, float], ...]
    non_functioning: float
    functional_mix: tuple[float, float, float, float]
    sstr_positive: float
    sstr_positive_insulinoma: float
    hepatic_burden: tuple[float, float, float]
    rapid_tempo: float
    symptomatic_bulk: float
    diabetes: float
    mgmt_low: float
    prior_therapies: str
    correlation: np.ndarray

    @classmethod
    def from_config(cls, cfg: Mapping) -> "CohortSpec":
        """Build from the ``cohort`` config group, naming any bad key and value."""
        check_keys(cfg)
        n = _get(cfg, "cohort.n", "n")
        check(isinstance(n, int) and not isinstance(n, bool), "cohort.n", n, "must be an integer")
        check(n >= 1, "cohort.n", n, "must be >= 1 (an empty cohort cannot be simulated)")
        age = _mapping("cohort.age", _get(cfg, "cohort.age", "age"))
        for k in ("mean", "sd", "min", "max"):
            check(is_number(_get(age, f"cohort.age.{k}", k)), f"cohort.age.{k}", age[k], "must be a number")
        check(18 <= age["min"] < age["max"] <= 100, "cohort.age", dict(age), "needs 18 <= min < max <= 100")
        check(age["min"] <= age["mean"] <= age["max"], "cohort.age.mean", age["mean"],
              f"must be within [cohort.age.min, cohort.age.max] = [{age['min']:g}, {age['max']:g}] years")
        check(0 < age["sd"] <= 50, "cohort.age.sd", age["sd"], "must be in (0, 50] years")
        raw_ecog = _sequence("cohort.ecog", _get(cfg, "cohort.ecog", "ecog"))
        for i, x in enumerate(raw_ecog):
            _prob(f"cohort.ecog[{i}]", x)
        ecog = tuple(float(x) for x in raw_ecog)
        check(len(ecog) in (3, 4, 5) and abs(sum(ecog) - 1) < 1e-6,
              "cohort.ecog", raw_ecog, "must list probabilities of ECOG 0, 1, 2[, 3, 4] summing to 1")
        grade = tuple(_probs("cohort.grade", _get(cfg, "cohort.grade", "grade"), GRADES))
        ki_cfg = _mapping("cohort.ki67_range", _get(cfg, "cohort.ki67_range", "ki67_range"))
        ki = []
        for g in GRADES:
            key = f"cohort.ki67_range.{g}"
            pair = _sequence(key, _get(ki_cfg, key, g))
            check(len(pair) == 2 and all(is_number(x) for x in pair), key, pair, "must be [low, high] numbers")
            lo, hi = (float(x) for x in pair)
            check(0 < lo < hi <= 100, key, [lo, hi], "needs 0 < low < high <= 100")
            ki.append((lo, hi))
        mix = tuple(_probs("cohort.functional_mix", _get(cfg, "cohort.functional_mix", "functional_mix"),
                           FUNCTIONAL[1:]))
        sstr = _mapping("cohort.sstr_positive", _get(cfg, "cohort.sstr_positive", "sstr_positive"))
        for k in ("default", "insulinoma"):
            _get(sstr, f"cohort.sstr_positive.{k}", k)
        for k in ("male", "non_functioning", "hepatic_burden", "rapid_tempo", "symptomatic_bulk", "diabetes",
                  "mgmt_low"):
            _get(cfg, f"cohort.{k}", k)
        prior = cfg.get("prior_therapies")
        check(prior is None or isinstance(prior, str), "cohort.prior_therapies", prior,
              "must be a string of ';'-separated therapy names")
        spec = cls(
            n=int(n), age_mean=float(age["mean"]), age_sd=float(age["sd"]),
            age_min=float(age["min"]), age_max=float(age["max"]),
            male=_prob("cohort.male", cfg["male"]), ecog=ecog, grade=grade, ki67_range=tuple(ki),
            non_functioning=_prob("cohort.non_functioning", cfg["non_functioning"]), functional_mix=mix,
            sstr_positive=_prob("cohort.sstr_positive.default", sstr["default"]),
            sstr_positive_insulinoma=_prob("cohort.sstr_positive.insulinoma", sstr["insulinoma"]),
            hepatic_burden=tuple(_probs("cohort.hepatic_burden", cfg["hepatic_burden"], HEPATIC)),
            rapid_tempo=_prob("cohort.rapid_tempo", cfg["rapid_tempo"]),
            symptomatic_bulk=_prob("cohort.symptomatic_bulk", cfg["symptomatic_bulk"]),
            diabetes=_prob("cohort.diabetes", cfg["diabetes"]),
            mgmt_low=_prob("cohort.mgmt_low", cfg["mgmt_low"]),
            prior_therapies=normalise_prior(prior or ""),
            correlation=_correlation(_sequence("cohort.correlations", cfg.get("correlations") or [])),
        )
        return spec


def _correlation(pairs) -> np.ndarray:
    """Latent correlation matrix from ``[{a, b, rho}, ...]``; must be positive definite."""
    idx = {name: i for i, name in enumerate(LATENT)}
    r = np.eye(len(LATENT))
    for j, pair in enumerate(pairs):
        key = f"cohort.correlations[{j}]"
        _mapping(key, pair)
        for end in ("a", "b", "rho"):
            _get(pair, f"{key}.{end}", end)
        for end in ("a", "b"):
            check(isinstance(pair[end], str) and pair[end] in idx, f"{key}.{end}", pair[end],
                  f"must be one of {list(LATENT)}")
        rho = pair["rho"]
        check(is_number(rho) and -1 < rho < 1, f"{key}.rho", rho, "must be in (-1, 1)")
        check(pair["a"] != pair["b"], key, dict(pair), "must join two different covariates")
        r[idx[pair["a"]], idx[pair["b"]]] = r[idx[pair["b"]], idx[pair["a"]]] = float(rho)
    try:
        np.linalg.cholesky(r)
    except np.linalg.LinAlgError:
        raise UserError(f"cohort.correlations {list(pairs)!r} do not form a positive-definite correlation matrix") from None
    return r


def _category(v: np.ndarray, probs) -> np.ndarray:
    """Index of the category whose cumulative-probability interval contains ``v``."""
    cum = np.cumsum(probs)[:-1]
    return np.searchsorted(cum, v, side="right")


def generate_cohort(spec: CohortSpec, master_seed: int, first: int = 0, count: int | None = None) -> pd.DataFrame:
    """Patients ``first .. first+count-1`` of the cohort (default: all ``spec.n``).

    Identical rows for a patient whatever ``first``/``count`` (chunking) and strategy.
    """
    count = spec.n - first if count is None else count
    u = uniforms(master_seed, "baseline", first, count, width=len(LATENT))
    z = ndtri(u) @ np.linalg.cholesky(spec.correlation).T
    v = ndtr(z)  # correlated uniforms with exact uniform marginals
    col = {name: v[:, i] for i, name in enumerate(LATENT)}

    a = (spec.age_min - spec.age_mean) / spec.age_sd
    b = (spec.age_max - spec.age_mean) / spec.age_sd
    age = spec.age_mean + spec.age_sd * ndtri(ndtr(a) + col["age"] * (ndtr(b) - ndtr(a)))

    gp = np.asarray(spec.grade)
    grade = _category(col["grade"], gp)
    lower = np.concatenate([[0.0], np.cumsum(gp)[:-1]])[grade]
    rank = np.clip((col["grade"] - lower) / gp[grade], 0.0, 1.0)
    lo, hi = (np.array([r[k] for r in spec.ki67_range]) for k in (0, 1))
    ki67 = np.exp(np.log(lo[grade]) + rank * (np.log(hi[grade]) - np.log(lo[grade])))

    functional = np.where(
        col["functional"] < spec.non_functioning, 0,
        1 + _category(col["functional_subtype"], spec.functional_mix),
    )
    p_sstr = np.where(functional == FUNCTIONAL.index("insulinoma"), spec.sstr_positive_insulinoma, spec.sstr_positive)

    return pd.DataFrame({
        "patient_id": np.arange(first, first + count, dtype=np.int64),
        "age": np.round(age, 3),
        "sex": pd.Categorical(np.where(col["sex"] < spec.male, "male", "female"), categories=["male", "female"]),
        "ecog": _category(col["ecog"], spec.ecog).astype(np.int64),
        "grade": pd.Categorical.from_codes(grade, GRADES),
        "ki67": np.round(ki67, 3),
        "functional_status": pd.Categorical.from_codes(functional, FUNCTIONAL),
        "sstr_positive": col["sstr"] < p_sstr,
        "hepatic_burden": pd.Categorical.from_codes(_category(col["hepatic_burden"], spec.hepatic_burden), HEPATIC),
        "tempo": pd.Categorical(np.where(col["tempo"] > 1 - spec.rapid_tempo, "rapid", "indolent"), categories=["indolent", "rapid"]),
        "symptomatic_bulk": col["symptomatic_bulk"] > 1 - spec.symptomatic_bulk,
        "diabetes": col["diabetes"] > 1 - spec.diabetes,
        "mgmt_low": col["mgmt"] < spec.mgmt_low,
        "prior_therapies": np.full(count, spec.prior_therapies, dtype=object),
    })
