"""Services and multi-use cards (次卡): tickets per unit, uses never below zero even with many
verifying at once (separate connections), expiry refunding the unused part through the
core's refund path (or not, per the product), reversal by an admin within the window
(audited), the console's verification and its permissions, staff bind codes."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from social_mall.catalog.service import list_products
from social_mall_local.models import Ticket, Verification
from social_mall_local.verify import Refusal, Verified, verify
from storage.models import AuditEntry, Refund
from tests.fakes.console_kit import csrf_of, login, make_admin

from local_kit import (
    Clock, bind_staff, buy_for_pickup, codes_in, make_mall, order, pay_in_sandbox, pushes, say, shanghai, simulator,
)

BUYER = "oUser_local_cards_buyer_00001"
CLERK = "oUser_local_cards_clerk_00001"


@pytest.fixture
def clock():
    return Clock(shanghai(2025, 6, 6, 12, 0))


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    await make_admin(mall.svc.uows, "boss")
    return mall


async def product_id(mall, keyword: str) -> int:
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        return (await list_products(uow, tenant.id, keyword=keyword)).items[0].id


async def set_product(mall, keyword: str, **form) -> None:
    """Through the console's 商品履约 page (HTTP, CSRF)."""
    csrf = await login(mall.client, "boss")
    pid = await product_id(mall, keyword)
    resp = await mall.client.post(f"/console/local/products/{pid}", data={"_csrf": csrf, **form},
                                  allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def buy_card(mall, wx, keyword: str, qty: int = 1) -> tuple[str, list[str]]:
    before = len(pushes(mall, BUYER))
    confirm = await buy_for_pickup(mall, wx, BUYER, keyword, qty, store=2, time=None, method_listed=False)
    assert "门店自提：人民广场店" in confirm and "今天" not in confirm       # a service: no pick-up time
    order_no = await pay_in_sandbox(mall, await say(wx, BUYER, "确认"))
    new = pushes(mall, BUYER)[before:]
    return order_no, codes_in(new[-1])


async def ticket(mall, code: str) -> Ticket:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(Ticket).where(Ticket.code == code))


async def verifications(mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Verification))


async def test_a_card_is_used_up_one_visit_at_a_time_and_then_refused(shop):
    await set_product(shop, "纯棉毛巾", kind="card", uses="3", valid_days="30")
    wx = simulator(shop)
    order_no, codes = await buy_card(shop, wx, "纯棉毛巾", qty=2)
    assert len(codes) == 2                                           # a ticket per card bought
    await bind_staff(shop, wx, CLERK, "人民广场店")
    code = codes[0]
    for left in (2, 1, 0):
        shown = await say(wx, CLERK, f"核销 {code}")
        assert f"剩余：{left + 1}/3 次，本次核销 1 次" in shown
        assert f"剩余 {left}/3 次" in await say(wx, CLERK, "确认")
    assert "已经核销过了" in await say(wx, CLERK, f"核销 {code}")
    t = await ticket(shop, code)
    assert (t.uses_left, t.status) == (0, "used")
    assert (await order(shop, order_no)).status == "paid"           # the second card is still unused
    for _ in range(3):
        await say(wx, CLERK, f"核销 {codes[1]}")
        await say(wx, CLERK, "确认")
    assert (await order(shop, order_no)).status == "completed"
    assert await verifications(shop) == 6


async def test_many_verifying_the_last_use_at_once_take_it_once(shop, other_worker):
    await set_product(shop, "纯棉毛巾", kind="card", uses="2", valid_days="30")
    wx = simulator(shop)
    _, (code,) = await buy_card(shop, wx, "纯棉毛巾")
    t = await ticket(shop, code)
    tenant = await shop.svc.tenant("demo")
    now = shop.svc.clock()

    async def one(uows) -> object:
        async with uows() as uow:
            result = await verify(uow, tenant.id, t.id, now, staff=None, actor="admin:test")
            await uow.commit()
            return result

    # two workers (separate engines and connections), 8 attempts on a card of 2 uses
    results = await asyncio.gather(*(one(shop.svc.uows if i % 2 else other_worker) for i in range(8)))
    assert sum(isinstance(r, Verified) for r in results) == 2
    assert all(r.reason == "used" for r in results if isinstance(r, Refusal))
    after = await ticket(shop, code)
    assert (after.uses_left, after.status) == (0, "used")
    assert await verifications(shop) == 2


