"""What PostgreSQL itself enforces about the audit log, whatever the application asks.

Two database roles, both NOLOGIN (nobody can connect as them):

- `signalsmith_audit_owner` owns the audit tables (events, chain heads, prune records,
  chain checkpoints) and the functions below. Only the owner may delete events, and the owner only
  ever acts through `audit_prune_chain()`, a SECURITY DEFINER function.
- `signalsmith_audit_writer` is what the application's own role is given (membership): SELECT
  and INSERT on the events and chain checkpoints, SELECT on heads and prune records, EXECUTE on
  `audit_chain_lock()` and `audit_prune_chain()`. No UPDATE, DELETE, TRUNCATE or TRIGGER on
  any of them, and not the owner, so no ALTER TABLE … DISABLE TRIGGER or CREATE OR REPLACE of
  the trigger functions either.

The chain head moves only through the AFTER INSERT trigger on the events table, which checks
that the new events extend the chain (next seq, prev_hash = the head's hash) and runs as the
owner. `audit_chain_lock()` locks a head (creating it for a chain's first event) and returns
the next seq and the previous hash; record() calls it inside its one INSERT statement.

The events table is partitioned by month on occurred_at (a DEFAULT partition catches a month
nobody created). Every partition belongs to the owner role and grants nothing to anyone; the
append-only trigger is defined on the parent, so PostgreSQL puts it on every partition,
including those `audit_ensure_partitions()` creates later (as the owner: SECURITY DEFINER).
`audit_drop_partition()` is retention by whole months (audit/retention.py).

`audit_prune_chain()` deletes a prefix of one chain, only events older than the cutoff, never
a cutoff younger than MIN_RETENTION_DAYS, only if the caller names the last event's hash (it
read what it archived), and writes an AuditPruneRecord row in the same transaction.

`lock_down()` needs a PostgreSQL superuser (it creates roles and hands tables over): the
migrations run it, so run `manage.py migrate` as a superuser (or the DBA's role). The
application's runtime role must be NOSUPERUSER, NOCREATEROLE, not a member of the owner role
(`problems_for_role()` checks this), and a member of the writer role: setting
AUDIT_DB_APP_ROLE makes the migration grant it, or run `GRANT signalsmith_audit_writer TO <role>`.
"""

from __future__ import annotations

from django.conf import settings

OWNER_ROLE = "signalsmith_audit_owner"
WRITER_ROLE = "signalsmith_audit_writer"
MIN_RETENTION_DAYS = 30

# Tables handed to the owner role, with what the writer role may do on each.
LOCKED_TABLES = {
    "audit_auditevent": "SELECT, INSERT",
    "audit_auditchainhead": "SELECT",
    "audit_auditprunerecord": "SELECT",
    "audit_chaincheckpoint": "SELECT, INSERT",
}
# Functions: (signature, the writer may EXECUTE it).
FUNCTIONS = {
    "audit_event_append_only()": False,
    "audit_event_advance_head()": False,
    "audit_chain_lock(bigint)": True,
    "audit_prune_chain(bigint, timestamp with time zone, bigint, text)": True,
    "audit_ensure_partitions(timestamp with time zone, timestamp with time zone)": True,
    "audit_drop_partition(text, timestamp with time zone, bigint[], bigint[], text[], bigint[])": (
        True
    ),
    "audit_stream_targets(bigint)": True,
}
# The events table is partitioned by month on occurred_at (PostgreSQL only): one partition per
# calendar month (UTC) named audit_auditevent_pYYYY_MM, and a DEFAULT partition that catches
# an event for a month nobody created yet. Every partition belongs to the owner role too, and
# the writer role has no privilege on any of them: it reaches the rows only through the parent.
EVENTS_TABLE = "audit_auditevent"
DEFAULT_PARTITION = "audit_auditevent_default"
PARTITION_PREFIX = "audit_auditevent_p"
# audit_ensure_partitions() creates at most this many months in one call (a guard against a
# caller asking for thousands of tables).
MAX_PARTITIONS_PER_CALL = 240


class LockdownNeedsSuperuser(RuntimeError):
    pass


ROLES_SQL = f"""
DO $$
BEGIN
    BEGIN
        CREATE ROLE {OWNER_ROLE} NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE {WRITER_ROLE} NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END $$;
ALTER ROLE {OWNER_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE {WRITER_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
"""


