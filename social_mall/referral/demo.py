"""What the demo shop shows of referral distribution: the programme switched on (stored
explicitly the first time; a merchant who switches it off later keeps it off) and a demo
distributor (演示分销员), approved, whose link and QR code can be tried."""

from __future__ import annotations

from datetime import datetime

from social_mall.demo import demo_member
from social_mall.referral import rules, service
from social_mall.tenants import TenantView
from storage.uow import UnitOfWork


async def seed(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    if await service.repo(uow).settings(tenant.id) is None:
        await service.save_program(uow, tenant.id, rules.ProgramSettings(enabled=True), actor="demo", now=now)
    if not (await service.program(uow, tenant.id)).enabled:
        return
    member, _ = await demo_member(uow, tenant, "demo_distributor", "演示分销员")
    d = await service.find_distributor(uow, tenant.id, member)
    if d is None:
        d = await service.apply(uow, tenant.id, member, now=now)
    if d.status == rules.DistributorStatus.PENDING:
        await service.approve_distributor(uow, tenant.id, d.id, actor="demo", now=now)
