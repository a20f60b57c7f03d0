"""The service's logs: one JSON object per line for machines, or plain text for a terminal.

``configure_logging`` puts a single handler on the root logger, so the
service's own loggers, uvicorn's and Python's warnings all come out in one
format, each record stamped with the id of the request it is about (read from
``service.request_id``, also inside the decode threads, which run in a copy of
the request's context). uvicorn's access log is switched off: the
``service.access`` line written at the end of each request replaces it, with
latency, bytes, image and outcome.

Structured fields travel as ``extra={"fields": {...}}``; they become keys of
the JSON object, or ``key=value`` pairs in plain text. Nothing here reads
headers or bodies: what is logged is what the code chose to put in a message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from service import request_id

FORMATS = ("auto", "json", "plain")
# Libraries that see the client's bytes: kept at WARNING whatever LOG_LEVEL says.
QUIET_LIBRARIES = ("PIL", "multipart", "python_multipart", "pillow_heif")


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request's id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.current_id()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...fields, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            doc["request_id"] = rid
        doc.update(_fields(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


class PlainFormatter(logging.Formatter):
    """``12:00:01.234 INFO  service.access [id] POST /predict 200 12.3 ms route=/predict ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-5s %(name)s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items() if v is not None)
        head, _, tail = line.partition("\n")  # a traceback stays below the first line
        head = f"{head} [{rid}]" if rid else head
        return f"{head} {extra}".rstrip() + (f"\n{tail}" if tail else "")


def resolve_format(log_format: str, stream: IO[str]) -> str:
    """``auto``: plain text on a terminal, JSON anywhere else (containers, files, pipes)."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if log_format != "auto":
        return log_format
    return "plain" if stream.isatty() else "json"


def configure_logging(level: str = "info", log_format: str = "auto", stream: IO[str] | None = None) -> None:
    """One handler on the root logger for every logger in the process; uvicorn's own handlers removed."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if resolve_format(log_format, stream) == "json" else PlainFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = name != "uvicorn.access"  # replaced by service.access
    for name in QUIET_LIBRARIES:  # their DEBUG lines quote image headers and multipart chunks
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
