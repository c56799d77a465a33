"""Local development: debug on, SQLite and eager Celery unless the env says otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
