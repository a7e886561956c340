"""The Jinja2 environment for chat replies (and the other folders under templates/).

Chat templates (`*.txt`) are plain text: no autoescaping there — escaping for XML or
JSON is the channel adapter's job. HTML pages under templates/h5/ keep autoescaping.
Undefined names raise (StrictUndefined), so a typo fails a test instead of a reply.
Money is formatted only here: `{{ fen|yuan }}` → ¥39.90.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

STATUS_ZH = {
    "pending_payment": "待付款", "paid": "已付款", "shipped": "已发货", "completed": "已完成",
    "cancelled": "已取消", "refund_requested": "退款中", "refunded": "已退款",
}


def yuan(fen: int) -> str:
    """Integer fen → "¥39.90" (no floats anywhere)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"yuan expects integer fen, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole}.{cents:02d}"


def shanghai(at: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp shown in Asia/Shanghai (naive values are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(SHANGHAI).strftime(fmt)


def status_zh(status: str) -> str:
    return STATUS_ZH.get(str(status), str(status))


def make_env(extra_dirs: Sequence[Path | str] = ()) -> jinja2.Environment:
    """Templates are named from the templates/ root ("chat/help.txt"). `extra_dirs` are
    searched first, so a module or a deployment can add or override templates."""
    loader = jinja2.FileSystemLoader([*(str(d) for d in extra_dirs), str(TEMPLATES)], encoding="utf-8")
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml"), default=False,
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,  # templates ship with the code: no stat() per message to check them
    )
    env.filters["yuan"] = yuan
    env.filters["shanghai"] = shanghai
    env.filters["status_zh"] = status_zh
    return env
