"""Celery entry points: render a report (with retries on transient failures) and run due schedules."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError

from coliseum.errors import ApplicationError
from coliseum.rls import system_task, tenant_task

from .services.reports import report_fail, report_render_run, report_retry_note, report_stale_requeue
from .services.schedules import report_schedules_run_due

logger = logging.getLogger(__name__)

MAX_RETRIES = 4
# Reports run on their own queue (`-Q ...,reports` in the Procfile) so a burst of PDFs never delays
# ingestion: callers and beat entries name it (the task-level `queue` attribute is deprecated).
REPORTS_QUEUE = "reports"


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Failures worth retrying: the database going away, the storage (disk or S3) not answering."""
    errors: list[type[BaseException]] = [OperationalError, InterfaceError, OSError, TimeoutError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    except ImportError:
        pass
    return tuple(errors)


TRANSIENT_ERRORS = _transient_errors()


def _report_tenant(report_id: int) -> int | None:
    from .models import Report

    return Report.objects.filter(pk=report_id).values_list("tenant_id", flat=True).first()


def retry_countdown(retries: int) -> int:
    """Exponential backoff: 10 s, 20 s, 40 s, 80 s."""
    return int(10 * 2**retries)


@shared_task(
    bind=True,
    max_retries=MAX_RETRIES,
    acks_late=True,
    name="reports.tasks.report_render",
)
@tenant_task(lambda task, report_id: _report_tenant(report_id))
def report_render(self: Any, report_id: int) -> None:
    try:
        report_render_run(report_id=report_id)
    except TRANSIENT_ERRORS as exc:
        attempts = self.request.retries + 1
        kind = "Database" if isinstance(exc, DatabaseError) else "Storage or network"
        if self.request.retries >= self.max_retries:
            report_fail(
                report_id=report_id,
                reason=f"{kind} error ({type(exc).__name__}); gave up after {attempts} attempts.",
            )
            logger.warning(
                "report render gave up", extra={"report_id": report_id, "error": type(exc).__name__}
            )
            return
        report_retry_note(report_id=report_id, reason=f"{kind} error; retrying (attempt {attempts}).")
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    except ApplicationError as exc:
        report_fail(report_id=report_id, reason=exc.message)
    except Exception as exc:
        logger.exception("report render failed", extra={"report_id": report_id})
        report_fail(report_id=report_id, reason=f"Unexpected rendering error ({type(exc).__name__}).")


@shared_task(name="reports.tasks.report_schedules_run")
@system_task("due report schedules across tenants")
def report_schedules_run() -> int:
    return report_schedules_run_due()


@shared_task(name="reports.tasks.report_stale_requeue")
@system_task("stale report requeue across tenants")
def report_stale_requeue_task() -> int:
    return report_stale_requeue()
