"""Audit Log › Streaming: add (secret shown once), field errors, delivery log, replay, remove."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, StreamDelivery, StreamDestination
from audit.streaming import stream_destination_add
from orgs.services import org_create
from tests.factories import UserFactory
from workspaces.services import workspace_create


def page(ns):
    return reverse("audit:streaming", kwargs={"org_slug": ns.org.slug})


def test_add_shows_the_secret_once(org_setup, login):
    client = login(org_setup.owner)
    response = client.post(
        page(org_setup), {"action": "add", "name": "Splunk", "url": "https://siem.example.com/in"}
    )
    assert response.status_code == 200
    destination = StreamDestination.objects.get(organization=org_setup.org)
    html = response.content.decode()
    assert destination.secret in html and "not shown again" in html
    again = client.get(page(org_setup)).content.decode()
    assert destination.secret not in again and "Splunk" in again
    assert AuditEvent.objects.filter(action="audit.stream_destination_added").count() == 1


@pytest.mark.parametrize(
    "data, field_message",
    [
        ({"name": "S", "url": "http://siem.example.com/"}, "https://"),
        ({"name": "", "url": "https://siem.example.com/"}, "required"),
        ({"name": "S", "url": "javascript:alert(1)"}, "https://"),
    ],
)
def test_bad_input_is_a_field_error_and_changes_nothing(org_setup, login, data, field_message):
    response = login(org_setup.owner).post(page(org_setup), {"action": "add", **data})
    assert response.status_code == 422
    assert field_message in response.content.decode()
    assert not StreamDestination.objects.exists()


def test_delivery_log_shows_status_attempts_and_last_error(org_setup, login):
    destination, _ = stream_destination_add(
        actor=org_setup.owner, org=org_setup.org, name="SIEM", url="https://siem.example.com/"
    )
    StreamDelivery.objects.filter(destination=destination).update(
        attempts=3, last_attempt_at=timezone.now(), last_status_code=503, last_error="HTTP 503 Busy"
    )
    html = login(org_setup.owner).get(page(org_setup)).content.decode()
    assert 'data-testid="delivery-log"' in html
    assert "HTTP 503 Busy" in html and "retrying" in html and ">3<" in html


def test_replay_and_bad_replay_date(org_setup, login):
    destination, _ = stream_destination_add(
        actor=org_setup.owner, org=org_setup.org, name="SIEM", url="https://siem.example.com/"
    )
    client = login(org_setup.owner)
    bad = client.post(
        page(org_setup),
        {
            "action": "replay",
            "destination": destination.public_id,
            f"{destination.public_id}-since": "soon",
        },
    )
    assert bad.status_code == 422 and "Enter a date and time" in bad.content.decode()
    ok = client.post(
        page(org_setup),
        {
            "action": "replay",
            "destination": destination.public_id,
            f"{destination.public_id}-since": "2000-01-01T00:00",
        },
        follow=True,
    )
    assert "events queued again" in ok.content.decode()
    assert AuditEvent.objects.filter(action="audit.stream_replayed").count() == 1


def test_another_orgs_destination_is_404_and_unknown_action_422(org_setup, login):
    other_owner = UserFactory()
    other = org_create(
        actor=other_owner, name="Other", workspace=workspace_create(actor=other_owner, name="W")
    )
    theirs, _ = stream_destination_add(
        actor=other_owner, org=other, name="Theirs", url="https://t.example.com/"
    )
    client = login(org_setup.owner)
    response = client.post(page(org_setup), {"action": "remove", "destination": theirs.public_id})
    assert response.status_code == 404
    assert StreamDestination.objects.filter(pk=theirs.pk).exists()
    assert client.post(page(org_setup), {"action": "explode"}).status_code == 422
