"""`make load`: signed-in people browsing the directory, audit log and usage, and a script
reading the API lists. Configured by tests/load/run.py through LOAD_* environment variables."""

import json
import os
import random
import time

from locust import HttpUser, between, events, task

CONFIG = json.loads(os.environ.get("LOAD_CONFIG", "{}"))
# Every request's (seconds since start, name, ms, failed), written when locust quits, so
# run.py can compute p99 of pages and API calls without the sign-ins (Argon2 by design) and
# without the ramp-up while everyone signs in.
TIMES_FILE = os.environ.get("LOAD_TIMES_FILE")
_times: list[tuple[float, str, float, bool]] = []
_start = time.monotonic()


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **kwargs):
    _times.append((round(time.monotonic() - _start, 3), name, response_time, exception is not None))


@events.quitting.add_listener
def _write(environment, **kwargs):
    if TIMES_FILE:
        with open(TIMES_FILE, "w") as f:
            json.dump(_times, f)


class OrgAdmin(HttpUser):
    """An owner or admin clicking around the org's pages."""

    weight = 3
    wait_time = between(0.5, 1.5)

    def on_start(self):
        email = random.choice(CONFIG["emails"])
        self.client.get("/signin/", name="/signin/")
        csrf = self.client.cookies.get("csrftoken", "")
        response = self.client.post(
            "/signin/",
            {"email": email, "password": CONFIG["password"], "csrfmiddlewaretoken": csrf},
            headers={"Referer": self.host + "/signin/"},
            allow_redirects=False,
            name="/signin/ (POST)",
        )
        if response.status_code != 302:
            raise RuntimeError(f"sign-in as {email} failed: {response.status_code}")
        self.org = CONFIG["org"]

    @task(3)
    def directory(self):
        params = random.choice(
            [
                {},
                {"q": "mar"},
                {"role": "admin"},
                {"sort": "-last_active"},
                {"sort": "email", "page": 2},
            ]
        )
        self.client.get(f"/o/{self.org}/members/", params=params, name="directory")

    @task(3)
    def audit_log(self):
        params = random.choice(
            [{}, {"action": "member.*"}, {"workspace": random.choice(CONFIG["workspaces"])}]
        )
        self.client.get(f"/o/{self.org}/audit/", params=params, name="audit log")

    @task(2)
    def usage(self):
        self.client.get(
            f"/o/{self.org}/usage/", params={"days": random.choice([7, 30, 90])}, name="usage"
        )


class ApiScript(HttpUser):
    """A script with a personal API token reading the list endpoints."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {CONFIG['token']}"
        self.base = f"/api/v1/organizations/{CONFIG['org_id']}"

    @task(2)
    def members(self):
        self.client.get(f"{self.base}/members", params={"limit": 50}, name="api members")

    @task(1)
    def workspaces(self):
        self.client.get(f"{self.base}/workspaces", name="api workspaces")

    @task(2)
    def audit_events(self):
        self.client.get(f"{self.base}/audit-events", params={"limit": 50}, name="api audit-events")

    @task(1)
    def invitations(self):
        self.client.get(f"{self.base}/invitations", name="api invitations")
