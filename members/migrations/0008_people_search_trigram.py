"""Trigram indexes for searching people by part of their name or address (PostgreSQL only).

The directory's search and the support admin's people and membership searches filter with
`icontains`, which PostgreSQL runs as `upper(col::text) LIKE upper('%…%')`: these GIN indexes
on the same expressions answer that without reading every person (100k at `bench --scale xl`).
`pg_trgm` ships with PostgreSQL (contrib); creating it needs the owner's or a superuser's rights.
"""

from django.db import migrations

INDEXES = {
    "user_email_trgm": "upper((email)::text)",
    "user_full_name_trgm": "upper((full_name)::text)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON members_user USING gin ({expression} gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("members", "0007_directory_sort_columns")]

    operations = [migrations.RunPython(create, drop)]
