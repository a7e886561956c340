"""A tenant with a second official account (issue 25): a broadcast goes out from every
official account with followers in the segment, one mass send each through that account
(its token, its followers' openids, its own clientmsgid and msg_id: the fake refuses another
account's openids with 40003 and another account's draft with 40007); a member following
both gets it once (at the primary); an account WeChat refuses doesn't stop or repeat the
other; MASSSENDJOBFINISH of each is summed. The preview binding takes the admin's openid at
the account they send the code to, and previews go through it."""

from __future__ import annotations

import copy
import re
from datetime import timedelta

from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.catalog.service import list_products
from social_mall.channels import service as channels
from social_mall.members.service import member_of
from social_mall_content import broadcasts as B
from social_mall_content import sender
from social_mall_content.models import Broadcast, BroadcastRecipient, BroadcastSend
from storage.models import MemberTag, Product, Sku
from tests.channels_kit import APP2, SECRET2, TOKEN2, second_account
from tests.fakes.console_kit import login, make_admin, paid_order

from test_content_articles import make, post, wx_of
from test_content_broadcasts import form_key

BUYERS = ("oBuyer_content_acct_0000001", "oBuyer_content_acct_0000002")
SECONDS = ("oBuyer_content_acct_second1", "oBuyer_content_acct_second2")   # followers of the second account only
BOTH_1, BOTH_2 = "oBuyer_content_both_prim01", "oBuyer_content_both_secd01"   # one person, both accounts
ADMIN_2 = "oAdmin_content_acct_second1"


