"""Broadcasts (群发) end to end (both backends): the console (HTTP, CSRF) binds the admin's
own openid by a code sent in chat (signed endpoint), previews to it (mass/preview), sends an
article to the members who bought in a category (mass/send by openid list, recorded by the
fake WeChat), once however often the form is posted; MASSSENDJOBFINISH posted to the
official-account endpoint is recorded once and makes no member; the monthly quota (4 a
follower) is counted and a 5th send refused in Chinese with nothing saved or sent; a
scheduled broadcast is sent once by two workers running the job together."""

from __future__ import annotations

import asyncio
import copy
import re
from datetime import timedelta

from sqlalchemy import func, select

from social_mall.catalog.service import list_products
from social_mall_content import sender
from social_mall_content.models import Broadcast, BroadcastRecipient
from storage.models import AuditEntry, Member, Product, Sku
from tests.fakes.console_kit import csrf_of, login, make_admin, paid_order

from test_content_articles import make, post, wx_of

ADMIN = "oAdmin_content_bc_000000001"
BUYERS = ("oBuyer_content_bc_00000001", "oBuyer_content_bc_00000002")
OTHER = "oOther_content_bc_00000001"
KEY_RE = re.compile(r'name="key" value="([0-9a-f]+)"')


async def form_key(mall) -> str:
    page = await (await mall.client.get("/console/content/broadcasts")).text()
    return KEY_RE.search(page).group(1)


async def counts(mall) -> tuple[int, int]:
    async with mall.svc.uows() as uow:
        return (await uow.session.scalar(select(func.count()).select_from(Broadcast)),
                await uow.session.scalar(select(func.count()).select_from(BroadcastRecipient)))