def functions_sql(schema: str) -> str:
    path = f"SET search_path = pg_catalog, {schema}, pg_temp"
    return f"""
-- UPDATE is never allowed; DELETE only by the table's owner, i.e. inside audit_prune_chain().
-- No setting a session can change turns this off (the old audit.allow_prune is gone).
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql {path} AS $fn$
BEGIN
    IF TG_OP = 'DELETE' AND current_user =
            (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$fn$;

-- The head moves only here: the inserted events must extend the chain, in seq order,
-- each linking to the previous hash. One run per INSERT/COPY statement. The head is moved by
-- one conditional UPDATE (which also takes its row lock); no SELECT … FOR UPDATE, which inside
-- savepoints would pile up multixacts on a row this transaction already updated.
CREATE OR REPLACE FUNCTION audit_event_advance_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {path} AS $fn$
DECLARE
    r record;
BEGIN
    -- Seqs distinct and contiguous (no UNIQUE index can say so on the partitioned table), and
    -- each event linking to the one before it: a window over the batch in seq order (a
    -- self-join of the transition table, which has no index, could go quadratic on a COPY).
    FOR r IN SELECT a.chain_key, min(a.seq) AS lo, max(a.seq) AS hi, count(*) AS n,
                    count(DISTINCT a.seq) AS d
             FROM new_events a GROUP BY a.chain_key LOOP
        IF r.hi - r.lo + 1 <> r.n OR r.d <> r.n OR EXISTS (
            SELECT 1 FROM (
                SELECT x.seq, x.prev_hash, lag(x.hash) OVER (ORDER BY x.seq) AS previous
                FROM new_events x WHERE x.chain_key = r.chain_key
            ) w
            WHERE w.seq > r.lo AND w.prev_hash IS DISTINCT FROM w.previous
        ) THEN
            RAISE EXCEPTION 'audit chain %: an event does not link to the previous hash',
                r.chain_key USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        INSERT INTO audit_auditchainhead (chain_key, last_seq, last_hash)
            SELECT r.chain_key, 0, '' WHERE r.lo = 1
            ON CONFLICT (chain_key) DO NOTHING;
        UPDATE audit_auditchainhead h
            SET last_seq = r.hi,
                last_hash = (SELECT hash FROM new_events
                             WHERE chain_key = r.chain_key AND seq = r.hi)
            WHERE h.chain_key = r.chain_key AND h.last_seq = r.lo - 1
              AND h.last_hash = (SELECT prev_hash FROM new_events
                                 WHERE chain_key = r.chain_key AND seq = r.lo);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit chain %: events must continue the chain at its head '
                '(got seq % to %, or an event that does not link to the previous hash)',
                r.chain_key, r.lo, r.hi USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END;
$fn$;

-- Lock a chain's head for an append (creating it on the chain's first event); returns the
-- seq and prev_hash the next event must carry. The lock is a no-op UPDATE, as above.
CREATE OR REPLACE FUNCTION audit_chain_lock(p_chain_key bigint,
                                            OUT next_seq bigint, OUT prev_hash text)
LANGUAGE plpgsql SECURITY DEFINER {path} AS $fn$
BEGIN
    UPDATE audit_auditchainhead SET last_seq = last_seq WHERE chain_key = p_chain_key
        RETURNING last_seq + 1, last_hash INTO next_seq, prev_hash;
    IF NOT FOUND THEN
        INSERT INTO audit_auditchainhead (chain_key, last_seq, last_hash)
            VALUES (p_chain_key, 0, '') ON CONFLICT (chain_key) DO NOTHING;
        UPDATE audit_auditchainhead SET last_seq = last_seq WHERE chain_key = p_chain_key
            RETURNING last_seq + 1, last_hash INTO next_seq, prev_hash;
    END IF;
END;
$fn$;

-- Retention: delete the prefix of one chain up to p_last_seq, whose hash the caller names
-- (it archived those events). Every deleted event is older than the cutoff, and the cutoff
-- is at least {MIN_RETENTION_DAYS} days ago. Records what it deleted. (The checkpoints table
-- comes with migration 0007; PL/pgSQL resolves it when the function runs.)
CREATE OR REPLACE FUNCTION audit_prune_chain(p_chain_key bigint, p_cutoff timestamptz,
                                             p_last_seq bigint, p_last_hash text,
                                             OUT pruned bigint, OUT first_seq bigint)
LANGUAGE plpgsql SECURITY DEFINER {path} AS $fn$
DECLARE
    v_hash text;
BEGIN
    IF p_cutoff IS NULL OR p_cutoff > now() - interval '{MIN_RETENTION_DAYS} days' THEN
        RAISE EXCEPTION 'audit pruning keeps at least {MIN_RETENTION_DAYS} days (cutoff %)',
            p_cutoff USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE audit_auditchainhead SET last_seq = last_seq WHERE chain_key = p_chain_key;
    SELECT hash INTO v_hash FROM audit_auditevent
        WHERE chain_key = p_chain_key AND seq = p_last_seq;
    IF v_hash IS DISTINCT FROM p_last_hash THEN
        RAISE EXCEPTION 'audit chain %: event % is not the one archived', p_chain_key, p_last_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_auditevent WHERE chain_key = p_chain_key
               AND seq <= p_last_seq AND occurred_at >= p_cutoff) THEN
        RAISE EXCEPTION 'audit chain %: events up to seq % are not all older than %',
            p_chain_key, p_last_seq, p_cutoff USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT min(seq) INTO first_seq FROM audit_auditevent WHERE chain_key = p_chain_key;
    DELETE FROM audit_auditevent WHERE chain_key = p_chain_key AND seq <= p_last_seq;
    GET DIAGNOSTICS pruned = ROW_COUNT;
    -- Checkpoints inside the pruned prefix have nothing left to vouch for (the archive and
    -- this record keep the last hash); dropping them keeps that table bounded too.
    DELETE FROM audit_chaincheckpoint WHERE chain_key = p_chain_key AND seq <= p_last_seq;
    INSERT INTO audit_auditprunerecord
        (chain_key, cutoff, first_seq, last_seq, last_hash, count, pruned_at, pruned_by)
        VALUES (p_chain_key, p_cutoff, first_seq, p_last_seq, p_last_hash, pruned, now(),
                session_user);
END;
$fn$;

-- Monthly partitions (UTC calendar months) covering p_from..p_to, created ahead by the daily
-- beat task (audit.tasks.ensure_audit_partitions) and by the migration. A month whose events
-- already fell into the DEFAULT partition gets them moved into its new table before it is
-- attached. Runs as the owner role, so every partition belongs to it; the advisory lock
-- serialises two callers.
CREATE OR REPLACE FUNCTION audit_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER {path} AS $fn$
DECLARE
    v_month timestamptz := date_trunc('month', p_from, 'UTC');
    v_next timestamptz;
    v_name text;
    v_created integer := 0;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_to < p_from THEN
        RETURN 0;
    END IF;
    IF p_to > p_from + interval '{MAX_PARTITIONS_PER_CALL} months' THEN
        RAISE EXCEPTION 'audit partitions: at most {MAX_PARTITIONS_PER_CALL} months at a time'
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('audit_ensure_partitions'));
    WHILE v_month <= p_to LOOP
        v_next := ((v_month AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        v_name := '{PARTITION_PREFIX}' || to_char(v_month AT TIME ZONE 'UTC', 'YYYY_MM');
        IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
                       WHERE i.inhparent = '{EVENTS_TABLE}'::regclass AND c.relname = v_name) THEN
            IF EXISTS (SELECT 1 FROM {DEFAULT_PARTITION}
                       WHERE occurred_at >= v_month AND occurred_at < v_next) THEN
                EXECUTE format('CREATE TABLE {schema}.%I (LIKE {EVENTS_TABLE} INCLUDING DEFAULTS)', v_name);
                EXECUTE format('INSERT INTO %I SELECT * FROM {DEFAULT_PARTITION} '
                               'WHERE occurred_at >= $1 AND occurred_at < $2', v_name)
                    USING v_month, v_next;
                DELETE FROM {DEFAULT_PARTITION} WHERE occurred_at >= v_month AND occurred_at < v_next;
                EXECUTE format('ALTER TABLE {EVENTS_TABLE} ATTACH PARTITION %I '
                               'FOR VALUES FROM (%L) TO (%L)', v_name, v_month, v_next);
            ELSE
                EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {EVENTS_TABLE} '
                               'FOR VALUES FROM (%L) TO (%L)', v_name, v_month, v_next);
            END IF;
            v_created := v_created + 1;
        END IF;
        v_month := v_next;
    END LOOP;
    RETURN v_created;
END;
$fn$;

-- Retention by partition: drop one whole month whose every event is older than the cutoff
-- (itself at least {MIN_RETENTION_DAYS} days ago). The caller names, for every chain with
-- events in it, the last seq, its hash and the count it archived; those events must be a
-- prefix of the chain (nothing up to that seq lives in another partition). Records each
-- chain's pruned range, drops the checkpoints inside it, then drops the table. The events
-- table is locked first, before anything else: appenders hold it while they wait for a head.
CREATE OR REPLACE FUNCTION audit_drop_partition(p_partition text, p_cutoff timestamptz,
                                                p_chain_keys bigint[], p_last_seqs bigint[],
                                                p_last_hashes text[], p_counts bigint[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER {path} AS $fn$
DECLARE
    v_oid oid;
    v_bound text;
    v_upper timestamptz;
    r record;
    i integer;
    v_hash text;
    v_total bigint := 0;
    v_chains integer := 0;
BEGIN
    IF p_cutoff IS NULL OR p_cutoff > now() - interval '{MIN_RETENTION_DAYS} days' THEN
        RAISE EXCEPTION 'audit pruning keeps at least {MIN_RETENTION_DAYS} days (cutoff %)',
            p_cutoff USING ERRCODE = 'insufficient_privilege';
    END IF;
    LOCK TABLE {EVENTS_TABLE} IN ACCESS EXCLUSIVE MODE;
    SELECT c.oid, pg_get_expr(c.relpartbound, c.oid) INTO v_oid, v_bound
        FROM pg_class c JOIN pg_inherits h ON h.inhrelid = c.oid
        WHERE h.inhparent = '{EVENTS_TABLE}'::regclass AND c.relname = p_partition;
    IF v_oid IS NULL OR v_bound = 'DEFAULT' THEN
        RAISE EXCEPTION 'audit partitions: % is not a monthly partition of the events',
            p_partition USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_upper := (regexp_match(v_bound, 'TO [(]''([^'']+)''[)]'))[1]::timestamptz;
    IF v_upper IS NULL OR v_upper > p_cutoff THEN
        RAISE EXCEPTION 'audit partitions: % holds events newer than the cutoff %',
            p_partition, p_cutoff USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR r IN EXECUTE format('SELECT chain_key, min(seq) AS lo, max(seq) AS hi, count(*) AS n '
                            'FROM %I GROUP BY chain_key ORDER BY chain_key', p_partition) LOOP
        i := array_position(p_chain_keys, r.chain_key);
        EXECUTE format('SELECT hash FROM %I WHERE chain_key = $1 AND seq = $2', p_partition)
            INTO v_hash USING r.chain_key, r.hi;
        IF i IS NULL OR p_last_seqs[i] IS DISTINCT FROM r.hi
                OR p_last_hashes[i] IS DISTINCT FROM v_hash OR p_counts[i] IS DISTINCT FROM r.n THEN
            RAISE EXCEPTION 'audit chain %: the events in % are not the ones archived',
                r.chain_key, p_partition USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF EXISTS (SELECT 1 FROM {EVENTS_TABLE} WHERE chain_key = r.chain_key
                   AND seq <= r.hi AND tableoid <> v_oid) THEN
            RAISE EXCEPTION 'audit chain %: events up to seq % are not all in % '
                '(not a prefix of the chain)', r.chain_key, r.hi, p_partition
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        DELETE FROM audit_chaincheckpoint WHERE chain_key = r.chain_key AND seq <= r.hi;
        INSERT INTO audit_auditprunerecord
            (chain_key, cutoff, first_seq, last_seq, last_hash, count, pruned_at, pruned_by)
            VALUES (r.chain_key, p_cutoff, r.lo, r.hi, v_hash, r.n, now(), session_user);
        v_total := v_total + r.n;
        v_chains := v_chains + 1;
    END LOOP;
    IF v_chains <> coalesce(array_length(p_chain_keys, 1), 0) THEN
        RAISE EXCEPTION 'audit partitions: chains were named that have no events in %',
            p_partition USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('DROP TABLE %I', p_partition);
    RETURN v_total;
END;
$fn$;

-- The streaming destinations of an org, read with a snapshot of their own: called by
-- record()'s statement after audit_chain_lock() returned, it sees every destination whose
-- creation an earlier holder of the lock committed (the statement's own snapshot, taken
-- before it waited for the lock, might not). Runs as the caller.
CREATE OR REPLACE FUNCTION audit_stream_targets(p_org bigint) RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE {path} AS $fn$
BEGIN
    RETURN QUERY SELECT d.id FROM audit_streamdestination d WHERE d.organization_id = p_org;
END;
$fn$;

DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
DROP TRIGGER IF EXISTS audit_event_advance_head ON audit_auditevent;
CREATE TRIGGER audit_event_advance_head
    AFTER INSERT ON audit_auditevent REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_advance_head();
"""