async def two_accounts(backend, tmp_path, fake_wechat, aiohttp_client):
    """The demo shop with a second official account; buyers of 芒果干 at each (one person at
    both, merged by unionid); an owner logged in. (mall, wx2, tenant, account, segment)."""
    mall = await make(backend, tmp_path, fake_wechat, aiohttp_client)
    tenant = await mall.svc.tenant("demo")
    account = await second_account(mall, tenant, None)
    fake_wechat.more_apps[APP2] = SECRET2
    wx1 = wx_of(mall)
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    for user in (*SECONDS, BOTH_2, ADMIN_2):
        fake_wechat.openid_apps[user] = APP2
        await wx2.event(user, "subscribe")
    for user in (*BUYERS, BOTH_1):
        fake_wechat.openid_apps[user] = tenant.wechat_app_id
        await wx1.event(user, "subscribe")
    async with mall.svc.uows() as uow:
        mango = (await list_products(uow, tenant.id, keyword="芒果干")).items[0].id
        category = await uow.session.scalar(select(Product.category_id).where(Product.id == mango))
        sku = await uow.session.scalar(select(Sku.id).where(Sku.product_id == mango).order_by(Sku.id).limit(1))
    for user in (*BUYERS, *SECONDS, BOTH_2):
        await paid_order(mall.svc.uows, tenant.id, user, sku_id=sku)
    async with mall.svc.uows() as uow:      # BOTH_2 (bought through the second account) is BOTH_1 too
        first, second = await member_of(uow, tenant.id, "mp", BOTH_2), await member_of(uow, tenant.id, "mp", BOTH_1)
        await channels.link_unionid(uow, tenant.id, first, "uContentBoth01", now=mall.svc.clock())
        await channels.link_unionid(uow, tenant.id, second, "uContentBoth01", now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    await make_admin(mall.svc.uows, "boss", role="owner")
    await login(mall.client, "boss")
    return mall, wx1, wx2, tenant, account, f"category:{category}"


def jobs_by_app(fake_wechat) -> dict[str, list[str]]:
    return {fake_wechat.mass_apps[j["msg_id"]]: sorted(j["touser"]) for j in fake_wechat.mass_sent}


async def parts(mall, bid: int) -> dict[int, tuple[str, int]]:
    async with mall.svc.uows() as uow:
        rows = (await uow.session.scalars(select(BroadcastSend).where(BroadcastSend.broadcast_id == bid))).all()
    return {r.account_id: (r.status, r.recipients) for r in rows}


async def finish(wx: MPSimulator, msg_id: int, sent: int, total: int) -> None:
    xml = wx._envelope("oSystem_masssend_0000000009", "event",
                       f"<Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>{msg_id}</MsgID>"
                       f"<Status><![CDATA[send success]]></Status><TotalCount>{total}</TotalCount>"
                       f"<FilterCount>{total}</FilterCount><SentCount>{sent}</SentCount>"
                       f"<ErrorCount>{total - sent}</ErrorCount>", None)
    assert (await wx.post(*wx.signed_request(xml, user="oSystem_masssend_0000000009"))).status == 200


async def test_a_broadcast_goes_out_from_each_account_to_its_own_followers_once_each(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)

    # the preview binding through the second account binds the openid there; previews go through it
    page = await (await post(mall, "/console/content/broadcasts/bind")).text()
    code = re.search(r"预览绑定 ([0-9A-Z]{5}-[0-9A-Z]{5})", page).group(1)
    assert "已绑定" in (await wx2.text(ADMIN_2, f"预览绑定 {code}")).text     # before: 「请在主公众号…」
    shown = await post(mall, "/console/content/broadcasts/preview", article="", text="hi", segment="all")
    assert shown.status == 303, await shown.text()
    assert [p["touser"] for p in fake_wechat.mass_previews] == [ADMIN_2]

    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="年货节开抢",
                      segment=segment)
    assert sent.status == 303, await sent.text()
    assert jobs_by_app(fake_wechat) == {tenant.wechat_app_id: sorted((*BUYERS, BOTH_1)),   # BOTH once, at the primary
                                        APP2: sorted(SECONDS)}                            # before: none at APP2
    assert {j["clientmsgid"] for j in fake_wechat.mass_sent} == {f"sm-{tenant.id}-1", f"sm-{tenant.id}-1-{account}"}
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast))
        quota = dict((await uow.session.execute(
            select(BroadcastRecipient.account_id, BroadcastRecipient.id))).all())
    assert (row.status, row.recipients) == ("sent", 5) and set(quota) == {0, account}
    assert await parts(mall, row.id) == {0: ("sent", 3), account: ("sent", 2)}

    # each account's MASSSENDJOBFINISH comes to its own endpoint; the broadcast sums them
    msg = {fake_wechat.mass_apps[j["msg_id"]]: j["msg_id"] for j in fake_wechat.mass_sent}
    await finish(wx2, msg[APP2], 2, 2)
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast))
    assert (row.status, row.sent_count, row.total_count) == ("sent", 2, 2)          # the primary's still to come
    await finish(wx1, msg[tenant.wechat_app_id], 2, 3)
    await finish(wx1, msg[tenant.wechat_app_id], 2, 3)                               # WeChat's repeat: once
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast))
    assert (row.status, row.sent_count, row.total_count, row.error_count) == ("finished", 4, 5, 1)
    listing = await (await mall.client.get("/console/content/broadcasts")).text()
    assert "主公众号：3 人，已完成，送达 2 / 3" in listing and "第二个公众号：2 人，已完成，送达 2 / 2" in listing


async def test_an_account_wechat_refuses_neither_stops_nor_repeats_the_other(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)
    fake_wechat.fail_next("/cgi-bin/message/mass/send", 45028)        # the primary's send (sent first) refused
    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="年货节开抢",
                      segment=segment)
    assert sent.status == 303
    assert jobs_by_app(fake_wechat) == {APP2: sorted(SECONDS)}
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast))
        quota = (await uow.session.scalars(select(BroadcastRecipient.account_id))).all()
    assert (row.status, row.recipients) == ("sent", 2) and sorted(quota) == [account, account]   # the primary's given back
    assert await parts(mall, row.id) == {0: ("failed", 3), account: ("sent", 2)}
    listing = await (await mall.client.get("/console/content/broadcasts")).text()
    assert "主公众号：3 人，失败（45028" in listing
    assert await sender.dispatch_due(mall.svc) == 0 and len(fake_wechat.mass_sent) == 1     # nothing again


