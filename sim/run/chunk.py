"""A chunk of the cohort ready to simulate: baseline arrays and the patients' named streams."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.lifetable import LifeTable
from sim.rng import Draws
from sim.kernel.line import ModelRules, Patients, frailty_z


def prepare_chunk(chunk: pd.DataFrame, rules: ModelRules, lifetable: LifeTable, seed: int, sample: int = 0):
    """Baseline arrays and named streams of one chunk: frailty ``z`` (stream ``frailty``
    slot 0), absolute other-cause death time (stream ``background_death`` slot 0) and the
    threshold ``E = -log u`` of the disease-death clock (stream ``disease_death`` slot 0).
    Returns ``(Patients, Draws)``."""
    pat = Patients(chunk, rules)
    draws = Draws.for_ids(seed, pat.patient_id, sample)
    pat.z = frailty_z(draws["frailty"][:, 0])
    pat.death_bg = lifetable.death_time_months(chunk["age"].to_numpy(float), chunk["sex"].astype(str).to_numpy(),
                                               draws["background_death"][:, 0])
    pat.disease_clock = -np.log(draws["disease_death"][:, 0])
    return pat, draws
