"""Bounds of every date and number a person or a client may send (pages and API alike).

Calendar arithmetic near the ends of Python's calendar (years 1 and 9999) overflows, and
PostgreSQL's bigint ends at 2**63 - 1: values outside these bounds are refused as field errors
(422) before they reach a selector or a service, never a 500. README "Input bounds" lists them.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from config.errors import ValidationFailed

MIN_YEAR = 2000
MAX_YEAR = 2100
MIN_DAY = dt.date(MIN_YEAR, 1, 1)
MAX_DAY = dt.date(MAX_YEAR, 12, 31)
DAY_RANGE_HINT = f"Use a date between {MIN_DAY.isoformat()} and {MAX_DAY.isoformat()}."

# Page numbers (HTML lists): anything above is read as "the last page".
MAX_PAGE = 1_000_000


def day_in_bounds(value: dt.date | None) -> bool:
    """A calendar day (or a date-time's day, in its own zone) within MIN_DAY..MAX_DAY."""
    if value is None:
        return True
    if isinstance(value, dt.datetime):
        value = value.date()
    return MIN_DAY <= value <= MAX_DAY


def moment_in_bounds(value: dt.datetime | None) -> bool:
    """An aware date-time whose UTC day lies within MIN_DAY..MAX_DAY."""
    if value is None:
        return True
    if not day_in_bounds(value):  # its own day first: converting year 1 to UTC overflows
        return False
    if timezone.is_aware(value):
        value = value.astimezone(dt.UTC)
    return day_in_bounds(value)


def check_days(**values: dt.date | dt.datetime | None) -> None:
    """ValidationFailed (422) naming every field whose date lies outside the bounds."""
    fields = {name: DAY_RANGE_HINT for name, value in values.items() if not day_in_bounds(value)}
    if fields:
        raise ValidationFailed("A date is out of range. " + DAY_RANGE_HINT, fields=fields)


def page_number(raw: str | int | None, default: int = 1) -> int:
    """A 1-based page number from a query string: garbage → `default`, huge → MAX_PAGE."""
    try:
        number = default if raw is None or raw == "" else int(raw)
    except (TypeError, ValueError):
        return default
    return min(max(1, number), MAX_PAGE)
