"""The audit log is append-only in the database itself, so no code path (ORM, raw SQL, admin, a psql
session as the application role) can rewrite history.

A row trigger refuses every UPDATE, and every DELETE unless the transaction first ran
`SET LOCAL coliseum.audit_purge = 'on'` — the documented switch used only by
audit.services.audit_purge_older_than (the retention purge). SET LOCAL ends with the transaction, so the
switch cannot leak into later work on a pooled connection."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION audit_entry_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('coliseum.audit_purge', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_auditentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only the retention purge may delete, under SET LOCAL coliseum.audit_purge = ''on''.';
END
$$;

CREATE TRIGGER audit_entry_append_only
    BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_refuse_change();
"""

DROP = r"""
DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_auditentry;
DROP FUNCTION IF EXISTS audit_entry_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_detach_fks")]

    operations = [migrations.RunSQL(CREATE, DROP)]
