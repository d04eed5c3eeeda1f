"""Typed model built from the composed Hydra config, with validation messages that name
the key and the bad value (see :class:`sim.errors.UserError`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sim.errors import UserError, check, mapping, number, required, sequence_of_str, whole
from sim.run.executors import ENGINES, resolve_engine
from sim.lifetable import DEFAULT_TABLE, LifeTable
from sim.patients import CohortSpec, check_prior_therapies, generate_cohort, load_cohort
from sim.resources import Centre, build_centre
from sim.runio import check_memory
from sim.strategies import Strategy, build_strategies
from sim.kernel.line import ModelRules
from sim.therapies import Therapy, build_therapies
from sim.therapies.definition import COVARIATES
from sim.units import MONTHS_PER_YEAR, weeks


@dataclass(frozen=True)
class Model:
    """Everything one run needs: cohort, therapies, strategies, rules, life table, seed."""

    seed: int
    cohort: pd.DataFrame
    therapies: dict[str, Therapy]
    strategies: dict[str, Strategy]
    reference: str
    rules: ModelRules
    lifetable: LifeTable
    engine: str = "auto"
    chunk_size: int | None = None
    #: shared resources (config group ``resources``; None: patients share nothing)
    centre: Centre | None = None


def to_container(cfg) -> dict:
    """Plain resolved dict of a DictConfig (interpolation errors become UserErrors)."""
    if isinstance(cfg, DictConfig):
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:
            raise UserError(f"configuration could not be resolved: {exc}") from None
    return dict(cfg)


#: :func:`sim.errors.number` that lets NaN and infinities through to the bounds (``inf`` is a valid
#: ``model.clinical_detection_months``)
_number = partial(number, nonfinite=None)


#: largest master seed (a 63-bit whole number)
SEED_MAX = 2 ** 63 - 1
#: longest model horizon: a lifetime from age 18 (the youngest patient) ends by the life table's last age
HORIZON_MAX_YEARS = 100


def check_seed(c: Mapping) -> int:
    """The master ``seed``: a whole number in [0, 2**63 - 1] (:data:`SEED_MAX`)."""
    seed = whole("seed", c.get("seed"), 0)
    check(seed <= SEED_MAX, "seed", seed, f"must be a whole number in [0, {SEED_MAX}]")
    return seed


def check_strategy_names(exp: Mapping) -> list[str] | None:
    """``experiment.strategies`` (when given) as a list of distinct names; a name listed twice
    (``[switch, switch]``) would make a one-strategy comparison look like two."""
    names = exp.get("strategies")
    if names is None:
        return None
    names = sequence_of_str("experiment.strategies", names)
    for i, n in enumerate(names):
        check(n not in names[:i], "experiment.strategies", names, f"names {n!r} twice (each strategy once)")
    return names


def build_rules(m: Mapping) -> ModelRules:
    """:class:`ModelRules` from the ``model`` group.

    Checks: ``imaging_interval_weeks > 0``; ``0 <= frailty_rho < 1`` (a Gaussian-copula
    correlation; 1 would make every line's PFS uniform identical); every ``covariate_reference``
    prevalence in ``[0, 1]``; ``0 < horizon_years <= 100``; ``clinical_detection_months > 0`` or null
    (scans only); ``disease_death.rate_per_year >= 0`` with hazard ratios ``> 0`` on known
    covariates; ``line_effect.hr_per_prior_line > 0``; ``prognostic_hr`` ratios ``> 0`` on known covariates;
    ``dose_intensity_effect.beta >= 0`` (absent: 0, no effect of a dose reduction on progression).
    """
    ref = {}
    for c, v in mapping("model.covariate_reference", m.get("covariate_reference"), allow_none=True).items():
        ref[c] = _number(f"model.covariate_reference.{c}", v, 0, 1)
    dd = mapping("model.disease_death", required(m, "model", "disease_death"))
    dd_hr = {}
    for c, v in mapping("model.disease_death.hr", dd.get("hr"), allow_none=True).items():
        check(c in COVARIATES, "model.disease_death.hr", c, f"must name one of {list(COVARIATES)}")
        dd_hr[c] = _number(f"model.disease_death.hr.{c}", v, 0, lo_open=True)
    prog = {}
    for c, v in mapping("model.prognostic_hr", m.get("prognostic_hr"), allow_none=True).items():
        check(c in COVARIATES, "model.prognostic_hr", c, f"must name one of {list(COVARIATES)}")
        prog[c] = _number(f"model.prognostic_hr.{c}", v, 0, lo_open=True)
    le = mapping("model.line_effect", m.get("line_effect"), allow_none=True)
    di = mapping("model.dose_intensity_effect", m.get("dose_intensity_effect"), allow_none=True)
    return ModelRules(
        imaging_interval_months=weeks(_number("model.imaging_interval_weeks",
                                              required(m, "model", "imaging_interval_weeks"), 0, lo_open=True)),
        frailty_rho=_number("model.frailty_rho", required(m, "model", "frailty_rho"), 0, 1, hi_open=True),
        covariate_reference=ref,
        horizon_months=_number("model.horizon_years", required(m, "model", "horizon_years"), 0, HORIZON_MAX_YEARS,
                               lo_open=True) * MONTHS_PER_YEAR,
        clinical_detection_months=_detection_delay(m.get("clinical_detection_months")),
        disease_death_rate=_number("model.disease_death.rate_per_year",
                                   required(dd, "model.disease_death", "rate_per_year"), 0) / MONTHS_PER_YEAR,
        disease_death_hr=dd_hr,
        disease_death_hr_per_line=_number("model.disease_death.hr_per_line", dd.get("hr_per_line", 1.0), 0,
                                          lo_open=True),
        line_hr_per_prior_line=_number("model.line_effect.hr_per_prior_line", le.get("hr_per_prior_line", 1.0), 0,
                                       lo_open=True),
        prognostic_hr=prog,
        dose_intensity_beta=_number("model.dose_intensity_effect.beta", di.get("beta", 0.0), 0),
    )


def _detection_delay(v) -> float:
    """``model.clinical_detection_months``: mean delay (> 0 months) after which a progression
    becomes clinically apparent between scans; null / absent / inf = scans only (``inf``)."""
    if v is None:
        return math.inf
    return _number("model.clinical_detection_months", v, 0, lo_open=True)


def build_lifetable(m: Mapping) -> LifeTable:
    """The background-mortality :class:`LifeTable` of ``model.background_mortality``
    (``table``: a file of ``data/lifetables/`` or an absolute path; ``max_age`` in (100, 130])."""
    bm = mapping("model.background_mortality", m.get("background_mortality"), allow_none=True)
    table = bm.get("table") or DEFAULT_TABLE
    check(isinstance(table, str), "model.background_mortality.table", table, "must be a file name")
    max_age = bm.get("max_age", 110)
    check(isinstance(max_age, int) and not isinstance(max_age, bool) and 100 < max_age <= 130,
          "model.background_mortality.max_age", max_age, "must be a whole number in (100, 130]")
    return LifeTable.load(table, max_age)


def build_cohort(c: Mapping, seed: int) -> pd.DataFrame:
    """Generated cohort, or the validated file named by ``cohort.source``."""
    source = c.get("source")
    if source:
        check(isinstance(source, str), "cohort.source", source, "must be a file path")
        return load_cohort(source)
    return generate_cohort(CohortSpec.from_config(c), seed)


def check_run_settings(c: Mapping) -> tuple[str, int | None]:
    """Validate the top-level run settings every experiment kind uses: ``engine`` (one of
    :data:`sim.run.executors.ENGINES`, default ``auto``) and ``chunk_size`` (a whole number >= 1,
    or null / absent for the executor's default). Every experiment kind calls this (through
    :func:`build_model` or directly) before it simulates, so a wrongly typed setting is a
    :class:`UserError` naming it in every kind. Returns ``(engine, chunk_size)``."""
    engine = c.get("engine", "auto")
    check(isinstance(engine, str) and engine in ENGINES, "engine", engine, f"must be one of {list(ENGINES)}")
    chunk = c.get("chunk_size")
    return engine, None if chunk is None else whole("chunk_size", chunk, 1)


def build_model(cfg, cohort: pd.DataFrame | None = None) -> Model:
    """Validate the whole config and build the :class:`Model`.

    Every problem raises one :class:`UserError` naming the config key (or cohort-file column
    and row) and the bad value; nothing is simulated before the whole config is valid.
    ``cohort`` (optional) is a cohort already built from this config's ``cohort`` group (e.g.
    the base case of a PSA, whose samples change parameters, not patients); it is used as is.
    """
    c = to_container(cfg)
    seed = check_seed(c)
    engine, chunk_size = check_run_settings(c)
    for group in ("cohort", "model", "therapies", "strategies", "experiment"):
        check(isinstance(c.get(group), Mapping), group, c.get(group), "must be a config group (mapping)")
    therapies = build_therapies(c["therapies"])
    exp = c["experiment"]
    strategies = build_strategies(c["strategies"], therapies, check_strategy_names(exp))
    ref = exp.get("reference")
    if ref is None:                              # null: the first compared strategy
        ref = next(iter(strategies))
    check(isinstance(ref, str) and ref in strategies, "experiment.reference", ref,
          f"must be one of the compared strategies {list(strategies)}")
    m = c["model"]
    rules = build_rules(m)
    lifetable = build_lifetable(m)
    if cohort is None:
        if not c["cohort"].get("source"):
            n = CohortSpec.from_config(c["cohort"]).n
            check_memory(n, len(strategies))          # before generating: a billion patients is refused here
        cohort = build_cohort(c["cohort"], seed)
        check_memory(len(cohort), len(strategies), "cohort.source" if c["cohort"].get("source") else "cohort.n")
    check_prior_therapies(cohort, therapies, where=c["cohort"].get("source") or None)
    centre = build_centre(c.get("resources"), therapies)
    resolve_engine(engine, centre is not None)      # engine=vectorised with resources is refused here
    return Model(
        seed=seed,
        cohort=cohort,
        therapies=therapies,
        strategies=strategies,
        reference=ref,
        rules=rules,
        lifetable=lifetable,
        engine=engine,
        chunk_size=chunk_size,
        centre=centre,
    )
