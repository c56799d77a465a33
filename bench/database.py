"""The bench database: `<dev database>_bench` on the same server, never the dev or test one."""

from __future__ import annotations

import psycopg
from django.core.management import call_command
from django.db import connections
from psycopg import sql


class BenchRefused(Exception):
    pass


def bench_name(base_name: str) -> str:
    return f"{base_name}_bench"[:63]


def _admin_conn(settings_dict) -> psycopg.Connection:
    return psycopg.connect(
        dbname="postgres",
        host=settings_dict.get("HOST") or None,
        port=settings_dict.get("PORT") or None,
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        autocommit=True,
    )


def require_postgres() -> dict:
    settings_dict = connections["default"].settings_dict
    if connections["default"].vendor != "postgresql":
        raise BenchRefused(
            "bench needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/dbname "
            "(it creates and uses <dbname>_bench on that server; SQLite is not supported)."
        )
    return settings_dict


def database_url(settings_dict, name: str) -> str:
    """A DATABASE_URL for another process (worker, gunicorn) pointing at `name`."""
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{name}"


def existing_scale(settings_dict, name: str) -> str | None:
    """The scale a kept bench database was generated at (stored as the database comment)."""
    with _admin_conn(settings_dict) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
    if not row or not row[0] or not row[0].startswith("bench scale="):
        return None
    return row[0].split("=", 1)[1]


def recreate(settings_dict, name: str) -> None:
    with _admin_conn(settings_dict) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def mark_generated(settings_dict, name: str, scale: str) -> None:
    with _admin_conn(settings_dict) as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(f"bench scale={scale}")
            )
        )


def drop(settings_dict, name: str) -> None:
    connections.close_all()
    with _admin_conn(settings_dict) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def switch_to(name: str) -> None:
    """Point this process's default connection at the bench database."""
    connections["default"].close()
    connections.databases["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


def migrate() -> None:
    call_command("migrate", verbosity=0, interactive=False)
