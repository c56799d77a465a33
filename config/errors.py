"""The one family of domain errors: services raise them, the API and the pages render them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a stable machine code, an HTTP status and a human message."""

    status = 400
    code = "bad_request"
    per_email: dict[str, str]  # a bulk invite's refusal: the message for each address

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}

    def as_dict(self) -> dict:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class LimitExceeded(DomainError):
    """A plan limit would be passed (the message names the limit)."""

    status = 409
    code = "plan_limit"
    billing_url: str | None = None  # where to upgrade; pages render it as a link (error.html)


class PayloadTooLarge(DomainError):
    """The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status = 413
    code = "payload_too_large"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))


class ValidationFailed(DomainError):
    """Field-level errors: `fields` maps a field name to its message."""

    status = 422
    code = "invalid"


def apply_domain_error(form: Any, exc: DomainError) -> None:
    """Show a service's refusal on the form: field errors on their fields, the rest on top."""
    for field, message in exc.fields.items():
        form.add_error(field if field in form.fields else None, message)
    if not exc.fields:
        form.add_error(None, exc.message)