async def test_a_worker_dying_between_two_accounts_sends_sends_the_rest_once(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)
    now = mall.svc.clock()
    at = (now + timedelta(hours=1)).astimezone(B.SHANGHAI).strftime("%Y-%m-%d %H:%M")
    await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="老客回馈", segment=segment,
               schedule=at)
    took = now + timedelta(hours=2)
    async with mall.svc.uows() as uow:          # a worker takes it, sends the primary's part, then dies
        (bid,) = [i for _, i in await B.due(uow, took)]
        claimed = await B.claim(uow, tenant.id, bid, now=took, page_url=B.Urls(str, str))
        await uow.commit()
    assert [s.account_id for s in claimed.sends] == [0, account]
    worker = copy.copy(mall.svc)
    worker.clock = lambda: took
    await sender._send_part(worker, tenant, claimed, claimed.sends[0])
    worker.clock = lambda: took + timedelta(minutes=11)
    assert await sender.dispatch_due(worker) == 1
    assert jobs_by_app(fake_wechat) == {tenant.wechat_app_id: sorted((*BUYERS, BOTH_1)), APP2: sorted(SECONDS)}
    assert len(fake_wechat.mass_sent) == 2                                   # the primary's not again
    assert await parts(mall, bid) == {0: ("sent", 3), account: ("sent", 2)}
    async with mall.svc.uows() as uow:
        assert (await uow.session.scalar(select(Broadcast.status).where(Broadcast.id == bid))) == "sent"


async def test_an_article_card_is_a_draft_of_each_account_its_own(backend, engine, tmp_path, fake_wechat,
                                                                   aiohttp_client):
    """A 图文 card's cover and draft are uploaded with each account's token (a media id is
    valid only at its own account: the fake refuses another's with 40007)."""
    from test_content_mpnews import article

    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)
    aid = await article(mall, "秋季上新", "/media/products/3.png")
    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), article=str(aid), text="",
                      segment=segment)
    assert sent.status == 303 and sent.headers["Location"].endswith("notice=sent")
    cards = {fake_wechat.mass_apps[j["msg_id"]]: j["mpnews"]["media_id"] for j in fake_wechat.mass_sent}
    assert set(cards) == {tenant.wechat_app_id, APP2}                       # before: none from APP2
    assert {app: fake_wechat.draft_apps[m] for app, m in cards.items()} == {a: a for a in cards}
    thumbs = {fake_wechat.drafts[m][0]["thumb_media_id"] for m in cards.values()}
    assert {fake_wechat.media_apps[t] for t in thumbs} == {tenant.wechat_app_id, APP2}


async def recipients_at(mall) -> list[int]:
    async with mall.svc.uows() as uow:
        return sorted((await uow.session.scalars(select(BroadcastRecipient.account_id))).all())


def later(mall, after: timedelta):
    """The services as a worker sees them `after` from now (the stale sweep's clock)."""
    at = mall.svc.clock() + after
    worker = copy.copy(mall.svc)
    worker.clock = lambda: at
    return worker


