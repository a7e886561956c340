"""Member tags synced to the official account's user tags, end to end against the fake
WeChat: 「同步到微信」 on the 会员标签 page makes the tag there and tags its members 50 a call
(audited, the link recorded); then giving / taking the tag on the member page, renaming and
deleting it reach WeChat through the outbox. A tag of that name already there (45157) is
taken over; a full account (45056) is refused with a clear message and nothing recorded; a
follower of another account is left out without failing the others."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from social_mall.loyalty.merge import merge_members
from social_mall.members import tags
from social_mall.members.service import resolve_member
from storage.models import AuditEntry, MemberTagWeChat
from tests.fakes.console_kit import login, make_admin
from tests.fakes.wechat_api import FakeUser

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)


async def seed(mall, tenant: int, openids: list[str]) -> list[int]:
    out = []
    async with mall.svc.uows() as uow:
        for o in openids:
            m, _ = await resolve_member(uow, tenant, "mp", o)
            out.append(m.id)
        await uow.commit()
    return out


async def give(mall, tenant: int, name: str, members: list[int]) -> int:
    async with mall.svc.uows() as uow:
        tag_id = await tags.create_tag(uow, tenant, name, actor="admin:1", now=NOW)
        await tags.sync_rule_tag(uow, tenant, tag_id, "segment:1", members, now=NOW)
        await uow.commit()
    return tag_id


async def links(mall, tag_id: int) -> list[tuple[int, int]]:
    async with mall.svc.uows() as uow:
        return [(int(a), int(w)) for a, w in await uow.session.execute(
            select(MemberTagWeChat.account_id, MemberTagWeChat.wechat_tag_id).where(MemberTagWeChat.tag_id == tag_id))]


async def audits(mall, action: str) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                            .where(AuditEntry.action == action)) or 0)


async def sync(mall, csrf: str, tag_id: int):
    resp = await mall.client.post(f"/console/tags/{tag_id}/wechat", data={"_csrf": csrf})
    return resp.status, await resp.text()


async def test_sync_then_give_take_rename_delete_follow_through_the_outbox(mall):
    tenant = (await mall.svc.tenant("demo")).id
    fans = [f"oSync_fan_{i:03d}" for i in range(61)]
    people = await seed(mall, tenant, fans)
    vip = await give(mall, tenant, "老客户", people[:60])
    await make_admin(mall.svc.uows, "boss_wxtags")
    csrf = await login(mall.client, "boss_wxtags")

    status, page = await sync(mall, csrf, vip)
    assert status == 200 and "已同步" in page
    assert mall.fake.tag_followers("老客户") == set(fans[:60])
    assert len(mall.fake.calls_to("/cgi-bin/tags/members/batchtagging")) == 2       # 50 + 10
    (account, wechat_id), = await links(mall, vip)
    assert wechat_id in mall.fake.user_tags[mall.fake.app_id] and await audits(mall, "member_tag.wechat_sync") == 1
    assert f'data-synced="1"' in await (await mall.client.get("/console/tags")).text()

    # given on the member page → the outbox tags the follower on WeChat
    resp = await mall.client.post(f"/console/members/{people[60]}/tags", data={"_csrf": csrf, "tag": "老客户"},
                                  allow_redirects=False)
    assert resp.status == 303
    await mall.settle()
    assert mall.fake.tag_followers("老客户") == set(fans)

    # taken away → untagged there
    resp = await mall.client.post(f"/console/members/{people[0]}/tags/{vip}/remove", data={"_csrf": csrf},
                                  allow_redirects=False)
    assert resp.status == 303
    await mall.settle()
    assert mall.fake.tag_followers("老客户") == set(fans[1:])

    # renamed → tags/update, same followers under the new name
    resp = await mall.client.post(f"/console/tags/{vip}/rename", data={"_csrf": csrf, "name": "老顾客"},
                                  allow_redirects=False)
    assert resp.status == 303
    await mall.settle()
    assert mall.fake.tag_followers("老顾客") == set(fans[1:]) and mall.fake.tag_followers("老客户") == set()

    # deleted → tags/delete, the link gone
    resp = await mall.client.post(f"/console/tags/{vip}/delete", data={"_csrf": csrf, "confirm": "1"},
                                  allow_redirects=False)
    assert resp.status == 303
    await mall.settle()
    assert wechat_id not in mall.fake.user_tags[mall.fake.app_id] and await links(mall, vip) == []


async def test_a_tag_already_on_wechat_is_taken_over_and_other_accounts_followers_left_out(mall):
    tenant = (await mall.svc.tenant("demo")).id
    fans = [f"oSync_old_{i:03d}" for i in range(5)]
    people = await seed(mall, tenant, fans + ["oSync_elsewhere"])
    mall.fake.users["oSync_elsewhere"] = FakeUser("oSync_elsewhere", appid="wx_another_account")
    mall.fake.user_tags[mall.fake.app_id][555] = ("华北", {"oSync_walkin"})
    north = await give(mall, tenant, "华北", people)
    await make_admin(mall.svc.uows, "boss_wxtags2")
    csrf = await login(mall.client, "boss_wxtags2")

    status, page = await sync(mall, csrf, north)
    assert status == 200 and "1 个粉丝不是该公众号的" in page
    assert [w for _, w in await links(mall, north)] == [555]
    assert mall.fake.tag_followers("华北") == set(fans) | {"oSync_walkin"}


async def test_a_full_account_is_refused_with_a_clear_message_and_nothing_recorded(mall):
    tenant = (await mall.svc.tenant("demo")).id
    people = await seed(mall, tenant, [f"oSync_full_{i:03d}" for i in range(3)])
    tag_id = await give(mall, tenant, "满了", people)
    for i in range(100):
        mall.fake.user_tags[mall.fake.app_id][1000 + i] = (f"t{i}", set())
    before = {i: (n, set(w)) for i, (n, w) in mall.fake.user_tags[mall.fake.app_id].items()}
    await make_admin(mall.svc.uows, "boss_wxtags3")
    csrf = await login(mall.client, "boss_wxtags3")

    status, page = await sync(mall, csrf, tag_id)
    assert status == 502 and "标签已满" in page and "45056" in page
    assert await links(mall, tag_id) == [] and await audits(mall, "member_tag.wechat_sync") == 0
    assert await audits(mall, "member_tag.wechat_sync_refused") == 1
    assert mall.fake.user_tags[mall.fake.app_id] == before

    # tagging a member of an unsynced tag calls nobody
    async with mall.svc.uows() as uow:
        await tags.untag_member(uow, tenant, people[0], tag_id, actor="admin:1")
        await uow.commit()
    await mall.settle()
    assert mall.fake.calls_to("/cgi-bin/tags/members/batchuntagging") == []


async def test_a_merge_brings_the_kept_members_synced_tags_to_the_openids_it_gained(mall):
    tenant = (await mall.svc.tenant("demo")).id
    kept, gone = await seed(mall, tenant, ["oSync_merge_kept", "oSync_merge_gone"])
    tag_id = await give(mall, tenant, "合并", [kept])
    await make_admin(mall.svc.uows, "boss_wxtags4")
    csrf = await login(mall.client, "boss_wxtags4")
    assert (await sync(mall, csrf, tag_id))[0] == 200
    assert mall.fake.tag_followers("合并") == {"oSync_merge_kept"}

    async with mall.svc.uows() as uow:
        await merge_members(uow, tenant, kept, gone, via="bind_code", actor="admin:1", now=NOW)
        await uow.commit()
    await mall.settle()
    assert mall.fake.tag_followers("合并") == {"oSync_merge_kept", "oSync_merge_gone"}


async def test_a_name_too_long_for_wechat_is_refused_with_what_to_do(mall):
    tenant = (await mall.svc.tenant("demo")).id
    people = await seed(mall, tenant, ["oSync_long_000"])
    tag_id = await give(mall, tenant, "长" * 11, people)            # 11 characters, 33 bytes: over WeChat's 30
    await make_admin(mall.svc.uows, "boss_wxtags5")
    csrf = await login(mall.client, "boss_wxtags5")
    status, page = await sync(mall, csrf, tag_id)
    assert status == 502 and "请改短后再同步" in page and await links(mall, tag_id) == []
    assert mall.fake.tag_followers("长" * 11) == set()


async def test_each_account_is_sent_only_its_own_followers_openids(mall):
    """Two official accounts (issue 25): each is sent only the openids at it (the member
    identities' account), in one call each, nothing refused and halved; a member given the
    tag later reaches only its own account."""
    from handlers.mp_simulator import MPSimulator
    from tests.channels_kit import APP2, SECRET2, TOKEN2, second_account

    tenant = await mall.svc.tenant("demo")
    await second_account(mall, tenant, None)
    mall.fake.more_apps[APP2] = SECRET2
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    first = [f"oSync_acct_one_{i:03d}" for i in range(3)]
    second = [f"oSync_acct_two_{i:03d}" for i in range(3)]
    for o in first:
        mall.fake.openid_apps[o] = tenant.wechat_app_id
    for o in second:
        mall.fake.openid_apps[o] = APP2
        await wx2.event(o, "subscribe")
    people = await seed(mall, tenant.id, first + second)
    east = await give(mall, tenant.id, "华东", people[:-1])
    await make_admin(mall.svc.uows, "boss_wxtags_acct")
    csrf = await login(mall.client, "boss_wxtags_acct")

    status, page = await sync(mall, csrf, east)
    assert status == 200 and "不是该公众号的" not in page, page
    calls = list(zip(mall.fake.apps_calling("/cgi-bin/tags/members/batchtagging"),
                     (c.json for c in mall.fake.calls_to("/cgi-bin/tags/members/batchtagging"))))
    # before: all five openids to each account, refused (40003) and halved down to single openids
    assert sorted((app, sorted(body["openid_list"])) for app, body in calls) == sorted(
        [(tenant.wechat_app_id, first), (APP2, second[:-1])])
    assert mall.fake.tag_followers("华东") == set(first)
    assert mall.fake.tag_followers("华东", APP2) == set(second[:-1])

    before = len(calls)                                       # the last one gets the tag later
    async with mall.svc.uows() as uow:
        await tags.sync_rule_tag(uow, tenant.id, east, "segment:1", people, now=NOW)
        await uow.commit()
    await mall.settle()
    later = list(zip(mall.fake.apps_calling("/cgi-bin/tags/members/batchtagging"),
                     (c.json for c in mall.fake.calls_to("/cgi-bin/tags/members/batchtagging"))))[before:]
    assert all(app != APP2 or second[-1] in body["openid_list"] for app, body in later)
    assert mall.fake.tag_followers("华东", APP2) == set(second)
    assert not any(second[-1] in body["openid_list"] for app, body in later if app != APP2)
