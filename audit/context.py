"""Who and where an action comes from, bound per request (IP) and per API call (token)."""

import contextlib
import contextvars
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SupportTicket:
    """A support engineer acts on a customer's behalf: why, and under which ticket."""

    ticket: str
    reason: str


@dataclass(frozen=True)
class AuditContext:
    ip: str | None = None
    token_id: int | None = None  # members.ApiToken pk when the call came through the API
    # Set while a support engineer acts (support/services.py): events become actor_type=support.
    support: SupportTicket | None = None
    # Set during a support "view as" request: record() refuses, so every write rolls back.
    read_only: str = ""


_current = contextvars.ContextVar("audit_context", default=AuditContext())  # noqa: B039 (frozen)


def current() -> AuditContext:
    return _current.get()


@contextlib.contextmanager
def bind(**changes):
    token = _current.set(replace(_current.get(), **changes))
    try:
        yield
    finally:
        _current.reset(token)
