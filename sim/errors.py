"""User-facing errors: bad configuration or input files.

A :class:`UserError` is reported by the entry points as one line naming the key and the
bad value, with a non-zero exit status and no traceback. The checks below are shared by every
config reader, so a wrongly typed group or list gives the same message wherever it is read.
"""

from __future__ import annotations

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
