"""Group-buy sweepers. Idempotent and safe with several workers at once: every step is a
conditional UPDATE (team forming → failed|succeeded, failed → refunding, seat paid →
refunding), and each team is handled in its own transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from social_mall.groupbuy import service
from social_mall.groupbuy.rules import TeamStatus
from storage.groupbuy_repos import GroupbuyRepo
from storage.uow import UowFactory

log = logging.getLogger(__name__)


async def expire_teams(uows: UowFactory, now: datetime, *, batch: int = 200) -> dict[str, int]:
    """Forming teams past their expiry: failure, simulated completion, or success (every
    seat was paid, some order.paid events were still on their way)."""
    async with uows() as uow:
        due = await GroupbuyRepo(uow.session).expired_forming(now, batch)
    counts = {"failed": 0, "simulated": 0, "succeeded": 0}
    for tenant, team_id in due:
        async with uows() as uow:
            outcome = await service.expire_team(uow, tenant, team_id, now=now)
            if outcome:
                await uow.commit()
                counts[outcome] += 1
    if any(counts.values()):
        log.info("groupbuy.expired", extra=counts)
    return counts


async def refund_failed_teams(uows: UowFactory, now: datetime, *, batch: int = 100) -> int:
    """Failed teams: one refund request per paid seat (the outbox calls the gateway)."""
    async with uows() as uow:
        due = await GroupbuyRepo(uow.session).with_status(TeamStatus.FAILED, batch)
    requested = 0
    for tenant, team_id in due:
        async with uows() as uow:
            n = await service.refund_team(uow, tenant, team_id, now=now)
            await uow.commit()
            requested += n
    if requested:
        log.info("groupbuy.refunds_requested", extra={"count": requested})
    return requested
