"""Load a cohort from CSV or Parquet and validate it against :mod:`sim.patients.schema`.

Every problem is reported as one :class:`~sim.errors.UserError` naming the file, the
column, the first bad row (1-based data row, as a spreadsheet user counts) and the value.

Rules for a cohort file (CSV or Parquet alike): every column of
:data:`~sim.patients.schema.COLUMNS` is required; other columns (e.g. a site or a record
number) are accepted and ignored; a column name may appear only once; ``patient_id`` values must
be unique; the file must have at least one data row. An empty, unreadable or ragged file is an
error naming the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import UserError
from sim.patients.schema import COLUMNS, normalise_prior, prior_names

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def load_cohort(path: str | Path) -> pd.DataFrame:
    """Read and validate a cohort file (``.csv`` or ``.parquet``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"cohort.source: file not found: {str(path)!r}")
    try:
        if path.suffix.lower() == ".parquet":
            raw = pd.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            _check_unique_header(path)
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise UserError(f"cohort.source must be a .csv or .parquet file, got {str(path)!r}")
    except UserError:
        raise
    except Exception as exc:  # malformed file: parser message, no traceback
        raise UserError(f"cohort.source {str(path)!r} could not be read: {exc}") from None
    return validate_cohort(raw, where=str(path))


def _check_unique_header(path: Path) -> None:
    """A CSV header naming a column twice is an error (pandas would rename the second ``age.1``
    and silently use the first)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    seen = set()
    for name in (h.strip() for h in header):
        if name in seen:
            raise UserError(f"cohort file {str(path)!r}: column {name!r} appears more than once in the header")
        seen.add(name)


def _bad(where: str, column: str, row: int, value, requirement: str) -> UserError:
    return UserError(f"cohort file {where!r}: column {column!r}, row {row + 1}: {requirement}, got {value!r}")


def validate_cohort(raw: pd.DataFrame, where: str = "<table>") -> pd.DataFrame:
    """Return a typed copy of ``raw`` or raise naming the first bad column, row and value."""
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise UserError(f"cohort file {where!r}: missing column(s) {missing}; required columns are {list(COLUMNS)}")
    if len(raw) == 0:
        raise UserError(f"cohort file {where!r} has no rows: an empty cohort cannot be simulated")
    out = {}
    for col, (kind, allowed) in COLUMNS.items():
        values = raw[col].tolist()
        if kind in ("int", "float"):
            what = f"must be a {'whole number' if kind == 'int' else 'number'}"
            flags = ([i for i, v in enumerate(values) if isinstance(v, (bool, np.bool_))]
                     if raw[col].dtype in (object, bool) else [])
            if flags:                      # a Parquet boolean where a number belongs (True is not 1 here)
                raise _bad(where, col, flags[0], values[flags[0]], what)
            parsed = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(parsed))
            if bad.size:
                raise _bad(where, col, bad[0], values[bad[0]], what)
            if kind == "int":
                bad = np.flatnonzero(parsed != np.round(parsed))
                if bad.size:
                    raise _bad(where, col, bad[0], values[bad[0]], "must be a whole number")
            lo, hi = allowed
            bad = np.flatnonzero((parsed < lo) | ((parsed > hi) if hi is not None else False))
            if bad.size:
                rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise _bad(where, col, bad[0], values[bad[0]], f"must be in {rng}")
            out[col] = parsed.astype(np.int64) if kind == "int" else parsed
        elif kind == "bool":
            parsed = []
            for i, v in enumerate(values):
                s = str(v).strip().lower()
                if isinstance(v, (bool, np.bool_)):
                    parsed.append(bool(v))
                elif s in _TRUE:
                    parsed.append(True)
                elif s in _FALSE:
                    parsed.append(False)
                else:
                    raise _bad(where, col, i, v, "must be true/false")
            out[col] = np.array(parsed, dtype=bool)
        elif kind == "category":
            for i, v in enumerate(values):
                if v not in allowed:
                    raise _bad(where, col, i, v, f"must be one of {list(allowed)}")
            out[col] = pd.Categorical(values, categories=list(allowed))
        else:
            out[col] = np.array([normalise_prior("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
                                 for v in values], dtype=object)
    df = pd.DataFrame(out)
    dup = df["patient_id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise _bad(where, "patient_id", i, int(df["patient_id"].iloc[i]), "must be unique")
    return df


def check_prior_therapies(cohort: pd.DataFrame, known, where: str | None = None) -> None:
    """Raise unless every name in ``cohort.prior_therapies`` is a configured therapy.

    An unknown name (e.g. a typo ``suntinib``) would otherwise be ignored silently and change
    rechallenge eligibility. ``where`` is the cohort file (message names column and row);
    ``None`` means a generated cohort (message names the key ``cohort.prior_therapies``).
    """
    known = set(known)
    values, first_row = np.unique(cohort["prior_therapies"].astype(str).to_numpy(), return_index=True)
    for j in np.argsort(first_row):   # distinct values, in the order of their first row
        i, v = int(first_row[j]), cohort["prior_therapies"].iloc[int(first_row[j])]
        bad = [t for t in prior_names(v) if t not in known]
        if bad:
            requirement = f"names unknown therapy {bad[0]!r}; known therapies: {sorted(known)}"
            if where is None:
                raise UserError(f"cohort.prior_therapies {requirement}, got {v!r}")
            raise _bad(where, "prior_therapies", i, v, requirement)
