"""Fault tests: real worker processes, a real SMTP server, a real PostgreSQL restart.

They need PostgreSQL (the worker subprocesses and gunicorn read the test database, so the
tests use a transactional database) and, for the worker tests, REDIS_URL.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from bench.database import database_url
from bench.infra import CeleryWorker, purge_queue, worker_env

# Worker output, for when a fault test fails: var/faults/<worker>.log
WORKER_LOGS = Path(__file__).resolve().parents[2] / "var" / "faults"


@pytest.fixture
def broker_url():
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs Redis for real Celery workers: set REDIS_URL")
    return url


@pytest.fixture
def test_database_url(transactional_db) -> str:
    return database_url(connection.settings_dict, connection.settings_dict["NAME"])


@pytest.fixture
def worker_factory(broker_url, test_database_url):
    """start(email_url) → a running `celery worker -c 1` subprocess on a queue of this test."""
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    started: list[CeleryWorker] = []

    def start(email_url: str, name: str = "w") -> CeleryWorker:
        env = worker_env(
            database_url=test_database_url,
            redis_url=broker_url,
            email_url=email_url,
            CACHE_KEY_PREFIX=settings.TEST_NAMESPACE,  # not a dev server's cache keys
        )
        worker = CeleryWorker(
            f"{name}{len(started)}-{queue}", queue=queue, env=env, log_dir=WORKER_LOGS
        )
        started.append(worker)
        return worker.start()

    start.queue = queue
    yield start
    for worker in started:
        worker.stop()
    purge_queue(broker_url, queue)
