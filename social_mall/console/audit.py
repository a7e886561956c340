"""The audit log, read side: who did what, before/after, when; filterable, paginated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from social_mall.console import rules
from social_mall.views import Page
from storage.console_repos import ConsoleRepo
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    subject: str = ""
    since: date | None = None
    until: date | None = None


def audit_filter(args: Any) -> AuditFilter:
    return AuditFilter(
        actor=rules.text(str(args.get("actor", "") or ""), "actor", max_len=64),
        action=rules.text(str(args.get("action", "") or ""), "action", max_len=64),
        subject=rules.text(str(args.get("subject", "") or ""), "subject", max_len=64),
        since=rules.parse_date(str(args.get("since", "") or ""), "since"),
        until=rules.parse_date(str(args.get("until", "") or ""), "until"),
    )


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def list_audit(uow: UnitOfWork, tenant: int, f: AuditFilter, *, page: int, per_page: int) -> Page[AuditRow]:
    rows, total = await ConsoleRepo(uow.session).audit(
        tenant, actor=f.actor, action=f.action, subject=f.subject,
        since=rules.day_start(f.since) if f.since else None,
        until=rules.day_start(f.until + timedelta(days=1)) if f.until else None,
        offset=(page - 1) * per_page, limit=per_page,
    )
    return Page(tuple(AuditRow(r.id, r.at, r.actor, r.action, r.subject, r.before, r.after) for r in rows),
                total, page, per_page)
