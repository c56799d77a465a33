"""Production settings pass `manage.py check --deploy` with the required environment set."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(extra_env: dict, *, allow_test_provider: bool = True) -> subprocess.CompletedProcess:
    # A clean environment, as on a server: nothing leaks in from the test run (e.g. the
    # DJANGO_ALLOW_ASYNC_UNSAFE that browser tests set, which check --deploy rejects).
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    if allow_test_provider:  # the repository ships no real payment provider
        env["ALLOW_TEST_PAYMENT_PROVIDER"] = "1"
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


REQUIRED = {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "signalsmith.example.com"}


def test_production_refuses_to_start_with_the_test_payment_provider():
    result = run_check(REQUIRED, allow_test_provider=False)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "ALLOW_TEST_PAYMENT_PROVIDER=1" in result.stderr
    # Named explicitly, it is still the test provider: still refused.
    named = {**REQUIRED, "BILLING_PAYMENT_PROVIDER": "billing.providers.TestProvider"}
    assert run_check(named, allow_test_provider=False).returncode != 0
    refused = {**REQUIRED, "ALLOW_TEST_PAYMENT_PROVIDER": "0"}
    assert run_check(refused, allow_test_provider=False).returncode != 0


def test_production_starts_with_the_test_provider_when_explicitly_allowed():
    allowed = {**REQUIRED, "ALLOW_TEST_PAYMENT_PROVIDER": "1"}
    result = run_check(allowed, allow_test_provider=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_starts_with_another_provider():
    """Any other provider path is the operator's choice (the repository has none to offer)."""
    other = {**REQUIRED, "BILLING_PAYMENT_PROVIDER": "payments.stripe.StripeProvider"}
    result = run_check(other, allow_test_provider=False)
    assert result.returncode == 0, result.stdout + result.stderr
