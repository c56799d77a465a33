"""Audit log: free-text search (page, export, API) and a permalink per event."""

import pytest

from audit.models import AuditEvent
from audit.selectors import events_for, parse_filters
from config.roles import Role
from members.invitations import member_invite

pytestmark = pytest.mark.django_db


def _url(org, rest=""):
    return f"/o/{org.slug}/audit/{rest}"


def test_search_matches_every_word_in_labels_ids_and_details(org_setup):
    s = org_setup
    member_invite(
        actor=s.owner, org=s.org, emails=["quincy@elsewhere.test"], org_role=Role.ADMIN, grants={}
    )
    filters, errors = parse_filters(s.org, {"q": "  quincy\x00 "})
    assert not errors and filters.q == "quincy"
    events, _ = events_for(s.org, **filters.selector_kwargs())
    assert events and all("quincy" in (e.target_label + str(e.details)).lower() for e in events)
    both, _ = events_for(s.org, q="quincy invited")
    assert {e.action for e in both} <= {"member.invited"} and both
    none, _ = events_for(s.org, q="quincy nosuchword")
    assert none == []
    by_id, _ = events_for(s.org, q=events[0].public_id)
    assert [e.pk for e in by_id] == [events[0].pk]


def test_search_on_the_page_and_in_the_export(org_setup, login):
    s = org_setup
    member_invite(
        actor=s.owner, org=s.org, emails=["quincy@elsewhere.test"], org_role=Role.MEMBER, grants={}
    )
    client = login(s.owner)
    html = client.get(_url(s.org, "?q=quincy")).content.decode()
    assert "quincy@elsewhere.test" in html
    assert 'value="quincy"' in html
    assert "workspace.linked" not in html.split('data-testid="audit-events"')[1]
    export = client.get(_url(s.org, "export/?q=quincy&format=csv"))
    body = b"".join(export.streaming_content).decode()
    assert "quincy@elsewhere.test" in body and "workspace.linked" not in body
    assert "q=quincy" in html  # export links keep the search


def test_each_event_has_a_permalink(org_setup, login):
    s = org_setup
    event = AuditEvent.objects.filter(organization=s.org).order_by("-id").first()
    client = login(s.admin)
    log = client.get(_url(s.org)).content.decode()
    link = _url(s.org, f"events/{event.public_id}/")
    assert f'href="{link}"' in log
    page = client.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert event.public_id in html and event.hash in html and event.action in html
    assert 'aria-label="Organization"' in html  # inside the org's tabs


def test_permalinks_are_scoped_to_the_org_and_role(org_setup, login):
    s = org_setup
    event = AuditEvent.objects.filter(organization=s.org).first()
    assert login(s.member).get(_url(s.org, f"events/{event.public_id}/")).status_code == 403
    assert login(s.stranger).get(_url(s.org, f"events/{event.public_id}/")).status_code == 404
    assert login(s.owner).get(_url(s.org, "events/evt_nosuchevent/")).status_code == 404
