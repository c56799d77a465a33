import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.utils import DatabaseError

from audit.models import AuditEvent
from audit.services import UnregisteredAction, event_hash, record
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
