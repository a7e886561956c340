"""The group-buy and referral console pages through the real app (both backends):
withdrawal decisions (permission, confirmation step, one payout on a double submit,
funds back on a rejection), distributor applications, the commissions CSV, a campaign
created in the console that the chat then lists, tenant scope and CSRF."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.groupbuy import service as gb
from social_mall.members.service import resolve_member
from social_mall.payments.sandbox import SandboxGateway
from social_mall.referral import service as ref
from storage.models import Product, Sku
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes import referral_world as world
from tests.fakes.console_kit import login, make_admin, make_tenant


@pytest.fixture
def transfers(monkeypatch):
    """Every payout the sandbox gateway is asked to make."""
    calls: list[dict] = []
    original = SandboxGateway.transfer

    async def counting(self, **kw):
        calls.append(kw)
        return await original(self, **kw)

    monkeypatch.setattr(SandboxGateway, "transfer", counting)
    return calls


async def funded_withdrawal(mall, tenant_id: int, amount_fen: int = 500, balance_fen: int = 2000):
    """An approved distributor (an official-account member) with `balance_fen` available
    and a withdrawal request of `amount_fen`: (distributor id, withdrawal view)."""
    now = mall.svc.clock()
    async with mall.svc.uows() as uow:
        m, _ = await resolve_member(uow, tenant_id, "mp", f"o_con_{uuid.uuid4().hex[:20]}")
        d = await ref.apply(uow, tenant_id, m.id, now=now)
        await ref.adjust(uow, tenant_id, d.id, balance_fen, reason="测试入账", actor="test", ref=uuid.uuid4().hex,
                         now=now)
        w = await ref.request_withdrawal(uow, tenant_id, m.id, amount_fen, now=now)
        await uow.commit()
    return d.id, w


async def state(mall, tenant_id: int, distributor_id: int, withdrawal_id: int) -> tuple[str, int]:
    async with mall.svc.uows() as uow:
        w = await ref.get_withdrawal(uow, tenant_id, withdrawal_id)
        d = await ref.repo(uow).distributor(tenant_id, distributor_id, fresh=True)
        return w.status, d.available_fen


async def test_operator_without_finance_cannot_approve_a_withdrawal(mall, transfers):
    tenant = await mall.svc.tenant("demo")
    did, w = await funded_withdrawal(mall, tenant.id)
    await make_admin(mall.svc.uows, "op", role="operator")
    csrf = await login(mall.client, "op")
    assert (await mall.client.get("/console/referral/withdrawals")).status == 403
    for path in (f"/console/referral/withdrawals/{w.id}/approve", f"/console/referral/withdrawals/{w.id}/reject"):
        resp = await mall.client.post(path, data={"_csrf": csrf, "confirm": "1", "reason": "不符合规则"},
                                      allow_redirects=False)
        assert resp.status == 403, path
    home = await (await mall.client.get("/console/")).text()
    assert "/console/referral/withdrawals" not in home and "/console/groupbuy" in home   # nav follows the role
    await mall.settle()
    assert await state(mall, tenant.id, did, w.id) == ("requested", 1500)
    assert transfers == []


async def test_admin_approves_one_withdrawal_once_and_rejects_another(mall, transfers):
    tenant = await mall.svc.tenant("demo")
    did, w1 = await funded_withdrawal(mall, tenant.id, amount_fen=500, balance_fen=2000)
    did2, w2 = await funded_withdrawal(mall, tenant.id, amount_fen=700, balance_fen=1000)
    await make_admin(mall.svc.uows, "fin_admin", role="admin")
    csrf = await login(mall.client, "fin_admin")
    listing = await (await mall.client.get("/console/referral/withdrawals")).text()
    assert w1.out_bill_no in listing and w2.out_bill_no in listing and "¥5.00" in listing

    # the first post only asks for confirmation
    confirm = await mall.client.post(f"/console/referral/withdrawals/{w1.id}/approve", data={"_csrf": csrf})
    page = await confirm.text()
    assert confirm.status == 200 and 'id="payout-amount">¥5.00<' in page and 'name="confirm" value="1"' in page
    assert await state(mall, tenant.id, did, w1.id) == ("requested", 1500)

    # a double submit of the confirmation: both answered, one payout
    for _ in range(2):
        resp = await mall.client.post(f"/console/referral/withdrawals/{w1.id}/approve",
                                      data={"_csrf": csrf, "confirm": "1"}, allow_redirects=False)
        assert resp.status == 303 and "done=wd_approved" in resp.headers["Location"]
    await mall.settle()
    assert len(transfers) == 1 and transfers[0]["amount_fen"] == 500
    assert await state(mall, tenant.id, did, w1.id) == ("paid", 1500)
    again = await mall.client.post(f"/console/referral/withdrawals/{w1.id}/approve", data={"_csrf": csrf})
    assert "已处理" in await again.text()
    await mall.settle()
    assert len(transfers) == 1

    # reject the other: a reason is required, then the held funds come back
    resp = await mall.client.post(f"/console/referral/withdrawals/{w2.id}/reject", data={"_csrf": csrf, "reason": ""})
    assert resp.status == 400
    assert await state(mall, tenant.id, did2, w2.id) == ("requested", 300)
    resp = await mall.client.post(f"/console/referral/withdrawals/{w2.id}/reject",
                                  data={"_csrf": csrf, "reason": "信息不符"})
    assert resp.status == 200 and "金额已退回" in await resp.text()
    await mall.settle()
    assert await state(mall, tenant.id, did2, w2.id) == ("rejected", 1000)
    assert len(transfers) == 1
    async with mall.svc.uows() as uow:
        assert (await ref.reconcile(uow, tenant.id, did2)).ok
        assert (await ref.reconcile(uow, tenant.id, did)).ok
    decided = await (await mall.client.get("/console/referral/withdrawals")).text()
    assert "信息不符" in decided and "已打款" in decided
    audit = await (await mall.client.get("/console/audit")).text()
    assert "referral.withdrawal.approved" in audit and "referral.withdrawal.rejected" in audit


async def test_distributor_applications_and_the_commissions_csv(mall):
    tenant = await mall.svc.tenant("demo")
    uows = mall.svc.uows
    async with uows() as uow:
        settings = await ref.program(uow, tenant.id)
        await ref.save_program(uow, tenant.id, dataclasses.replace(settings, auto_approve=False), actor="test",
                               now=mall.svc.clock())
        await uow.commit()
    seller = await world.distributor(uows, tenant)
    loser = await world.distributor(uows, tenant)
    assert seller.status == loser.status == "pending"
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    page = await (await mall.client.get("/console/referral/distributors")).text()
    assert seller.code in page and "待审核申请" in page
    await mall.client.post(f"/console/referral/distributors/{seller.id}/approve", data={"_csrf": csrf})
    await mall.client.post(f"/console/referral/distributors/{loser.id}/reject", data={"_csrf": csrf})
    async with uows() as uow:
        assert (await ref.repo(uow).distributor(tenant.id, seller.id, fresh=True)).status == "approved"
        assert (await ref.repo(uow).distributor(tenant.id, loser.id, fresh=True)).status == "rejected"

    buyer = await world.member(uows, tenant)
    await world.bind(uows, tenant, buyer, seller.code)
    sku = await world.sku(uows, tenant, price_fen=2000)
    order = await world.paid_order(uows, tenant, buyer, [(sku, 1)])
    assert await world.commissions(uows, tenant, order.id)
    listing = await (await mall.client.get("/console/referral/commissions")).text()
    assert order.order_no in listing and "¥2.00" in listing
    page = await (await mall.client.get("/console/referral/distributors")).text()
    assert "¥2.00" in page                                                   # the frozen balance
    resp = await mall.client.get("/console/referral/commissions/export.csv?status=frozen")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    body = (await resp.read()).decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("佣金ID,订单号") and len(lines) == 2
    assert order.order_no in lines[1] and ",2.00," in lines[1]
    none = await mall.client.get("/console/referral/commissions/export.csv?status=reversed")
    assert len((await none.read()).decode("utf-8-sig").strip().splitlines()) == 1


async def demo_product(mall, tenant_id: int, title: str = "丹东草莓") -> tuple[int, list[tuple[int, int]]]:
    async with mall.svc.uows() as uow:
        product = await uow.session.scalar(select(Product).where(Product.tenant_id == tenant_id,
                                                                 Product.title == title))
        skus = (await uow.session.execute(select(Sku.id, Sku.price_fen).where(Sku.product_id == product.id)
                                          .order_by(Sku.id))).all()
    return product.id, [(s.id, s.price_fen) for s in skus]


async def test_a_campaign_created_in_the_console_shows_in_the_chat(mall):
    tenant = await mall.svc.tenant("demo")
    product_id, skus = await demo_product(mall, tenant.id)
    await make_admin(mall.svc.uows, "op", role="operator")                  # operators hold campaigns.edit
    csrf = await login(mall.client, "op")
    form_page = await (await mall.client.get(f"/console/groupbuy/new?product_id={product_id}")).text()
    assert f'name="price_{skus[0][0]}"' in form_page
    now = mall.svc.clock()
    local = lambda at: (at + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731  Shanghai wall clock
    form = {"_csrf": csrf, "product_id": str(product_id), "title": "控制台草莓团", "team_size": "3",
            "lifetime_hours": "24", "starts_at": local(now - timedelta(minutes=5)),
            "ends_at": local(now + timedelta(days=3)), "max_teams_per_member": "0", "max_qty": "5",
            "leader_discount": "1.50", "simulated": "1", "max_extend_hours": "24",
            f"price_{skus[0][0]}": "12.34"}
    bad = await mall.client.post("/console/groupbuy", data={**form, "team_size": "101"})
    assert bad.status == 400 and "成团人数" in await bad.text() and "控制台草莓团" in await bad.text()
    too_dear = await mall.client.post("/console/groupbuy",
                                      data={**form, f"price_{skus[0][0]}": "99999"})
    assert too_dear.status == 400
    greedy = await mall.client.post("/console/groupbuy",                      # 团长奖励 above 50 %
                                    data={**form, "leader_reward_kind": "percent", "leader_reward": "60"})
    assert greedy.status == 400 and "团长奖励" in await greedy.text()
    form = {**form, "leader_reward_kind": "percent", "leader_reward": "2.5"}
    resp = await mall.client.post("/console/groupbuy", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    campaign_id = int(re.search(r"/console/groupbuy/(\d+)", resp.headers["Location"]).group(1))
    async with mall.svc.uows() as uow:
        c = await gb.load_campaign(uow, tenant.id, campaign_id)
    assert (c.team_size, c.lifetime_hours, c.leader_discount_fen, c.simulated, c.max_qty) == (3, 24, 150, True, 5)
    assert [(p.sku_id, p.group_price_fen) for p in c.prices] == [(skus[0][0], 1234)]
    assert (c.leader_reward_bp, c.leader_reward_fen) == (250, 0)
    assert abs((c.ends_at - (now + timedelta(days=3))).total_seconds()) < 61
    listing = await (await mall.client.get("/console/groupbuy")).text()
    assert "控制台草莓团" in listing and "¥12.34" in listing and "进行中" in listing
    detail = await (await mall.client.get(f"/console/groupbuy/{campaign_id}")).text()
    assert "还没有人开团" in detail and "团长奖励：成团实付的 2.5%" in detail

    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    answer = await wx.text("o_console_gb_buyer_00000001", "拼团")
    assert answer.status == 200 and "控制台草莓团" in answer.text and "¥12.34" in answer.text, answer.text

    # a team opened in the chat shows on the campaign's page
    async with mall.svc.uows() as uow:
        from tests.fakes.groupbuy_kit import make_member

        member_id, address_id = await make_member(uow, tenant.id, "o_console_gb_leader_0000001")
        await gb.open_team(uow, tenant.id, member_id, campaign_id, skus[0][0], 1, address_id=address_id,
                           now=mall.svc.clock(), timeout=timedelta(minutes=30))
        await uow.commit()
    detail = await (await mall.client.get(f"/console/groupbuy/{campaign_id}")).text()
    assert "拼团中" in detail and "0 / 1 / 3" in detail


async def test_tenant_b_admin_gets_404_for_tenant_a_ids(mall, transfers):
    a = await mall.svc.tenant("demo")
    did, w = await funded_withdrawal(mall, a.id)
    product_id, skus = await demo_product(mall, a.id)
    async with mall.svc.uows() as uow:
        from tests.fakes.groupbuy_kit import make_campaign

        c = await make_campaign(uow, a.id, start=mall.svc.clock())
        await uow.commit()
    pending = await world.distributor(mall.svc.uows, a)
    await make_tenant(mall.svc.uows, "shop_b")
    await make_admin(mall.svc.uows, "boss_b", tenant_code="shop_b")
    csrf = await login(mall.client, "boss_b")
    assert (await mall.client.get(f"/console/groupbuy/{c.id}")).status == 404
    for path in (f"/console/referral/withdrawals/{w.id}/approve", f"/console/referral/withdrawals/{w.id}/reject",
                 f"/console/referral/distributors/{pending.id}/reject"):
        resp = await mall.client.post(path, data={"_csrf": csrf, "confirm": "1", "reason": "不是你的"})
        assert resp.status == 404, path
    resp = await mall.client.post(f"/console/referral/withdrawals/{w.id}/approve", data={"_csrf": csrf})
    assert resp.status == 404                                                # not even the confirmation
    new_in_b = await mall.client.post("/console/groupbuy", data={
        "_csrf": csrf, "product_id": str(product_id), "title": "偷来的", "team_size": "2", "lifetime_hours": "2",
        "starts_at": "2026-01-01T00:00", "ends_at": "2026-02-01T00:00", f"price_{skus[0][0]}": "1.00"})
    assert new_in_b.status == 404
    b_pages = [await (await mall.client.get(p)).text() for p in (
        "/console/groupbuy", "/console/referral/withdrawals", "/console/referral/commissions")]
    assert all(w.out_bill_no not in p and c.title not in p for p in b_pages)
    await mall.settle()
    assert await state(mall, a.id, did, w.id) == ("requested", 1500)
    assert transfers == []


async def test_missing_csrf_is_403_and_changes_nothing(mall, transfers):
    tenant = await mall.svc.tenant("demo")
    did, w = await funded_withdrawal(mall, tenant.id)
    product_id, skus = await demo_product(mall, tenant.id)
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    for path, data in (
        (f"/console/referral/withdrawals/{w.id}/approve", {"confirm": "1"}),
        (f"/console/referral/withdrawals/{w.id}/reject", {"reason": "没有令牌"}),
        ("/console/groupbuy", {"product_id": str(product_id), "title": "无令牌", "team_size": "2",
                               "lifetime_hours": "2", "starts_at": "2026-01-01T00:00",
                               "ends_at": "2027-01-01T00:00", f"price_{skus[0][0]}": "1.00"}),
    ):
        assert (await mall.client.post(path, data=data)).status == 403, path
        assert (await mall.client.post(path, data={**data, "_csrf": "x" * len(csrf)})).status == 403, path
    await mall.settle()
    assert await state(mall, tenant.id, did, w.id) == ("requested", 1500)
    assert transfers == []
    async with mall.svc.uows() as uow:
        assert not any(c.title == "无令牌" for c in await gb.live_campaigns(uow, tenant.id, mall.svc.clock()))
