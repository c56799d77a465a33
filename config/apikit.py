"""Shared plumbing of the JSON API: the error schema, safe text, public-id lookups, per-token
rate limits and keyset (cursor) pagination. Routers import from here; config/api.py mounts them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from ninja import Field, Schema
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StrictInt

from config.bounds import DAY_RANGE_HINT, day_in_bounds
from config.cursors import decode_cursor, encode_cursor
from config.errors import RateLimited, ValidationFailed

# --- schemas ---------------------------------------------------------------------------------

# PostgreSQL text cannot hold NUL; every free-text input refuses it (422) instead of failing late.
NO_NUL = r"^[^\x00]*$"


def text(max_length: int, *, min_length: int = 0, **kwargs):
    """A string field with a length limit that can never reach the database as invalid text."""
    return Annotated[
        str, Field(min_length=min_length, max_length=max_length, pattern=NO_NUL, **kwargs)
    ]


def _json_string(value):
    """Times travel as ISO 8601 strings; a number is not silently read as a Unix timestamp."""
    if not isinstance(value, str):
        raise ValueError("Use an ISO 8601 date-time with a timezone, e.g. 2024-05-31T14:00:00Z.")
    return value


def _in_utc(value: datetime) -> datetime:
    """Stored in UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("The date-time is out of range.") from None


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_json_string), AfterValidator(_in_utc)]
Count = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
# A calendar day in a query string: YYYY-MM-DD only (read with parse_day()).
IsoDate = Annotated[
    str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", json_schema_extra={"format": "date"})
]


def parse_day(value: str | None, field: str) -> date | None:
    """A YYYY-MM-DD day within config.bounds (years 2000–2100), else ValidationFailed (422)."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            "Please correct the fields listed in `fields`.",
            fields={field: "Not a calendar date (YYYY-MM-DD)."},
        ) from None
    if not day_in_bounds(day):
        raise ValidationFailed(
            "Please correct the fields listed in `fields`.", fields={field: DAY_RANGE_HINT}
        )
    return day


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(Schema):
    error: ErrorBody


def errors(*statuses: int) -> dict[int, type[Schema]]:
    """Document error statuses: 401, 422 and 429 apply to every authenticated operation."""
    return dict.fromkeys(sorted({401, 422, 429, *statuses}), ErrorOut)


# --- public ids ------------------------------------------------------------------------------

_PUBLIC_ID = re.compile(r"[a-z]{2,4}_[a-z0-9]{1,40}")


def public_id_or_none(value: str | None, prefix: str) -> str | None:
    """The id if it looks like one of ours with that prefix; garbage never reaches a query."""
    if value and _PUBLIC_ID.fullmatch(value) and value.startswith(prefix + "_"):
        return value
    return None


# --- rate limits -----------------------------------------------------------------------------


def check_rate(*, bucket: str, key: Any, limit: int, window: int = 60) -> None:
    """Fixed-window counter in the cache (Redis in production); raises RateLimited (429)."""
    now = time.time()
    window_start = int(now // window) * window
    cache_key = f"api-rate:{bucket}:{key}:{window_start}"
    cache.add(cache_key, 0, timeout=window + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.set(cache_key, 1, timeout=window + 5)
        count = 1
    if count > limit:
        retry_after = max(1, int(window_start + window - now + 0.999))
        raise RateLimited(
            f"Too many requests: at most {limit} per minute with one token. "
            f"Try again in {retry_after} seconds.",
            retry_after=retry_after,
        )


def throttle_invitations(request) -> None:
    """Sending invitations is limited more tightly than the rest of the API."""
    check_rate(
        bucket="invite",
        key=request.auth.pk,
        limit=getattr(settings, "API_INVITE_RATE_LIMIT_PER_MINUTE", 30),
    )


# --- cursor pagination -----------------------------------------------------------------------

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class Page(Schema):
    next: str | None = Field(
        None, description="Absolute URL of the next page, or null on the last page."
    )


def _after(order: tuple[str, ...], values: list) -> Q:
    """Rows strictly after `values` in `order` (keyset: (a, b) > (va, vb), per direction)."""
    condition = Q(pk__in=[])
    for i, name in enumerate(order):
        field = name.lstrip("-")
        op = "lt" if name.startswith("-") else "gt"
        step = Q(**{f"{field}__{op}": values[i]})
        for prev, value in zip(order[:i], values[:i], strict=True):
            step &= Q(**{prev.lstrip("-"): value})
        condition |= step
    return condition


def _value(obj, path: str):
    for part in path.split(LOOKUP_SEP):
        obj = getattr(obj, part)
    return obj


def paginate(
    request,
    qs: QuerySet,
    *,
    order: tuple[str, ...],
    limit: int,
    cursor: str | None,
    serialize: Callable[[list], Iterable[dict]],
) -> dict:
    """One page of `qs` in `order` (which must end in a unique field) as {items, next}."""
    qs = qs.order_by(*order)
    if cursor:
        qs = qs.filter(_after(order, decode_cursor(cursor, qs.model, order)))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_url = None
    if more:
        last = rows[-1]
        params = request.GET.copy()
        params["cursor"] = encode_cursor([_value(last, name.lstrip("-")) for name in order])
        params["limit"] = str(limit)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return {"items": list(serialize(rows)), "next": next_url}
