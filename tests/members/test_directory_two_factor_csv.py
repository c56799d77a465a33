"""Directory: two-factor column and filter (owners/admins), CSV export of the filtered list."""

import csv
import io

import pyotp
import pytest

from members import two_factor

pytestmark = pytest.mark.django_db


def _enable_two_factor(user):
    secret = pyotp.random_base32()
    two_factor.two_factor_enable(user=user, secret=secret, code=pyotp.TOTP(secret).now())


def _url(org, query=""):
    return f"/o/{org.slug}/members/{query}"


def test_admins_see_two_factor_status_and_filter_by_it(org_setup, login):
    s = org_setup
    _enable_two_factor(s.admin)
    client = login(s.owner)
    html = client.get(_url(s.org)).content.decode()
    assert "<th>Two-factor</th>" in html
    assert html.count('data-two-factor="on"') == 1
    assert html.count('data-two-factor="off"') == 2
    on = client.get(_url(s.org, "?two_factor=on")).content.decode()
    assert "bob@acme.test" in on and "carol@acme.test" not in on
    off = client.get(_url(s.org, "?two_factor=off")).content.decode()
    assert "bob@acme.test" not in off and "carol@acme.test" in off


def test_members_see_no_two_factor_status_and_the_filter_is_ignored(org_setup, login):
    s = org_setup
    _enable_two_factor(s.admin)
    html = login(s.member).get(_url(s.org, "?two_factor=on")).content.decode()
    assert "<th>Two-factor</th>" not in html and "data-two-factor" not in html
    assert "olivia@acme.test" in html  # not filtered
    assert 'data-testid="directory-csv"' not in html


def test_csv_export_has_every_filtered_member_and_neutralises_formulas(org_setup, login):
    s = org_setup
    s.member.full_name = "=HYPERLINK(1)"
    s.member.save(update_fields=["full_name"])
    client = login(s.admin)
    page = client.get(_url(s.org, "?role=member")).content.decode()
    assert 'href="/o/acme-corp/members/?role=member&amp;format=csv"' in page
    response = client.get(_url(s.org, "?role=member&format=csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "members-acme-corp-" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["member_id", "name", "email", "org_role"]
    assert [r[2] for r in rows[1:]] == ["carol@acme.test"]
    assert rows[1][1] == "'=HYPERLINK(1)"
    assert rows[1][5] == "off"
    everyone = client.get(_url(s.org, "?format=csv"))
    assert len(list(csv.reader(io.StringIO(b"".join(everyone.streaming_content).decode())))) == 4


def test_members_cannot_export(org_setup, login):
    response = login(org_setup.member).get(_url(org_setup.org, "?format=csv"))
    assert response.status_code == 403
