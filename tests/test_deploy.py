"""Production settings pass `manage.py check --deploy` with the required environment set."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(extra_env: dict) -> subprocess.CompletedProcess:
    # A clean environment, as on a server: nothing leaks in from the test run (e.g. the
    # DJANGO_ALLOW_ASYNC_UNSAFE that browser tests set, which check --deploy rejects).
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(extra_env)
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "check",
            "--deploy",
            "--settings=config.settings.production",
            "--fail-level=WARNING",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_prints_no_warnings():
    result = run_check(
        {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "signalsmith.example.com"}
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output.upper()
    assert "no issues" in output


def test_production_refuses_to_start_without_a_real_secret_key():
    result = run_check({"SECRET_KEY": "short", "ALLOWED_HOSTS": "signalsmith.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
