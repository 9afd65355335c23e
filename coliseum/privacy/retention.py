"""The nightly retention run: which months of raw events move to the archive and which are dropped.

Partitions (monthly) and TimescaleDB chunks hold ALL tenants' events, and nothing is ever deleted row by row,
so per-tenant windows map to whole partitions like this (the decided rule):
- a month moves to the archive once it is past EVERY tenant's hot window (the longest hot window wins);
- a month is dropped once it is past EVERY tenant's total window (the longest total window wins), unless a
  tenant on legal hold still has rows in it: then it is kept (reported under `held`) until the hold is lifted;
- a tenant with a window shorter than the longest keeps its older rows until the partition goes: stricter
  per-tenant windows are therefore an upper bound of "at least", never "exactly" (documented; row-level
  deletion would defeat the point of partitions).
Rollups, listener rows and counted votes are not touched: rollups outlive raw events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from audit.services import Actor, audit_record
from coliseum.models import Tenant

from .models import RetentionPolicy, RetentionRun

DEFAULT_HOT_MONTHS = 24
DEFAULT_TOTAL_MONTHS = 36


def months_before(moment: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the day clamped to the month's length)."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 - months
    year, month0 = divmod(index, 12)
    day = moment.day
    while True:
        try:
            return moment.replace(year=year, month=month0 + 1, day=day)
        except ValueError:
            day -= 1


@dataclass(frozen=True)
class Windows:
    hot_months: int
    total_months: int
    held_tenant_ids: list[int]


def retention_windows() -> Windows:
    """The longest hot and total windows over all tenants (a tenant without a policy has the defaults)."""
    policies = list(
        RetentionPolicy.objects.values_list("tenant_id", "hot_months", "total_months", "legal_hold")
    )
    hot = [p[1] for p in policies]
    total = [p[2] for p in policies]
    if Tenant.objects.exclude(pk__in=[p[0] for p in policies]).exists() or not policies:
        hot.append(DEFAULT_HOT_MONTHS)
        total.append(DEFAULT_TOTAL_MONTHS)
    return Windows(max(hot), max(total), sorted(p[0] for p in policies if p[3]))


def retention_run(
    *, dry_run: bool = False, now: datetime | None = None, actor: Actor = "system", progress: bool = False
) -> RetentionRun:
    """Archive and drop whole months of raw events. Records a RetentionRun and an audit entry; in a dry run
    nothing changes and the run lists what WOULD move and be dropped."""
    from ingestion.services import retention as log

    now = now or timezone.now()
    windows = retention_windows()
    hot_cutoff = months_before(now, windows.hot_months)
    total_cutoff = months_before(now, windows.total_months)
    run = RetentionRun(dry_run=dry_run, hot_cutoff=hot_cutoff, total_cutoff=total_cutoff)
    moved: list[dict[str, object]] = []
    dropped: list[dict[str, object]] = []
    held: list[dict[str, object]] = []
    notes: list[str] = []
    if log.timescale_enabled():
        run.backend = "timescaledb"
        chunks = log.timescale_chunks(older_than=hot_cutoff)
        if dry_run:
            moved = [{"chunk": c} for c in chunks]
        else:
            moved = [{"chunk": c} for c in log.timescale_chunks_compress(older_than=hot_cutoff)]
        if windows.held_tenant_ids:
            notes.append("drop skipped: a tenant is on legal hold (chunks are not split by tenant)")
            held = [
                {"chunk": c, "tenants": windows.held_tenant_ids}
                for c in log.timescale_chunks(older_than=total_cutoff)
            ]
        elif dry_run:
            dropped = [{"chunk": c} for c in log.timescale_chunks(older_than=total_cutoff)]
        else:
            dropped = [{"chunk": c} for c in log.timescale_chunks_drop(older_than=total_cutoff)]
    else:
        for partition in tqdm(log.log_partitions(), desc="retention", unit="partition", disable=not progress):
            if partition.end <= total_cutoff:
                holders = log.partition_tenants_present(
                    partition=partition, tenant_ids=windows.held_tenant_ids
                )
                if holders:
                    held.append({"partition": partition.name, "tenants": holders})
                    # still archive it: a hold pauses purging, not archiving
                    if partition.schema == "public":
                        rows = log.partition_rows(partition=partition)
                        if not dry_run:
                            log.partition_archive(partition=partition)
                        moved.append({"partition": partition.name, "rows": rows})
                    continue
                rows = (
                    log.partition_rows(partition=partition)
                    if dry_run
                    else log.partition_drop(partition=partition)
                )
                dropped.append({"partition": partition.name, "from": partition.schema, "rows": rows})
            elif partition.end <= hot_cutoff and partition.schema == "public":
                rows = log.partition_rows(partition=partition)
                if not dry_run:
                    log.partition_archive(partition=partition)
                moved.append({"partition": partition.name, "rows": rows})
    run.moved, run.dropped, run.held, run.notes = moved, dropped, held, "\n".join(notes)
    with transaction.atomic():
        run.finished_at = timezone.now()
        run.save()
        audit_record(
            action="privacy.retention_dry_run" if dry_run else "privacy.retention_run",
            actor=actor,
            target=run,
            details={
                "moved": [m.get("partition") or m.get("chunk") for m in moved],
                "dropped": [d.get("partition") or d.get("chunk") for d in dropped],
                "held": [h.get("partition") or h.get("chunk") for h in held],
                "hot_months": windows.hot_months,
                "total_months": windows.total_months,
            },
        )
    return run
