"""The database, not a setting the application can flip, enforces the append-only log.

Replaces 0004's trigger (which let any session `SET LOCAL audit.allow_prune = 'on'`): the
audit tables now belong to a NOLOGIN owner role, the application's role may only SELECT and
INSERT, the chain head moves only through an insert trigger, and pruning goes through the
SECURITY DEFINER function audit_prune_chain(). See audit/dbsecurity.py. Needs a superuser on
PostgreSQL; nothing to do on SQLite.
"""

from django.db import migrations, models


def forwards(apps, schema_editor):
    from audit.dbsecurity import lock_down

    lock_down(schema_editor)


OLD_GUARD = """
DROP TRIGGER IF EXISTS audit_event_advance_head ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_advance_head();
DROP FUNCTION IF EXISTS audit_chain_lock(bigint);
DROP FUNCTION IF EXISTS audit_prune_chain(bigint, timestamptz, bigint, text);
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('audit.allow_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def backwards(apps, schema_editor):
    """Back to 0004's trigger (the tables stay with the owner role; a superuser migrates)."""
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(OLD_GUARD)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0005_action_pattern_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditPruneRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('chain_key', models.BigIntegerField()),
                ('cutoff', models.DateTimeField()),
                ('first_seq', models.BigIntegerField()),
                ('last_seq', models.BigIntegerField()),
                ('last_hash', models.CharField(max_length=64)),
                ('count', models.BigIntegerField()),
                ('pruned_at', models.DateTimeField()),
                ('pruned_by', models.CharField(max_length=63)),
            ],
            options={
                'indexes': [models.Index(fields=['chain_key', 'last_seq'], name='audit_prune_chain_seq')],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
