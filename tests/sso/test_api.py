"""The single sign-on API: domains (add, verify against loopback DNS, remove) and SAML setup,
owners only, with the same services and errors as the page."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from members.tokens import token_create


@pytest.fixture
def api(client):
    def call(user, method, path, body=None):
        _token, raw = token_create(actor=user, name="sso")
        return getattr(client, method)(
            f"/api/v1{path}",
            json.dumps(body) if body is not None else None,
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )

    return call


def test_domains_through_the_api(org_setup, api, dns_zone):
    ns = org_setup
    base = f"/organizations/{ns.org.public_id}/domains"
    created = api(ns.owner, "post", base, {"domain": "Acme.test"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["domain"] == "acme.test" and not body["verified"]
    assert body["txt_value"].startswith("signalsmith-verification=")

    missing = api(ns.owner, "post", f"{base}/{body['id']}/verify")
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "txt_record_missing"
    dns_zone.records["acme.test"] = [body["txt_value"]]
    verified = api(ns.owner, "post", f"{base}/{body['id']}/verify")
    assert verified.status_code == 200 and verified.json()["verified"]

    listed = api(ns.owner, "get", base).json()
    assert [d["domain"] for d in listed["items"]] == ["acme.test"] and listed["next"] is None
    assert api(ns.owner, "post", base, {"domain": "acme.test"}).status_code == 409
    assert api(ns.owner, "post", base, {"domain": "not a domain"}).status_code == 422
    assert api(ns.admin, "get", base).status_code == 403
    assert api(ns.stranger, "get", base).status_code == 404
    assert api(ns.owner, "delete", f"{base}/dom_nope").status_code == 404
    assert api(ns.owner, "delete", f"{base}/{body['id']}").status_code == 204
    assert AuditEvent.objects.filter(action__startswith="sso.domain_").count() == 3


def test_saml_through_the_api(org_setup, api, idp):
    ns = org_setup
    path = f"/organizations/{ns.org.public_id}/saml"
    empty = api(ns.owner, "get", path).json()
    assert not empty["configured"]
    assert empty["acs_url"] == f"http://testserver/sso/{ns.org.slug}/saml/acs/"
    assert empty["sp_entity_id"] == f"http://testserver/sso/{ns.org.slug}/saml/metadata/"

    bad = api(ns.owner, "put", path, {"metadata_xml": "<nope"})
    assert bad.status_code == 422 and "metadata" in bad.json()["error"]["fields"]
    assert api(ns.admin, "put", path, {"metadata_xml": idp.metadata()}).status_code == 403
    done = api(ns.owner, "put", path, {"metadata_xml": idp.metadata(), "email_attribute": "mail"})
    assert done.status_code == 200, done.content
    assert done.json()["idp_entity_id"] == idp.entity_id and done.json()["configured"]
    assert done.json()["email_attribute"] == "mail"
    assert api(ns.owner, "delete", path).status_code == 204
    assert api(ns.owner, "delete", path).status_code == 404
