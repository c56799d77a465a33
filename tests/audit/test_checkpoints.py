"""Signed checkpoints make tail truncation detectable.

The attacker here has a superuser's access to the database (the application's role cannot
delete events at all, see test_dbsecurity.py): triggers off, the newest events deleted, the
chain head rewound to the last event left. What remains is a well-formed shorter chain; only
the checkpoints, signed with a key the database does not hold, show that it once went further.
"""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.chain import verify_chain
from audit.checkpoints import checkpoint_mac
from audit.models import AuditChainHead, AuditEvent, ChainCheckpoint
from audit.services import _seal
from audit.tasks import verify_audit_chains
from orgs.services import org_update
from tests.audit.helpers import days_ago, make_event

pytestmark = pytest.mark.postgres


def _grow(s, n):
    for i in range(n):
        org_update(actor=s.owner, org=s.org, name=f"Acme {i}")


def _truncate_tail(chain_key, keep_seq):
    """As a superuser: delete every event after keep_seq and rewind the head onto it."""
    kept = AuditEvent.objects.get(chain_key=chain_key, seq=keep_seq)
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(
            "DELETE FROM audit_auditevent WHERE chain_key = %s AND seq > %s", [chain_key, keep_seq]
        )
        cur.execute(
            "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE chain_key = %s",
            [keep_seq, kept.hash, chain_key],
        )
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    return kept


def test_the_hourly_verification_signs_a_checkpoint_and_a_truncated_tail_is_named(
    org_setup, capsys
):
    s = org_setup
    _grow(s, 5)
    assert verify_audit_chains.delay().get()["broken"] == []
    head = AuditChainHead.objects.get(chain_key=s.org.pk)
    cp = ChainCheckpoint.objects.get(chain_key=s.org.pk)
    assert (cp.seq, cp.head_hash) == (head.last_seq, head.last_hash)
    assert cp.mac == checkpoint_mac(s.org.pk, cp.seq, cp.head_hash, cp.created_at)
    # Verifying again without new events signs nothing new.
    verify_audit_chains.delay().get()
    assert ChainCheckpoint.objects.filter(chain_key=s.org.pk).count() == 1

    kept = _truncate_tail(s.org.pk, head.last_seq - 3)
    result = verify_chain(s.org.pk)
    assert not result.ok
    missing = f"events {kept.seq + 1}–{head.last_seq} are missing"
    assert missing in result.problem and f"now ends at seq {kept.seq} ({kept.public_id})" in (
        result.problem
    )
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", "--org", s.org.slug)
    assert missing in capsys.readouterr().err
    # Without the checkpoint the shortened chain is well-formed: the checkpoint is what tells.
    with connection.cursor() as cur:
        cur.execute("DELETE FROM audit_chaincheckpoint WHERE chain_key = %s", [s.org.pk])
    assert verify_chain(s.org.pk).ok


def test_record_signs_every_nth_event_in_its_transaction(org_setup, settings):
    s = org_setup
    settings.AUDIT_CHECKPOINT_EVERY = 4
    start = AuditChainHead.objects.get(chain_key=s.org.pk).last_seq
    for n in range(start + 1, start + 10):
        with CaptureQueriesContext(connection) as queries:
            make_event(s.org)
        # One statement locks the head and inserts the event; only a due checkpoint (its MAC
        # needs the seq and hash the database chose) adds a second.
        inserts = [q["sql"] for q in queries.captured_queries if "audit_auditevent" in q["sql"]]
        assert len(inserts) == 1
        due = n % 4 == 0
        assert len(queries.captured_queries) == 1 + due + 2  # + the helper's savepoint, release
    end = start + 9
    signed = list(ChainCheckpoint.objects.filter(chain_key=s.org.pk).values_list("seq", flat=True))
    assert signed == [n for n in range(start + 1, end + 1) if n % 4 == 0]
    assert verify_chain(s.org.pk).ok

    # No verification ran since: the checkpoints written by record() alone catch the cut.
    newest = max(signed)
    _truncate_tail(s.org.pk, newest - 2)
    result = verify_chain(s.org.pk)
    assert not result.ok and f"events {newest - 1}–{newest} are missing" in result.problem


def test_a_rewritten_tail_with_recomputed_hashes_differs_from_its_checkpoint(org_setup):
    s = org_setup
    _grow(s, 3)
    verify_audit_chains.delay().get()
    head = AuditChainHead.objects.get(chain_key=s.org.pk)
    victim = AuditEvent.objects.get(chain_key=s.org.pk, seq=head.last_seq)
    previous = AuditEvent.objects.get(chain_key=s.org.pk, seq=head.last_seq - 1)
    # Replace the newest event by a different one, hashed and linked correctly.
    victim.details = {"name": "Nothing to see"}
    _seal(victim, victim.seq, previous.hash)
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(
            "UPDATE audit_auditevent SET details = %s::jsonb, hash = %s WHERE id = %s",
            ['{"name": "Nothing to see"}', victim.hash, victim.pk],
        )
        cur.execute(
            "UPDATE audit_auditchainhead SET last_hash = %s WHERE chain_key = %s",
            [victim.hash, s.org.pk],
        )
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    result = verify_chain(s.org.pk)
    assert not result.ok and result.first_bad_event == victim.public_id
    assert "differs from the one signed" in result.problem


def test_a_checkpoint_not_signed_with_the_key_is_reported(org_setup, settings):
    s = org_setup
    verify_audit_chains.delay().get()
    cp = ChainCheckpoint.objects.get(chain_key=s.org.pk)
    # Someone without the key moves the checkpoint back (to match a shortened chain).
    ChainCheckpoint.objects.filter(pk=cp.pk).update(seq=cp.seq - 1)
    result = verify_chain(s.org.pk)
    assert not result.ok and "invalid signature" in result.problem
    ChainCheckpoint.objects.filter(pk=cp.pk).update(seq=cp.seq)
    assert verify_chain(s.org.pk).ok
    settings.AUDIT_CHECKPOINT_KEY = "another key"
    assert "invalid signature" in verify_chain(s.org.pk).problem


def test_pruning_past_checkpoints_still_verifies(org_setup, settings, tmp_path):
    from audit.retention import audit_prune
    from orgs.models import Organization

    settings.AUDIT_CHECKPOINT_EVERY = 5
    org = Organization.objects.create(name="Old Co", slug="old-co")
    for i in range(12):
        make_event(org, at=days_ago(100 - i))
    make_event(org)
    assert list(ChainCheckpoint.objects.filter(chain_key=org.pk).values_list("seq", flat=True)) == [
        5,
        10,
    ]
    pruned = audit_prune(chain_key=org.pk, before=days_ago(95), archive_dir=tmp_path)
    assert pruned.details["last_seq"] == 6
    # Checkpoint 5 went with the events it vouched for; 10 still has to be reached.
    assert list(ChainCheckpoint.objects.filter(chain_key=org.pk).values_list("seq", flat=True)) == [
        10
    ]
    result = verify_chain(org.pk)
    assert result.ok, result.problem
