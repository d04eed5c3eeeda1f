"""User-facing errors: bad configuration or input files.

A :class:`UserError` is reported by the entry points as one line naming the key and the
bad value, with a non-zero exit status and no traceback. The checks below are shared by every
config reader, so a wrongly typed group or list gives the same message wherever it is read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class UserError(ValueError):
    """A problem with user input (configuration key, cohort file, override)."""


def check(condition: bool, key: str, value, requirement: str) -> None:
    """Raise :class:`UserError` naming ``key`` and ``value`` unless ``condition`` holds."""
    if not condition:
        raise UserError(f"{key} {requirement}, got {value!r}")


def mapping(key: str, value, allow_none: bool = False) -> Mapping:
    """``value`` if it is a mapping (``{}`` for ``None`` when ``allow_none``), else a
    :class:`UserError` naming ``key``: a string or number where a group of keys belongs."""
    if allow_none and value is None:
        return {}
    check(isinstance(value, Mapping), key, value, "must be a mapping (a group of keys)")
    return value


def required(m: Mapping, key: str, name: str):
    """``m[name]`` of the config group ``key``, or a :class:`UserError` naming the missing ``key.name``."""
    check(name in m, f"{key}.{name}", None, "is required")
    return m[name]


def sequence_of_str(key: str, value, allow_none: bool = False) -> list[str]:
    """``value`` as a list of names if it is a list of strings (``[]`` for ``None`` when
    ``allow_none``), else a :class:`UserError` naming ``key`` (or ``key[i]``). A single string is
    refused rather than iterated by character (``abc`` is not ``[a, b, c]``)."""
    if allow_none and value is None:
        return []
    check(isinstance(value, (list, tuple)), key, value, "must be a list of names, e.g. [a, b]")
    for i, v in enumerate(value):
        check(isinstance(v, str), f"{key}[{i}]", v, "must be a name (text)")
    return list(value)


def is_number(value) -> bool:
    """Whether ``value`` is an int or a float (a bool is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(key: str, value, lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False,
           nonfinite: str | None = "must be a number", types: tuple = (int, float)) -> float:
    """``value`` as a float if it is a number within the bounds, else a :class:`UserError` naming ``key``.

    A number is an instance of ``types`` other than a bool (else ``must be a number``); a NaN or an
    infinity is refused with the message ``nonfinite`` (``None``: accepted, then only the bounds can
    refuse it). Bounds, each skipped when ``None``: ``>= lo`` (``> lo`` with ``lo_open``), ``<= hi``
    (``< hi`` with ``hi_open``); a value outside gets ``must be >= 0`` (or ``>``, ``<=``, ``<``)."""
    check(isinstance(value, types) and not isinstance(value, bool), key, value, "must be a number")
    if nonfinite is not None:
        check(math.isfinite(value), key, value, nonfinite)
    if lo is not None:
        check(value > lo if lo_open else value >= lo, key, value, f"must be {'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        check(value < hi if hi_open else value <= hi, key, value, f"must be {'<' if hi_open else '<='} {hi:g}")
    return float(value)


def number_at_least(key: str, value, lo: float = 0.0, lo_open: bool = False) -> float:
    """``value`` as a float if it is a finite number ``>= lo`` (``> lo`` with ``lo_open``), else a
    :class:`UserError` naming ``key`` with one message whatever is wrong: ``must be a number >= 0``."""
    check(is_number(value) and math.isfinite(value) and (value > lo if lo_open else value >= lo), key, value,
          f"must be a number {'>' if lo_open else '>='} {lo:g}")
    return float(value)


def probability(key: str, value, not_number: str = "must be a probability in [0, 1]") -> float:
    """``value`` as a float if it is a number in [0, 1], else a :class:`UserError` naming ``key``:
    ``must be a probability in [0, 1]`` (``not_number`` when it is no number at all)."""
    check(is_number(value), key, value, not_number)
    check(0.0 <= value <= 1.0, key, value, "must be a probability in [0, 1]")
    return float(value)


def whole(key: str, value, lo: int) -> int:
    """``value`` if it is a whole number ``>= lo`` (not a bool), else a :class:`UserError`."""
    check(isinstance(value, int) and not isinstance(value, bool) and value >= lo, key, value,
          f"must be a whole number >= {lo}")
    return int(value)


def dotted(m: Mapping, path: str, default=None):
    """Value at dotted ``path`` (e.g. ``"experiment.reference"``) of nested mappings, or ``default``
    when a part is missing."""
    node = m
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
