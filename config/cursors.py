"""The one keyset-cursor codec: a page's last row's ordering values, as an opaque URL-safe token.

The API's lists (config.apikit.paginate) and the audit log's pages (audit.selectors) both use it.
Decoding converts each value with its model field, so a tampered cursor is a field error
(ValidationFailed, 422), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, Model
from django.db.models.constants import LOOKUP_SEP

from config.errors import ValidationFailed

BAD_CURSOR = "The cursor is not one this list handed out."
BAD_CURSOR_FIELD = "Use the `next` URL of a previous page."


def _field(model: type[Model], path: str) -> Field:
    field: Any = None
    for part in path.split(LOOKUP_SEP):
        field = model._meta.pk if part == "pk" else model._meta.get_field(part)
        model = field.related_model or model
    return field


def encode_cursor(values: list[Any]) -> str:
    """The ordering values of a page's last row → an opaque cursor."""
    payload = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(
    cursor: str,
    model: type[Model],
    order: tuple[str, ...],
    *,
    message: str = BAD_CURSOR,
    field_message: str = BAD_CURSOR_FIELD,
) -> list[Any]:
    """The values `encode_cursor` was given, each converted by its field in `order`."""
    bad = ValidationFailed(message, fields={"cursor": field_message})
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(values, list) or len(values) != len(order):
        raise bad
    cleaned = []
    for name, value in zip(order, values, strict=True):
        try:
            field = _field(model, name.lstrip("-"))
            if isinstance(value, str) and "\x00" in value:
                raise DjangoValidationError("NUL")
            cleaned.append(field.to_python(value))
        except (DjangoValidationError, FieldDoesNotExist, TypeError, ValueError):
            raise bad from None
    return cleaned
