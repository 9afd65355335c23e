"""Bulk import of historical events from .jsonl or .csv through the same validation and dedupe as live
ingestion (event_batch_ingest, in chunks of one statement each)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from coliseum.models import Tenant
from ingestion.services import event_batch_ingest, processing_run_pending

CSV_COLUMNS = ("event_id", "type", "occurred_at", "user_id", "session_id", "device_id", "properties")


def _jsonl_rows(handle: io.BufferedReader) -> Iterator[tuple[int, int, Any]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            yield number, len(line), orjson.loads(line)
        except orjson.JSONDecodeError:
            yield number, len(line), {"__invalid__": "line is not valid JSON"}


def _csv_rows(handle: io.BufferedReader) -> Iterator[tuple[int, int, Any]]:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    reader = csv.DictReader(text)
    missing = {"event_id", "type", "occurred_at", "user_id"} - set(reader.fieldnames or [])
    if missing:
        raise CommandError(
            f"CSV header lacks: {', '.join(sorted(missing))} (columns: {', '.join(CSV_COLUMNS)})"
        )
    for number, row in enumerate(reader, start=2):
        size = sum(len(v or "") for v in row.values()) + len(row)
        event: dict[str, Any] = {k: (row.get(k) or None) for k in CSV_COLUMNS[:6]}
        try:
            event["properties"] = orjson.loads(row.get("properties") or "{}")
        except orjson.JSONDecodeError:
            event = {"__invalid__": "properties is not valid JSON", "event_id": row.get("event_id")}
        yield number, size, event


class Command(BaseCommand):
    help = "Import events from a .jsonl or .csv file for one tenant (same validation and dedupe as the API)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--chunk", type=int, default=2000, help="events per transaction")
        parser.add_argument("--rejects", type=Path, default=None, help="where to write rejects (.jsonl)")
        parser.add_argument("--process", action="store_true", help="process into rollups before returning")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}")
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise CommandError("The file must end in .jsonl or .csv")
        rejects_path: Path = options["rejects"] or path.with_name(path.name + ".rejects.jsonl")
        accepted = duplicates = rejected = 0
        chunk: list[tuple[int, Any]] = []
        with (
            path.open("rb") as handle,
            rejects_path.open("wb") as rejects,
            tqdm(total=path.stat().st_size, unit="B", unit_scale=True, disable=options["quiet"]) as bar,
        ):
            rows = _jsonl_rows(handle) if suffix == ".jsonl" else _csv_rows(handle)

            def flush() -> None:
                nonlocal accepted, duplicates, rejected
                if not chunk:
                    return
                result = event_batch_ingest(tenant=tenant, events=[e for _, e in chunk], source="import")
                accepted += result.accepted
                duplicates += result.duplicates
                rejected += len(result.rejected)
                for item in result.rejected:
                    line = chunk[item["index"]][0]
                    rejects.write(
                        orjson.dumps({"line": line, "event_id": item["event_id"], "errors": item["errors"]})
                        + b"\n"
                    )
                chunk.clear()

            for number, size, event in rows:
                bar.update(size)
                if isinstance(event, dict) and "__invalid__" in event:
                    rejected += 1
                    reject = {
                        "line": number,
                        "event_id": event.get("event_id"),
                        "errors": [event["__invalid__"]],
                    }
                    rejects.write(orjson.dumps(reject) + b"\n")
                    continue
                chunk.append((number, event))
                if len(chunk) >= options["chunk"]:
                    flush()
            flush()
        if options["process"]:
            processing_run_pending()
        self.stdout.write(
            f"accepted {accepted}, duplicates {duplicates}, rejected {rejected}"
            + (f" (reasons in {rejects_path})" if rejected else "")
        )
