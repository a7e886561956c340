"""Order events in any delivery order (issue #17 item 15), through the outbox worker and the
real subscribers, both backends.

Each outbox row is retried on its own, so a module can see `order.refunded` before the
`order.paid` it follows: a failed delivery waits for its backoff while the refund's rows go
through. Here the money subscribers of `order.paid` are made to fail (as a database hiccup
would) until the refund has been delivered; the worker then retries them. The distributors'
commissions, the ledgers and the buyer's points must come out exactly as when the events
arrive in order."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.loyalty import service as loyalty
from social_mall.members.service import resolve_member
from social_mall.orders.service import find_order
from social_mall.outbox import dispatch_due
from social_mall.payments.service import request_refund
from social_mall.plugins import Delivery
from social_mall.referral import service as referral
from storage.models import OutboxEvent
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN

PAID_MONEY = (("order.paid", "referral.commission"), ("order.paid", "loyalty.earn"),
              ("order.paid", "groupbuy.confirm_seat"))


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=False)


async def say(wx, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def settle(mall) -> None:
    for _ in range(4):     # a refund's order.refunded is emitted by a subscriber: another round
        await mall.settle()


async def deliver_retries(mall) -> None:
    """Run the worker at a time past every backoff, until nothing is due."""
    later = datetime.now(timezone.utc) + timedelta(minutes=10)
    while await dispatch_due(mall.svc.uows, mall.svc.outbox.subscribers, now=lambda: later):
        pass
    await settle(mall)


@contextmanager
def failing(mall, keys: Sequence[tuple[str, str]]) -> Iterator[None]:
    """These subscribers fail while inside: the worker records the failure and retries the
    delivery after its backoff, as it does for any error."""
    subscribers = mall.svc.outbox.subscribers
    saved = {k: subscribers[k] for k in keys if k in subscribers}

    async def down(d: Delivery) -> None:
        raise ConnectionError("subscriber unavailable (test)")

    for k in saved:
        subscribers[k] = down
    try:
        yield
    finally:
        subscribers.update(saved)


async def become_distributor(mall, wx, user: str, scene: str = "") -> str:
    await wx.event(user, "subscribe", f"qrscene_{scene}" if scene else "")
    await settle(mall)
    approved = await say(wx, user, "申请分销")
    assert "你已成为分销员" in approved
    await settle(mall)
    return re.search(r"推广码 (\w+)", approved).group(1)


async def place(wx, user: str) -> str:
    """赣南脐橙 5斤装 ×2 in chat; returns the confirmation with the pay link."""
    await say(wx, user, "分类")
    await say(wx, user, "1")
    await wx.text(user, "1")
    await say(wx, user, "1 x2")
    await say(wx, user, "王小明 13912345678 广东省深圳市南山区科技园1号")
    return await say(wx, user, "确认")


async def pay(mall, placed: str) -> str:
    """The sandbox pay page's 确认支付: a signed pay notify into the real endpoint."""
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    return re.search(r"订单号：(\d+)", placed).group(1)


async def points_of(mall, tenant_id: int, openid: str) -> int:
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant_id, "mp", openid)
        return await loyalty.points_balance(uow, tenant_id, member.id)


