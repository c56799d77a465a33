"""Test settings: the database comes from DATABASE_URL (see the Makefile), fast hashing, locmem mail."""

from .base import *  # noqa: F403
from .base import DATABASES, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests run Celery tasks in-process unless a test starts a real worker (tests/conftest.py).
CELERY_TASK_ALWAYS_EAGER = True
SITE_URL = "http://testserver"
# A separate test database per checkout/helper: TEST_DB_NAME overrides the default.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DB_NAME", default=None)}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Tests stream audit events to real receivers on loopback over plain http.
AUDIT_STREAM_ALLOW_HTTP = True
