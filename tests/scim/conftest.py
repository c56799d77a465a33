"""An org with two linked workspaces, a verified domain and a SCIM token, for the SCIM tests (live server: real HTTP)."""

import pytest
import requests

from billing.models import BillingAccount
from orgs.scim.services import scim_token_create


@pytest.fixture
def scim(org_setup, verified):
    """org_setup with acme.test verified (SCIM provisions only addresses in verified domains)
    plus a SCIM token; `scim.base` is filled in by `scim_http`."""
    verified(org_setup.org, "acme.test")
    token, raw = scim_token_create(actor=org_setup.owner, org=org_setup.org, name="Okta")
    plan = BillingAccount.objects.get(organization=org_setup.org).plan
    plan.max_members = 500
    plan.save()
    org_setup.token, org_setup.raw = token, raw
    return org_setup


class ScimClient:
    def __init__(self, base: str, raw: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {raw}", "Content-Type": "application/scim+json"}
        )

    def __getattr__(self, method):
        def call(path, **kwargs):
            return self.session.request(method.upper(), self.base + path, timeout=30, **kwargs)

        return call


@pytest.fixture
def scim_http(live_server, scim):
    scim.base = f"{live_server.url}/scim/v2/{scim.org.slug}/"
    scim.http = ScimClient(scim.base, scim.raw)
    yield scim
    scim.http.session.close()
