"""Guessing limits for codes typed into chat or scanned: failures per subject (a staff
member verifying, a member binding) in fixed 10-minute windows, counted by an atomic
upsert and logged. A subject at its limit is refused before any code is looked up.

Failures must survive the refusal they cause, so the callers record them and answer
with a normal reply (their unit of work commits) instead of raising."""

from __future__ import annotations

import logging
from datetime import datetime

from social_mall_local.repos import LocalRepo
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

WINDOW_S = 600
STAFF_LIMIT = 10      # wrong codes per staff member per window
BIND_LIMIT = 5        # wrong bind codes per member per window


def window_of(now: datetime) -> int:
    return int(now.timestamp()) // WINDOW_S


async def locked(uow: UnitOfWork, tenant: int, subject: str, limit: int, now: datetime) -> bool:
    return await LocalRepo(uow.session).attempts(tenant, subject, window_of(now)) >= limit


async def record_failure(uow: UnitOfWork, tenant: int, subject: str, reason: str, now: datetime) -> int:
    failures = await LocalRepo(uow.session).add_failure(tenant, subject, window_of(now), reason[:40], now)
    log.warning("local.code_failed", extra={"tenant": tenant, "subject": subject, "reason": reason,
                                            "failures": failures})
    return failures
