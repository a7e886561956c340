"""Books checks: a module that keeps money of its own (a balance, a ledger) registers a
check with `registry.add_books_check(name, check)`; `check(uow, tenant_id)` returns what
does not add up (one text per mismatch, [] when the books agree). The composition root runs
every check for every tenant hourly (job `books.checks`): a mismatch is logged at ERROR as
`books.mismatch` (check name, tenant, what) for the operators' alerts; a check that raises
is logged and the others still run. Read-only: a check never repairs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import select

from storage.models import Tenant

if TYPE_CHECKING:
    from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

BooksCheck = Callable[["UnitOfWork", int], Awaitable[list[str]]]


async def run_checks(uows: UowFactory, checks: Mapping[str, BooksCheck]) -> dict[tuple[str, int], list[str]]:
    """(check name, tenant id) → its mismatches, for every check and tenant with any."""
    found: dict[tuple[str, int], list[str]] = {}
    async with uows() as uow:
        tenants = list((await uow.session.scalars(select(Tenant.id).order_by(Tenant.id))).all())
    for name, check in checks.items():
        for tenant in tenants:
            try:
                async with uows() as uow:
                    bad = await check(uow, tenant)
            except Exception:   # one broken check never hides the others
                log.exception("books.check_failed", extra={"check": name, "tenant": tenant})
                continue
            if bad:
                found[(name, tenant)] = bad
                for what in bad:
                    log.error("books.mismatch", extra={"check": name, "tenant": tenant, "what": what})
    return found
