"""Location cold start: a member with no history but a known place (the city of their
address: the core's place source; a store: a module's source through
`reg.add_place_source`) is shown what sells there before the shop's best sellers. The
purchases' places are recorded from order.paid, the popularity per place by the nightly
job. Switched off (PIPL Art. 24): no location either. Both backends."""

from __future__ import annotations

from sqlalchemy import func, select

from social_mall.members.service import add_address, resolve_member
from social_mall.places import city_of
from social_mall_intelligence.models import Interaction
from storage.models import Sku
from tests.fakes.console_kit import paid_order

from intel_kit import add_fashion, listed, say, simulator

SHENZHEN = "广东省深圳市南山区科技园1号"
SHANGHAI = "上海市黄浦区南京东路1号"


async def first_sku(mall, product_id: int) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == product_id)))


async def job(mall, name: str) -> None:
    await next(j for j in mall.svc.registry.jobs if j.name == name).run()


async def with_address(mall, tenant: int, openid: str, detail: str) -> None:
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant, "mp", openid)
        await add_address(uow, tenant, member.id, "李四", "13900001111", detail)
        await uow.commit()


class Stores:
    """A module's place source, scripted: member → its store; the orders in `at_store` were
    bought at store 7."""

    def __init__(self, members: dict[int, int]) -> None:
        self.members = members
        self.at_store: set[int] = set()

    async def member_places(self, uow, tenant, member):
        return (f"store:{self.members[member]}",) if member in self.members else ()

    async def order_places(self, uow, tenant, order_id):
        return ("store:7",) if order_id in self.at_store else ()


async def test_a_new_member_is_shown_what_sells_in_their_city_then_the_shop(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    tee, cardigan = ids["纯棉短袖T恤"], ids["针织开衫"]
    for n in range(3):   # the shop's best seller, bought in Shanghai
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_sh_{n:011d}", sku_id=await first_sku(mall, tee),
                         address=SHANGHAI)
    for n in range(2):   # Shenzhen's
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_sz_{n:011d}", sku_id=await first_sku(mall, cardigan),
                         address=SHENZHEN)
    await mall.settle()
    async with mall.svc.uows() as uow:
        places = set((await uow.session.scalars(select(Interaction.places)
                                                .where(Interaction.tenant_id == tenant))).all())
    assert places == {"city:上海", "city:深圳"}
    await job(mall, "intel.retrain")

    newcomer, nowhere = "oUser_intel_sz_newcomer_0001", "oUser_intel_nowhere_000001"
    await with_address(mall, tenant, newcomer, "深圳市福田区华强北路2号")
    wx = simulator(mall)
    mine = listed(await say(wx, newcomer, "猜你喜欢"))
    assert mine[:2] == ["针织开衫", "纯棉短袖T恤"], mine        # Shenzhen's best seller first
    theirs = listed(await say(simulator(mall), nowhere, "猜你喜欢"))
    assert theirs[0] == "纯棉短袖T恤", theirs                 # no place known: the shop's
    await say(wx, newcomer, "关闭个性化推荐")                       # a location is personal data too
    assert listed(await say(wx, newcomer, "猜你喜欢")) == theirs


async def test_a_modules_store_comes_before_the_address_city(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, tee = ids["法式碎花连衣裙"], ids["纯棉短袖T恤"]
    async with mall.svc.uows() as uow:
        regular, _ = await resolve_member(uow, tenant, "mp", "oUser_intel_store_regular_01")
        await uow.commit()
    stores = Stores({regular.id: 7})
    mall.svc.registry.add_place_source(stores)
    assert [type(s).__name__ for s in mall.svc.registry.place_sources][-2:] == ["Stores", "AddressPlaces"]
    for n in range(3):   # the shop's and Shanghai's best seller, shipped
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_sh_{n:011d}", sku_id=await first_sku(mall, tee),
                         address=SHANGHAI)
    for n in range(2):   # store 7's (its buyers live in Shenzhen)
        order_id, _ = await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_st7_{n:010d}",
                                       sku_id=await first_sku(mall, dress), address=SHENZHEN)
        stores.at_store.add(order_id)
    await mall.settle()
    async with mall.svc.uows() as uow:
        assert set((await uow.session.scalars(select(Interaction.places))).all()) == {"city:上海", "store:7 city:深圳"}
    await job(mall, "intel.retrain")
    await with_address(mall, tenant, "oUser_intel_store_regular_01", SHANGHAI)
    shown = listed(await say(simulator(mall), "oUser_intel_store_regular_01", "猜你喜欢"))
    assert shown[:2] == ["法式碎花连衣裙", "纯棉短袖T恤"], shown   # the store's, then the city's
    await with_address(mall, tenant, "oUser_intel_sh_only_0000001", SHANGHAI)
    assert listed(await say(simulator(mall), "oUser_intel_sh_only_0000001", "猜你喜欢"))[0] == "纯棉短袖T恤"


def test_the_city_of_an_address_as_people_write_it():
    assert [city_of(a) for a in (SHENZHEN, SHANGHAI, "浙江杭州市西湖区", "新疆维吾尔自治区乌鲁木齐市天山区",
                                 "深圳市福田区", "北京朝阳区", "广西壮族自治区南宁市", "随便写的", "")] == [
        "深圳", "上海", "杭州", "乌鲁木齐", "深圳", "北京", "南宁", "", ""]
