"""Background (other-cause) mortality from a period life table by age and sex.

The table gives ``q_x``, the probability of dying between exact ages ``x`` and ``x+1``.
Within each year of age the hazard is constant, ``mu_x = -log(1 - q_x)`` per year, so the
cumulative hazard ``H(a)`` is piecewise linear. Beyond the last tabulated age the last
``q_x`` is held constant up to ``max_age``, where death is certain (a stated assumption).
A death age is drawn by inverse transform: ``H(a_death) = H(a_now) - log(u)``.

Default table: ONS National Life Tables, United Kingdom, 2017-2019 (see
``data/lifetables/README.md`` for provenance and licence).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import UserError
from sim.units import MONTHS_PER_YEAR

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "lifetables"
DEFAULT_TABLE = "uk_ons_nlt_2017_2019_qx.csv"


@dataclass(frozen=True)
class LifeTable:
    """Per-sex yearly hazards ``mu[sex][x]`` for ages ``0 .. max_age-1`` and their cumsums."""

    mu: dict
    cum: dict
    max_age: int
    source: str

    @classmethod
    def load(cls, name: str = DEFAULT_TABLE, max_age: int = 110) -> "LifeTable":
        """The table of file ``name`` (``data/lifetables/`` unless absolute), hazards held constant
        from the last tabulated age to ``max_age``. Loaded once per (file, its mtime, max_age)."""
        path = Path(name) if Path(name).is_absolute() else DATA_DIR / name
        if not path.is_file():
            raise UserError(f"model.background_mortality.table: file not found: {str(path)!r}")
        return cls._load(str(path), path.stat().st_mtime_ns, int(max_age))

    @classmethod
    @lru_cache(maxsize=16)
    def _load(cls, path: str, mtime_ns: int, max_age: int) -> "LifeTable":
        path = Path(path)
        df = pd.read_csv(path)
        if not {"age", "sex", "qx"} <= set(df.columns):
            raise UserError(f"life table {str(path)!r} needs columns age, sex, qx")
        mu, cum = {}, {}
        for sex in ("male", "female"):
            q = df[df["sex"] == sex].sort_values("age")["qx"].to_numpy(float)
            if q.size == 0 or np.any((q <= 0) | (q >= 1)):
                raise UserError(f"life table {str(path)!r}: qx for {sex} must be in (0, 1) for every age")
            if max_age < q.size:
                raise UserError(f"model.background_mortality.max_age must be >= {q.size}, got {max_age}")
            m = -np.log1p(-q)
            m = np.concatenate([m, np.full(max_age - q.size, m[-1])])
            mu[sex] = m
            cum[sex] = np.concatenate([[0.0], np.cumsum(m)])
        return cls(mu=mu, cum=cum, max_age=max_age, source=path.name)

    def cumhazard(self, age: np.ndarray, sex: str) -> np.ndarray:
        """Cumulative hazard from birth to ``age`` (years)."""
        age = np.clip(np.asarray(age, float), 0, self.max_age - 1e-9)
        x = np.floor(age).astype(int)
        return self.cum[sex][x] + self.mu[sex][x] * (age - x)

    def death_age(self, age: np.ndarray, sex: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Age at other-cause death for people alive at ``age``, by inverse transform of ``u``."""
        age, u = np.asarray(age, float), np.asarray(u, float)
        sex = np.asarray(sex)
        out = np.full(age.shape, float(self.max_age))
        for s in ("male", "female"):
            m = sex == s
            if not m.any():
                continue
            target = self.cumhazard(age[m], s) - np.log(u[m])
            cum = self.cum[s]
            x = np.searchsorted(cum, target, side="right") - 1
            inside = x < self.max_age
            xi = np.minimum(x, self.max_age - 1)
            d = xi + (target - cum[xi]) / self.mu[s][xi]
            out[m] = np.where(inside, np.minimum(d, self.max_age), self.max_age)
        return out

    def death_time_months(self, age, sex, u) -> np.ndarray:
        """Months from now to other-cause death."""
        return (self.death_age(age, sex, u) - np.asarray(age, float)) * MONTHS_PER_YEAR

    def survival(self, age: float, sex: str, t_years: np.ndarray) -> np.ndarray:
        """Probability of surviving ``t_years`` more years from ``age`` (other causes only).

        ``S(t | a) = exp(-(H(a + t) - H(a)))`` for ``a + t < max_age`` and 0 from ``max_age`` on
        (death is certain there, as in :meth:`death_age`).
        """
        t = np.asarray(t_years, float)
        s = np.exp(-(self.cumhazard(age + t, sex) - self.cumhazard(age, sex)))
        return np.where(age + t >= self.max_age, 0.0, s)
