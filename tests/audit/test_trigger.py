"""The audit log is append-only in PostgreSQL; only the retention purge, under its switch, deletes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_purge_older_than, audit_record
from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _entry(**kwargs: object) -> AuditEntry:
    return audit_record(action="test.thing", actor="system", details={"n": 1}, **kwargs)  # type: ignore[arg-type]


def test_update_through_the_orm_is_refused() -> None:
    # given an entry
    entry = _entry()
    # when someone rewrites it, then the database refuses and the row is unchanged
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="test.forged")
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.thing"


def test_update_and_delete_in_raw_sql_are_refused() -> None:
    entry = _entry()
    for sql in (
        "UPDATE audit_auditentry SET details = '{}'::jsonb WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).details == {"n": 1}


def test_orm_delete_is_refused() -> None:
    entry = _entry()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        entry.delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db(transaction=True)  # SET LOCAL must meet a real COMMIT, not a savepoint
def test_the_purge_switch_does_not_allow_updates_and_does_not_outlive_its_transaction() -> None:
    entry = _entry()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL coliseum.audit_purge = 'on'")
            cursor.execute("UPDATE audit_auditentry SET action = 'x' WHERE id = %s", [entry.pk])
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL coliseum.audit_purge = 'on'")
    # the switch ended with that transaction: a later delete is refused again
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_retention_purge_deletes_only_old_entries_and_records_itself() -> None:
    # given two old entries and one recent one (`at` is auto_now_add and UPDATE is refused: insert old)
    old_at = timezone.now() - timedelta(days=400)
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(
                "INSERT INTO audit_auditentry (at, actor_type, actor_label, action, target_type,"
                " target_id, user_agent, request_id, details)"
                " VALUES (%s, 'system', '', 'test.old', '', '', '', '', '{}')",
                [old_at],
            )
    recent = _entry()
    # when the purge runs with a 1-year cutoff, in batches of 1
    deleted = audit_purge_older_than(cutoff=timezone.now() - timedelta(days=365), batch_size=1)
    # then the old rows are gone, the recent one stays, and the purge is on the record
    assert deleted == 2
    assert not AuditEntry.objects.filter(action="test.old").exists()
    assert AuditEntry.objects.filter(pk=recent.pk).exists()
    purge = AuditEntry.objects.get(action="audit.purged")
    assert purge.details["deleted"] == 2
    assert purge.actor_type == "system"


def test_deleting_the_actor_and_the_tenant_leaves_their_entries_untouched() -> None:
    tenant = TenantFactory.create()
    user = UserFactory.create()
    entry = audit_record(action="test.thing", actor=user, tenant=tenant)
    user_id, tenant_id = user.pk, tenant.pk
    user.delete()
    tenant.delete()
    kept = AuditEntry.objects.get(pk=entry.pk)
    assert kept.actor_user_id == user_id
    assert kept.tenant_id == tenant_id
    assert kept.actor_label == entry.actor_label


def test_the_purge_switch_is_off_again_after_a_purge_inside_an_outer_transaction() -> None:
    # given a recent entry, and a purge run inside the test's own (outer) transaction
    entry = _entry()
    audit_purge_older_than(cutoff=timezone.now() - timedelta(days=1))
    # then a later delete in the same outer transaction is still refused
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