async def test_an_account_wechat_does_not_answer_goes_again_alone_once_the_others_meanwhile(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    """A 5xx (WeChat busy or unreachable) says nothing about whether the job was taken: the
    account's part stays "sending" with its followers' quota, the other account goes out at
    once, and the stale sweep sends that part again with its own clientmsgid."""
    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)
    fake_wechat.fail_next("/cgi-bin/message/mass/send", -1, "system error", status=502)   # the primary's, sent first
    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="年货节开抢",
                      segment=segment)
    assert sent.status == 303 and sent.headers["Location"].endswith("notice=retrying")     # before: sent, the part failed for good
    assert jobs_by_app(fake_wechat) == {APP2: sorted(SECONDS)}                              # not held up
    async with mall.svc.uows() as uow:
        bid = await uow.session.scalar(select(Broadcast.id))
    assert await parts(mall, bid) == {0: ("sending", 3), account: ("sent", 2)}            # before: ("failed", 3)
    assert await recipients_at(mall) == [0, 0, 0, account, account]                        # quota kept
    listing = await (await mall.client.get("/console/content/broadcasts")).text()
    assert "主公众号：3 人，发送中（微信未答复，稍后自动重试：-1 HTTP 502" in listing
    assert "第二个公众号：2 人，已提交" in listing

    assert await sender.dispatch_due(later(mall, timedelta(minutes=5))) == 0               # not stale yet
    assert len(fake_wechat.mass_sent) == 1
    assert await sender.dispatch_due(later(mall, timedelta(minutes=11))) == 1
    assert jobs_by_app(fake_wechat) == {tenant.wechat_app_id: sorted((*BUYERS, BOTH_1)), APP2: sorted(SECONDS)}
    assert len(fake_wechat.mass_sent) == 2                                                  # APP2's not again
    assert [c.json["clientmsgid"] for c in fake_wechat.calls_to("/cgi-bin/message/mass/send")] == \
        [f"sm-{tenant.id}-{bid}", f"sm-{tenant.id}-{bid}-{account}", f"sm-{tenant.id}-{bid}"]
    assert await parts(mall, bid) == {0: ("sent", 3), account: ("sent", 2)}
    async with mall.svc.uows() as uow:
        row = await uow.session.scalar(select(Broadcast).where(Broadcast.id == bid))
        tries = dict((await uow.session.execute(select(BroadcastSend.account_id, BroadcastSend.attempts))).all())
    assert (row.status, row.recipients, row.error) == ("sent", 5, "") and tries == {0: 2, account: 1}
    listing = await (await mall.client.get("/console/content/broadcasts")).text()
    assert "主公众号：3 人，已提交</li>" in listing                                          # the retry's note gone


async def test_a_mass_send_whose_answer_was_lost_is_not_sent_twice(backend, engine, tmp_path, fake_wechat,
                                                                    aiohttp_client):
    """WeChat took the primary's job but its answer was lost (a gateway timeout): the retry
    with the same clientmsgid is refused 45065 and the part counts as sent — one job each."""
    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)
    fake_wechat.lose_next_answer("/cgi-bin/message/mass/send", 504)
    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="年货节开抢",
                      segment=segment)
    assert sent.status == 303 and sent.headers["Location"].endswith("notice=retrying")     # before: sent, the part failed for good
    assert jobs_by_app(fake_wechat) == {tenant.wechat_app_id: sorted((*BUYERS, BOTH_1)), APP2: sorted(SECONDS)}
    async with mall.svc.uows() as uow:
        bid = await uow.session.scalar(select(Broadcast.id))
    assert await parts(mall, bid) == {0: ("sending", 3), account: ("sent", 2)}            # before: ("failed", 3)
    assert await recipients_at(mall) == [0, 0, 0, account, account]   # before: the primary's followers' quota given back
    assert await sender.dispatch_due(later(mall, timedelta(minutes=11))) == 1
    assert len(fake_wechat.calls_to("/cgi-bin/message/mass/send")) == 3                   # tried again…
    assert len(fake_wechat.mass_sent) == 2                                                  # …but taken once
    assert await parts(mall, bid) == {0: ("sent", 3), account: ("sent", 2)}
    assert await recipients_at(mall) == [0, 0, 0, account, account]
    assert await sender.dispatch_due(later(mall, timedelta(minutes=30))) == 0             # settled: nothing more
    assert len(fake_wechat.calls_to("/cgi-bin/message/mass/send")) == 3


