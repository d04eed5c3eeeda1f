"""Typed model built from the composed Hydra config, with validation messages that name
the key and the bad value (see :class:`sim.errors.UserError`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sim.errors import UserError, check
from sim.lifetable import LifeTable
from sim.patients import CohortSpec, generate_cohort, load_cohort
from sim.strategies import Strategy, build_strategies
from sim.therapies import ModelRules, Therapy, build_therapies
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


def to_container(cfg) -> dict:
    """Plain resolved dict of a DictConfig (interpolation errors become UserErrors)."""
    if isinstance(cfg, DictConfig):
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:
            raise UserError(f"configuration could not be resolved: {exc}") from None
    return dict(cfg)


def _number(key, v, lo=None, hi=None, lo_open=False, hi_open=False):
    check(isinstance(v, (int, float)) and not isinstance(v, bool), key, v, "must be a number")
    if lo is not None:
        check(v > lo if lo_open else v >= lo, key, v, f"must be {'>' if lo_open else '>='} {lo}")
    if hi is not None:
        check(v < hi if hi_open else v <= hi, key, v, f"must be {'<' if hi_open else '<='} {hi}")
    return float(v)


def build_rules(m: Mapping) -> ModelRules:
    """:class:`ModelRules` from the ``model`` group."""
    ref = {}
    for c, v in (m.get("covariate_reference") or {}).items():
        ref[c] = _number(f"model.covariate_reference.{c}", v, 0, 1)
    return ModelRules(
        imaging_interval_months=weeks(_number("model.imaging_interval_weeks", m["imaging_interval_weeks"], 0, lo_open=True)),
        frailty_rho=_number("model.frailty_rho", m["frailty_rho"], 0, 1, hi_open=True),
        pre_progression_death_share=_number("model.pre_progression_death_share", m["pre_progression_death_share"], 0, 1),
        covariate_reference=ref,
        horizon_months=_number("model.horizon_years", m["horizon_years"], 0, lo_open=True) * MONTHS_PER_YEAR,
    )


def build_cohort(c: Mapping, seed: int) -> pd.DataFrame:
    """Generated cohort, or the validated file named by ``cohort.source``."""
    if c.get("source"):
        return load_cohort(c["source"])
    return generate_cohort(CohortSpec.from_config(c), seed)


def build_model(cfg) -> Model:
    """Validate the whole config and build the :class:`Model`."""
    c = to_container(cfg)
    seed = c.get("seed")
    check(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", seed, "must be a whole number >= 0")
    for group in ("cohort", "model", "therapies", "strategies", "experiment"):
        check(isinstance(c.get(group), Mapping), group, c.get(group), "must be a config group (mapping)")
    therapies = build_therapies(c["therapies"])
    exp = c["experiment"]
    strategies = build_strategies(c["strategies"], therapies, exp.get("strategies"))
    ref = exp.get("reference")
    check(ref in strategies, "experiment.reference", ref, f"must be one of the compared strategies {list(strategies)}")
    m = c["model"]
    bm = m.get("background_mortality") or {}
    max_age = bm.get("max_age", 110)
    check(isinstance(max_age, int) and 100 < max_age <= 130, "model.background_mortality.max_age", max_age,
          "must be a whole number in (100, 130]")
    return Model(
        seed=seed,
        cohort=build_cohort(c["cohort"], seed),
        therapies=therapies,
        strategies=strategies,
        reference=ref,
        rules=build_rules(m),
        lifetable=LifeTable.load(bm.get("table", "uk_ons_nlt_2017_2019_qx.csv"), max_age),
    )
