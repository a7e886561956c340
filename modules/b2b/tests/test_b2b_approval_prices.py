"""The price of a buyer's order that waits for the owner's approval is fixed when the buyer
submits it: the owner sees that total, and approving places the order at the submitted unit
prices even after the price list changed; a request left pending past APPROVAL_DAYS is not
approved at old prices but expires (nothing placed, the buyer told, audited)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select

from social_mall_b2b.approvals import APPROVAL_DAYS
from social_mall_b2b.models import ApprovalRequest, CompanyMember, ListPrice
from storage.models import AuditEntry, Order, OrderLine
from tests.fakes.console_kit import csrf_of

from b2b_kit import Clock, console, count, make_mall, pushes, say, simulator
from test_b2b_prices import ADDRESS, BUYER as OWNER, approved_company_with_prices, sku_of

COLLEAGUE = "oUser_b2b_colleague_00000002"
CODE = re.compile(r"「加入企业 ([0-9A-Z]{5}-[0-9A-Z]{5})」")


async def over_budget_request(wx) -> str:
    """The colleague orders 12 (the 10+ tier) over its budget: the approval request's number."""
    await say(wx, COLLEAGUE, "搜索 芒果干")
    await say(wx, COLLEAGUE, "x12")
    waiting = await say(wx, COLLEAGUE, "确认")
    assert "已提交企业负责人审批" in waiting, waiting
    return re.search(r"审批单 #(\d+)", waiting).group(1)


async def test_approval_keeps_the_submitted_prices_until_it_expires(backend, engine, tmp_path, fake_wechat,
                                                                   aiohttp_client):
    clock = Clock(datetime(2030, 6, 6, 4, 0, tzinfo=timezone.utc))
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    sku = await sku_of(mall, "芒果干")
    await approved_company_with_prices(mall, wx, await console(mall), sku.id)   # 12 at the 10+ tier: ¥22.00
    await wx.event(COLLEAGUE, "subscribe")
    code = CODE.search(await say(wx, OWNER, "邀请采购员")).group(1)
    assert "已加入" in await say(wx, COLLEAGUE, f"加入企业 {code}")
    async with mall.svc.uows() as uow:
        joined = (await uow.session.scalar(select(CompanyMember))).member_id
    csrf = await csrf_of(mall.client, "/console/b2b/companies")
    assert (await mall.client.post("/console/b2b/limits", data={"_csrf": csrf, "member_id": str(joined),
                                                               "limit": "100"})).status == 200
    await say(wx, COLLEAGUE, "搜索 芒果干")
    await say(wx, COLLEAGUE, "x12")
    assert "请确认订单" in await say(wx, COLLEAGUE, ADDRESS)
    waiting = await say(wx, COLLEAGUE, "确认")
    assert "¥264.00" in waiting and "已提交企业负责人审批" in waiting, waiting
    n = re.search(r"审批单 #(\d+)", waiting).group(1)

    # the merchant raises the 10+ tier to ¥25.00 the next day
    clock.advance(days=1)
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(ListPrice).where(ListPrice.sku_id == sku.id, ListPrice.min_qty == 10))
        row.price_fen = 2500
        await uow.commit()
    assert "企业价 ¥25.00" in await say(wx, COLLEAGUE, "搜索 芒果干")
    listed = await say(wx, OWNER, "待审批")
    assert f"#{n} 会员 {joined} 合计 ¥264.00" in listed and "按提交时价格" in listed, listed

    orders = await count(mall, Order)
    approved = await say(wx, OWNER, f"同意 {n}")
    assert f"已同意审批单 #{n}" in approved and "应付 ¥264.00" in approved, approved
    async with mall.svc.uows() as uow:
        line = await uow.session.scalar(select(OrderLine).order_by(OrderLine.id.desc()))
        assert (line.sku_id, line.price_fen, line.qty) == (sku.id, 2200, 12)
    assert await count(mall, Order) == orders + 1

    # a second request left pending past the approval window: not placed at its old price
    n2 = await over_budget_request(wx)
    async with mall.svc.uows() as uow:
        req = await uow.session.scalar(select(ApprovalRequest).where(ApprovalRequest.id == int(n2)))
        assert req.lines == f"{sku.id}:12:2500"                # today's tier at submission
        row = await uow.session.scalar(select(ListPrice).where(ListPrice.sku_id == sku.id, ListPrice.min_qty == 10))
        row.price_fen = 2100
        await uow.commit()
    clock.advance(days=APPROVAL_DAYS, seconds=1)
    orders = await count(mall, Order)
    expired = await say(wx, OWNER, f"同意 {n2}")
    assert "已超过 7 天" in expired and "未下单" in expired, expired
    assert await count(mall, Order) == orders
    async with mall.svc.uows() as uow:
        assert (await uow.session.scalar(select(ApprovalRequest.status).where(
            ApprovalRequest.id == int(n2)))) == "expired"
    assert await count(mall, AuditEntry, AuditEntry.action == "b2b.approval_expired") == 1
    assert "已经处理过了" in await say(wx, OWNER, f"同意 {n2}")
    await mall.settle()
    assert any(f"审批单 #{n2}" in p and "重新下单" in p for p in pushes(mall, COLLEAGUE))
    # ordering again: today's price (¥21.00), a fresh request
    n3 = await over_budget_request(wx)
    assert "合计 ¥252.00" in await say(wx, OWNER, "待审批")
    assert "应付 ¥252.00" in await say(wx, OWNER, f"同意 {n3}")