async def shop(backend, tmp_path, fake_wechat, aiohttp_client):
    mall = await make(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = wx_of(mall)
    for user in (ADMIN, *BUYERS, OTHER):
        await wx.event(user, "subscribe")
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        mango = (await list_products(uow, tenant.id, keyword="芒果干")).items[0].id
        category = await uow.session.scalar(select(Product.category_id).where(Product.id == mango))
        sku = await uow.session.scalar(select(Sku.id).where(Sku.product_id == mango).order_by(Sku.id).limit(1))
    for user in BUYERS:
        await paid_order(mall.svc.uows, tenant.id, user, sku_id=sku)
    await make_admin(mall.svc.uows, "boss", role="owner")
    await login(mall.client, "boss")
    saved = await post(mall, "/console/content/new", title="年货节", digest="芒果干第二件半价", body="<p>年货</p>",
                       products=f"{mango}", published="1")
    aid = int(re.search(r"/console/content/(\d+)", saved.headers["Location"]).group(1))
    return mall, wx, tenant, category, aid


async def test_preview_send_to_a_segment_once_and_the_job_finished_event(backend, engine, tmp_path, fake_wechat,
                                                                         aiohttp_client):
    mall, wx, tenant, category, aid = await shop(backend, tmp_path, fake_wechat, aiohttp_client)

    refused = await post(mall, "/console/content/broadcasts/preview", article=str(aid), text="", segment="all")
    assert refused.status == 400 and "请先绑定预览微信号" in await refused.text()
    assert fake_wechat.mass_previews == []
    page = await (await post(mall, "/console/content/broadcasts/bind")).text()
    code = re.search(r"预览绑定 ([0-9A-Z]{5}-[0-9A-Z]{5})", page).group(1)
    wrong = code[:2] + ("00000000" if code[2:].replace("-", "") != "00000000" else "11111111")
    assert "绑定码不对或已过期" in (await wx.text(OTHER, f"预览绑定 {wrong}")).text
    assert "已绑定" in (await wx.text(ADMIN, f"预览绑定 {code.lower()}")).text        # typed in any case
    assert "绑定码不对或已过期" in (await wx.text(OTHER, f"预览绑定 {code}")).text     # spent

    ok = await post(mall, "/console/content/broadcasts/preview", article=str(aid), text="今晚 8 点开抢", segment="all")
    assert ok.status == 303, await ok.text()
    (shown,) = fake_wechat.mass_previews
    assert shown["touser"] == ADMIN and shown["msgtype"] == "text"
    assert "今晚 8 点开抢" in shown["text"]["content"] and "【年货节】芒果干第二件半价" in shown["text"]["content"]
    assert f"/h5/article/demo/{aid}" in shown["text"]["content"]
    assert fake_wechat.mass_sent == []

    bad = await post(mall, "/console/content/broadcasts", key=await form_key(mall), article="", text="", segment="all")
    assert bad.status == 400 and "请填写群发内容" in await bad.text()
    bad = await post(mall, "/console/content/broadcasts", key=await form_key(mall), article="999999", segment="all")
    assert bad.status == 400 and "图文须为本店已发布的图文" in await bad.text()
    bad = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="hi", segment="vip")
    assert bad.status == 400 and "请选择发送对象" in await bad.text()
    bad = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="hi", segment="level:钻石")
    assert bad.status == 400 and "不足 2 人" in await bad.text()
    assert await counts(mall) == (0, 0) and fake_wechat.mass_sent == []

    key = await form_key(mall)
    form = {"key": key, "article": str(aid), "text": "", "segment": f"category:{category}"}
    first, again = await asyncio.gather(post(mall, "/console/content/broadcasts", **form),
                                        post(mall, "/console/content/broadcasts", **form))
    assert {first.status, again.status} == {303}
    assert sorted(r.headers["Location"].split("notice=")[1] for r in (first, again)) == ["repeat", "sent"]
    (job,) = fake_wechat.mass_sent                                          # a double click sends once
    assert sorted(job["touser"]) == sorted(BUYERS) and job["clientmsgid"]
    assert f"/h5/article/demo/{aid}" in job["text"]["content"]
    assert await counts(mall) == (1, 2)
    async with mall.svc.uows() as uow:
        actions = set((await uow.session.scalars(select(AuditEntry.action).where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.action.like("broadcast.%")))).all())
        members = await uow.session.scalar(select(func.count()).select_from(Member))
    assert {"broadcast.create", "broadcast.sent", "broadcast.preview", "broadcast.previewer_bound"} <= actions

    finish = wx._envelope("oSystem_masssend_0000000001", "event",
                          f"<Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>{job['msg_id']}</MsgID>"
                          "<Status><![CDATA[send success]]></Status><TotalCount>2</TotalCount>"
                          "<FilterCount>2</FilterCount><SentCount>2</SentCount><ErrorCount>0</ErrorCount>"
                          "<CopyrightCheckResult><Count>0</Count><CheckState>1</CheckState></CopyrightCheckResult>",
                          None)
    for _ in range(2):                                                       # WeChat's retry: recorded once
        answer = await wx.post(*wx.signed_request(finish, user="oSystem_masssend_0000000001"))
        assert answer.status == 200 and answer.body == "success"
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast))
        assert (row.status, row.result, row.sent_count, row.total_count) == ("finished", "send success", 2, 2)
        assert await uow.session.scalar(select(func.count()).select_from(Member)) == members   # no member made
    listing = await (await mall.client.get("/console/content/broadcasts")).text()
    assert "已完成" in listing and "送达 2 / 2" in listing