async def test_an_unanswered_account_is_given_up_after_its_tries_or_past_wechat_memory_of_its_clientmsgid(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    """An account WeChat never answers is tried `MAX_ATTEMPTS` times, then failed (its
    followers' quota given back), the other account's send standing; one first tried longer
    ago than WeChat keeps a clientmsgid (24 h) is not sent again at all (it could go twice)."""
    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)
    for _ in range(B.MAX_ATTEMPTS):
        fake_wechat.fail_next("/cgi-bin/message/mass/send", -1, "system error", status=503, app=tenant.wechat_app_id)
    await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="年货节开抢", segment=segment)
    calls = fake_wechat.calls_to
    for k in range(1, B.MAX_ATTEMPTS):                       # the sweep every 11 minutes: each a try of the primary's
        assert await sender.dispatch_due(later(mall, timedelta(minutes=11 * k))) == 0
    assert len(calls("/cgi-bin/message/mass/send")) == B.MAX_ATTEMPTS + 1              # + the second account's one
    assert await sender.dispatch_due(later(mall, timedelta(minutes=11 * B.MAX_ATTEMPTS))) == 0   # gives up
    assert len(calls("/cgi-bin/message/mass/send")) == B.MAX_ATTEMPTS + 1
    async with mall.svc.uows() as uow:
        first = await uow.session.scalar(select(Broadcast).where(Broadcast.id == 1))
        note = await uow.session.scalar(select(BroadcastSend.error).where(BroadcastSend.account_id == 0))
    assert (first.status, first.recipients) == ("sent", 2) and "6 次未答复" in note
    assert await recipients_at(mall) == [account, account]
    assert jobs_by_app(fake_wechat) == {APP2: sorted(SECONDS)}

    # a second broadcast's primary part unanswered once, the sweep next running a day later: not sent again
    fake_wechat.fail_next("/cgi-bin/message/mass/send", -1, "system error", status=502)
    await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="周末特价", segment=segment)
    before = len(calls("/cgi-bin/message/mass/send"))
    assert await sender.dispatch_due(later(mall, timedelta(hours=23, minutes=1))) == 0
    assert len(calls("/cgi-bin/message/mass/send")) == before
    assert await parts(mall, 2) == {0: ("failed", 3), account: ("sent", 2)}              # its second account's stands
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(Broadcast.status).where(Broadcast.id == 2)) == "sent"


async def test_a_tag_sent_by_a_subscription_account_reaches_a_member_of_both_accounts_there_only(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    """A second account that is a subscription account sends a tag by mass/sendall to its
    copy of the tag, which reaches every follower holding it there — a member who also
    follows the primary included; so that member is counted there and left out of the
    primary's openid list (before: sent at both). Before 「同步到微信」 the broadcast is refused
    with nothing saved or sent."""
    from sqlalchemy import update

    from storage.channel_models import ChannelAccount
    from storage.models import MemberTagWeChat
    from test_content_broadcasts import counts

    mall, wx1, wx2, tenant, account, segment = await two_accounts(backend, tmp_path, fake_wechat, aiohttp_client)
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(ChannelAccount).where(ChannelAccount.id == account)
                                  .values(subtype="subscription"))
        ids = {o: await member_of(uow, tenant.id, "mp", o) for o in (*BUYERS, *SECONDS, BOTH_1)}
        await uow.commit()
    mall.svc.forget_tenants()
    for member in ids.values():
        assert (await post(mall, f"/console/members/{member}/tags", tag="双号老客")).status == 303
    async with mall.svc.uows() as uow:
        tag = await uow.session.scalar(select(MemberTag.id).where(MemberTag.tenant_id == tenant.id))
    before = await counts(mall)
    refused = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="上新了",
                         segment=f"tag:{tag}")
    assert refused.status == 400 and "同步到微信" in await refused.text()
    assert await counts(mall) == before and fake_wechat.mass_sent == []

    assert (await post(mall, f"/console/tags/{tag}/wechat")).status == 200
    assert fake_wechat.tag_followers("双号老客", APP2) == {*SECONDS, BOTH_2}
    async with mall.svc.uows() as uow:
        wechat_tag = await uow.session.scalar(select(MemberTagWeChat.wechat_tag_id)
                                              .where(MemberTagWeChat.account_id == account))
    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="上新了",
                      segment=f"tag:{tag}")
    assert sent.status == 303 and sent.headers["Location"].endswith("notice=sent"), await sent.text()
    jobs = {fake_wechat.mass_apps[j["msg_id"]]: j for j in fake_wechat.mass_sent}
    assert sorted(jobs[tenant.wechat_app_id]["touser"]) == sorted(BUYERS)       # before: BOTH_1 too
    assert jobs[APP2]["filter"] == {"is_to_all": False, "tag_id": wechat_tag} and "touser" not in jobs[APP2]
    assert await parts(mall, 1) == {0: ("sent", 2), account: ("sent", 3)}       # before: 3 and 2
