"""Issue #20's done-when, end to end through the signed endpoint (both backends): a company
applies in chat and is approved in the console; its owner invites a buyer; the buyer
quick-orders 5 lines whose total is over the buyer's monthly limit, so the order waits for
the owner's approval; the owner approves it in chat; the buyer pays it on the company's
credit (「月结」); next month the statement is issued (console, CSV, a push to the owner) and
repaid by a transfer an admin confirms; the books reconcile. Prices are tax-inclusive
with the product's VAT rate shown on the card and the credit order's tax. A consumer at the same time
sees retail prices only."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select

from social_mall_b2b.models import ApprovalRequest, Company, CompanyMember, CreditAccount, Statement
from storage.models import AuditEntry, Order
from tests.fakes.console_kit import csrf_of

from b2b_kit import Clock, count, make_mall, pushes, say, simulator
from test_b2b_quick_order import BUYER as OWNER, business_with_codes

COLLEAGUE = "oUser_b2b_done_colleague_001"
SHOPPER = "oUser_b2b_done_shopper_00001"
ADDRESS = "王小明 13912345678 上海市黄浦区南京东路1号"
CODE = re.compile(r"「加入企业 ([0-9A-Z]{5}-[0-9A-Z]{5})」")


async def test_apply_invite_quick_order_approve_credit_statement_repay(backend, engine, tmp_path, fake_wechat,
                                                                      aiohttp_client):
    clock = Clock(datetime(2030, 6, 6, 4, 0, tzinfo=timezone.utc))
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    skus = await business_with_codes(mall, wx)               # applied in chat, approved in the console
    async with mall.svc.uows() as uow:
        company = await uow.session.scalar(select(Company))
    assert company.status == "approved"

    code = CODE.search(await say(wx, OWNER, "邀请采购员")).group(1)
    await wx.event(COLLEAGUE, "subscribe")
    assert "已加入" in await say(wx, COLLEAGUE, f"加入企业 {code}")
    async with mall.svc.uows() as uow:
        buyer = (await uow.session.scalar(select(CompanyMember))).member_id

    csrf = await csrf_of(mall.client, "/console/b2b/companies")
    post = mall.client.post
    assert (await post("/console/b2b/limits", data={"_csrf": csrf, "member_id": str(buyer),
                                                    "limit": "500"})).status == 200
    assert (await post(f"/console/b2b/credit/{company.id}/limit", data={"_csrf": csrf, "limit": "abc"})).status == 400
    assert (await post(f"/console/b2b/credit/{company.id}/limit", data={"_csrf": csrf, "limit": "5000"})).status == 200
    mango = skus["芒果干"].id                               # tax-inclusive prices: 13% VAT on the product
    terms = {"_csrf": csrf, "sku_id": str(mango), "moq": "12", "case_pack": "12"}
    assert (await post("/console/b2b/terms", data={**terms, "vat": "31"})).status == 400
    assert (await post("/console/b2b/terms", data={**terms, "vat": "13"})).status == 200
    assert "含税，增值税 13%" in await say(wx, COLLEAGUE, "搜索 芒果干")

    # a consumer, at the same time, sees retail only and is not offered quick order
    await wx.event(SHOPPER, "subscribe")
    card = await say(wx, SHOPPER, "搜索 芒果干")
    assert "企业价" not in card and "¥29.90" in card and "增值税" not in card

    orders = await count(mall, Order)
    table = await say(wx, COLLEAGUE, "快速下单 A1023x24 B77 3 C9*10 D-4 2 E5 1")
    assert "商品合计：¥1002.03" in table, table
    await say(wx, COLLEAGUE, "确认下单")
    assert "应付：¥1002.03" in await say(wx, COLLEAGUE, ADDRESS)
    waiting = await say(wx, COLLEAGUE, "确认")
    assert "超出本月采购限额（限额 ¥500.00，已用 ¥0.00），已提交企业负责人审批" in waiting, waiting
    n = re.search(r"审批单 #(\d+)", waiting).group(1)
    assert await count(mall, Order) == orders
    await mall.settle()
    assert any(f"「同意 {n}」" in p for p in pushes(mall, OWNER))

    assert f"#{n} 会员 {buyer} 合计 ¥1002.03（5 种商品）" in await say(wx, OWNER, "待审批")
    approved = await say(wx, OWNER, f"同意 {n}")
    assert f"已同意审批单 #{n}" in approved and "应付 ¥1002.03" in approved, approved
    await mall.settle()
    told = [p for p in pushes(mall, COLLEAGUE) if f"审批单 #{n}" in p]
    order_no = re.search(r"订单号：(\d+)", told[0]).group(1)
    assert "月结" in told[0]

    retail_card = await say(wx, SHOPPER, "搜索 芒果干")      # still retail for the consumer
    assert "企业价" not in retail_card and "增值税" not in retail_card

    paid = await say(wx, COLLEAGUE, f"月结 {order_no}")
    assert "已记入企业账期" in paid and "企业未还 ¥1002.03，可用额度 ¥3997.97" in paid, paid
    assert "其中增值税（13%）：¥60.74（价税合计 ¥528.00）" in paid          # 528.00 × 13 / 113
    assert "该订单不能这样付款" in await say(wx, COLLEAGUE, f"月结 {order_no}")      # once
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        req = await uow.session.scalar(select(ApprovalRequest))
    assert (o.status, o.paid_fen, o.member_id, req.status, req.order_id) == ("paid", 100203, buyer, "approved", o.id)

    # next month: the statement (console, CSV, a push to the owner), then repaid by transfer
    clock.advance(days=26)                                       # 2030-07-02
    assert (await post("/console/b2b/statements/issue", data={"_csrf": csrf})).status == 200
    assert (await post("/console/b2b/statements/issue", data={"_csrf": csrf})).status == 200     # once
    await mall.settle()
    assert any("2030-06 月结对账单已出：应还 ¥1002.03" in p for p in pushes(mall, OWNER))
    async with mall.svc.uows() as uow:
        [st] = (await uow.session.scalars(select(Statement))).all()
    page = await (await mall.client.get("/console/b2b/credit")).text()
    assert f'id="statement-{st.id}"' in page and "¥1002.03" in page and "待还" in page
    csv_resp = await mall.client.get(f"/console/b2b/statements/{st.id}/csv")
    assert csv_resp.status == 200 and "1002.03" in (await csv_resp.read()).decode("utf-8-sig")
    resp = await post(f"/console/b2b/credit/{company.id}/repay", data={"_csrf": csrf, "amount": "1002.04",
                                                                      "ref": "BANK-1"})
    assert resp.status == 400                                    # more than owed: refused
    resp = await post(f"/console/b2b/credit/{company.id}/repay", data={"_csrf": csrf, "amount": "1002.03",
                                                                      "ref": "BANK-1"})
    assert resp.status == 200
    page = await (await mall.client.get("/console/b2b/credit")).text()
    assert "已还清" in page and 'id="credit-reconciled"' in page
    async with mall.svc.uows() as uow:
        acc = await uow.session.scalar(select(CreditAccount))
        actions = set((await uow.session.scalars(select(AuditEntry.action))).all())
    assert acc.outstanding_fen == 0
    assert {"b2b.approval_requested", "b2b.approval_approved", "order.paid_by_method", "b2b.credit_order",
            "b2b.statement_issued", "b2b.credit_repayment", "b2b.credit_limit"} <= actions