async def test_the_monthly_quota_is_counted_and_a_fifth_send_refused(backend, engine, tmp_path, fake_wechat,
                                                                     aiohttp_client):
    mall, wx, tenant, category, aid = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    for i in range(4):
        sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text=f"第{i + 1}期",
                          segment=f"category:{category}")
        assert sent.headers["Location"].endswith("notice=sent"), await sent.text()
    assert len(fake_wechat.mass_sent) == 4 and await counts(mall) == (4, 8)
    refused = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="第5期",
                         segment=f"category:{category}")
    assert refused.status == 400
    assert "本月群发次数已用完：服务号每位粉丝每月最多收到 4 次群发，该人群 2 人均已收满" in await refused.text()
    assert len(fake_wechat.mass_sent) == 4 and await counts(mall) == (4, 8)          # nothing saved or sent
    # the others still may: the buyers (at 4) are left out, the rest get it
    wider = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="第5期", segment="all")
    assert wider.headers["Location"].endswith("notice=sent")
    assert sorted(fake_wechat.mass_sent[-1]["touser"]) == sorted([ADMIN, OTHER])
    async with mall.svc.uows() as uow:
        last = await uow.session.scalar(select(Broadcast).order_by(Broadcast.id.desc()).limit(1))
    assert (last.recipients, last.skipped) == (2, 2)
    # WeChat refusing gives the quota back
    fake_wechat.fail_next("/cgi-bin/message/mass/send", 45028)
    failed = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="第6期", segment="all")
    assert failed.headers["Location"].endswith("notice=failed")
    async with mall.svc.uows() as uow:
        last = await uow.session.scalar(select(Broadcast).order_by(Broadcast.id.desc()).limit(1))
        given_back = await uow.session.scalar(select(func.count()).select_from(BroadcastRecipient)
                                              .where(BroadcastRecipient.broadcast_id == last.id))
    assert last.status == "failed" and "45028" in last.error and given_back == 0


async def test_a_product_goes_out_with_its_price_and_buy_link_and_an_off_shelf_one_is_refused(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall, wx, tenant, category, aid = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    async with mall.svc.uows() as uow:
        mango = await uow.session.scalar(select(Product.id).where(Product.title == "芒果干"))
        low = await uow.session.scalar(select(func.min(Sku.price_fen)).where(Sku.product_id == mango))
    page = await (await mall.client.get("/console/content/broadcasts")).text()
    assert f'<option value="{mango}"' in page and "不附商品" in page

    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), product=str(mango),
                      text="年货节特惠", segment=f"category:{category}")
    assert sent.headers["Location"].endswith("notice=sent"), await sent.text()
    (job,) = fake_wechat.mass_sent
    content = job["text"]["content"]
    assert content.startswith("年货节特惠") and f"【芒果干】¥{low // 100}.{low % 100:02d}" in content
    assert f'<a href="http' in content and f"/h5/product/demo/{mango}\">立即购买</a>" in content
    assert sorted(job["touser"]) == sorted(BUYERS)
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast))
    assert row.product_id == mango
    listing = await (await mall.client.get("/console/content/broadcasts")).text()
    assert f"商品#{mango}" in listing

    async with mall.svc.uows() as uow:                                       # taken off the shelf
        (await uow.session.get(Product, mango)).on_shelf = False
        await uow.commit()
    before = await counts(mall)
    for product in (str(mango), "999999", "abc"):
        refused = await post(mall, "/console/content/broadcasts", key=await form_key(mall), product=product,
                             segment="all")
        assert refused.status == 400 and "商品须为本店在售且有库存的商品" in await refused.text()
    assert await counts(mall) == before and len(fake_wechat.mass_sent) == 1   # nothing saved or sent


async def test_a_scheduled_broadcast_goes_once_with_two_workers(backend, engine, tmp_path, fake_wechat,
                                                                aiohttp_client, other_worker):
    mall, wx, tenant, category, aid = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    now = mall.svc.clock()
    at = (now + timedelta(hours=2)).astimezone(sender.B.SHANGHAI).strftime("%Y-%m-%d %H:%M")
    past = await post(mall, "/console/content/broadcasts", key=await form_key(mall), article=str(aid),
                      segment="all", schedule="2020-01-01 09:00")
    assert past.status == 400 and "定时须为将来的时间" in await past.text()
    made = await post(mall, "/console/content/broadcasts", key=await form_key(mall), article=str(aid),
                      segment="all", schedule=at)
    assert made.headers["Location"].endswith("notice=scheduled")
    assert fake_wechat.mass_sent == [] and await sender.dispatch_due(mall.svc) == 0       # not yet due

    later = now + timedelta(hours=3)
    one, two = copy.copy(mall.svc), copy.copy(mall.svc)
    one.clock = two.clock = lambda: later
    two.uows = other_worker
    results = await asyncio.gather(sender.dispatch_due(one), sender.dispatch_due(two))
    assert sorted(results) == [0, 1]
    (job,) = fake_wechat.mass_sent
    assert sorted(job["touser"]) == sorted([ADMIN, *BUYERS, OTHER])
    assert await sender.dispatch_due(one) == 0 and len(fake_wechat.mass_sent) == 1
    # one scheduled for a segment that is too small when its time comes: failed, the reason in Chinese
    few = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="钻石专享",
                     segment="level:钻石", schedule=at)
    assert few.headers["Location"].endswith("notice=scheduled")
    assert await sender.dispatch_due(one) == 0 and len(fake_wechat.mass_sent) == 1
    listing = await (await mall.client.get("/console/content/broadcasts")).text()
    assert "失败" in listing and "可接收的粉丝不足 2 人" in listing


