"""Shares and coupons in the record. A distributor's card: a visitor follows through its QR
(scene ref_<code>) and another opens its product link (/r/<tenant>/<code>?p=…): each is a
`share` event of the distributor (channel mp / h5, source the scene, ref the visitor). A
coupon claimed in chat and spent on an order paid through the sandbox: `coupon.claimed`
and `coupon.used` (what it took off, the order, the channel, how it was given)."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.loyalty import service as loyalty
from social_mall.pricing.rules import CouponKind
from social_mall.sharing import share_kind
from social_mall_insights.models import Event
from storage.referral_models import Distributor

from ins_kit import ADDRESS, events_of, member_of, pay, record, say, simulator

VISITOR = "oIns_share_visitor_0000001"
BUYER = "oIns_coupon_buyer_0000001"


async def rows_of(mall, member: int, kind: str) -> list[Event]:
    async with mall.svc.uows() as uow:
        return list((await uow.session.execute(select(Event).where(Event.member_id == member, Event.kind == kind)
                                               .order_by(Event.at, Event.id))).scalars())


def test_share_scenes():
    assert share_kind("ref_abcd1234") == "referral" and share_kind("gb_12") == "groupbuy"
    for other in ("", "poster_7", "ref_", "ref_ab", "gb_x", "gb_0", "store_3", "ref_ＡＢＣＤ"):
        assert share_kind(other) is None, other


async def test_a_share_scanned_and_a_share_link_opened_are_the_sharers_events(mall):
    from social_mall.members.service import resolve_member
    from social_mall.referral import rules as ref_rules
    from social_mall.referral import service as referral

    tenant = await mall.svc.tenant("demo")
    now = mall.svc.clock()
    async with mall.svc.uows() as uow:
        if await referral.repo(uow).settings(tenant.id) is None or not (await referral.program(uow, tenant.id)).enabled:
            await referral.save_program(uow, tenant.id, ref_rules.ProgramSettings(enabled=True), actor="t", now=now)
        m, _ = await resolve_member(uow, tenant.id, "mp", "oIns_share_sharer_0000001")
        d = await referral.apply(uow, tenant.id, m.id, now=now)
        await referral.approve_distributor(uow, tenant.id, d.id, actor="t", now=now)
        await uow.commit()
    async with mall.svc.uows() as uow:
        code, sharer = (await uow.session.execute(select(Distributor.code, Distributor.member_id)
                                                  .where(Distributor.id == d.id))).one()
    wx = simulator(mall)
    await wx.event(VISITOR, "subscribe", f"qrscene_ref_{code}")
    assert (await mall.client.get(f"/r/demo/{code}?p=1")).status == 200
    assert (await mall.client.get("/r/demo/zzzz9999")).status == 404          # no such distributor: nothing
    await wx.event("oIns_share_other_00000001", "subscribe", "qrscene_poster_1")  # no share scene
    await record(mall)
    visitor = await member_of(mall, VISITOR)
    shares = await rows_of(mall, sharer, "share")
    assert [(e.channel, e.source, e.ref, e.props["via"], e.props["what"], e.props["product"]) for e in shares] == [
        ("mp", f"ref_{code}", visitor, "qr", "referral", 0),
        ("h5", f"ref_{code}", 0, "link", "product", 1)]
    assert "share" not in [k for k, *_ in await events_of(mall, visitor)]
    from social_mall_insights.reports import timeline

    async with mall.svc.uows() as uow:     # the sharer's timeline on the console member page
        items = [(i.label, i.detail) for i in await timeline(uow, tenant.id, sharer) if i.kind == "share"]
    assert items == [("分享被打开", "via=link what=product"), ("分享被打开", "via=qr what=referral")]
    async with mall.svc.uows() as uow:   # the page's raw activity is not kept as an anonymous row
        assert (await uow.session.execute(select(Event).where(Event.kind == "share.open"))).first() is None


async def test_a_coupon_claimed_in_chat_and_used_on_a_paid_order(mall):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await loyalty.create_template(uow, tenant.id, name="立减5元", kind=CouponKind.AMOUNT, threshold_fen=0,
                                      off_fen=500, total_qty=10, valid_days=30)
        await uow.commit()
    wx = simulator(mall)
    await wx.event(BUYER, "subscribe")
    listing = await say(wx, BUYER, "领券")
    n = next(line.split(".")[0] for line in listing.splitlines() if "立减5元" in line)
    assert "领取成功" in await say(wx, BUYER, n)
    await say(wx, BUYER, "分类")
    await say(wx, BUYER, "1")
    await wx.text(BUYER, "1")
    await say(wx, BUYER, "1×2")
    confirm = await say(wx, BUYER, ADDRESS)
    assert "立减5元：-¥5.00" in confirm, confirm
    order_no = await pay(mall, await say(wx, BUYER, "确认"))
    await record(mall)
    member = await member_of(mall, BUYER)
    (claimed,) = await rows_of(mall, member, "coupon.claimed")
    (used,) = await rows_of(mall, member, "coupon.used")
    (paid,) = await rows_of(mall, member, "order.paid")
    assert used.ref == claimed.ref and used.amount_fen == 500
    from social_mall_insights.reports import timeline

    async with mall.svc.uows() as uow:
        labels = [i.label for i in await timeline(uow, tenant.id, member)]
    assert "使用优惠券" in labels and "领取优惠券" in labels
    assert (used.channel, used.source, used.props["order"]) == ("mp", claimed.source, paid.ref)
    assert (claimed.channel, claimed.source, claimed.props["name"]) == ("mp", "claim", "立减5元") and order_no


GIFTED, BIRTHDAY_BUYER = "oIns_coupon_gifted_0000001", "oIns_coupon_bday_00000001"


async def test_coupons_given_by_an_admin_or_a_job_carry_their_channel_into_the_reports(mall):
    """An admin's coupon (channel console, source admin:<actor>) spent on a paid order, and the
    birthday job's (channel job, source event:birthday, told once by the birthday push): both
    recorded, counted by the attribution's coupon table, never as the member's visit."""
    from datetime import timedelta

    from social_mall.members.service import change_birthday
    from social_mall.members.rules import Birthday
    from social_mall_insights import reports
    from social_mall_insights.models import Daily
    from social_mall_insights.rules import shanghai_day

    from ins_kit import job

    tenant = await mall.svc.tenant("demo")
    now = mall.svc.clock()
    today = shanghai_day(now)
    wx = simulator(mall)
    for u in (GIFTED, BIRTHDAY_BUYER):
        await wx.event(u, "subscribe")
    await record(mall)
    gifted, bday = await member_of(mall, GIFTED), await member_of(mall, BIRTHDAY_BUYER)
    async with mall.svc.uows() as uow:
        gift = await loyalty.create_template(uow, tenant.id, name="店长赠券", kind=CouponKind.AMOUNT, threshold_fen=0,
                                             off_fen=300, total_qty=10, valid_days=30, claimable=False)
        await loyalty.create_template(uow, tenant.id, name="生日礼券", kind=CouponKind.AMOUNT, off_fen=1000,
                                      claimable=False, issue_on="birthday", valid_days=30, per_member=1)
        await loyalty.issue_coupon(uow, tenant.id, gifted, gift, actor="admin:7", now=now)
        await change_birthday(uow, tenant.id, bday, Birthday(today.month, today.day, 1990), actor="admin:7")
        await uow.commit()
    await mall.settle()
    assert len(mall.fake.sent_messages(GIFTED)) == 1            # the admin's coupon is pushed
    assert await job(mall, "loyalty.birthday_coupons") >= 1
    await mall.settle()
    assert len(mall.fake.sent_messages(BIRTHDAY_BUYER)) == 1    # one birthday message, not one per coupon too

    await say(wx, GIFTED, "分类")
    await say(wx, GIFTED, "1")
    await wx.text(GIFTED, "1")
    await say(wx, GIFTED, "1×1")
    confirm = await say(wx, GIFTED, ADDRESS)
    assert "店长赠券：-¥3.00" in confirm, confirm
    await pay(mall, await say(wx, GIFTED, "确认"))
    await record(mall)

    (given,) = await rows_of(mall, gifted, "coupon.claimed")
    (used,) = await rows_of(mall, gifted, "coupon.used")
    (paid,) = await rows_of(mall, gifted, "order.paid")
    (birthday,) = await rows_of(mall, bday, "coupon.claimed")
    assert (given.channel, given.source) == ("console", "admin:admin:7")
    assert (birthday.channel, birthday.source, birthday.props["name"]) == ("job", "event:birthday", "生日礼券")
    assert (used.source, used.props["order"]) == ("admin:admin:7", paid.ref)

    async with mall.svc.uows() as uow:
        daily = {(c, k): m for c, k, m in await uow.session.execute(
            select(Daily.channel, Daily.kind, Daily.members).where(Daily.tenant_id == tenant.id, Daily.day == today))}
        a = await reports.attribution(uow, tenant.id)
        f = await reports.funnel(uow, tenant.id, today - timedelta(days=1), today)
    assert daily[("console", "coupon.claimed")] == 1 and daily[("job", "coupon.claimed")] == 1
    assert ("console", "*") not in daily and ("job", "*") not in daily      # a gift is not a visit
    assert {"console", "job"} <= set(f.channels)
    coupons = {x.key: x for x in a.coupons}
    assert (coupons["admin:admin:7"].label, coupons["admin:admin:7"].members, coupons["admin:admin:7"].buyers,
            coupons["admin:admin:7"].revenue_fen) == ("后台发放（admin:7）", 1, 1, paid.amount_fen)
    assert (coupons["event:birthday"].label, coupons["event:birthday"].members,
            coupons["event:birthday"].buyers) == ("自动发放（birthday）", 1, 0)
    await make_admin_and_see(mall)


async def make_admin_and_see(mall) -> None:
    from tests.fakes.console_kit import login, make_admin

    await make_admin(mall.svc.uows, "boss_coupon_attr")
    await login(mall.client, "boss_coupon_attr")
    page = await (await mall.client.get("/console/insights/attribution")).text()
    assert 'id="attr-coupons"' in page and "后台发放（admin:7）" in page and "自动发放（birthday）" in page
    data = await (await mall.client.get("/console/insights/attribution?format=json")).json()
    assert {x["key"] for x in data["coupons"]} >= {"admin:admin:7", "event:birthday"}
