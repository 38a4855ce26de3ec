"""Server logging set-up: ``text`` (human) or ``json`` (one object per line, for log shippers).

The handler masks the secret values the server has resolved (``flyteconnect.redaction.RedactingFilter``): a
connector that logs or raises with a token in the message leaves ``***`` in the log.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from flyteconnect.redaction import RedactingFilter

__all__ = ["ClientGoneFilter", "JsonFormatter", "configure_logging"]


class ClientGoneFilter(logging.Filter):
    """Turns grpc's "ExecuteBatchError raised in core" (the caller left before its reply was sent: a client that
    stopped reading, then went away) from an ERROR with a traceback into a DEBUG line: a slow or hostile client
    must not flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("ExecuteBatchError raised in core"):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info = record.exc_text = None
        record.msg, record.args = f"{record.getMessage()}: the caller left before its reply was sent", None
        return logging.getLogger().isEnabledFor(logging.DEBUG)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, worker, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        worker = os.environ.get("FLYTECONNECT_WORKER")
        if worker:
            out["worker"] = worker
        if record.exc_text:  # already formatted (and redacted) by the handler's filter
            out["traceback"] = record.exc_text
        elif record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Route the ``flyteconnect`` loggers (and connectors' loggers) to stderr in ``fmt`` at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif fmt == "text":
        worker = os.environ.get("FLYTECONNECT_WORKER")
        tag = f"[worker {worker}] " if worker else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s: {tag}%(message)s"))
    else:
        raise ValueError(f"unknown log format {fmt!r}: use text or json")
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    grpc_logger = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, ClientGoneFilter) for f in grpc_logger.filters):
        grpc_logger.addFilter(ClientGoneFilter())