async def test_expiry_refunds_the_unused_part_of_a_card_once(shop, clock):
    await set_product(shop, "纯棉毛巾", kind="card", uses="3", valid_days="30", refund_unused="1")
    wx = simulator(shop)
    order_no, (code,) = await buy_card(shop, wx, "纯棉毛巾")           # ¥39.00
    await bind_staff(shop, wx, CLERK, "人民广场店")
    await say(wx, CLERK, f"核销 {code}")
    await say(wx, CLERK, "确认")                                     # 1 of 3 used
    t = await ticket(shop, code)
    jobs = {j.name: j for j in shop.svc.registry.jobs}
    clock.at = t.valid_until
    clock.advance(seconds=-1)                                        # not yet due
    assert await jobs["local.expire_tickets"].run() == 0
    clock.advance(seconds=1)
    assert await jobs["local.expire_tickets"].run() == 1
    assert await jobs["local.expire_tickets"].run() == 0             # a second run changes nothing
    await shop.settle()                                              # the refund goes through the gateway
    expired = await ticket(shop, code)
    assert (expired.status, expired.uses_left) == ("expired", 2)
    done = await order(shop, order_no)
    assert done.refunded_fen == 3900 * 2 // 3 == 2600 and done.status == "completed"   # used once, the rest back
    async with shop.svc.uows() as uow:
        (refund,) = (await uow.session.scalars(select(Refund))).all()
        assert (refund.amount_fen, refund.status, refund.reason) == (2600, "succeeded", "券码过期未使用")
        audit = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "refund.request"))
        assert audit.actor == "system:local_services"
    assert "过期，不能核销" in await say(wx, CLERK, f"核销 {code}")


async def test_expiry_without_the_refund_rule_keeps_the_money(shop, clock):
    await set_product(shop, "电动牙刷", kind="service", valid_days="7")
    wx = simulator(shop)
    order_no, (code,) = await buy_card(shop, wx, "电动牙刷")
    clock.at = (await ticket(shop, code)).valid_until
    assert await {j.name: j for j in shop.svc.registry.jobs}["local.expire_tickets"].run() == 1
    await shop.settle()
    assert (await ticket(shop, code)).status == "expired"
    assert (await order(shop, order_no)).refunded_fen == 0
    async with shop.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Refund)) == 0


async def test_console_verifies_and_an_admin_reverses_within_the_window_audited(shop, clock):
    await set_product(shop, "纯棉毛巾", kind="card", uses="3", valid_days="30")
    wx = simulator(shop)
    _, (code,) = await buy_card(shop, wx, "纯棉毛巾")
    t = await ticket(shop, code)
    csrf = await csrf_of(shop.client, f"/console/local/tickets/{t.id}")
    found = await (await shop.client.get(f"/console/local/tickets?code={code[:4]}%20{code[4:8]}%20{code[8:]}")).text()
    assert f'href="/console/local/tickets/{t.id}"' in found
    ok = await shop.client.post(f"/console/local/tickets/{t.id}/verify", data={"_csrf": csrf}, allow_redirects=False)
    assert ok.status == 303
    assert (await ticket(shop, code)).uses_left == 2
    log_page = await (await shop.client.get("/console/local/verifications")).text()
    vid = re.search(r'action="/console/local/verifications/(\d+)/reverse"', log_page).group(1)
    assert "admin:boss" in log_page
    back = await shop.client.post(f"/console/local/verifications/{vid}/reverse", data={"_csrf": csrf},
                                  allow_redirects=False)
    assert back.status == 303 and (await ticket(shop, code)).uses_left == 3
    again = await shop.client.post(f"/console/local/verifications/{vid}/reverse", data={"_csrf": csrf})
    assert again.status == 409 and "已经撤销过了" in await again.text()
    assert (await ticket(shop, code)).uses_left == 3
    async with shop.svc.uows() as uow:
        audit = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "local.verification.reverse"))
        assert audit.actor == "admin:boss" and audit.after == {"uses_left": 3, "status": "active"}

    await shop.client.post(f"/console/local/tickets/{t.id}/verify", data={"_csrf": csrf})
    clock.advance(hours=25)
    log_page = await (await shop.client.get("/console/local/verifications")).text()
    assert "/reverse" not in log_page                               # no button past the window
    late = await shop.client.post(f"/console/local/verifications/{int(vid) + 1}/reverse", data={"_csrf": csrf})
    assert late.status == 409 and "超过 24 小时" in await late.text()
    assert (await ticket(shop, code)).uses_left == 2


