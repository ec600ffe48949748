"""Structured logs: one JSON object per line on stderr, unless the host configured logging.

Audit events already log JSON messages (``idp.audit``); this formatter wraps every
record the same way so a log shipper needs no parsing rules.
"""

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message"}`` plus the exception text when there is one."""

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(app):
    """INFO and up as JSON lines, when nobody (gunicorn's root, pytest) set logging up first."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
