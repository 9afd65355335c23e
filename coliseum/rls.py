"""Tenant isolation in the database (issue #8): row-level security on every table with a `tenant_id` column.

How it fits together
--------------------
- The application's queries run as the role `DATABASE_APP_ROLE` (default `coliseum_app`): NOLOGIN, owns
  nothing, has SELECT/INSERT/UPDATE/DELETE on the tables. The session authenticates with the DATABASE_URL
  credentials (the owner of the tables; a superuser in development and CI) and drops to that role as its first
  statement (`connection_created`), so RLS applies to it: PostgreSQL does not apply RLS to a table's owner
  (we do not FORCE it) nor to superusers, which is what lets migrations and partition DDL keep working in
  `owner_scope()`. In production DATABASE_URL may instead name a LOGIN role that is only a member of
  `coliseum_app`; then the commands that need the owner (migrate, partition upkeep, retention, flush) must run
  with a DATABASE_URL naming the owner (e.g. a separate release/cron environment): `owner_scope()` only
  resets the role to the session user, it cannot become someone the session is not.
- Every table with a `tenant_id` column (found in the catalog, so a table added later is covered by the next
  `migrate`), in schemas public and archive, partitions included, has the policy `tenant_isolation`: a row is
  visible and writable when its tenant_id is the session's `app.tenant_id`, or when `app.rls_bypass` is 'on'.
  The settings are read in scalar sub-SELECTs, which PostgreSQL evaluates once per query (InitPlans), not per
  row, and which keep index conditions on tenant_id usable.
- What a connection may see is decided in Python, per connection: `tenant_scope(tenant_id)`,
  `system_scope(reason)` (the one explicit bypass), `owner_scope()`, `request_scope()` (nothing: fail closed).
  The scope only records the wanted state; a guard installed on every connection (`execute_wrapper`) sends it
  before the next query when it differs from what the session has, in ONE statement (role, tenant, bypass via
  set_config). So entering and leaving scopes costs nothing by itself, a request costs at most one extra round
  trip, and none when the connection already acts for the same tenant (the hot ingest path of one tenant).
  A set_config made inside a transaction is undone by its rollback: the guard then forgets what it sent and
  sends it again before the next query.

Where scopes are entered (grep `system_scope(` / `system_task(` / `in_system(` for every bypass):
RlsMiddleware (every request starts with nothing; staff get system scope in /admin/), TenantApi (membership
resolution in system scope, then the member's tenant), OperatorApi (staff endpoints), the raw ingestion
handlers (key lookup, then the key's tenant), Celery tasks (`tenant_task` / `system_task`), Channels
consumers (`in_tenant`), manage.py (operator commands).

The `coliseum_tenant` table itself is not protected: it is the registry of tenants (name, slug, plan), read to
resolve a slug or a signed link before any tenant is known, and it holds no tenant's data.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from psycopg import pq, sql

logger = logging.getLogger(__name__)

POLICY = "tenant_isolation"
# Stored as the policy's comment: `migrate` re-creates only policies whose comment differs, so a table is not
# locked (ACCESS EXCLUSIVE, for the DROP/CREATE) on every deploy. Bump it when _policy_sql changes.
POLICY_VERSION = "coliseum tenant_isolation v1"
SCHEMAS = ("public", "archive")
ROLE_NONE = "none"  # `SET ROLE NONE`: back to the session user (the owner)

# role, tenant id ('' = none), bypass ('on' or '')
State = tuple[str, str, str]

# One round trip: the role and both settings. Session-level (is_local false): Django runs in autocommit, so a
# transaction-local value would be gone by the next query.
_APPLY_SQL = (
    "SELECT set_config('role', %s, false), set_config('app.tenant_id', %s, false), "
    "set_config('app.rls_bypass', %s, false)"
)
_SAVEPOINT_SQL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def app_role() -> str:
    return str(getattr(settings, "DATABASE_APP_ROLE", "coliseum_app"))


@dataclass(slots=True)
class _ConnectionState:
    desired: State
    applied: State | None = None  # what the session has, as far as we know (None: unknown)
    applied_in_transaction: bool = False  # a rollback may still undo it


def _state(connection: BaseDatabaseWrapper) -> _ConnectionState:
    state: _ConnectionState | None = getattr(connection, "_coliseum_rls", None)
    if state is None:
        state = _ConnectionState(desired=(app_role(), "", ""))
        connection._coliseum_rls = state  # type: ignore[attr-defined]
    return state


def _idle(raw: Any) -> bool:
    return bool(raw.info.transaction_status == pq.TransactionStatus.IDLE)


def _send(connection: BaseDatabaseWrapper, state: _ConnectionState) -> None:
    """Give the session the wanted state (the raw cursor: not logged as an application query, not guarded)."""
    raw = connection.connection
    in_transaction = not raw.autocommit or not _idle(raw)
    with raw.cursor() as cursor:
        cursor.execute(_APPLY_SQL, state.desired)
    state.applied = state.desired
    state.applied_in_transaction = in_transaction


def _forget_if_transaction_ended(state: _ConnectionState, raw: Any) -> None:
    if state.applied_in_transaction and _idle(raw):
        # The transaction that carried our set_config has ended: committed or rolled back, we cannot tell.
        state.applied, state.applied_in_transaction = None, False


def _guard(
    execute: Callable[..., Any], sql_text: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    connection = context["connection"]
    state = _state(connection)
    _forget_if_transaction_ended(state, connection.connection)
    is_savepoint = isinstance(sql_text, str) and sql_text.startswith(_SAVEPOINT_SQL)
    if state.applied != state.desired and not is_savepoint:
        with connection.wrap_database_errors:  # Django's exception classes, as for the query itself
            _send(connection, state)
    result = execute(sql_text, params, many, context)
    if is_savepoint and state.applied_in_transaction and sql_text.startswith("ROLLBACK"):
        state.applied = None  # the savepoint rollback may have undone our set_config
    return result


def raw_connection(using: str = "default") -> Any:
    """The psycopg connection under Django's, with the current scope in place: for code that runs SQL on a raw
    psycopg cursor (server-side binding on the hot paths), which Django's execute wrappers do not see. Take
    a new one after changing scope or ending a transaction."""
    connection = connections[using]
    connection.ensure_connection()
    state = _state(connection)
    _forget_if_transaction_ended(state, connection.connection)
    if state.applied != state.desired:
        _send(connection, state)
    return connection.connection


def connection_prepare(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """connection_created: drop to the application role at once (with the current scope's settings) and
    guard every later query."""
    if connection.vendor != "postgresql" or connection.alias == NO_DB_ALIAS:
        return  # `_nodb_cursor` (CREATE DATABASE for the test database) stays the session user
    if _guard not in connection.execute_wrappers:
        connection.execute_wrappers.append(_guard)
    _send(connection, _state(connection))


# --- scopes ------------------------------------------------------------------------------------------------


@contextmanager
def _scope(make: Callable[[State], State], using: str = "default") -> Iterator[None]:
    state = _state(connections[using])
    previous = state.desired
    state.desired = make(previous)
    try:
        yield
    finally:
        state.desired = previous


def tenant_scope(tenant_id: int, using: str = "default") -> Any:
    """Queries inside see and write only `tenant_id`'s rows."""
    tenant = str(int(tenant_id))
    return _scope(lambda s: (s[0], tenant, ""), using)


def system_scope(reason: str, using: str = "default") -> Any:
    """The explicit, narrow bypass: every tenant's rows (staff in the admin, cross-tenant jobs, key and
    membership lookups that find the tenant). `reason` says why, for readers and grep."""
    return _scope(lambda s: (s[0], "", "on"), using)


def owner_scope(using: str = "default") -> Any:
    """DDL and maintenance as the session user (the tables' owner): migrate, partitions, retention, flush."""
    return _scope(lambda s: (ROLE_NONE, s[1], s[2]), using)


def request_scope(using: str = "default") -> Any:
    """A request starts with no tenant and no bypass (fail closed) and leaves the connection as it found it.
    Inside, `request_tenant_set` gives the request its tenant once known."""
    return _scope(lambda s: (app_role(), "", ""), using)


def request_tenant_set(tenant_id: int, using: str = "default") -> None:
    """The rest of the enclosing request_scope acts for `tenant_id` (its exit restores the previous state)."""
    state = _state(connections[using])
    state.desired = (state.desired[0], str(int(tenant_id)), "")


def request_system_set(reason: str, using: str = "default") -> None:
    """The rest of the enclosing request_scope acts for every tenant (staff operator endpoints)."""
    state = _state(connections[using])
    state.desired = (state.desired[0], "", "on")


def current_scope(using: str = "default") -> State:
    """(role, tenant id, bypass) that the next query on this thread's connection will run with."""
    return _state(connections[using]).desired


# --- wrappers for tasks and consumers ---------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def system_task(reason: str) -> Callable[[F], F]:
    """Celery task body in system scope (cross-tenant jobs). Put it under @shared_task."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with system_scope(reason):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def tenant_task(tenant_of: Callable[..., int | None]) -> Callable[[F], F]:
    """Celery task body in the scope of one tenant. `tenant_of(*args, **kwargs)` (the task's own arguments,
    `self` first for bound tasks) finds the tenant from the
    task's arguments (a `tenant_id` kwarg, or the id of a row, looked up in system scope); when it finds none
    (the row is gone) the body runs with no tenant and sees nothing."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with system_scope("task tenant lookup"):
                tenant_id = tenant_of(*args, **kwargs)
            if tenant_id is None:
                with request_scope():
                    return fn(*args, **kwargs)
            with tenant_scope(tenant_id):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def in_tenant(tenant_id: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run fn in tenant scope on THIS thread's connection: for database_sync_to_async bodies, which may run on
    a different thread (connection) each time, so the scope is entered inside the sync function."""
    with tenant_scope(tenant_id):
        return fn(*args, **kwargs)


T = TypeVar("T")


def scope_kept(iterable: Iterable[T], using: str = "default") -> Iterator[T]:
    """For streamed responses: the server iterates after the view (and its scope) returned, so each item is
    produced in the scope that was current when the response was made."""
    _, tenant, bypass = current_scope(using)

    def produce() -> Iterator[T]:
        items = iter(iterable)
        while True:
            with _scope(lambda s: (s[0], tenant, bypass), using):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item

    return produce()


def in_system(reason: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with system_scope(reason):
        return fn(*args, **kwargs)


# --- role, grants and policies (DDL; run by `migrate`, partition upkeep and retention, as the owner) -------


def _policy_sql(schema: str, table: str, column: str, column_type: str) -> sql.Composed:
    target = sql.Identifier(schema, table)
    # The sub-SELECTs make the settings InitPlans (once per query, index conditions stay usable).
    predicate = sql.SQL(
        "({col} = (SELECT nullif(current_setting('app.tenant_id', true), '')::{typ}) "
        "OR (SELECT current_setting('app.rls_bypass', true)) = 'on')"
    ).format(col=sql.Identifier(column), typ=sql.SQL(column_type))
    return sql.SQL(
        "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; DROP POLICY IF EXISTS {p} ON {t}; "
        "CREATE POLICY {p} ON {t} USING {pred} WITH CHECK {pred}; COMMENT ON POLICY {p} ON {t} IS {v};"
    ).format(t=target, p=sql.Identifier(POLICY), pred=predicate, v=sql.Literal(POLICY_VERSION))


_ROLE_ENSURE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {role_literal}) THEN
        CREATE ROLE {role} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of the cluster (a parallel test run) created it meanwhile
END
$$;
"""


def role_ensure(cursor: Any) -> None:
    """Create the NOLOGIN application role if missing (needs CREATEROLE) and let the session user SET ROLE to
    it (a superuser may anyway)."""
    role = app_role()
    cursor.execute(
        sql.SQL(_ROLE_ENSURE)
        .format(role=sql.Identifier(role), role_literal=sql.Literal(role))
        .as_string(None)
    )
    cursor.execute(
        "SELECT rolsuper, pg_has_role(current_user, %s, 'MEMBER') FROM pg_roles WHERE rolname = current_user",
        [role],
    )
    superuser, member = cursor.fetchone()
    if not superuser and not member:
        cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)).as_string(None))


