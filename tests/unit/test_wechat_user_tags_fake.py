"""The fake WeChat API's user tags (用户标签管理), through the real WeChatClient: create, list,
rename, delete, tagging and untagging followers ≤ 50 a call, and WeChat's refusals — a taken
or too long name (45157, 45158), WeChat's own tags (45058), the 100-tag cap (45056), too many
openids (40032), an unknown tag (45159), a follower of another account (49003), the 20 tags a
follower may hold (45059); a refusal changes nothing."""

from __future__ import annotations

import copy

import pytest

from adapters.wechat_client import WeChatAPIError, WeChatClient
from tests.fakes.wechat_api import FakeUser, FakeWeChatAPI
from tests.unit.test_wechat_client import APP_ID, MakeClient, fake, kv, make_client, server, session  # noqa: F401

pytestmark = pytest.mark.usefixtures("server")


async def refused(client: WeChatClient, path: str, body: dict, code: int, fake: FakeWeChatAPI) -> None:  # noqa: F811
    before = copy.deepcopy(dict(fake.user_tags))
    with pytest.raises(WeChatAPIError) as e:
        await client.call("POST", path, json=body)
    assert e.value.errcode == code, (path, body)
    assert dict(fake.user_tags) == before


async def test_user_tags_round_trip_and_refusals(fake, make_client, kv):  # noqa: F811
    client = make_client(kv)
    made = await client.call("POST", "/cgi-bin/tags/create", json={"tag": {"name": "老客户"}})
    vip = made["tag"]["id"]
    assert made["tag"]["name"] == "老客户" and vip not in (0, 1, 2)
    await refused(client, "/cgi-bin/tags/create", {"tag": {"name": "老客户"}}, 45157, fake)
    await refused(client, "/cgi-bin/tags/create", {"tag": {"name": "长" * 11}}, 45158, fake)   # 33 bytes
    await refused(client, "/cgi-bin/tags/create", {"tag": {"name": ""}}, 45157, fake)

    followers = [f"oTag_fan_{i:03d}" for i in range(60)]
    await client.call("POST", "/cgi-bin/tags/members/batchtagging", json={"openid_list": followers[:50], "tagid": vip})
    await refused(client, "/cgi-bin/tags/members/batchtagging", {"openid_list": followers, "tagid": vip}, 40032, fake)
    await refused(client, "/cgi-bin/tags/members/batchtagging", {"openid_list": followers[:2], "tagid": 99999},
                  45159, fake)
    fake.users["oTag_other_acct"] = FakeUser("oTag_other_acct", appid="wx_someone_else")
    await refused(client, "/cgi-bin/tags/members/batchtagging", {"openid_list": ["oTag_other_acct"], "tagid": vip},
                  49003, fake)
    listed = await client.call("GET", "/cgi-bin/tags/get")
    assert {(t["id"], t["name"], t["count"]) for t in listed["tags"]} == {(2, "星标组", 0), (vip, "老客户", 50)}
    page = await client.call("POST", "/cgi-bin/user/tag/get", json={"tagid": vip, "next_openid": ""})
    assert page["count"] == 50 and set(page["data"]["openid"]) == set(followers[:50])
    assert (await client.call("POST", "/cgi-bin/tags/getidlist", json={"openid": followers[0]}))["tagid_list"] == [vip]

    await client.call("POST", "/cgi-bin/tags/members/batchuntagging", json={"openid_list": followers[:10], "tagid": vip})
    assert fake.tag_followers("老客户") == set(followers[10:50])

    await client.call("POST", "/cgi-bin/tags/update", json={"tag": {"id": vip, "name": "老顾客"}})
    assert fake.tag_followers("老顾客") == set(followers[10:50]) and fake.tag_followers("老客户") == set()
    other = (await client.call("POST", "/cgi-bin/tags/create", json={"tag": {"name": "新客"}}))["tag"]["id"]
    await refused(client, "/cgi-bin/tags/update", {"tag": {"id": other, "name": "老顾客"}}, 45157, fake)
    for sys_tag in (0, 1, 2):
        await refused(client, "/cgi-bin/tags/update", {"tag": {"id": sys_tag, "name": "x"}}, 45058, fake)
        await refused(client, "/cgi-bin/tags/delete", {"tag": {"id": sys_tag}}, 45058, fake)
    await client.call("POST", "/cgi-bin/tags/delete", json={"tag": {"id": vip}})
    await refused(client, "/cgi-bin/tags/delete", {"tag": {"id": vip}}, 45159, fake)
    assert (await client.call("POST", "/cgi-bin/tags/getidlist", json={"openid": followers[20]}))["tagid_list"] == []


async def test_a_hundred_tags_at_most_and_twenty_a_follower(fake, make_client, kv):  # noqa: F811
    client = make_client(kv)
    ids = [(await client.call("POST", "/cgi-bin/tags/create", json={"tag": {"name": f"标签{i}"}}))["tag"]["id"]
           for i in range(100)]
    await refused(client, "/cgi-bin/tags/create", {"tag": {"name": "第101个"}}, 45056, fake)
    for tag_id in ids[:20]:
        await client.call("POST", "/cgi-bin/tags/members/batchtagging", json={"openid_list": ["oTag_busy"], "tagid": tag_id})
    await refused(client, "/cgi-bin/tags/members/batchtagging", {"openid_list": ["oTag_busy"], "tagid": ids[20]},
                  45059, fake)
    await client.call("POST", "/cgi-bin/tags/delete", json={"tag": {"id": ids[0]}})
    assert (await client.call("POST", "/cgi-bin/tags/create", json={"tag": {"name": "第101个"}}))["tag"]["id"]


async def test_sendall_to_a_tag_needs_the_tag_on_that_account(fake, make_client, kv):  # noqa: F811
    client = make_client(kv)
    text = {"msgtype": "text", "text": {"content": "上新"}}
    with pytest.raises(WeChatAPIError) as e:
        await client.call("POST", "/cgi-bin/message/mass/sendall", json={"filter": {"is_to_all": False, "tag_id": 777},
                                                                         **text})
    assert e.value.errcode == 45159 and fake.mass_sent == []
    tag = (await client.call("POST", "/cgi-bin/tags/create", json={"tag": {"name": "老客"}}))["tag"]["id"]
    await client.call("POST", "/cgi-bin/message/mass/sendall", json={"filter": {"is_to_all": False, "tag_id": tag},
                                                                     **text})
    assert [m["filter"]["tag_id"] for m in fake.mass_sent] == [tag]
