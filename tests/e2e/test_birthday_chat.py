"""Birthdays end to end through the real official-account endpoint (signed, safe mode):
the member sets a birthday in chat (bad dates get told what to type; a second try is
refused), an admin corrects it in the console, and the registered birthday job — run
twice at once — gives the birthday coupon once and pushes one chat message."""

from __future__ import annotations

import asyncio
import re

import pytest

from handlers.mp_simulator import MPSimulator
from social_mall.loyalty import rules as lrules
from social_mall.loyalty import service as loyalty
from social_mall.members.service import resolve_member
from social_mall.pricing.rules import CouponKind
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.console_kit import CSRF_RE, login, make_admin

USER = "oUser_e2e_birthday_00000001"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, text: str) -> str:
    answer = await wx.text(USER, text)
    assert answer.status == 200, answer.body
    return answer.text


async def test_member_sets_a_birthday_once_in_chat_and_admin_corrects_it(mall, wx):
    await wx.event(USER, "subscribe")
    unset = await say(wx, "生日")
    assert "还没有登记生日" in unset and "「生日 05-01」" in unset and "「生日 1990-05-01」" in unset
    assert "生日：未登记" in await say(wx, "会员")

    for bad in ("生日 13-45", "生日 02-30", "生日 1990-02-29", "生日 2999-01-01"):
        refused = await say(wx, bad)
        assert "不是有效的生日" in refused and "「生日 05-01」" in refused, refused
    set_ = await say(wx, "生日 1990-05-01")
    assert "生日已登记：1990年5月1日" in set_ and "不能自行修改" in set_
    locked = await say(wx, "生日 06-01")
    assert "已登记为 1990年5月1日" in locked and "不能自行修改" in locked and "联系客服" in locked
    assert "您的生日：1990年5月1日" in await say(wx, "生日")
    assert "生日：5月1日" in await say(wx, "会员")

    # an admin corrects it in the console (audited); a bad date is a 400 with the format
    async with mall.svc.uows() as uow:
        tenant = await mall.svc.tenant("demo")
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
    await make_admin(mall.svc.uows, "boss_bday")
    await login(mall.client, "boss_bday")
    page = await (await mall.client.get(f"/console/members/{member.id}")).text()
    assert "1990-05-01" in page and f'action="/console/members/{member.id}/birthday"' in page
    csrf = CSRF_RE.search(page).group(1)
    bad = await mall.client.post(f"/console/members/{member.id}/birthday", data={"_csrf": csrf, "birthday": "5月32日"})
    assert bad.status == 400 and "生日格式如 05-01" in await bad.text()
    resp = await mall.client.post(f"/console/members/{member.id}/birthday",
                                  data={"_csrf": csrf, "birthday": "1990-06-01"}, allow_redirects=False)
    assert resp.status == 303
    assert "1990-06-01" in await (await mall.client.get(f"/console/members/{member.id}")).text()
    assert "您的生日：1990年6月1日" in await say(wx, "生日")
    audit = await (await mall.client.get("/console/audit?action=member.birthday")).text()
    assert "member.birthday" in audit


async def test_the_birthday_job_run_twice_at_once_gives_one_coupon_and_one_push(mall, wx):
    svc = mall.svc
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        await loyalty.create_template(uow, tenant.id, name="生日专享券", kind=CouponKind.AMOUNT, off_fen=2000,
                                      claimable=False, issue_on="birthday", valid_days=30)
        await uow.commit()
    await wx.event(USER, "subscribe")
    today = lrules.local_day(svc.clock())
    if (today.month, today.day) == (2, 29):   # can't type a birthday of a common year that doesn't exist
        typed = f"生日 2000-{today:%m-%d}"
    else:
        typed = f"生日 {today:%m-%d}"
    assert "生日已登记" in await say(wx, typed)
    assert "生日专享券" not in await say(wx, "领券")          # issued on the day, not claimable

    job = next(j for j in svc.registry.jobs if j.name == "loyalty.birthday_coupons")
    assert job.seconds <= 3600                                # at least hourly: a restart can't skip a day
    served = await asyncio.gather(job.run(), job.run())
    assert sum(served) == 1
    await mall.settle()
    assert await job.run() == 0
    await mall.settle()
    pushes = [m["text"]["content"] for m in mall.fake.sent_messages(USER) if m.get("msgtype") == "text"]
    greetings = [p for p in pushes if "生日快乐" in p]
    assert len(greetings) == 1 and "生日专享券" in greetings[0] and "「优惠券」" in greetings[0]
    mine = await say(wx, "优惠券")
    assert len(re.findall("生日专享券", mine)) == 1