def grants_apply(cursor: Any) -> None:
    """DML on every table and the sequences of public and archive, now and for tables created later by the
    same owner. Nothing else: no TRUNCATE (it ignores RLS), no DDL, no ownership."""
    role = sql.Identifier(app_role())
    cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(SCHEMAS)])
    templates = (
        "GRANT USAGE ON SCHEMA {s} TO {r}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    )
    statements = [
        sql.SQL(t).format(s=sql.Identifier(schema), r=role)
        for (schema,) in cursor.fetchall()
        for t in templates
    ]
    if statements:
        cursor.execute(sql.SQL("; ").join(statements).as_string(None))


def tenant_tables(cursor: Any) -> list[tuple[str, str, str, bool]]:
    """(schema, table, tenant_id's type, has the current policy) of every table and partition with a
    tenant_id."""
    cursor.execute(
        """
        SELECT n.nspname, c.relname, format_type(a.atttypid, a.atttypmod),
               c.relrowsecurity AND EXISTS (
                   SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s
                   AND obj_description(p.oid, 'pg_policy') = %s)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
        ORDER BY 1, 2
        """,
        [POLICY, POLICY_VERSION, list(SCHEMAS)],
    )
    return [(str(s), str(t), str(typ), bool(done)) for s, t, typ, done in cursor.fetchall()]


def policies_apply(*, refresh: bool = False, using: str = "default") -> int:
    """Role, grants and the tenant_isolation policy on every table with a tenant_id (idempotent): tables
    without the current policy (POLICY_VERSION) get it, e.g. a new table, partition or archived month;
    `refresh` re-creates every one. Returns how many tables were changed."""
    with owner_scope(using), connections[using].cursor() as cursor:
        role_ensure(cursor)
        grants_apply(cursor)
        todo = [(s, t, typ) for s, t, typ, done in tenant_tables(cursor) if refresh or not done]
        if todo:
            statement = sql.Composed([_policy_sql(s, t, "tenant_id", typ) for s, t, typ in todo])
            cursor.execute(statement.as_string(None))
    return len(todo)
