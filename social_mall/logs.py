"""Structured logging: one JSON line (or key=value) per event, with the request id.

Fields come from `extra=`. Keys that look secret are redacted; openids are masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_SECRET = re.compile(r"(secret|token|password|key|authorization|signature|phone)", re.I)
_OPENID = re.compile(r"^o[\w-]{20,}$")
_QUERY_SECRET = re.compile(
    r"(access_token|secret|signature|msg_signature|openid|echostr|code|t)=([^&\s\"']+)", re.I
)


def scrub(text: str) -> str:
    """Query-string values that are secrets or personal (access logs carry whole URLs)."""
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}=***", text)


def mask(key: str, value: object) -> object:
    if _SECRET.search(key):
        return "***"
    if isinstance(value, str) and (_OPENID.match(value) or key in {"openid", "user", "user_id"}):
        return value[:4] + "…" + value[-3:] if len(value) > 8 else "…"
    return value


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.kind = fmt

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: mask(k, v) for k, v in vars(record).items() if k not in _STD}
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "request_id": request_id.get(),
            **fields,
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        if self.kind == "kv":
            line = " ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in doc.items())
        else:
            line = json.dumps(doc, ensure_ascii=False, default=str)
        return scrub(line)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)  # DEBUG lines carry SQL parameters
