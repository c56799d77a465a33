"""Tamper evidence: verify_audit_chain, the beat task, concurrent appenders, pruning."""

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection, transaction

from audit.chain import verify_chain
from audit.models import AuditChainHead, AuditEvent, ChainVerification
from audit.services import record
from audit.tasks import verify_audit_chains
from orgs.services import org_update
from tests.audit.helpers import make_event


def test_command_verifies_every_chain_and_prints_counts(org_setup, capsys):
    count = AuditEvent.objects.filter(chain_key=org_setup.org.pk).count()
    call_command("verify_audit_chain", "--org", org_setup.org.slug)
    out = capsys.readouterr().out
    assert f"{org_setup.org.slug}: {count} events verified" in out
    call_command("verify_audit_chain")
    assert "events outside any organization" in capsys.readouterr().out


def test_unknown_org_slug_is_an_error(db):
    with pytest.raises(CommandError, match="No organization"):
        call_command("verify_audit_chain", "--org", "nope")


@pytest.mark.postgres
def test_tampering_with_details_is_named_and_exits_non_zero(org_setup, capsys):
    org = org_setup.org
    for i in range(5):
        org_update(actor=org_setup.owner, org=org, name=f"Acme {i}")
    victim = AuditEvent.objects.filter(chain_key=org.pk).order_by("seq")[3]
    with connection.cursor() as cur:
        # Inside the test transaction only: switch the append-only trigger off and tamper.
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(
            "UPDATE audit_auditevent SET details = '{\"forged\": true}'::jsonb WHERE id = %s",
            [victim.pk],
        )
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    with pytest.raises(CommandError) as exc:
        call_command("verify_audit_chain", "--org", org.slug)
    assert victim.public_id in str(exc.value)
    err = capsys.readouterr().err
    assert f"BROKEN at {victim.public_id}" in err and "no longer matches its hash" in err
    check = ChainVerification.objects.get(chain_key=org.pk)
    assert not check.ok and check.first_bad_event_public_id == victim.public_id


@pytest.mark.postgres
def test_deleting_an_event_is_detected_at_the_next_one(org_setup):
    org = org_setup.org
    for i in range(4):
        org_update(actor=org_setup.owner, org=org, name=f"Acme {i}")
    events = list(AuditEvent.objects.filter(chain_key=org.pk).order_by("seq"))
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    result = verify_chain(org.pk)
    assert not result.ok and result.first_bad_event == events[3].public_id
    assert result.count == 2


def test_removing_the_newest_event_is_detected_by_the_head(org_setup):
    org = org_setup.org
    last = AuditEvent.objects.filter(chain_key=org.pk).order_by("-seq").first()
    AuditChainHead.objects.filter(chain_key=org.pk).update(last_seq=last.seq + 1)
    result = verify_chain(org.pk)
    assert not result.ok and "newest events" in result.problem


def test_beat_task_records_each_chain_and_the_page_shows_it(org_setup, login):
    summary = verify_audit_chains.delay().get()
    assert summary["broken"] == [] and summary["chains"] >= 2
    check = ChainVerification.objects.get(chain_key=org_setup.org.pk)
    last = AuditEvent.objects.filter(chain_key=org_setup.org.pk).order_by("-seq").first()
    assert check.ok and check.last_event_public_id == last.public_id
    page = login(org_setup.owner).get(f"/o/{org_setup.org.slug}/audit/")
    assert f"Chain verified up to <code>{last.public_id}</code>" in page.content.decode()


def test_page_warns_in_red_after_a_failed_verification(org_setup, login):
    ChainVerification.objects.create(
        chain_key=org_setup.org.pk, ok=False, first_bad_event_public_id="evt_bad"
    )
    html = login(org_setup.admin).get(f"/o/{org_setup.org.slug}/audit/").content.decode()
    assert "The audit chain is broken" in html and "evt_bad" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_threads_appending_concurrently_leave_a_valid_chain():
    from orgs.services import org_create
    from tests.factories import UserFactory
    from workspaces.services import workspace_create

    owner = UserFactory()
    org = org_create(actor=owner, name="Race", workspace=workspace_create(actor=owner, name="R"))
    errors = []
    barrier = threading.Barrier(8)

    def append(n):
        try:
            barrier.wait()
            for i in range(10):
                with transaction.atomic():
                    record(
                        actor=owner,
                        action="org.updated",
                        organization=org,
                        details={"n": n, "i": i},
                    )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = verify_chain(org.pk)
    assert result.ok, result.problem
    assert result.count == AuditEvent.objects.filter(chain_key=org.pk).count() == 80 + 2
    seqs = list(
        AuditEvent.objects.filter(chain_key=org.pk).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, 83))


def test_events_appended_out_of_time_order_still_verify(org_setup):
    from tests.audit.helpers import days_ago

    make_event(org_setup.org, at=days_ago(1))
    make_event(org_setup.org, at=days_ago(2))
    assert verify_chain(org_setup.org.pk).ok