@pytest.mark.parametrize("refund", ["partial", "full"])
@pytest.mark.parametrize("delivery", ["paid_first", "refunded_first"])
async def test_commissions_and_points_are_exact_in_any_delivery_order(mall, wx, delivery, refund):
    z, a, b = "oOoo_Z_000000000000000001", "oOoo_A_000000000000000001", "oOoo_B_000000000000000001"
    z_code = await become_distributor(mall, wx, z)
    a_code = await become_distributor(mall, wx, a, scene=f"ref_{z_code}")      # Z referred A
    await wx.event(b, "subscribe", f"qrscene_ref_{a_code}")                     # A referred B
    await settle(mall)
    tenant = await mall.svc.tenant("demo")
    points_before = await points_of(mall, tenant.id, b)
    placed = await place(wx, b)

    with failing(mall, PAID_MONEY if delivery == "refunded_first" else ()):
        order_no = await pay(mall, placed)
        await settle(mall)                  # refunded_first: the paid deliveries fail and wait
        async with mall.svc.uows() as uow:
            order = await find_order(uow, tenant.id, order_no)
            await request_refund(uow, tenant.id, order.id, amount_fen=order.paid_fen // 2 if refund == "partial"
                                 else None, reason="退款", actor="admin:1", now=mall.svc.clock())
            await uow.commit()
        await settle(mall)                  # the refund goes out, order.refunded is delivered
    await deliver_retries(mall)             # refunded_first: now order.paid arrives

    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        program = await referral.program(uow, tenant.id)
        stuck = await uow.session.scalar(select(func.count()).select_from(OutboxEvent)
                                         .where(OutboxEvent.status != "done"))
        paid, refunded = order.paid_fen, order.refunded_fen
        assert refunded == (paid // 2 if refund == "partial" else paid) and paid > 0
        assert stuck == 0
        base = order.goods_fen - order.discount_fen                     # one line: the goods paid
        for code, bp in ((a_code, program.level1_bp), (z_code, program.level2_bp)):
            d = await referral.distributor_by_code(uow, tenant.id, code)
            gross = base * bp // 10_000
            kept = 0 if refund == "full" else gross * (paid - refunded) // paid
            assert gross > kept >= 0
            assert (d.frozen_fen, d.available_fen) == (kept, 0), (code, d)
            rec = await referral.reconcile(uow, tenant.id, d.id)
            assert rec.ok and rec.by_kind == {"commission": gross, "reversal": kept - gross}, rec
            made = await referral.commissions_for_order(uow, tenant.id, order.id)
            mine = [c for c in made if c.distributor_id == d.id]
            assert [(c.amount_fen, c.status) for c in mine] == [
                (gross, "reversed" if refund == "full" else "frozen")]
        cfg = await loyalty.config(uow, tenant.id)
    earned = paid // 100 * cfg.earn_points_per_yuan
    clawed = earned if refund == "full" else earned * refunded // paid
    assert await points_of(mall, tenant.id, b) == points_before + earned - clawed


async def test_an_order_completed_before_its_commission_is_booked_still_unfreezes(mall, wx):
    """order.completed (which starts the freeze clock) handled before order.paid booked the
    commission: the commission still unfreezes when the freeze period is over."""
    from social_mall.orders.service import complete_order, ship_order

    a, b = "oOoo_A_000000000000000002", "oOoo_B_000000000000000002"
    a_code = await become_distributor(mall, wx, a)
    await wx.event(b, "subscribe", f"qrscene_ref_{a_code}")
    await settle(mall)
    tenant = await mall.svc.tenant("demo")
    placed = await place(wx, b)
    start = mall.svc.clock()
    with failing(mall, [("order.paid", "referral.commission")]):
        order_no = await pay(mall, placed)
        async with mall.svc.uows() as uow:
            order = await find_order(uow, tenant.id, order_no)
            await ship_order(uow, tenant.id, order.id, tracking_no="SF200", now=start)
            await complete_order(uow, tenant.id, order.id, now=start)
            await uow.commit()
        await settle(mall)                  # order.completed is delivered: no commission to schedule yet
    await deliver_retries(mall)             # now the commission is booked
    async with mall.svc.uows() as uow:
        program = await referral.program(uow, tenant.id)
        gross = (order.goods_fen - order.discount_fen) * program.level1_bp // 10_000
        assert (await referral.distributor_by_code(uow, tenant.id, a_code)).frozen_fen == gross > 0
    unfreeze = next(j for j in mall.svc.registry.jobs if j.name == "referral.unfreeze")
    mall.svc.clock = lambda: start + timedelta(days=program.freeze_days, minutes=1)
    assert await unfreeze.run() == 1
    async with mall.svc.uows() as uow:
        d = await referral.distributor_by_code(uow, tenant.id, a_code)
        rec = await referral.reconcile(uow, tenant.id, d.id)
    assert (d.frozen_fen, d.available_fen) == (0, gross) and rec.ok


@pytest.mark.parametrize("delivery", ["paid_first", "refunded_first"])
async def test_a_groupbuy_seat_refunded_by_the_merchant_ends_refunded_and_its_failed_team_settles(
        mall, wx, delivery):
    """A merchant refunds a team member's order in full. Whichever of order.paid and
    order.refunded the group-buy module sees first, the seat ends refunded; when the team
    then fails, the refund run asks no second refund and the team reaches refunded."""
    from social_mall.groupbuy import service as groupbuy
    from storage.groupbuy_models import GroupbuySeat
    from storage.models import Refund
    from tests.fakes.groupbuy_kit import make_campaign

    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, title="丹东草莓", size=2, start=datetime.now(timezone.utc))
        await uow.commit()
    leader = "oOoo_GB_leader_0000000001"
    await wx.event(leader, "subscribe")
    await say(wx, leader, "拼团")
    await wx.text(leader, "1")
    await say(wx, leader, "开团")
    await say(wx, leader, "确认")
    placed = await say(wx, leader, "王小明 13912345678 深圳市南山区科技园1号")
    team_id = int(re.search(r"团(\d+)", placed).group(1))

    with failing(mall, [("order.paid", "groupbuy.confirm_seat")] if delivery == "refunded_first" else ()):
        order_no = await pay(mall, placed)
        await settle(mall)
        async with mall.svc.uows() as uow:
            order = await find_order(uow, tenant.id, order_no)
            await request_refund(uow, tenant.id, order.id, amount_fen=None, reason="商家退款", actor="admin:1",
                                 now=mall.svc.clock())
            await uow.commit()
        await settle(mall)
    await deliver_retries(mall)

    async def seat_and_team() -> tuple[str, str]:
        async with mall.svc.uows() as uow:
            seat = await uow.session.scalar(select(GroupbuySeat).where(GroupbuySeat.order_id == order.id))
            team = await groupbuy.load_team(uow, tenant.id, team_id)
        return seat.status, team.status

    assert await seat_and_team() == ("refunded", "forming")
    start = datetime.now(timezone.utc)
    mall.svc.clock = lambda: start + timedelta(hours=25)          # the team's time runs out
    jobs = {j.name: j.run for j in mall.svc.registry.jobs}
    await jobs["groupbuy.expire"]()
    await settle(mall)
    await jobs["groupbuy.refund"]()
    await settle(mall)
    assert await seat_and_team() == ("refunded", "refunded")
    async with mall.svc.uows() as uow:
        refunds = (await uow.session.scalars(select(Refund).where(Refund.order_id == order.id))).all()
    assert [(r.amount_fen, r.status) for r in refunds] == [(order.paid_fen, "succeeded")]   # refunded once
