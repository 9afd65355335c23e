"""Retention: the daily job and the command purge by AUDIT_RETENTION_DAYS / --days; 0 keeps everything."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from audit.models import AuditEntry
from audit.tasks import audit_retention_purge

pytestmark = [pytest.mark.django_db, pytest.mark.clock]


def _old_entry(days: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditentry (at, actor_type, actor_label, action, target_type, target_id,"
            " user_agent, request_id, details) VALUES (%s, 'system', '', 'test.old', '', '', '', '', '{}')",
            [timezone.now() - timedelta(days=days)],
        )


def test_the_daily_job_keeps_everything_by_default(settings: SettingsWrapper) -> None:
    settings.AUDIT_RETENTION_DAYS = 0
    _old_entry(days=4000)
    assert audit_retention_purge() == 0
    assert AuditEntry.objects.filter(action="test.old").count() == 1
    assert not AuditEntry.objects.filter(action="audit.purged").exists()


def test_the_daily_job_purges_beyond_the_retention(settings: SettingsWrapper) -> None:
    settings.AUDIT_RETENTION_DAYS = 90
    _old_entry(days=91)
    _old_entry(days=89)
    assert audit_retention_purge() == 1
    assert AuditEntry.objects.filter(action="test.old").count() == 1
    assert AuditEntry.objects.get(action="audit.purged").details["deleted"] == 1


def test_the_command_purges_and_refuses_without_a_period(settings: SettingsWrapper) -> None:
    settings.AUDIT_RETENTION_DAYS = 0
    _old_entry(days=10)
    with pytest.raises(CommandError):
        call_command("audit_purge")
    out = StringIO()
    call_command("audit_purge", "--days", "5", stdout=out, stderr=StringIO())
    assert "deleted 1 audit entries" in out.getvalue()
    assert not AuditEntry.objects.filter(action="test.old").exists()
