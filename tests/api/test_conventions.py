"""What every client can rely on: JSON errors (never HTML, never a 500 for bad input), 400 for
malformed bodies, 422 with `fields` for field errors, the OpenAPI schema and offline docs."""

import re

import pytest
from django.contrib.staticfiles import finders

from orgs.models import Organization
from tests.api.conftest import error_of


@pytest.mark.parametrize(
    "raw", ["{bad json", "", "[1, 2]", '"a string"', "null", b"\xff\xfe", b'{"name": "Acme"']
)
def test_malformed_bodies_are_400(owner, api, raw):
    response = api(owner).post("/organizations", raw=raw)
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"
    assert not Organization.objects.exists()


def test_wrong_types_are_422_with_fields(owner, api):
    response = api(owner).post("/organizations", {"name": ["Acme"], "slug": 7})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid" and set(error["fields"]) == {"name", "slug"}


def test_missing_fields_are_422(owner, api):
    response = api(owner).post("/organizations", {"slug": "acme"})
    assert response.status_code == 422 and "name" in error_of(response)["fields"]


def test_unknown_api_paths_answer_in_json(owner, api):
    for path in ("/nope", "/organizations/org_x/everything"):
        response = api(owner).get(path)
        assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_openapi_schema_lists_every_endpoint(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    operations = {
        f"{method.upper()} {path}" for path, ops in schema["paths"].items() for method in ops
    }
    expected = {
        "POST /api/v1/organizations",
        "GET /api/v1/organizations/{org_id}",
        "PUT /api/v1/organizations/{org_id}",
        "DELETE /api/v1/organizations/{org_id}",
        "GET /api/v1/organizations/{org_id}/workspaces",
        "POST /api/v1/organizations/{org_id}/workspaces",
        "DELETE /api/v1/organizations/{org_id}/workspaces/{workspace_id}",
        "GET /api/v1/organizations/{org_id}/members",
        "POST /api/v1/organizations/{org_id}/members/invite",
        "PUT /api/v1/organizations/{org_id}/members/{member_id}",
        "DELETE /api/v1/organizations/{org_id}/members/{member_id}",
        "POST /api/v1/organizations/{org_id}/members/{member_id}/suspend",
        "POST /api/v1/organizations/{org_id}/members/{member_id}/unsuspend",
        "GET /api/v1/organizations/{org_id}/removed-members",
        "POST /api/v1/organizations/{org_id}/removed-members/{removal_event_id}/reinstate",
        "GET /api/v1/organizations/{org_id}/invitations",
        "POST /api/v1/organizations/{org_id}/invitations/{invitation_id}/resend",
        "DELETE /api/v1/organizations/{org_id}/invitations/{invitation_id}",
        "GET /api/v1/organizations/{org_id}/audit-events",
        "GET /api/v1/organizations/{org_id}/usage",
        "GET /api/v1/organizations/{org_id}/domains",
        "POST /api/v1/organizations/{org_id}/domains",
        "POST /api/v1/organizations/{org_id}/domains/{domain_id}/verify",
        "DELETE /api/v1/organizations/{org_id}/domains/{domain_id}",
        "GET /api/v1/organizations/{org_id}/saml",
        "PUT /api/v1/organizations/{org_id}/saml",
        "DELETE /api/v1/organizations/{org_id}/saml",
        "GET /api/v1/organizations/{org_id}/oidc",
        "PUT /api/v1/organizations/{org_id}/oidc",
        "DELETE /api/v1/organizations/{org_id}/oidc",
        "POST /api/v1/workspaces/{workspace_id}/syncs/{sync_id}/runs",
        "GET /api/v1/me",
        "PATCH /api/v1/me",
        "GET /api/v1/me/sessions",
        "DELETE /api/v1/me/sessions/{session_id}",
    }
    assert operations == expected
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_docs_are_served_without_a_cdn(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/openapi.json" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    for asset in re.findall(r"""(?:src|href)=["']/static/([^"']+)""", html):
        assert finders.find(asset), asset
    assert '"validatorUrl": null' in html
