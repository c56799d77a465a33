"""What the database enforces, tried as the application's own (non-superuser) database role.

The suite connects as the superuser that ran the migrations. These tests create a role like
production's application role inside the test transaction (rolled back afterwards): DML on
every table that is not the audit log's, membership of the audit writer role, nothing else;
then `SET LOCAL ROLE` to it, so every statement after that is checked against that role's
privileges, exactly as for a connection that logged in as it. (One thing this harness cannot
try is `SET ROLE` to the owner role: PostgreSQL checks that against the *session* user, here
the superuser; the last test therefore also logs in as a plain LOGIN role over its own
connection, which needs the local pg_hba to let that role in, as CI's trust rule does.)
"""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.chain import verify_and_record, verify_chain
from audit.dbsecurity import MIN_RETENTION_DAYS, OWNER_ROLE, WRITER_ROLE, problems_for_role
from audit.models import AuditChainHead, AuditEvent, AuditPruneRecord, ChainCheckpoint
from audit.retention import audit_prune
from orgs.models import Organization
from orgs.services import org_update
from tests.audit.helpers import days_ago, make_event

pytestmark = pytest.mark.postgres

APP_ROLE = "signalsmith_app_test"


def become_app_role():
    """Create (in this transaction) a role like the application's and switch to it."""
    with connection.cursor() as cur:
        cur.execute(
            f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        cur.execute(f"GRANT {WRITER_ROLE} TO {APP_ROLE}")
        # Production's app role owns (or may change) every other table.
        cur.execute(
            f"""
            DO $$
            DECLARE t text;
            BEGIN
                FOR t IN SELECT tablename FROM pg_tables
                         WHERE schemaname = current_schema() AND tableowner <> '{OWNER_ROLE}'
                LOOP
                    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO {APP_ROLE}', t);
                END LOOP;
            END $$
            """
        )
        assert problems_for_role(cur, APP_ROLE) == []
        cur.execute(f"SET LOCAL ROLE {APP_ROLE}")
        cur.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (APP_ROLE, False)


@pytest.fixture
def as_app(org_setup):
    org = org_setup.org
    for i in range(3):
        org_update(actor=org_setup.owner, org=org, name=f"Acme {i}")
    verify_and_record(org.pk)  # a signed checkpoint at the head
    become_app_role()
    return org_setup


def _refused(sql, params=(), *, before=()):
    """Run `sql` (after the statements in `before`) in a savepoint; it must fail."""
    with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cur:
        for stmt in before:
            cur.execute(stmt)
        cur.execute(sql, params)
    return exc.value


def _chain_state(chain_key):
    head = AuditChainHead.objects.get(chain_key=chain_key)
    events = list(
        AuditEvent.objects.filter(chain_key=chain_key).order_by("seq").values_list("seq", "hash")
    )
    return (head.last_seq, head.last_hash), events


def _checkpoints(chain_key):
    return list(ChainCheckpoint.objects.filter(chain_key=chain_key).values_list("seq", "mac"))


ATTACKS = {
    "update an event": ("UPDATE audit_auditevent SET details = '{}' WHERE chain_key = %s", ()),
    "delete the newest events": (
        "DELETE FROM audit_auditevent WHERE chain_key = %s AND seq > 2",
        (),
    ),
    "truncate": ("TRUNCATE audit_auditevent", ()),
    "set audit.allow_prune, then delete": (
        "DELETE FROM audit_auditevent WHERE chain_key = %s",
        ("SET LOCAL audit.allow_prune = 'on'",),
    ),
    "disable the append-only trigger": (
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
        (),
    ),
    "disable every trigger": ("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL", ()),
    "drop the trigger": ("DROP TRIGGER audit_event_append_only ON audit_auditevent", ()),
    "replace the trigger function": (
        "CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $f$ BEGIN RETURN OLD; END $f$",
        (),
    ),
    "make the prune function run as the caller": (
        "ALTER FUNCTION audit_prune_chain(bigint, timestamptz, bigint, text) SECURITY INVOKER",
        (),
    ),
    "switch triggers off for the session": ("SET LOCAL session_replication_role = replica", ()),
    "grant itself the owner role": (f"GRANT {OWNER_ROLE} TO {APP_ROLE}", ()),
    "take the table": (f"ALTER TABLE audit_auditevent OWNER TO {APP_ROLE}", ()),
    "rewind the chain head": (
        "UPDATE audit_auditchainhead SET last_seq = last_seq - 2, last_hash = '' "
        "WHERE chain_key = %s",
        (),
    ),
    "delete the chain head": ("DELETE FROM audit_auditchainhead WHERE chain_key = %s", ()),
    "plant a chain head": (
        "INSERT INTO audit_auditchainhead (chain_key, last_seq, last_hash) "
        "VALUES (%s + 1000000, 5, 'x')",
        (),
    ),
    "forge a prune record": (
        "INSERT INTO audit_auditprunerecord (chain_key, cutoff, first_seq, last_seq, last_hash, "
        "count, pruned_at, pruned_by) VALUES (%s, now(), 1, 2, '', 2, now(), 'x')",
        (),
    ),
    "move a checkpoint back": (
        "UPDATE audit_chaincheckpoint SET seq = seq - 1 WHERE chain_key = %s",
        (),
    ),
    "delete the checkpoints": ("DELETE FROM audit_chaincheckpoint WHERE chain_key = %s", ()),
    "prune everything, now": (
        "SELECT audit_prune_chain(%s, now(), h.last_seq, h.last_hash) "
        "FROM audit_auditchainhead h WHERE h.chain_key = %s",
        (),
    ),
    "prune recent events with an old cutoff": (
        "SELECT audit_prune_chain(%s, now() - interval '400 days', h.last_seq, h.last_hash) "
        "FROM audit_auditchainhead h WHERE h.chain_key = %s",
        (),
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_the_app_role_cannot_alter_the_audit_log(as_app, attack):
    chain_key = as_app.org.pk
    sql, before = ATTACKS[attack]
    state = _chain_state(chain_key), _checkpoints(chain_key)
    assert state[1], "the fixture signed a checkpoint"
    error = _refused(sql, [chain_key] * sql.count("%s"), before=before)
    # insufficient_privilege: permission denied, must be owner, or the prune function's refusal
    assert error.__cause__.sqlstate == "42501", error
    with connection.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == APP_ROLE
    assert (_chain_state(chain_key), _checkpoints(chain_key)) == state
    assert verify_chain(chain_key).ok


def test_the_prune_function_refuses_a_cutoff_inside_the_minimum(as_app):
    message = _refused(
        "SELECT audit_prune_chain(%s, now() - interval '400 days', h.last_seq, h.last_hash) "
        "FROM audit_auditchainhead h WHERE h.chain_key = %s",
        [as_app.org.pk, as_app.org.pk],
    )
    assert "are not all older than" in str(message)
    message = _refused("SELECT audit_prune_chain(%s, now(), 1, '')", [as_app.org.pk])
    assert f"keeps at least {MIN_RETENTION_DAYS} days" in str(message)


def test_an_event_that_does_not_extend_the_chain_is_refused(as_app):
    """Appending is the app's right, forking or skipping ahead is not."""
    org = as_app.org
    (seq, head_hash), _ = _chain_state(org.pk)
    columns = (
        "public_id, occurred_at, organization_id, workspace_label, actor_type, actor_label, "
        "action, target_type, target_id, target_label, details, chain_key, seq, prev_hash, hash"
    )
    insert = (
        f"INSERT INTO audit_auditevent ({columns}) VALUES "
        "('evt_forged', now(), %s, '', 'system', 'S', 'org.updated', '', '', '', '{}', %s, %s, %s, 'x')"
    )
    assert "does not link" in str(_refused(insert, [org.pk, org.pk, seq + 1, "forged"]))
    assert "must continue the chain" in str(_refused(insert, [org.pk, org.pk, seq + 5, head_hash]))
    # A repeated seq: no UNIQUE index can say so on the partitioned table; the trigger does.
    assert "must continue the chain" in str(_refused(insert, [org.pk, org.pk, seq, head_hash]))


def test_the_app_role_still_records_through_the_services(as_app, settings):
    settings.AUDIT_CHECKPOINT_EVERY = 1  # and signs checkpoints: it may INSERT them
    org = as_app.org
    (seq, _), events = _chain_state(org.pk)
    org_update(actor=as_app.owner, org=org, name="Acme as the app role")
    (new_seq, new_hash), new_events = _chain_state(org.pk)
    assert new_seq == seq + 1 and new_events[-1] == (new_seq, new_hash)
    assert new_events[:-1] == events
    assert ChainCheckpoint.objects.filter(chain_key=org.pk, seq=new_seq).exists()
    verify_and_record(org.pk)  # the hourly task's work, as the app role
    # A chain's first event creates its head through the same function.
    fresh = Organization.objects.create(name="Fresh", slug="fresh-co")
    make_event(fresh)
    assert AuditChainHead.objects.get(chain_key=fresh.pk).last_seq == 1
    assert verify_chain(org.pk).ok and verify_chain(fresh.pk).ok


def test_the_app_role_streams_events_outbox_and_checkpoint_with_the_event(as_app, settings):
    """Audit streaming's outbox is an ordinary application table, written by record()'s own
    INSERT statement next to the event (the checkpoint follows in its transaction); replay
    locks the chain through audit_chain_lock(), which the writer role may execute."""
    from audit.models import StreamDelivery
    from audit.streaming import stream_destination_add, stream_replay

    settings.AUDIT_CHECKPOINT_EVERY = 1
    org = as_app.org
    destination, _ = stream_destination_add(
        actor=as_app.owner, org=org, name="SIEM", url="https://siem.example.com/"
    )
    org_update(actor=as_app.owner, org=org, name="Acme streamed")
    event = AuditEvent.objects.get(
        chain_key=org.pk, action="org.updated", details__after__name="Acme streamed"
    )
    assert StreamDelivery.objects.filter(destination=destination, event_id=event.pk).exists()
    assert ChainCheckpoint.objects.filter(chain_key=org.pk, seq=event.seq).exists()
    assert (
        stream_replay(
            actor=as_app.owner, org=org, destination_id=destination.public_id, since=days_ago(1)
        )
        == AuditEvent.objects.filter(chain_key=org.pk, seq__lt=event.seq + 1).count()
    )
    assert verify_chain(org.pk).ok


def test_the_app_role_prunes_only_through_the_function_and_archives_first(
    org_setup, tmp_path, django_capture_on_commit_callbacks
):
    org = Organization.objects.create(name="Old Co", slug="old-co")
    for i in range(6):
        make_event(org, at=days_ago(100 - i))
    make_event(org)
    become_app_role()
    with django_capture_on_commit_callbacks(execute=True):
        pruned = audit_prune(chain_key=org.pk, before=days_ago(90), archive_dir=tmp_path)
    assert pruned.details["count"] == 6
    archive = tmp_path / pruned.details["archive"]
    assert len(archive.read_text().splitlines()) == 6
    (row,) = AuditPruneRecord.objects.filter(chain_key=org.pk)
    assert (row.first_seq, row.last_seq, row.count, row.pruned_by) == (1, 6, 6, "postgres")
    assert verify_chain(org.pk).ok
    # The function names the archived events by the last one's hash: a caller that did not
    # read (and so could not archive) them cannot prune.
    make_event(org, at=days_ago(95))
    message = _refused(
        "SELECT audit_prune_chain(%s, now() - interval '40 days', 8, 'not-the-hash')", [org.pk]
    )
    assert "is not the one archived" in str(message)


def test_setting_audit_allow_prune_no_longer_unlocks_anything_even_for_a_superuser(org_setup):
    """The old switch is gone: the trigger lets only the table's owner delete."""
    event = AuditEvent.objects.filter(chain_key=org_setup.org.pk).first()
    message = _refused(
        "DELETE FROM audit_auditevent WHERE id = %s",
        [event.pk],
        before=("SET LOCAL audit.allow_prune = 'on'",),
    )
    assert "append-only (DELETE refused)" in str(message)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_lockdown_problems_name_what_would_let_a_role_alter_the_log(db):
    with connection.cursor() as cur:
        cur.execute("SELECT current_user")
        superuser = cur.fetchone()[0]
        problems = problems_for_role(cur, superuser)
    assert f"{superuser} is a superuser" in problems
    assert f"{superuser} has DELETE on audit_auditevent" in problems


def test_audit_db_check_passes_for_the_app_role_and_names_a_superuser(db, capsys):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="is a superuser"):
        call_command("audit_db_check")
    become_app_role()
    call_command("audit_db_check")
    assert f"Role {APP_ROLE} cannot alter the audit log" in capsys.readouterr().out


def test_a_real_login_as_a_non_superuser_role_is_refused_too(db):
    """The same attacks over a connection that logs in as a plain role (session user = that
    role, so SET ROLE is checked against it too). The role is created and dropped here."""
    import os

    import psycopg

    role = f"signalsmith_login_test_{os.getpid()}"
    params = {**connection.get_connection_params(), "autocommit": True}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            admin.execute(f"GRANT {WRITER_ROLE} TO {role}")
            with psycopg.connect(**{**params, "user": role}) as app:
                assert app.execute("SELECT session_user").fetchone()[0] == role
                for sql in (
                    f"SET ROLE {OWNER_ROLE}",
                    "SET session_replication_role = replica",
                    "TRUNCATE audit_auditevent",
                    "DELETE FROM audit_auditevent",
                    "UPDATE audit_auditevent SET action = 'x'",
                    "UPDATE audit_auditchainhead SET last_seq = 0, last_hash = ''",
                    "DELETE FROM audit_chaincheckpoint",
                    "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
                    f"GRANT {OWNER_ROLE} TO {role}",
                ):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        app.execute(sql)
                # What it is for still works: reading the log.
                app.execute("SELECT count(*) FROM audit_auditevent").fetchone()
        finally:
            admin.execute(f"DROP ROLE {role}")
