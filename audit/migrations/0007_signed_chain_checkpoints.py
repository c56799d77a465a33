"""Signed chain checkpoints, kept outside the events table (audit/chain.py)."""

from django.db import migrations, models


def forwards(apps, schema_editor):
    """Hand the new table to the audit owner role too (the app role may only INSERT)."""
    from audit.dbsecurity import lock_down

    lock_down(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0006_database_enforced_append_only'),
    ]

    operations = [
        migrations.CreateModel(
            name='ChainCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('chain_key', models.BigIntegerField()),
                ('seq', models.BigIntegerField()),
                ('head_hash', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField()),
                ('mac', models.CharField(max_length=64)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('chain_key', 'seq'), name='audit_checkpoint_seq_unique')],
            },
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