async def test_an_operator_may_not_broadcast(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall = await make(backend, tmp_path, fake_wechat, aiohttp_client)
    await make_admin(mall.svc.uows, "ops", role="operator")
    await login(mall.client, "ops")
    assert (await mall.client.get("/console/content/broadcasts")).status == 403
    refused = await post(mall, "/console/content/broadcasts", key="abcdef0123456789", text="hi", segment="all")
    assert refused.status == 403 and await counts(mall) == (0, 0) and fake_wechat.mass_sent == []


async def test_switched_off_no_broadcast_page_and_the_event_reads_as_before(backend, engine, tmp_path, fake_wechat,
                                                                            aiohttp_client):
    off = await make(backend, tmp_path, fake_wechat, aiohttp_client, disabled=["content"])
    await make_admin(off.svc.uows, "boss", role="owner")
    await login(off.client, "boss")
    assert (await off.client.get("/console/content/broadcasts")).status == 404
    wx = wx_of(off)
    async with off.svc.uows() as uow:
        before = await uow.session.scalar(select(func.count()).select_from(Member))
    finish = wx._envelope("oSystem_masssend_0000000002", "event",
                          "<Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>1000001625</MsgID>"
                          "<Status><![CDATA[send success]]></Status>", None)
    assert (await wx.post(*wx.signed_request(finish, user="oSystem_masssend_0000000002"))).status == 200
    async with off.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Member)) == before + 1   # the chat ran


async def test_a_broadcast_a_dead_worker_left_sending_goes_once(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    from sqlalchemy import update

    from social_mall_content import broadcasts as B

    mall, wx, tenant, category, aid = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    now = mall.svc.clock()
    at = (now + timedelta(hours=1)).astimezone(B.SHANGHAI).strftime("%Y-%m-%d %H:%M")
    await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="老客回馈",
               segment=f"category:{category}", schedule=at)
    took = now + timedelta(hours=2)
    async with mall.svc.uows() as uow:                                   # a worker takes it, then dies
        (bid,) = [i for _, i in await B.due(uow, took)]
        assert await B.claim(uow, tenant.id, bid, now=took, page_url=B.Urls(str, str)) is not None
        await uow.commit()
    worker = copy.copy(mall.svc)
    worker.clock = lambda: took + timedelta(minutes=5)
    assert await sender.dispatch_due(worker) == 0 and fake_wechat.mass_sent == []    # not stale yet
    worker.clock = lambda: took + timedelta(minutes=11)
    assert await sender.dispatch_due(worker) == 1
    (job,) = fake_wechat.mass_sent
    assert sorted(job["touser"]) == sorted(BUYERS) and job["clientmsgid"] == f"sm-{tenant.id}-{bid}"
    # it died again after WeChat took the job: the retry is refused by its clientmsgid, nothing sent twice
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Broadcast).where(Broadcast.id == bid).values(status="sending", sent_at=took))
        await uow.commit()
    assert await sender.dispatch_due(worker) == 0 and len(fake_wechat.mass_sent) == 1
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast).where(Broadcast.id == bid))
        kept = await uow.session.scalar(select(func.count()).select_from(BroadcastRecipient))
    assert row.status == "sent" and kept == 2


