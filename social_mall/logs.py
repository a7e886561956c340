"""Structured logging: one line per event, with the request id.

Formats (setting LOG_FORMAT): `json` for machines (production), `kv` (key=value),
`human` for people at a terminal (`12:34:56 info  order.paid  order_id=7`), and `auto`
(the default): `human` when the stream is a terminal, `json` otherwise.
Fields come from `extra=`, plus the request's tenant and member once known (`log_tenant`,
`log_member`). Keys that look secret are redacted; openids are masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import TextIO

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# who a request is about, once known (the endpoint sets the tenant, the flow runner the member):
# every line logged while handling it carries them, unless the line names its own
log_tenant: contextvars.ContextVar[str | int | None] = contextvars.ContextVar("log_tenant", default=None)
log_member: contextvars.ContextVar[int | None] = contextvars.ContextVar("log_member", default=None)

_STD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "sm_ctx"}
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


def _context() -> tuple[str, str | int | None, int | None]:
    return request_id.get(), log_tenant.get(), log_member.get()


_make_record = logging.getLogRecordFactory()


def _record_with_context(*args: object, **kwargs: object) -> logging.LogRecord:
    """Records take the request's context when they are made (a handler may format them
    later, elsewhere: a queue, a test's caplog)."""
    record = _make_record(*args, **kwargs)
    record.sm_ctx = _context()
    return record


logging.setLogRecordFactory(_record_with_context)


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.kind = fmt

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: mask(k, v) for k, v in vars(record).items() if k not in _STD}
        rid, tenant, member = getattr(record, "sm_ctx", None) or _context()
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "request_id": rid,
            **fields,
        }
        if tenant is not None and "tenant" not in doc:
            doc["tenant"] = tenant
        if member is not None and "member" not in doc:
            doc["member"] = member
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        if self.kind == "human":
            return scrub(self._human(record, doc))
        if self.kind == "kv":
            line = " ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in doc.items())
        else:
            line = json.dumps(doc, ensure_ascii=False, default=str)
        return scrub(line)


    @staticmethod
    def _human(record: logging.LogRecord, doc: dict[str, object]) -> str:
        """Local time, level, event (a library's own lines prefixed by its name), then the
        fields as key=value; a traceback below."""
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        top = record.name.partition(".")[0]
        event = " ".join(str(doc["event"]).split())
        if top not in _OURS:
            event = f"{top}: {event}"
        fields = [f"{k}={_short(v)}" for k, v in doc.items()
                  if k not in _HUMAN_SKIP and not (k == "request_id" and v == "-")]
        if record.levelno >= logging.WARNING and top in _OURS:
            fields.append(f"logger={record.name}")
        line = f"{at} {record.levelname.lower():<7} {event}"
        if fields:
            line += "  " + " ".join(fields)
        if "exc" in doc:
            line += "\n" + str(doc["exc"])
        return line


_HUMAN_SKIP = frozenset({"ts", "level", "logger", "event", "exc"})
_OURS = frozenset({"social_mall", "handlers", "flows", "storage", "bot", "__main__"})


def _short(value: object) -> str:
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
        return ",".join(str(v) for v in value) or "[]"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return json.dumps(text, ensure_ascii=False) if (not text or " " in text or "=" in text) else text


FORMATS = ("auto", "human", "kv", "json")


def resolve_format(fmt: str, stream: TextIO) -> str:
    """`auto`: `human` on a terminal, `json` otherwise (an unknown name: `json`)."""
    if fmt == "auto":
        try:
            return "human" if stream.isatty() else "json"
        except (AttributeError, ValueError):  # a closed or odd stream
            return "json"
    return fmt if fmt in FORMATS else "json"


def setup_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(_Formatter(resolve_format(fmt, out)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)  # DEBUG lines carry SQL parameters
