"""Partition the audit events by month (PostgreSQL declarative partitioning, RANGE on
occurred_at), and serve the admin's substring search with pg_trgm indexes.

On PostgreSQL the existing table is renamed, a partitioned table of the same columns takes
its name (primary key (id, occurred_at): a partitioned table's unique indexes must include
the partition key), with a DEFAULT partition and one partition per month from the oldest
event to two months ahead; the rows are copied with triggers off (they already form valid
chains, and the chain heads already point at their ends), the indexes are recreated on the
parent (so every partition, present or future, gets them), and the old table is dropped.
lock_down() then hands the parent and every partition to the audit owner role and puts the
append-only and chain triggers on the parent (PostgreSQL clones them onto each partition).
Works on an empty database and on a populated one. Nothing to do on SQLite. Irreversible.
"""

import config.ids
from django.conf import settings
from django.db import migrations, models

OLD = "audit_auditevent_unpartitioned"

# Substring search in the admin (`icontains` is UPPER(col) LIKE UPPER('%term%')) and the
# `=` lookups (iexact: UPPER(col) = UPPER(term)) use these; gin_trgm_ops serves both.
TRIGRAM_INDEXES = {
    "audit_auditevent": ["actor_label", "target_label", "target_id", "public_id", "action"],
    "members_user": ["email", "full_name", "public_id"],
    "members_orgmembership": ["public_id"],
    "orgs_organization": ["name"],
    "workspaces_workspace": ["name", "public_id"],
}
# (The other apps' tables are indexed here rather than in their own migrations so that one
# migration owns the extension and every trigram index; the admin searches that use them are
# config/admin.py's IndexedSearchMixin and the audit admin.)


def trigram_index_sql(table: str, column: str) -> str:
    return (
        f'CREATE INDEX IF NOT EXISTS "{table}_{column}_trgm" ON "{table}" '
        f'USING gin (UPPER("{column}"::text) gin_trgm_ops)'
    )


def partition_events(apps, schema_editor):
    from audit.dbsecurity import DEFAULT_PARTITION, EVENTS_TABLE, lock_down

    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [EVENTS_TABLE])
        if cur.fetchone()[0] == "p":
            return  # partitioned already
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = %s AND indexname <> %s",
            [EVENTS_TABLE, f"{EVENTS_TABLE}_pkey"],
        )
        # The definitions name the table as audit_auditevent: re-run as is on the new parent.
        indexes = cur.fetchall()
        assert not any("UNIQUE" in d for _, d in indexes), indexes
        cur.execute(f"ALTER TABLE {EVENTS_TABLE} RENAME TO {OLD}")
        cur.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {EVENTS_TABLE}_pkey TO {OLD}_pkey")
        for name, _definition in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute(f"DROP TRIGGER IF EXISTS audit_event_append_only ON {OLD}")
        cur.execute(f"DROP TRIGGER IF EXISTS audit_event_advance_head ON {OLD}")
        cur.execute(
            f"CREATE TABLE {EVENTS_TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY "
            "INCLUDING STORAGE) PARTITION BY RANGE (occurred_at)"
        )
        cur.execute(
            f"ALTER TABLE {EVENTS_TABLE} ADD CONSTRAINT {EVENTS_TABLE}_pkey "
            "PRIMARY KEY (id, occurred_at)"
        )
        cur.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {EVENTS_TABLE} DEFAULT")
        # Functions, triggers, owner role (parent and default partition), grants.
        lock_down(schema_editor)
        cur.execute(
            f"SELECT audit_ensure_partitions(coalesce(min(occurred_at), now()), "
            f"now() + interval '2 months') FROM {OLD}"
        )
        # The rows already form valid chains whose heads point at their ends: copy them with
        # the triggers off (this session is the superuser that runs the migrations).
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(f"INSERT INTO {EVENTS_TABLE} SELECT * FROM {OLD}")
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
        for _name, definition in indexes:
            cur.execute(definition)
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{EVENTS_TABLE}', 'id'), "
            f"coalesce((SELECT max(id) FROM {EVENTS_TABLE}), 0) + 1, false)"
        )
        cur.execute(f"DROP TABLE {OLD}")
        cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [EVENTS_TABLE])
        sequence = cur.fetchone()[0]
        if sequence.split(".")[-1].strip('"') != f"{EVENTS_TABLE}_id_seq":
            cur.execute(f"ALTER SEQUENCE {sequence} RENAME TO {EVENTS_TABLE}_id_seq")
        lock_down(schema_editor)  # every monthly partition too
        cur.execute(f"ANALYZE {EVENTS_TABLE}")


def trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, columns in TRIGRAM_INDEXES.items():
            for column in columns:
                cur.execute(trigram_index_sql(table, column))


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0009_audit_streaming_outbox'),
        ('members', '0006_org_membership_suspension'),
        ('orgs', '0004_sso_domains_saml_and_required_sso'),
        ('workspaces', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='auditevent',
            name='audit_chain_seq_unique',
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='public_id',
            field=config.ids.PublicIdField(blank=True, db_index=True, editable=False, max_length=32, prefix='evt', unique=False),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['chain_key', 'seq'], name='audit_chain_seq'),
        ),
        migrations.RunPython(partition_events, elidable=False),
        migrations.RunPython(trigram_indexes, elidable=False),
    ]
