"""Tests share no state with a development server or worker running on the same machine.

The suite once failed while a development server used the same Redis (shared sign-in
throttle keys). Tests keep their cache in-process under their own namespace, and tests with a
real broker publish to and purge only the tests' own queue.
"""

import redis
from django.conf import settings
from django.core.cache import cache

from config.celery import app
from tests.fixtures_infra import celery_broker, redis_url_or_skip


def test_the_cache_is_this_process_own_under_the_tests_namespace():
    backend = settings.CACHES["default"]
    assert backend["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert cache.make_key("signin").startswith(settings.TEST_NAMESPACE)


def test_a_real_broker_is_used_under_the_tests_own_queue():
    url = redis_url_or_skip()
    assert app.conf.task_default_queue == settings.TEST_NAMESPACE != "celery"
    client = redis.Redis.from_url(url)
    marker = b"a developer's queued task"
    client.rpush("celery", marker)  # what `make run` + `make worker` would have queued
    try:
        with celery_broker(app, url):
            app.control.purge()  # what the celery_app fixture does before each test
        assert marker in client.lrange("celery", 0, -1)
    finally:
        client.lrem("celery", 0, marker)
