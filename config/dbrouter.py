"""Reads from the streaming replica, only where it is safe (README "Topology").

Rules:
- Writes always go to the primary (`default`); so does everything outside a replica view, and
  every read inside a transaction (a locking read must see and lock the primary's rows).
- Replica views are read-only pages and API lists marked with `@replica_reads` (pages, below
  `@org_view`: the access check itself reads the primary) or `on_replica(request, read)`
  (API, after the access check). Inside them, reads go to the `replica` alias.
- Read-your-writes: a client that sent a write (any POST/PUT/PATCH/DELETE) in the last
  READ_YOUR_WRITES_SECONDS reads from the primary: a cookie marks the browser, a cache key the
  user (API tokens keep no cookies).
- Fallback: a replica that is down, not streaming, or behind by more than REPLICA_MAX_LAG_SECONDS
  is not used; the check is cached REPLICA_HEALTH_SECONDS per process. A replica that fails in
  the middle of a page is marked down and the page is read again from the primary.
- Without a `replica` database (no REPLICA_DATABASE_URL) all of this is a no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections

log = logging.getLogger(__name__)
T = TypeVar("T")

PRIMARY = "default"
REPLICA = "replica"
WROTE_COOKIE = "ss_wrote"

# The alias reads go to while a replica view runs (None: the primary, Django's default rules).
_reads: contextvars.ContextVar[str | None] = contextvars.ContextVar("db_reads", default=None)


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        alias = _reads.get()
        if alias is None:
            return None
        if connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return alias

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same rows on both servers

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY


# --- replica health ---------------------------------------------------------------------------

_health_lock = threading.Lock()
_health: dict[str, float | bool] = {"checked": 0.0, "ok": False}

HEALTH_SQL = """
SELECT pg_is_in_recovery()
   AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
       END
"""


def replica_configured() -> bool:
    return settings.REPLICA_READS and REPLICA in settings.DATABASES


def _health_row() -> tuple:
    url = settings.REPLICA_CHECK_URL
    if url:
        # Straight to the server, not through the pooler: PgBouncer keeps a client waiting
        # (query_wait_timeout) while a dead server's pool reconnects.
        import psycopg

        with psycopg.connect(url, connect_timeout=2, autocommit=True) as direct:
            return direct.execute(HEALTH_SQL).fetchone()  # type: ignore[return-value]
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(HEALTH_SQL)
        return cursor.fetchone()


def _probe() -> bool:
    """Streaming and caught up within the bound? One query on the replica."""
    try:
        streaming, lag = _health_row()
    except Exception as exc:  # noqa: BLE001 (psycopg's or Django's error: either way, down)
        log.warning("replica unavailable, reading from the primary: %s", exc)
        with contextlib.suppress(Exception):
            connections[REPLICA].close()
        return False
    ok = bool(streaming) and float(lag) <= settings.REPLICA_MAX_LAG_SECONDS
    if not ok:
        log.warning("replica not used: streaming=%s lag=%.1fs", streaming, float(lag))
    return ok


def replica_healthy() -> bool:
    now = time.monotonic()
    if now - float(_health["checked"]) < settings.REPLICA_HEALTH_SECONDS:
        return bool(_health["ok"])
    with _health_lock:
        if now - float(_health["checked"]) >= settings.REPLICA_HEALTH_SECONDS:
            _health["ok"] = _probe()
            _health["checked"] = time.monotonic()
        return bool(_health["ok"])


def mark_replica_down() -> None:
    _health.update(ok=False, checked=time.monotonic())
    with contextlib.suppress(Exception):
        connections[REPLICA].close()


def forget_health() -> None:
    """Check again at the next replica read (tests that stop and start the replica)."""
    _health.update(ok=False, checked=0.0)


# --- read-your-writes -------------------------------------------------------------------------


def _user_key(user_id) -> str:
    return f"dbrouter:wrote:{user_id}"


def wrote_recently(request) -> bool:
    if request.COOKIES.get(WROTE_COOKIE):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and cache.get(_user_key(user.pk)))


class ReadYourWritesMiddleware:
    """After a write request, the client reads from the primary for READ_YOUR_WRITES_SECONDS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if replica_configured() and request.method not in ("GET", "HEAD", "OPTIONS"):
            seconds = settings.READ_YOUR_WRITES_SECONDS
            response.set_cookie(
                WROTE_COOKIE,
                "1",
                max_age=seconds,
                secure=request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                with contextlib.suppress(Exception):  # a cache outage must not fail the write
                    cache.set(_user_key(user.pk), 1, seconds)
        return response


# --- where reads go ---------------------------------------------------------------------------


def read_alias(request) -> str | None:
    """REPLICA if this request may read from the replica now, else None (the primary)."""
    if not replica_configured() or request.method not in ("GET", "HEAD"):
        return None
    if wrote_recently(request) or not replica_healthy():
        return None
    return REPLICA


@contextlib.contextmanager
def replica_reads_in(alias: str | None) -> Iterator[None]:
    token = _reads.set(alias)
    try:
        yield
    finally:
        _reads.reset(token)


def replica_reads(view: Callable) -> Callable:
    """A read-only view whose queries may go to the replica (see the module's rules).

    A database error while reading from the replica marks it down and runs the view again on
    the primary (these views only read). A streamed response (exports) reads from the same place while it streams.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        alias = read_alias(request)
        if alias is None:
            return view(request, *args, **kwargs)
        try:
            with replica_reads_in(alias):
                response = view(request, *args, **kwargs)
        except DatabaseError:
            mark_replica_down()
            return view(request, *args, **kwargs)
        if getattr(response, "streaming", False):
            response.streaming_content = _streaming_in(alias, response.streaming_content)
        return response

    return wrapper


def _streaming_in(alias: str, chunks: Iterator) -> Iterator:
    it = iter(chunks)
    while True:
        with replica_reads_in(alias):
            try:
                chunk = next(it)
            except StopIteration:
                return
        yield chunk


def on_replica(request, read: Callable[[], T]) -> T:
    """`return on_replica(request, lambda: ...)` in an API list, after its access check: the
    queries of `read` may go to the replica; a replica error re-runs it on the primary."""
    alias = read_alias(request)
    if alias is None:
        return read()
    try:
        with replica_reads_in(alias):
            return read()
    except DatabaseError:
        mark_replica_down()
        return read()


def current_read_alias() -> str | None:
    return _reads.get()
