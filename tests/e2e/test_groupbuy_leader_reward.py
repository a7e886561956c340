"""团长奖励 end to end, both backends: a campaign pays its team leader a reward per
successful team through the referral ledger. Signed official-account messages open and
join the team, the sandbox pay page's signed notify pays both seats; the reward is then
frozen in the leader's ledger (once however often the success is delivered), reversed in
proportion when a member's order is partly refunded, and released when the orders
complete and the freeze period is over. The ledger reconciles at every step."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.groupbuy import rules as gb_rules
from social_mall.groupbuy import service as groupbuy
from social_mall.members.service import member_of
from social_mall.orders.service import complete_order, ship_order
from social_mall.payments.service import request_refund
from social_mall.referral import rules as ref_rules
from social_mall.referral import service as referral
from storage.models import AuditEntry
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.groupbuy_kit import make_campaign

ADDRESS = "王小明 13912345678 深圳市南山区科技园1号"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, user, text) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def settle(mall) -> None:
    for _ in range(4):
        await mall.settle()


async def pay(mall, placed: str) -> str:
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await settle(mall)
    return re.search(r"订单号：?\s*(\S+)", placed).group(1) if "订单号" in placed else ""


async def team_of_two(mall, wx, leader: str, friend: str, **reward) -> tuple[int, list]:
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, title="丹东草莓", size=2, group_fen=6600,
                            start=datetime.now(timezone.utc), **reward)
        await uow.commit()
    await wx.event(leader, "subscribe")
    await say(wx, leader, "拼团")
    await wx.text(leader, "1")
    await say(wx, leader, "开团")
    await say(wx, leader, "确认")
    placed = await say(wx, leader, ADDRESS)
    team_id = int(re.search(r"团(\d+)", placed).group(1))
    await pay(mall, placed)
    await wx.event(friend, "subscribe", f"qrscene_gb_{team_id}")
    await say(wx, friend, "参团")
    await say(wx, friend, "确认")
    await pay(mall, await say(wx, friend, ADDRESS))
    async with mall.svc.uows() as uow:
        team = await groupbuy.load_team(uow, tenant.id, team_id)
        assert team.status == "succeeded"
        orders = [await uow.orders.get(tenant.id, oid) for oid in (await groupbuy.leader_reward(
            uow, tenant.id, team_id)).order_ids]
    return team_id, orders


async def ledger(mall, leader: str):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        member = await member_of(uow, tenant.id, "mp", leader)
        d = await referral.find_distributor(uow, tenant.id, member)
        rec = await referral.reconcile(uow, tenant.id, d.id)
    assert rec.ok, rec
    return d, rec


async def test_a_leader_reward_is_credited_frozen_reversed_on_refund_and_released_on_completion(mall, wx):
    leader, friend = "oLR_leader_00000000000001", "oLR_friend_00000000000001"
    tenant = await mall.svc.tenant("demo")
    team_id, orders = await team_of_two(mall, wx, leader, friend, leader_reward_bp=1000)   # 10 %
    bases = [o.goods_fen - o.discount_fen for o in orders]
    expected = sum(b * 1000 // 10_000 for b in bases)
    assert expected == 1320
    d, rec = await ledger(mall, leader)
    assert (d.frozen_fen, d.available_fen) == (expected, 0) and rec.by_kind == {"commission": expected}
    texts = [m["text"]["content"] for m in mall.fake.sent_messages(leader) if m["msgtype"] == "text"]
    assert any("团长奖励 ¥13.20" in t for t in texts), texts

    # a repeated success (a retried delivery, a second worker) credits nothing more
    sub = mall.svc.registry.subscribers[("groupbuy.team_succeeded", "referral.leader_reward")]
    from social_mall.plugins import Delivery

    await sub(Delivery(0, tenant.id, "groupbuy.team_succeeded", {"team_id": team_id}, 2))
    d, _ = await ledger(mall, leader)
    assert d.frozen_fen == expected
    async with mall.svc.uows() as uow:
        audits = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "referral.leader_reward", AuditEntry.subject == f"groupbuy_team:{team_id}"))
    assert audits == 1

    # the friend's order is refunded in part: the leader's part on it is reversed pro rata
    friend_order = orders[1]
    part = friend_order.paid_fen // 2
    async with mall.svc.uows() as uow:
        await request_refund(uow, tenant.id, friend_order.id, amount_fen=part, reason="部分退款", actor="admin:1",
                             now=mall.svc.clock())
        await uow.commit()
    await settle(mall)
    share = bases[1] * 1000 // 10_000
    reversed_ = ref_rules.reversal_due(share, 0, friend_order.paid_fen, part, False)
    assert 0 < reversed_ < share
    d, rec = await ledger(mall, leader)
    assert (d.frozen_fen, d.available_fen) == (expected - reversed_, 0)
    assert rec.by_kind == {"commission": expected, "reversal": -reversed_}

    # both orders complete; after the freeze period the rest is available
    start = mall.svc.clock()
    async with mall.svc.uows() as uow:
        for o in orders:
            await ship_order(uow, tenant.id, o.id, tracking_no=f"SF{o.id}", now=start)
            await complete_order(uow, tenant.id, o.id, now=start)
        await uow.commit()
    await settle(mall)
    async with mall.svc.uows() as uow:
        program = await referral.program(uow, tenant.id)
    unfreeze = next(j for j in mall.svc.registry.jobs if j.name == "referral.unfreeze")
    mall.svc.clock = lambda: start + timedelta(days=program.freeze_days, minutes=1)
    assert await unfreeze.run() == 2
    d, rec = await ledger(mall, leader)
    assert (d.frozen_fen, d.available_fen) == (0, expected - reversed_)
    assert "团长奖励" in await say(wx, leader, "我的推广")

    # a refund after the release: the leader's part on that order comes off the available balance
    leader_order = orders[0]
    async with mall.svc.uows() as uow:
        await request_refund(uow, tenant.id, leader_order.id, amount_fen=None, reason="售后退款", actor="admin:1",
                             now=mall.svc.clock())
        await uow.commit()
    await settle(mall)
    d, rec = await ledger(mall, leader)
    assert (d.frozen_fen, d.available_fen) == (0, expected - reversed_ - bases[0] * 1000 // 10_000)


async def test_a_fixed_reward_is_split_over_the_orders_and_sums_exactly(mall, wx):
    leader, friend = "oLR_fix_leader_000000001", "oLR_fix_friend_000000001"
    await team_of_two(mall, wx, leader, friend, leader_reward_fen=501)
    d, rec = await ledger(mall, leader)
    assert (d.frozen_fen, rec.by_kind) == (501, {"commission": 501})


def test_the_split_rules():
    assert ref_rules.leader_reward_split([6600, 6600], fixed_fen=501, rate_bp=0) == [251, 250]
    assert ref_rules.leader_reward_split([6600, 3300], fixed_fen=0, rate_bp=1000) == [660, 330]
    assert ref_rules.leader_reward_split([0, 0], fixed_fen=500, rate_bp=0) == [0, 0]
    bad = gb_rules.CampaignTerms(2, 24, datetime(2026, 1, 1), datetime(2026, 2, 1), 0, 5, 0, False,
                                 leader_reward_fen=100, leader_reward_bp=100)
    assert "leader_reward" in gb_rules.check_terms(bad)
