"""A tenant with two official accounts (issue 25): a buyer orders over its budget through
the second account (linked to a second merchant), the company owner approves through the
primary one; the order placed on approval is the buyer's: it came through the buyer's
account and is paid at that account's merchant, not the owner's."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from social_mall_b2b.models import ApprovalRequest, CompanyMember
from tests.channels_kit import APP2, MCH2, SECRET2, TOKEN2, second_account, second_merchant
from tests.fakes.console_kit import csrf_of

from b2b_kit import Clock, console, make_mall, say, simulator
from test_b2b_prices import ADDRESS, BUYER as OWNER, approved_company_with_prices, sku_of

COLLEAGUE = "oUser_b2b_second_acct_buyer1"
CODE = re.compile(r"「加入企业 ([0-9A-Z]{5}-[0-9A-Z]{5})」")


async def test_an_approved_order_comes_through_the_buyers_account_and_merchant(
        backend, engine, tmp_path, fake_wechat, aiohttp_client, aiohttp_server):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client,
                           clock=Clock(datetime(2030, 6, 6, 4, 0, tzinfo=timezone.utc)))
    tenant = await mall.svc.tenant("demo")
    _fake2, merchant = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid=MCH2, appid=APP2)
    account = await second_account(mall, tenant, merchant)
    fake_wechat.more_apps[APP2] = SECRET2
    fake_wechat.openid_apps[COLLEAGUE] = APP2
    wx = simulator(mall)
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    sku = await sku_of(mall, "芒果干")
    await approved_company_with_prices(mall, wx, await console(mall), sku.id)
    await wx2.event(COLLEAGUE, "subscribe")
    code = CODE.search(await say(wx, OWNER, "邀请采购员")).group(1)
    assert "已加入" in await say(wx2, COLLEAGUE, f"加入企业 {code}")
    async with mall.svc.uows() as uow:
        joined = (await uow.session.scalar(select(CompanyMember))).member_id
    csrf = await csrf_of(mall.client, "/console/b2b/companies")
    assert (await mall.client.post("/console/b2b/limits", data={"_csrf": csrf, "member_id": str(joined),
                                                               "limit": "100"})).status == 200
    await say(wx2, COLLEAGUE, "搜索 芒果干")
    await say(wx2, COLLEAGUE, "x12")
    assert "请确认订单" in await say(wx2, COLLEAGUE, ADDRESS)
    waiting = await say(wx2, COLLEAGUE, "确认")
    assert "已提交企业负责人审批" in waiting, waiting
    n = re.search(r"审批单 #(\d+)", waiting).group(1)

    approved = await say(wx, OWNER, f"同意 {n}")                    # the owner, on the primary account
    assert f"已同意审批单 #{n}" in approved, approved
    async with mall.svc.uows() as uow:
        req = await uow.session.scalar(select(ApprovalRequest).where(ApprovalRequest.id == int(n)))
        order = await find_order(uow, tenant.id, approved_order_no(approved))
    # before: the owner's entrance (the primary account, the default merchant)
    assert (order.member_id, order.channel_account_id, order.pay_account_id) == (joined, account, merchant)
    assert req.account_id == account and order.id == req.order_id


def approved_order_no(text: str) -> str:
    return re.search(r"订单号：?\s*(\d+)", text).group(1)
