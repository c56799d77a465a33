"""At most one Celery beat (config/beat.py): a second one finds the Redis lock held and exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis

from tests.topology.conftest import ROOT


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs Redis: set REDIS_URL")
    return url


def test_a_second_beat_exits_while_the_first_holds_the_lock(redis_url, tmp_path):
    key = f"test:beat-lock:{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        REDIS_URL=redis_url,
        BEAT_LOCK_KEY=key,
        # The tests' settings: what the beat sends goes to the tests' own queue, never to a
        # development worker's `celery` queue on the same Redis.
        DJANGO_SETTINGS_MODULE="config.settings.test",
        CELERY_BEAT_SCHEDULE_FILE=str(tmp_path / "schedule"),
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "config.beat"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        while client.get(key) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        holder = client.get(key)
        assert holder is not None, "the first beat never took the lock"
        second = subprocess.run(
            [sys.executable, "-m", "config.beat"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 0
        assert "another beat holds the lock" in second.stdout
        assert first.poll() is None  # the first one keeps running
        assert client.get(key) == holder
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=30)
    out = first.stdout.read() if first.stdout else ""
    assert client.get(key) is None, out  # released on the way out
