"""Time units. The model clock runs in months (mean Gregorian month, 365.25 / 12 days)."""

DAYS_PER_MONTH = 365.25 / 12
MONTHS_PER_WEEK = 7.0 / DAYS_PER_MONTH
MONTHS_PER_YEAR = 12.0


def weeks(w: float) -> float:
    """Convert weeks to months."""
    return w * MONTHS_PER_WEEK

