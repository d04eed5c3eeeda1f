"""Shared fixtures: composed configs, built models, hand-made cohorts and fixed uniforms.

Statistical tests use fixed seeds and tolerances of ``Z`` Monte Carlo standard errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from sim.config import build_model
from sim.patients import validate_cohort
from sim.pipeline import simulate_model
from sim.kernel.line import ModelRules
from sim.units import weeks
from support.one_patient import plan_line

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"
DATA = Path(__file__).resolve().parent / "data"

#: tolerance in Monte Carlo standard errors
Z = 4.0

#: one baseline row: a plain patient (every covariate at its "reference" level)
BASE_PATIENT = dict(
    age=60.0, sex="male", ecog=0, grade="G2", ki67=5.0, functional_status="non_functioning",
    sstr_positive=True, hepatic_burden="le25", tempo="indolent", symptomatic_bulk=False,
    diabetes=False, mgmt_low=False, prior_therapies="",
)


def compose_config(overrides=()):
    """The composed Hydra config ``configs/config.yaml`` with ``overrides``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def make_cohort(n: int, first_id: int = 0, **columns) -> pd.DataFrame:
    """A validated cohort of ``n`` patients equal to :data:`BASE_PATIENT` except ``columns``.

    A column value may be a scalar (all patients) or a sequence of length ``n``.
    """
    data = {"patient_id": np.arange(first_id, first_id + n)}
    for k, v in {**BASE_PATIENT, **columns}.items():
        data[k] = list(v) if isinstance(v, (list, tuple, np.ndarray, pd.Series)) else [v] * n
    return validate_cohort(pd.DataFrame(data))


def make_rules(**kw) -> ModelRules:
    """Model rules with simple defaults (12-week scans, no frailty, no disease death without progression)."""
    base = dict(imaging_interval_months=weeks(12), frailty_rho=0.0,
                covariate_reference={}, horizon_months=480.0)
    return ModelRules(**{**base, **kw})


class FixedU:
    """``U(stream, slot)`` returning fixed uniforms: ``values[stream]``, else ``values[purpose]``
    for a therapy-keyed stream ``"<purpose>@<therapy>"``, else ``default``."""

    def __init__(self, default: float = 0.5, **values):
        self.default, self.values = default, {k.replace("__", "/"): v for k, v in values.items()}

    def __call__(self, stream: str, slot: int) -> float:
        return self.values.get(stream, self.values.get(stream.split("@", 1)[0], self.default))


def plan(therapy, therapies, patient, line, start, death_bg, history, U, rules):
    """:func:`support.one_patient.plan_line` with the line's PFS uniform taken from ``U("pfs@<therapy>", 0)``.

    Valid without frailty (``rules.frailty_rho == 0``), where the frailty-mixed PFS uniform is
    the raw one.
    """
    assert rules.frailty_rho == 0.0
    return plan_line(therapy, therapies, patient, line, start, death_bg, history, U,
                     U(f"pfs@{therapy.name}", 0), rules)


@pytest.fixture
def compose_cfg():
    """Function composing the project config with overrides."""
    return compose_config


@pytest.fixture
def cohort_of():
    """Function building a hand-made validated cohort (see :func:`make_cohort`)."""
    return make_cohort


@pytest.fixture
def rules_of():
    """Function building :class:`ModelRules` with simple defaults (see :func:`make_rules`)."""
    return make_rules


@pytest.fixture
def fixed_u():
    """The :class:`FixedU` class (fixed uniforms for :func:`support.one_patient.plan_line`)."""
    return FixedU


@pytest.fixture
def build():
    """Function: overrides -> built :class:`sim.config.Model`."""
    return lambda overrides=(): build_model(compose_config(overrides))


@pytest.fixture
def simulate():
    """Function: (model, chunk_size=None, engine=None) -> sorted (patients, lines, events) frames
    (None: the model's own setting)."""
    from dataclasses import replace

    def run(model, chunk_size=None, engine=None):
        model = replace(model, chunk_size=chunk_size or model.chunk_size, engine=engine or model.engine)
        return simulate_model(model, progress=False)
    return run


@pytest.fixture(scope="session")
def default_run():
    """Every shipped strategy on 400 patients: (model, patients, lines, events)."""
    model = build_model(compose_config(["cohort.n=400", "seed=11", "experiment.reference=switch",
                                        "experiment.strategies=[switch,rechallenge,prrt,rechallenge_then_captem,"
                                        "captem_then_rechallenge]"]))
    return (model, *simulate_model(model, progress=False))


def line_start_of(events: pd.DataFrame, lines: pd.DataFrame) -> np.ndarray:
    """Start time of the line of each event row (joined on patient, strategy, line)."""
    key = ["patient_id", "strategy", "line"]
    m = events[key].merge(lines[key + ["start"]], on=key, how="left")
    assert not m["start"].isna().any()
    return m["start"].to_numpy(float)


@pytest.fixture
def line_start():
    """Function: (events, lines) -> start time of each event's line."""
    return line_start_of


def binom_z(successes: int, n: int, p: float) -> float:
    """z statistic of an observed binomial proportion against ``p``."""
    return (successes / n - p) / math.sqrt(p * (1 - p) / n)


@pytest.fixture
def bz():
    """Function ``binom_z(successes, n, p)``."""
    return binom_z
