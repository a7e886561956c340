"""A company's buyers: the owner asks for a one-time invite code in chat, a colleague joins
with it and buys at the company's prices (card, quick order); a wrong, reused or expired
code joins nothing; only an approved account's owner invites; a buyer can't apply for or
join another company."""

from __future__ import annotations

import re

from sqlalchemy import select

from social_mall_b2b.models import ApprovalRequest, CompanyMember, Invite
from storage.models import Order
from tests.fakes.console_kit import csrf_of

from b2b_kit import Clock, console, count, make_mall, pushes, say, simulator
from test_b2b_prices import BUYER as OWNER, approved_company_with_prices, sku_of

COLLEAGUE = "oUser_b2b_colleague_00000001"
THIRD = "oUser_b2b_third_0000000000001"
CODE = re.compile(r"「加入企业 ([0-9A-Z]{5}-[0-9A-Z]{5})」")


async def test_owner_invites_a_buyer_who_then_buys_at_company_prices(backend, engine, tmp_path, fake_wechat,
                                                                    aiohttp_client):
    from datetime import datetime, timezone

    clock = Clock(datetime(2030, 6, 6, 4, 0, tzinfo=timezone.utc))
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    sku = await sku_of(mall, "芒果干")
    await wx.event(COLLEAGUE, "subscribe")
    assert "仅对已认证的企业账户开放" in await say(wx, COLLEAGUE, "邀请采购员")     # not an owner
    await approved_company_with_prices(mall, wx, await console(mall), sku.id)

    invite = await say(wx, OWNER, "邀请采购员")
    code = CODE.search(invite).group(1)
    assert "只能用一次" in invite
    async with mall.svc.uows() as uow:     # only the SHA-256 is stored, never the code
        row = await uow.session.scalar(select(Invite))
        assert code.replace("-", "") not in (row.digest, row.selector) and len(row.digest) == 64

    assert "企业价" not in await say(wx, COLLEAGUE, "搜索 芒果干")
    wrong = ("Z" if code[-1] != "Z" else "Y")
    assert "无效或已过期" in await say(wx, COLLEAGUE, f"加入企业 {code[:-1]}{wrong}")
    assert "10 位字母和数字" in await say(wx, COLLEAGUE, "加入企业 123")
    assert await count(mall, CompanyMember) == 0
    joined = await say(wx, COLLEAGUE, f"加入企业 {code.lower()}")
    assert "已加入「上海味之源餐饮管理有限公司」" in joined
    assert "采购员" in await say(wx, COLLEAGUE, "企业采购")
    assert "企业价 ¥22.00" in await say(wx, COLLEAGUE, "搜索 芒果干")
    refused = await say(wx, COLLEAGUE, "x5")
    assert "12 件起订" in refused                    # the company's minimum holds for its buyers
    assert "您已是一家企业的账户成员" in await say(wx, COLLEAGUE, f"加入企业 {code}")
    async with mall.svc.uows() as uow:
        joined = (await uow.session.scalar(select(CompanyMember))).member_id
    page = await (await mall.client.get("/console/b2b/companies")).text()
    assert f'采购员：<a href="/console/members/{joined}">会员 {joined}</a>' in page

    # a monthly budget of ¥600: ¥528 passes; another ¥264 is not placed but waits for the
    # owner's approval (「待审批」 → 「同意 N」), which places it beyond the limit; cancelling
    # the first order gives its amount back
    csrf = await csrf_of(mall.client, "/console/b2b/companies")
    assert (await mall.client.post("/console/b2b/limits", data={"_csrf": csrf, "member_id": str(joined),
                                                               "limit": "abc"})).status == 400
    assert (await mall.client.post("/console/b2b/limits", data={"_csrf": csrf, "member_id": str(joined),
                                                               "limit": "600"})).status == 200
    orders = await count(mall, Order)
    await say(wx, COLLEAGUE, "搜索 芒果干")
    await say(wx, COLLEAGUE, "x24")
    await say(wx, COLLEAGUE, "王小明 13912345678 上海市黄浦区南京东路1号")
    first = await say(wx, COLLEAGUE, "确认")
    assert "下单成功" in first and "应付：¥528.00" in first
    await say(wx, COLLEAGUE, "搜索 芒果干")
    assert "应付：¥264.00" in await say(wx, COLLEAGUE, "x12")
    waiting = await say(wx, COLLEAGUE, "确认")
    assert "本单 ¥264.00 超出本月采购限额（限额 ¥600.00，已用 ¥528.00），已提交企业负责人审批" in waiting, waiting
    n = re.search(r"审批单 #(\d+)", waiting).group(1)
    assert await count(mall, Order) == orders + 1 and await count(mall, ApprovalRequest) == 1
    assert "本月 ¥528.00/¥600.00" in await (await mall.client.get("/console/b2b/companies")).text()
    await mall.settle()
    assert any(f"「同意 {n}」" in p for p in pushes(mall, OWNER))
    assert "只有企业负责人可以审批" in await say(wx, COLLEAGUE, f"同意 {n}")
    assert f"#{n} 会员 {joined} 合计 ¥264.00" in await say(wx, OWNER, "待审批")
    approved = await say(wx, OWNER, f"同意 {n}")
    assert f"已同意审批单 #{n}" in approved and "应付 ¥264.00" in approved, approved
    assert "已经处理过了" in await say(wx, OWNER, f"驳回 {n}")
    assert await count(mall, Order) == orders + 2
    await mall.settle()
    assert any(f"已同意审批单 #{n}" in p and "订单号" in p for p in pushes(mall, COLLEAGUE))
    assert "本月 ¥792.00/¥600.00" in await (await mall.client.get("/console/b2b/companies")).text()
    assert "没有待审批" in await say(wx, OWNER, "待审批")
    from social_mall.orders.service import cancel_order

    first_no = re.search(r"订单号：(\d+)", first).group(1)
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == first_no))
        await cancel_order(uow, o.tenant_id, o.id, reason="buyer", now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    assert "本月 ¥264.00/¥600.00" in await (await mall.client.get("/console/b2b/companies")).text()

    await wx.event(THIRD, "subscribe")
    assert "无效或已过期" in await say(wx, THIRD, f"加入企业 {code}")       # spent
    fresh = CODE.search(await say(wx, OWNER, "邀请采购员")).group(1)
    clock.advance(hours=25)
    assert "无效或已过期" in await say(wx, THIRD, f"加入企业 {fresh}")      # expired
    assert await count(mall, CompanyMember) == 1
    assert "企业价" not in await say(wx, THIRD, "搜索 芒果干")
