"""Structured logging: one JSON object per line, tagged with the request id.

Log records carry ids and codes, never PHI: do not pass profile fields, record contents or
tokens to a logger. ``JsonFormatter`` only emits the message and whitelisted extras.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "request_id"}
# Extras that may be logged; anything else passed in ``extra=`` is dropped, so a careless
# ``extra={"profile": ...}`` cannot leak PHI into the logs.
SAFE_EXTRAS = {"user_id", "status_code", "method", "path", "view", "task", "code", "duration_ms", "event"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            payload["request_id"] = request_id
        for key, value in vars(record).items():
            if key in SAFE_EXTRAS and key not in _STANDARD:
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
