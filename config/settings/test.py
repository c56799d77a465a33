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
# Tests share no state with a development server or worker on the same machine: the cache is
# this process's own (sign-in throttles, rate limits, activity stamps), and tests that use a
# real broker (REDIS_URL) publish to, consume from and purge only a queue of their own.
TEST_NAMESPACE = env("TEST_NAMESPACE", default="signalsmith-tests")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": TEST_NAMESPACE,
        "KEY_PREFIX": TEST_NAMESPACE,
    }
}
CELERY_TASK_DEFAULT_QUEUE = TEST_NAMESPACE
# Tests stream audit events to real receivers on loopback over plain http.
AUDIT_STREAM_ALLOW_HTTP = True
# The streaming replica (tests/topology): the same test database read on the standby (5433,
# or TEST_REPLICA_URL's server). Only the topology tests turn replica reads on.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _replica = env.db_url_config(
        env("TEST_REPLICA_URL", default="postgres://postgres@127.0.0.1:5433/replica")
    )
    DATABASES["replica"] = {
        **DATABASES["default"],
        "HOST": _replica["HOST"],
        "PORT": _replica["PORT"],
        "OPTIONS": {"connect_timeout": 2},
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = ["config.dbrouter.PrimaryReplicaRouter"]
REPLICA_READS = False
