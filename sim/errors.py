"""User-facing errors: bad configuration or input files.

A :class:`UserError` is reported by the entry points as one line naming the key and the
bad value, with a non-zero exit status and no traceback.
"""


class UserError(ValueError):
    """A problem with user input (configuration key, cohort file, override)."""


def check(condition: bool, key: str, value, requirement: str) -> None:
    """Raise :class:`UserError` naming ``key`` and ``value`` unless ``condition`` holds."""
    if not condition:
        raise UserError(f"{key} {requirement}, got {value!r}")
