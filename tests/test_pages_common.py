"""What every page shares: the Content-Security-Policy header, refusals inside the normal
layout, a readable 405 for a GET to a POST-only address, and /favicon.ico."""

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in header.split(";")
        if part.strip()
    }


def test_every_kind_of_response_carries_the_policy(client, login, org_setup):
    responses = [client.get("/signin/"), client.get("/api/v1/openapi.json")]
    login(org_setup.owner)
    responses += [
        client.get(f"/o/{org_setup.org.slug}/"),
        client.get("/o/no-such-org/"),  # 404
        client.get(f"/w/{org_setup.ws_a.slug}/members/add/"),  # 405
        client.get("/api/v1/organizations"),  # 401 JSON
    ]
    for response in responses:
        policy = _policy(response)
        assert policy["script-src"] == "'self'", response
        assert policy["style-src"] == "'self'", response
        assert "unsafe-inline" not in response["Content-Security-Policy"]
        assert policy["frame-ancestors"] == "'none'"
        assert policy["object-src"] == "'none'"


def test_pages_have_no_inline_script_style_or_handler(client, login, org_setup):
    login(org_setup.owner)
    slug = org_setup.org.slug
    for path in (
        f"/o/{slug}/",
        f"/o/{slug}/members/",
        f"/o/{slug}/members/invitations/",
        f"/o/{slug}/usage/",
        f"/o/{slug}/audit/",
        f"/o/{slug}/settings/",
        f"/o/{slug}/billing/",
        "/account/tokens/",
    ):
        html = client.get(path).content.decode()
        assert " style=" not in html, path
        assert "<style" not in html, path
        assert " onclick=" not in html and " onfocus=" not in html, path
        assert "javascript:" not in html, path
        for script in html.split("<script")[1:]:
            assert script.lstrip().startswith("src="), path
        assert '"includeIndicatorStyles": false' in html


def test_a_refusal_keeps_the_org_header_and_tabs(client, login, org_setup):
    login(org_setup.member)
    response = client.get(f"/o/{org_setup.org.slug}/usage/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'aria-label="Organization"' in html  # the org's tabs
    assert org_setup.org.name in html
    assert 'class="banner error"' in html


def test_a_get_to_a_post_only_address_is_a_readable_405(client, login, org_setup):
    login(org_setup.member)
    response = client.get(f"/w/{org_setup.ws_b.slug}/members/add/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "only accepts a form submission" in response.content.decode()


def test_a_get_to_a_post_only_api_route_gets_no_html_page(client):
    response = client.get("/api/v1/organizations/org_x/members/invite")
    assert response.status_code == 405
    assert b"<html" not in response.content  # the API's answers are not pages


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.svg"
    assert (settings.BASE_DIR / "static" / "favicon.svg").read_text().startswith("<svg")


def test_no_template_has_inline_style_script_or_handler():
    """The CSP forbids them; e-mails are exempt (mail clients need inline styles)."""
    import re

    pattern = re.compile(
        r"""\sstyle\s*=|<style|<script(?![^>]*\ssrc=)(?![^>]*type="application/json")|\son[a-z]+\s*=|javascript:""",
        re.IGNORECASE,
    )
    offenders = []
    for path in (settings.BASE_DIR / "templates").rglob("*.html"):
        if "emails" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(settings.BASE_DIR)}:{number}: {line.strip()}")
    assert offenders == []


def test_error_banners_come_from_the_one_partial():
    """A domain error or a form's non-field errors are drawn by error.html#banner and
    error.html#form_errors; a page never hand-copies that markup (CONVENTIONS: one helper)."""
    from pathlib import Path

    root = Path(settings.BASE_DIR) / "templates"
    copies = []
    for path in root.rglob("*.html"):
        name = path.relative_to(root).as_posix()
        if name == "error.html" or name.startswith(("admin/", "sso/")):
            continue  # the partials themselves; the admin's own markup; SSO's refusal page
        text = path.read_text()
        if "{{ error.message }}" in text or "non_field_errors %}<div" in text:
            copies.append(name)
    assert copies == []
