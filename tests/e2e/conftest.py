"""Browser journeys: Playwright (sync API) driving Debian's Chromium against pytest-django's
live_server (a real HTTP server thread on the transactional test database).

Emails land in the locmem outbox (`mailoutbox`): the live server runs in this process and
Celery is eager in tests, so an invitation email is there as soon as the invite commits.
On failure each open page is saved as a screenshot (and its HTML) under $TEST_ARTIFACTS
(default: test-artifacts/), which `.ci/run` lists.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's async-safety check would
# refuse the test's own ORM calls. They are synchronous code, so this is safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(
    os.environ.get("TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
)


def pytest_collection_modifyitems(config, items):
    skip = None
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(
            reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        )
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)
            if skip:
                item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Browsers:
    """Opens isolated browser contexts (one per person) and remembers their pages."""

    def __init__(self, chromium, base_url: str):
        self.chromium, self.base_url = chromium, base_url
        self.pages = []
        self.contexts = []

    def new_page(self, name: str = "page"):
        context = self.chromium.new_context(
            base_url=self.base_url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        page._e2e_name = name
        self.contexts.append(context)
        self.pages.append(page)
        return page

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsers(chromium, live_server, request):
    b = Browsers(chromium, live_server.url)
    yield b
    failed = any(
        getattr(request.node, f"rep_{w}", None) and getattr(request.node, f"rep_{w}").failed
        for w in ("setup", "call")
    )
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
        for page in b.pages:
            try:
                page.screenshot(
                    path=str(ARTIFACTS / f"{stem}-{page._e2e_name}.png"), full_page=True
                )
                (ARTIFACTS / f"{stem}-{page._e2e_name}.html").write_text(page.content())
            except Exception:  # a crashed page must not hide the test's own failure
                pass
    b.close()


@pytest.fixture
def page(browsers):
    return browsers.new_page("main")


def submit_sign_in(page, email: str, password: str) -> None:
    """Fill in and submit the sign-in form (right or wrong: the caller checks the outcome)."""
    page.goto("/signin/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]:has-text('Sign in')")


def sign_in(page, email: str, password: str) -> None:
    """Sign in and wait until the app has let the person in."""
    submit_sign_in(page, email, password)
    page.wait_for_url(lambda url: "/signin" not in url)


def screenshots(env_var: str):
    """shot(page, name): the page as it is now at 1440x900 and 390x844, saved under the folder
    that `env_var` names (nothing when it is unset), for the README's and reviewers' pictures."""
    folder = os.environ.get(env_var)

    def shot(page, name: str) -> None:
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        for width, height in ((1440, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{folder}/{name}-{width}x{height}.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})

    return shot
