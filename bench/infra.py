"""Real moving parts for the bench and the fault tests: an SMTP sink, Celery worker processes,
and pointing this process's Celery app at a broker. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

from django.conf import settings

from config.celery import app as celery_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_available(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


@dataclass
class Received:
    recipients: list[str]
    subject: str
    body: str


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.refuse:
            return "554 5.7.1 Recipient refused (fault test)"
        if self.sink.delay:
            # Before DATA: a client killed here has delivered nothing.
            self.sink.rcpt_started.set()
            await asyncio.sleep(self.sink.delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content)
        body = ""
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                body = part.get_payload(decode=True).decode(errors="replace")
                break
        with self.sink.lock:
            self.sink.messages.append(Received(list(envelope.rcpt_tos), msg["Subject"] or "", body))
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps what it receives; can delay or refuse."""

    delay: float = 0.0
    refuse: bool = False
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rcpt_started: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self.port = self.port or free_port()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc):
        self._controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for m in self.messages for r in m.recipients]

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.recipients()) >= count:
                return True
            time.sleep(0.02)
        return len(self.recipients()) >= count


def worker_env(*, database_url: str, redis_url: str, email_url: str, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DEBUG="false",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        EMAIL_URL=email_url,
        SITE_URL=settings.SITE_URL,
        CACHE_KEY_PREFIX="bench",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


class CeleryWorker:
    """One `celery worker -c 1` subprocess (prefork: a main process and one child)."""

    def __init__(self, name: str, *, queue: str, env: dict, log_dir: Path, pool: str = "prefork"):
        self.name, self.queue, self.env, self.pool = name, queue, env, pool
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> CeleryWorker:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-c",
                "1",
                "-P",
                self.pool,
                "-Q",
                self.queue,
                "-n",
                f"{self.name}@%h",
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log_path.read_text()[-2000:]}")
            if " ready." in self.log_path.read_text():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {timeout}s: {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its child), as a crash would."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


@contextlib.contextmanager
def celery_publishing_to(broker_url: str, queue: str):
    """Make this process publish tasks to a real broker queue instead of running them eagerly."""
    conf = celery_app.conf
    saved = {k: conf.get(k) for k in ("broker_url", "task_always_eager", "task_default_queue")}

    def reset():
        celery_app._pool = None
        celery_app.__dict__.pop("amqp", None)  # queues and router are cached on it

    conf.update(broker_url=broker_url, task_always_eager=False, task_default_queue=queue)
    reset()
    try:
        yield
    finally:
        # Not closed: kombu keeps pools per broker URL, and a closed one would be handed out again.
        conf.update(saved)
        reset()


def purge_queue(broker_url: str, queue: str) -> None:
    import redis

    with contextlib.suppress(Exception):
        redis.Redis.from_url(broker_url).delete(queue)


class Gunicorn:
    """`gunicorn config.wsgi` on 127.0.0.1 with the given environment."""

    def __init__(self, env: dict, *, workers: int = 2):
        self.env, self.workers = env, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        import urllib.error
        import urllib.request

        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-w",
                str(self.workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=settings.BASE_DIR,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gunicorn exited at start")
            try:
                urllib.request.urlopen(self.url + "/signin/", timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # it answers
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 30 s")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def app_env(database_url: str, **extra) -> dict:
    """Environment for a gunicorn serving the app (DEBUG off, no broker)."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DEBUG="false",
        DATABASE_URL=database_url,
        LOG_LEVEL="ERROR",
    )
    env.update(extra)
    return env
