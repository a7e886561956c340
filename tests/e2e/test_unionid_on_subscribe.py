"""One person following two official accounts of a tenant becomes one member (issue 25):
on subscribe the server asks the followed account's user/info (the fake WeChat API) for the
unionid and merges through the core merge path; a follower without a unionid (account not
bound to an open platform) stays as they are."""

from __future__ import annotations

from handlers.mp_simulator import MPSimulator
from social_mall.channels import service as channels
from tests.conftest import TEST_TOKEN
from tests.fakes.wechat_api import FakeUser

APP2, SECRET2, TOKEN2 = "wx4444444444444444", "fourth_secret_0000000000000000", "FourthAccountToken4"


async def member_of(mall, openid: str) -> tuple[int, str | None] | None:
    async with mall.svc.uows() as uow:
        m = await uow.members.by_identity(1, "mp", openid)
        return None if m is None else (m.id, m.unionid)


async def test_a_follower_of_two_accounts_is_merged_by_the_unionid_fetched_on_subscribe(mall):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await channels.save_account(uow, tenant.id, None, kind="mp", code="shop4",
                                    values={"name": "四号", "app_id": APP2, "app_secret": SECRET2, "token": TOKEN2},
                                    pay_account_id=None, enabled=True, actor="test", now=mall.svc.clock())
        await uow.commit()
    mall.svc.forget_tenants()
    mall.fake.more_apps[APP2] = SECRET2
    mall.fake.users["oUnionA_primary_000000000001"] = FakeUser("oUnionA_primary_000000000001", unionid="uUnionPerson1")
    mall.fake.users["oUnionA_second_0000000000001"] = FakeUser("oUnionA_second_0000000000001", unionid="uUnionPerson1")
    mall.fake.users["oLoner_primary_0000000000001"] = FakeUser("oLoner_primary_0000000000001")
    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                      app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop4")), token=TOKEN2,
                      app_id=APP2)

    assert (await wx1.event("oUnionA_primary_000000000001", "subscribe")).status == 200
    await mall.settle()
    first, unionid = await member_of(mall, "oUnionA_primary_000000000001")
    assert unionid == "uUnionPerson1"

    assert (await wx2.event("oUnionA_second_0000000000001", "subscribe")).status == 200
    await mall.settle()
    assert await member_of(mall, "oUnionA_second_0000000000001") == (first, "uUnionPerson1")  # one member
    calls = mall.fake.calls_to("/cgi-bin/user/info")
    assert [c.query["openid"] for c in calls] == ["oUnionA_primary_000000000001", "oUnionA_second_0000000000001"]
    assert mall.fake._tokens[calls[1].query["access_token"]].appid == APP2    # asked through the followed account

    assert (await wx1.event("oLoner_primary_0000000000001", "subscribe")).status == 200
    await mall.settle()
    loner, none = await member_of(mall, "oLoner_primary_0000000000001")
    assert none is None and loner != first
