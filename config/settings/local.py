"""Local development: debug on, SQLite and eager Celery unless the env says otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
# Audit streaming to a receiver on this machine (http://127.0.0.1:…) is fine in development.
AUDIT_STREAM_ALLOW_HTTP = env.bool("AUDIT_STREAM_ALLOW_HTTP", default=True)
