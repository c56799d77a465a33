"""Real infrastructure for tests: an SMTP server on loopback and a Celery worker on Redis.

Registered from tests/conftest.py (`pytest_plugins`). Tests that use `celery_worker` need
REDIS_URL (use a Redis db number of your own: the fixture purges the default queue) and a
transactional database (`@pytest.mark.django_db(transaction=True)`), because the worker runs
in another thread with its own database connection.
"""

from __future__ import annotations

import email
import email.policy
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest


@dataclass
class SmtpSink:
    """Messages received by the loopback SMTP server, as email.message.EmailMessage objects."""

    host: str
    port: int
    messages: list = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list:
        """Block until `count` messages arrived (or fail the test after `timeout` seconds)."""
        with self._arrived:
            ok = self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
        if not ok:
            pytest.fail(f"expected {count} email(s) within {timeout}s, got {len(self.messages)}")
        return list(self.messages)

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in (m["To"] or "")]


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.sink._arrived:
            self.sink.messages.append(message)
            self.sink._arrived.notify_all()
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on 127.0.0.1 and Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    port = free_port()
    sink = SmtpSink(host="127.0.0.1", port=port)
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield sink
    finally:
        controller.stop()


def redis_url_or_skip() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip(
            "needs Redis for a real Celery broker: set REDIS_URL, e.g. "
            "REDIS_URL=redis://127.0.0.1:6379/4 (a db number of your own)"
        )
    return url


def _reset_producer_pool(app) -> None:
    """Forget pooled broker connections so a changed broker_url takes effect."""
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@contextmanager
def celery_broker(app, url: str):
    """Point the Celery app (not eager) at `url` for the duration of the block."""
    previous = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=url, task_always_eager=False)
    _reset_producer_pool(app)
    try:
        yield app
    finally:
        app.conf.update(previous)
        _reset_producer_pool(app)


@pytest.fixture
def celery_app(settings):
    """The project's Celery app, sending to the real broker at REDIS_URL (not eager)."""
    from config.celery import app

    url = redis_url_or_skip()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = url
    with celery_broker(app, url):
        app.control.purge()  # leftovers from an earlier, interrupted run
        yield app


@contextmanager
def running_worker(app):
    """A real Celery worker (celery.contrib.testing) consuming from the app's broker in a
    thread, for the duration of the block."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    def close_db(**kwargs):
        # The worker thread's connections must not outlive the test (the test DB is flushed
        # and finally dropped).
        connections.close_all()

    task_postrun.connect(close_db, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_db)


@pytest.fixture
def celery_worker(celery_app):
    """A real Celery worker consuming from REDIS_URL in a thread, for the whole test."""
    with running_worker(celery_app) as worker:
        yield worker


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value; fail the test after `timeout` seconds.
    (A wait for a worker in another thread, not a timing assertion.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