async def test_a_broadcast_to_a_tag_reaches_exactly_the_members_tagged_on_the_member_page(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    """Tags given by hand on the console's member page (HTTP, CSRF); the broadcast to the tag
    goes by openid list (mass/send `touser`) to exactly the members holding it."""
    mall, wx, tenant, category, aid = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    from storage.models import MemberIdentity, MemberTag

    async with mall.svc.uows() as uow:
        ids = dict((await uow.session.execute(select(MemberIdentity.external_id, MemberIdentity.member_id))).all())
    for user in (BUYERS[0], OTHER, ADMIN):
        done = await post(mall, f"/console/members/{ids[user]}/tags", tag="  年货老客 ")
        assert done.status == 303, await done.text()
    bad = await post(mall, f"/console/members/{ids[OTHER]}/tags", tag="x" * 31)
    assert bad.status == 400 and "标签名 1–30 个字" in await bad.text()
    async with mall.svc.uows() as uow:
        tag = await uow.session.scalar(select(MemberTag.id).where(MemberTag.tenant_id == tenant.id))
    page = await (await mall.client.get(f"/console/members/{ids[OTHER]}")).text()
    assert "年货老客" in page and f"/console/members/{ids[OTHER]}/tags/{tag}/remove" in page
    gone = await post(mall, f"/console/members/{ids[ADMIN]}/tags/{tag}/remove")
    assert gone.status == 303
    assert (await post(mall, f"/console/members/{ids[ADMIN]}/tags/abc/remove")).status == 404
    assert f"标签：年货老客（2 人）" in await (await mall.client.get("/console/content/broadcasts")).text()

    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), article=str(aid), text="",
                      segment=f"tag:{tag}")
    assert sent.status == 303, await sent.text()
    (job,) = fake_wechat.mass_sent
    assert sorted(job["touser"]) == sorted((BUYERS[0], OTHER))
    bad = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="hi", segment="tag:x1")
    assert bad.status == 400 and len(fake_wechat.mass_sent) == 1


async def test_a_subscription_account_sends_to_a_tag_through_its_wechat_copy(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    """A subscription account can't mass-send by openid list: a broadcast to a tag not synced
    to WeChat is refused in Chinese with nothing saved or sent; once 「同步到微信」 made it
    there, it goes by mass/sendall with filter.tag_id (the fake checks the tag exists)."""
    mall, wx, tenant, category, aid = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    from sqlalchemy import update

    from storage.channel_models import ChannelAccount
    from storage.models import MemberIdentity, MemberTag, MemberTagWeChat

    async with mall.svc.uows() as uow:
        await uow.session.execute(update(ChannelAccount).where(ChannelAccount.tenant_id == tenant.id,
                                                               ChannelAccount.is_primary.is_(True))
                                  .values(subtype="subscription"))
        ids = dict((await uow.session.execute(select(MemberIdentity.external_id, MemberIdentity.member_id))).all())
        await uow.commit()
    for user in BUYERS:
        assert (await post(mall, f"/console/members/{ids[user]}/tags", tag="订阅老客")).status == 303
    async with mall.svc.uows() as uow:
        tag = await uow.session.scalar(select(MemberTag.id).where(MemberTag.tenant_id == tenant.id))
    before = await counts(mall)

    refused = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="上新了",
                         segment=f"tag:{tag}")
    assert refused.status == 400 and "同步到微信" in await refused.text()
    assert await counts(mall) == before and fake_wechat.mass_sent == []

    synced = await post(mall, f"/console/tags/{tag}/wechat")
    assert synced.status == 200, await synced.text()
    async with mall.svc.uows() as uow:
        wechat_tag = await uow.session.scalar(select(MemberTagWeChat.wechat_tag_id))
    assert fake_wechat.tag_followers("订阅老客") == set(BUYERS)
    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="上新了",
                      segment=f"tag:{tag}")
    assert sent.status == 303, await sent.text()
    (job,) = fake_wechat.mass_sent
    assert job["filter"] == {"is_to_all": False, "tag_id": wechat_tag} and "touser" not in job
    assert [c for c in fake_wechat.calls if c.path.endswith("/mass/send")] == []
