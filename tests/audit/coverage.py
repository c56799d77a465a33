"""Pytest plugin: every registered audit action must be produced by some service in the suite.

Registered from tests/conftest.py. It listens to AuditEvent saves (record() is the only
writer) for the whole session and, when the *whole* suite ran and passed, fails the run
listing the actions nobody produced. A subset run (paths, -k, -m, deselection) is not
checked: most actions are produced by other apps' tests.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

PRODUCED: set[str] = set()
_lock = threading.Lock()
_state = {"deselected": 0}


def _on_save(sender, instance, created, **kwargs):
    if created:
        with _lock:
            PRODUCED.add(instance.action)


@pytest.fixture(scope="session", autouse=True)
def _collect_audit_actions():
    from django.db.models.signals import post_save

    from audit.models import AuditEvent

    post_save.connect(_on_save, sender=AuditEvent, dispatch_uid="audit-coverage")
    yield
    post_save.disconnect(sender=AuditEvent, dispatch_uid="audit-coverage")


def pytest_deselected(items):
    _state["deselected"] += len(items)


def _whole_suite(session) -> bool:
    config = session.config
    if config.option.keyword or config.option.markexpr or _state["deselected"]:
        return False
    roots = {(Path(config.rootpath) / p).resolve() for p in config.getini("testpaths")}
    asked = {Path(a.split("::")[0]).resolve() for a in config.args} or roots
    return asked <= roots | {Path(config.rootpath).resolve()}


def missing_actions() -> list[str]:
    from audit.events import EVENTS

    return sorted(set(EVENTS) - PRODUCED)


def pytest_sessionfinish(session, exitstatus):
    if not _whole_suite(session) or not session.testscollected:
        return
    missing = missing_actions()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if exitstatus != 0:
        # Some tests failed (maybe before producing their events): report, do not enforce.
        if missing and reporter:
            reporter.line(f"audit coverage (not enforced, the run failed): missing {missing}")
        return
    if missing:
        if reporter:
            reporter.section("audit coverage", sep="=", red=True, bold=True)
            reporter.line(
                f"{len(missing)} registered audit action(s) were never recorded by any test: "
                + ", ".join(missing)
            )
            reporter.line(
                "Each must be produced by the service that performs it (docs/rules.md §5)."
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter:
        reporter.line("audit coverage: every registered action was recorded by the suite.")
