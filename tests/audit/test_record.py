import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.utils import DatabaseError

from audit.models import AuditEvent
from audit.services import UnregisteredAction, event_hash, record
from orgs.models import Organization
from workspaces.services import resource_create


def test_unregistered_action_raises(owner):
    with pytest.raises(UnregisteredAction), transaction.atomic():
        record(actor=owner, action="nope.never")


@pytest.mark.django_db(transaction=True)
def test_record_outside_transaction_refused(owner):
    with pytest.raises(RuntimeError):
        record(actor=owner, action="org.created")


def test_chain_links_events(org_setup):
    events = list(AuditEvent.objects.filter(organization=org_setup.org).order_by("seq"))
    assert events, "the org setup records events"
    prev = ""
    for e in events:
        assert e.prev_hash == prev
        assert e.hash == event_hash(e)
        prev = e.hash


def test_failed_change_writes_no_event(org_setup):
    before = AuditEvent.objects.count()
    with pytest.raises((IntegrityError, ValueError, TypeError)):
        resource_create(
            actor=org_setup.owner,
            workspace=org_setup.ws_a,
            kind="warehouse",
            data={"name": "W", "kind": "snowflake", "nonexistent_field": 1},
        )
    assert AuditEvent.objects.count() == before


@pytest.mark.postgres
def test_database_refuses_update_and_delete(org_setup):
    event = AuditEvent.objects.filter(organization=org_setup.org).first()
    for sql in (
        "UPDATE audit_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises((InternalError, DatabaseError)),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action=event.action).exists()


def test_page_choices_are_forgotten_once_per_transaction_and_only_when_they_may_change(
    org_setup, django_capture_on_commit_callbacks
):
    import functools

    from audit.selectors import forget_page_choices

    s = org_setup
    # An org with no event pending in this (test) transaction: org_setup's events already
    # queued their one forget for s.org.
    org = Organization.objects.create(name="Quiet Co", slug="quiet-co")

    def forgets(callbacks):
        return [
            c.args
            for c in callbacks
            if isinstance(c, functools.partial) and c.func is forget_page_choices
        ]

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        record(actor=s.owner, action="org.updated", organization=org, target=org)
    assert forgets(callbacks) == []  # an org's name is in no drop-down
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for _ in range(3):
            record(actor=s.owner, action="member.joined", organization=org, target=s.member)
        record(actor=s.owner, action="workspace.linked", organization=org, target=s.ws_a)
    assert forgets(callbacks) == [(org.pk,)]
