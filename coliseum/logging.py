"""JSON-lines logging. Only the message and a whitelist of safe fields are written: no bodies, no headers,
no user identifiers beyond internal numeric ids."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from .middleware import request_id_var

_SAFE_EXTRA = {
    "view",
    "tenant_id",
    "task",
    "status",
    "duration_ms",
    "count",
    "path",
    "method",
    "code",
    "batch",
}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key in _SAFE_EXTRA:
            if key in record.__dict__:
                line[key] = record.__dict__[key]
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