@pytest.mark.parametrize(("role", "may_verify", "may_reverse"),
                         [("finance", False, False), ("service", True, False), ("admin", True, True)])
async def test_console_roles(shop, role, may_verify, may_reverse):
    await set_product(shop, "纯棉毛巾", kind="card", uses="3", valid_days="30")
    wx = simulator(shop)
    _, (code,) = await buy_card(shop, wx, "纯棉毛巾")
    t = await ticket(shop, code)
    client = shop.client
    await client.post("/console/logout", data={"_csrf": await csrf_of(client)})
    await make_admin(shop.svc.uows, f"u_{role}", role)
    csrf = await login(client, f"u_{role}")
    assert (await client.get(f"/console/local/tickets/{t.id}")).status == 200     # everyone here may look
    resp = await client.post(f"/console/local/tickets/{t.id}/verify", data={"_csrf": csrf}, allow_redirects=False)
    assert (resp.status == 303) == may_verify and (resp.status == 403) != may_verify
    assert (await ticket(shop, code)).uses_left == (2 if may_verify else 3)
    if may_verify:
        async with shop.svc.uows() as uow:
            vid = await uow.session.scalar(select(Verification.id))
        resp = await client.post(f"/console/local/verifications/{vid}/reverse", data={"_csrf": csrf},
                                 allow_redirects=False)
        assert (resp.status == 303) == may_reverse and (resp.status == 403) != may_reverse


async def test_bind_codes_are_one_time_expiring_and_guessing_is_limited(shop, clock):
    wx = simulator(shop)
    await bind_staff(shop, wx, CLERK, "人民广场店")                 # works once
    csrf = await login(shop.client, "boss")
    page = await (await shop.client.post("/console/local/staff/codes", data={"_csrf": csrf, "store_id": "1"})).text()
    code = re.search(r"绑定码：<strong>([0-9A-Z\-]+)</strong>", page).group(1)
    assert code not in await (await shop.client.get("/console/local/staff")).text()   # shown once
    other = "oUser_local_cards_guess_00001"
    await wx.event(other, "subscribe")
    assert "绑定成功" in await say(wx, other, f"绑定核销员 {code}")
    assert "已经用过了" in await say(wx, CLERK, f"绑定核销员 {code}")
    page = await (await shop.client.post("/console/local/staff/codes", data={"_csrf": csrf, "store_id": "1"})).text()
    late = re.search(r"绑定码：<strong>([0-9A-Z\-]+)</strong>", page).group(1)
    clock.advance(hours=25)
    guesser = "oUser_local_cards_guess_00002"
    await wx.event(guesser, "subscribe")
    assert "已过期" in await say(wx, guesser, f"绑定核销员 {late}")
    for _ in range(4):
        assert "绑定码不对" in await say(wx, guesser, "绑定核销员 ABCDE-FGH23")
    assert "失败次数太多" in await say(wx, guesser, "绑定核销员 ABCDE-FGH23")
    assert "您还不是核销员" in await say(wx, guesser, "核销 123456789012")