def grants_sql(schema: str, existing: set[str]) -> str:
    """Migrations call this as they go: tables not created yet are left for a later one."""
    locked = {t: p for t, p in LOCKED_TABLES.items() if t in existing}
    tables = ", ".join(f"'{t}'" for t in locked)
    parts = [
        f"""
DO $$
DECLARE
    t text;
    g record;
BEGIN
    -- The audit tables and every partition of the events table (they are tables of their own).
    FOR t IN SELECT unnest(ARRAY[{tables}]::text[])
             UNION ALL
             SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = to_regclass('{EVENTS_TABLE}') LOOP
        EXECUTE format('ALTER TABLE %I OWNER TO {OWNER_ROLE}', t);
        -- Whatever anyone was granted (default privileges, earlier grants): taken back.
        FOR g IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                 WHERE c.oid = t::regclass AND a.grantee <> c.relowner LOOP
            IF g.grantee = 0 THEN
                EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t);
            ELSE
                EXECUTE format('REVOKE ALL ON %I FROM %I', t, pg_get_userbyid(g.grantee));
            END IF;
        END LOOP;
        FOR g IN SELECT DISTINCT at.attname, a.grantee FROM pg_attribute at, aclexplode(at.attacl) a
                 WHERE at.attrelid = t::regclass AND at.attacl IS NOT NULL LOOP
            IF g.grantee = 0 THEN
                EXECUTE format('REVOKE ALL (%I) ON %I FROM PUBLIC', g.attname, t);
            ELSE
                EXECUTE format('REVOKE ALL (%I) ON %I FROM %I', g.attname, t,
                               pg_get_userbyid(g.grantee));
            END IF;
        END LOOP;
    END LOOP;
END $$;
GRANT USAGE ON SCHEMA {schema} TO {OWNER_ROLE}, {WRITER_ROLE};
-- audit_ensure_partitions() creates the monthly partitions as the owner role.
GRANT CREATE ON SCHEMA {schema} TO {OWNER_ROLE};
"""
    ]
    for table, privileges in locked.items():
        parts.append(f"GRANT {privileges} ON {table} TO {WRITER_ROLE};")
    for signature, writer_may in FUNCTIONS.items():
        parts.append(f"ALTER FUNCTION {signature} OWNER TO {OWNER_ROLE};")
        parts.append(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;")
        if writer_may:
            parts.append(f"GRANT EXECUTE ON FUNCTION {signature} TO {WRITER_ROLE};")
    app_role = getattr(settings, "AUDIT_DB_APP_ROLE", "")
    if app_role:
        parts.append(f'GRANT {WRITER_ROLE} TO "{app_role}";')
    return "\n".join(parts)


def lock_down(schema_editor) -> None:
    """Create the roles and functions, hand the audit tables to the owner role; idempotent."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        cur.execute("SELECT rolsuper, current_schema() FROM pg_roles WHERE rolname = current_user")
        superuser, schema = cur.fetchone()
        if not superuser:
            raise LockdownNeedsSuperuser(
                "The audit migrations hand the audit tables to a separate database role so that "
                "the application's own role cannot alter them; that needs a PostgreSQL superuser. "
                "Run `manage.py migrate` once with a superuser's DATABASE_URL (see audit/dbsecurity.py)."
            )
        schema = '"' + schema.replace('"', '""') + '"'
        # No params: the '%' in RAISE and format() are not placeholders.
        cur.execute(ROLES_SQL)
        cur.execute(functions_sql(schema))
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s)",
            [list(LOCKED_TABLES)],
        )
        cur.execute(grants_sql(schema, {row[0] for row in cur.fetchall()}))


def partitions(cursor) -> list[str]:
    """The events table's partitions (none on a database that is not partitioned)."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
        [EVENTS_TABLE],
    )
    return [row[0] for row in cursor.fetchall()]


def problems_for_role(cursor, role: str) -> list[str]:
    """Why `role` could still alter the audit log (empty: it cannot)."""
    cursor.execute(
        "SELECT rolsuper, rolcreaterole, pg_has_role(%s, %s, 'MEMBER') FROM pg_roles "
        "WHERE rolname = %s",
        [role, OWNER_ROLE, role],
    )
    row = cursor.fetchone()
    if row is None:
        return [f"no role {role!r}"]
    problems = []
    if row[0]:
        problems.append(f"{role} is a superuser")
    if row[1]:
        problems.append(f"{role} may create roles")
    if row[2]:
        problems.append(f"{role} is a member of {OWNER_ROLE}")
    for table in [*LOCKED_TABLES, *partitions(cursor)]:
        for privilege in ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER"):
            cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [role, table, privilege])
            if cursor.fetchone()[0]:
                problems.append(f"{role} has {privilege} on {table}")
    return problems
