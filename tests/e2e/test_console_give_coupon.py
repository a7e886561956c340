"""An administrator gives a member a coupon from the member page (「发放优惠券」): one coupon,
audited, the member told in WeChat; a double click or a resubmit of the same form gives
nothing more; a template whose total is given out is refused in Chinese and gives nothing;
a role without members.edit sees no form and is refused. Through the console over HTTP and
the signed endpoint."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.loyalty import service as loyalty
from social_mall.pricing.rules import CouponKind
from storage.loyalty_models import Coupon
from storage.models import AuditEntry
from tests.conftest import TEST_APP_ID, TEST_TOKEN
from tests.fakes.console_kit import login, make_admin

USER = "oGiveCoupon_0000000000001"


async def state(mall, member: int) -> tuple[int, int]:
    async with mall.svc.uows() as uow:
        coupons = await uow.session.scalar(select(func.count()).select_from(Coupon).where(Coupon.member_id == member))
        audited = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "coupon.issue"))
    return int(coupons or 0), int(audited or 0)


async def member_with_template(mall, name: str, **template) -> tuple[int, int]:
    """The chat member (following through the signed endpoint) and a new coupon template."""
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                     app_id=TEST_APP_ID)
    await wx.event(USER, "subscribe")
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        member = (await uow.members.by_identity(tenant, "mp", USER)).id
        made = await loyalty.create_template(uow, tenant, name=name, kind=CouponKind.AMOUNT, claimable=False,
                                             **template)
        await uow.commit()
    return member, made


def form_key(page: str) -> str:
    return re.search(r'id="give-coupon">.*?name="form_key" value="([0-9a-f]+)"', page, re.S).group(1)


async def test_an_admin_gives_a_member_one_coupon_once_and_the_member_is_told(mall):
    member, gift = await member_with_template(mall, "客服补偿券", off_fen=1000, valid_days=30, per_member=1,
                                              total_qty=1)
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    page = await (await mall.client.get(f"/console/members/{member}")).text()
    assert "客服补偿券（立减¥10.00，剩 1 张）" in page
    key = form_key(page)
    before = await state(mall, member)

    form = {"_csrf": csrf, "form_key": key, "template": str(gift)}
    first = await mall.client.post(f"/console/members/{member}/coupons", data=form, allow_redirects=False)
    again = await mall.client.post(f"/console/members/{member}/coupons", data=form, allow_redirects=False)
    assert (first.status, again.status) == (303, 303)
    assert await state(mall, member) == (before[0] + 1, before[1] + 1)     # one coupon, one audit entry
    await mall.settle()
    told = [m["text"]["content"] for m in mall.fake.sent_messages(USER) if m.get("msgtype") == "text"]
    assert any("客服补偿券" in t for t in told), told
    page = await (await mall.client.get(f"/console/members/{member}")).text()
    assert re.search(r"客服补偿券</td><td>立减¥10.00</td><td>可用</td>", page)

    # the total is given out: a new form is refused, and gives nothing
    page = await (await mall.client.get(f"/console/members/{member}")).text()
    out = await mall.client.post(f"/console/members/{member}/coupons",
                                 data={**form, "form_key": form_key(page)}, allow_redirects=False)
    assert out.status == 409 and "已经发完" in await out.text()
    assert await state(mall, member) == (before[0] + 1, before[1] + 1)
    # a template of another shop or none at all: nothing given
    for bad in ("999999", "x"):
        page = await (await mall.client.get(f"/console/members/{member}")).text()
        refused = await mall.client.post(f"/console/members/{member}/coupons",
                                         data={**form, "form_key": form_key(page), "template": bad},
                                         allow_redirects=False)
        assert refused.status in (400, 404)
    assert await state(mall, member) == (before[0] + 1, before[1] + 1)


async def test_finance_sees_no_form_and_cannot_give(mall):
    member, gift = await member_with_template(mall, "财务不能发", off_fen=500,
                                              valid_until=mall.svc.clock() + timedelta(days=3))
    await make_admin(mall.svc.uows, "money", role="finance")
    csrf = await login(mall.client, "money")
    page = await (await mall.client.get(f"/console/members/{member}")).text()
    assert 'id="coupons"' in page and 'id="give-coupon"' not in page
    before = await state(mall, member)
    refused = await mall.client.post(f"/console/members/{member}/coupons", allow_redirects=False,
                                     data={"_csrf": csrf, "form_key": "a" * 24, "template": str(gift)})
    assert refused.status == 403
    assert await state(mall, member) == before
