"""`python -m config.beat`: Celery beat, at most one in the whole deployment.

Two beats would send every periodic task twice. This one first takes a lock in Redis
(SET NX with a TTL, renewed every TTL/3 by a thread); a second beat finds the lock taken,
says who holds it and exits 0. A beat that loses its lock (Redis lost it, or the renewal
stalled past the TTL) exits at once, so a new one can take over. A crashed beat's lock
expires after BEAT_LOCK_TTL seconds (default 30).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import uuid

import redis

LOCK_KEY = os.environ.get("BEAT_LOCK_KEY", "signalsmith:celery-beat")
TTL = int(os.environ.get("BEAT_LOCK_TTL", "30"))

# Renew or release only if the lock is still ours.
RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"  # noqa: E501
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"  # noqa: E501


def acquire(client: redis.Redis, me: str) -> bool:
    return bool(client.set(LOCK_KEY, me, nx=True, ex=TTL))


def _keep(client: redis.Redis, me: str, stop: threading.Event) -> None:
    while not stop.wait(TTL / 3):
        try:
            ours = client.eval(RENEW, 1, LOCK_KEY, me, str(TTL))
        except redis.RedisError as exc:
            print(f"beat: cannot renew the lock ({exc}); retrying", flush=True)
            continue  # the TTL still covers us; a later renewal decides
        if not ours:
            print("beat: lost the singleton lock; exiting", flush=True)
            os._exit(3)


def main() -> int:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        print("beat: set REDIS_URL (the lock and the broker)", file=sys.stderr)
        return 2
    client = redis.Redis.from_url(url, socket_timeout=5)
    me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not acquire(client, me):
        holder: bytes | None = client.get(LOCK_KEY)  # type: ignore[assignment]
        print(
            f"beat: another beat holds the lock ({holder.decode() if holder else '?'}); exiting",
            flush=True,
        )
        return 0
    print(f"beat: holding the singleton lock as {me}", flush=True)
    # A TERM before beat installs its own handler still releases the lock (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stop = threading.Event()
    threading.Thread(target=_keep, args=(client, me, stop), daemon=True).start()
    try:
        from config.celery import app

        schedule = os.environ.get("CELERY_BEAT_SCHEDULE_FILE", "celerybeat-schedule")
        app.Beat(loglevel="INFO", schedule=schedule).run()
    finally:
        stop.set()
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            client.eval(RELEASE, 1, LOCK_KEY, me)
    return 0


if __name__ == "__main__":
    sys.exit(main())
