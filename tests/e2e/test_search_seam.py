"""The search seam (social_mall/search.py): a module's provider answers the chat's
「搜索 X」; the core shows the products it names, in its order, only the tenant's products
still on the shelf; nothing found, the provider's suggestions instead of a dead end.
Without a provider the core's own substring search answers. The related seam: a
provider's products named after an add to the cart (on the shelf only); none: as before."""

from __future__ import annotations

from sqlalchemy import select, update

from bot import BUILTIN_MODULES
from handlers.mp_simulator import MPSimulator
from social_mall.plugins import Module, Registry
from social_mall.search import AFTER_CART, AFTER_PAY, SearchHits
from storage.models import Product
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings
from tests.fakes.console_kit import make_tenant

USER = "oUser_search_seam_0000000001"


class Scripted:
    """A provider answering from a table: keyword → hits."""

    def __init__(self) -> None:
        self.answers: dict[str, SearchHits] = {}
        self.asked: list[tuple[int, str, int, int]] = []

    async def search(self, uow, tenant, keyword, *, offset, limit, hidden=frozenset()):
        self.asked.append((tenant, keyword, offset, limit))
        return self.answers.get(keyword, SearchHits((), 0))


class Related:
    def __init__(self, answer: tuple[int, ...]) -> None:
        self.answer = answer
        self.asked: list[tuple[int, int, int, int, str]] = []

    async def related(self, uow, tenant, member, product, *, limit, placement=AFTER_CART):
        self.asked.append((tenant, member, product, limit, placement))
        return self.answer


async def make_mall(backend, tmp_path, fake_wechat, aiohttp_client, provider=None, related=None) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    def setup(reg: Registry) -> None:
        if provider is not None:
            reg.set_search(provider)
        if related is not None:
            reg.set_related(related)

    extra = [Module("scripted_search", setup)] if provider or related else []
    settings = app_settings(backend, tmp_path, fake_wechat.base_url)
    app = build_app(settings, auto_setup=True, modules=[*BUILTIN_MODULES, *extra])
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def say(mall: Mall, text: str) -> str:
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                     app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    answer = await wx.text(USER, text)
    assert answer.status == 200
    return answer.text


async def ids_by_title(mall: Mall) -> dict[str, int]:
    async with mall.svc.uows() as uow:
        rows = (await uow.session.execute(select(Product.title, Product.id))).all()
    return dict(rows)


async def test_the_providers_hits_are_shown_in_its_order_on_shelf_and_tenant_only(
        backend, engine, fake_wechat, aiohttp_client, tmp_path):
    provider = Scripted()
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, provider)
    assert mall.svc.runner.search is provider
    ids = await ids_by_title(mall)
    other = await make_tenant(mall.svc.uows, "other")
    async with mall.svc.uows() as uow:
        foreign = Product(tenant_id=other, category_id=1, title="别家的茶", subtitle="", description="", image="")
        uow.session.add(foreign)
        await uow.session.execute(update(Product).where(Product.id == ids["云南普洱"]).values(on_shelf=False))
        await uow.commit()
        foreign_id = foreign.id
    provider.answers["好茶"] = SearchHits((ids["桂花乌龙"], foreign_id, ids["云南普洱"], ids["西湖龙井"]), 7)
    reply = await say(mall, "搜索 好茶")
    assert reply.splitlines()[0] == "「好茶」的搜索结果（第 1/2 页，共 7 件）", reply
    assert [line.split()[1] for line in reply.splitlines()[1:3]] == ["桂花乌龙", "西湖龙井"]
    assert "别家的茶" not in reply and "云南普洱" not in reply
    assert provider.asked[-1][1:] == ("好茶", 0, 5)
    await say(mall, "下一页")
    assert provider.asked[-1][1:] == ("好茶", 5, 5)


async def test_nothing_found_shows_the_suggestions_and_a_number_opens_one(
        backend, engine, fake_wechat, aiohttp_client, tmp_path):
    provider = Scripted()
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, provider)
    ids = await ids_by_title(mall)
    provider.answers["火星茶"] = SearchHits((), 0, (ids["西湖龙井"],), ("茶饮冲调",))
    reply = await say(mall, "搜索 火星茶")
    assert reply.startswith("没有找到与「火星茶」相关的商品。") and "1. 西湖龙井" in reply and "茶饮冲调" in reply
    card = await say(mall, "1")
    assert "西湖龙井" in card and "250g" in card, card
    provider.answers["空空"] = SearchHits((), 0, (), ("茶饮冲调",))
    reply = await say(mall, "搜索 空空")
    assert "相关分类：茶饮冲调" in reply
    reply = await say(mall, "乌龙")          # the search prompt is still open: a new word searches again
    assert provider.asked[-1][1] == "乌龙"


async def test_without_a_provider_the_core_searches_titles(backend, engine, fake_wechat, aiohttp_client, tmp_path):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    assert mall.svc.registry.search is None
    assert "冷泡茶" in await say(mall, "搜索 桂花乌龙")
    assert (await say(mall, "搜索 guihua")).startswith("没有找到与「guihua」相关的商品。")


async def test_the_related_providers_products_are_named_after_an_add_to_the_cart(
        backend, engine, fake_wechat, aiohttp_client, tmp_path):
    related = Related(())
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, related=related)
    ids = await ids_by_title(mall)
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Product).where(Product.id == ids["云南普洱"]).values(on_shelf=False))
        await uow.commit()
    related.answer = (ids["云南普洱"], ids["西湖龙井"], ids["挂耳咖啡"])
    await say(mall, "搜索 桂花乌龙")
    await say(mall, "1")
    added = await say(mall, "加购")
    url = mall.svc.product_url
    assert (f'买了它的人还买了：<a href="{url("demo", ids["西湖龙井"])}?src=rec.related">西湖龙井</a>、'
            f'<a href="{url("demo", ids["挂耳咖啡"])}?src=rec.related">挂耳咖啡</a>（') in added, added
    assert related.asked[-1][2:] == (ids["桂花乌龙"], 3, AFTER_CART)
    related.answer = ()
    await say(mall, "搜索 桂花乌龙")
    await say(mall, "1")
    assert "买了它的人还买了" not in await say(mall, "加购")


async def test_without_a_related_provider_adding_to_the_cart_says_what_it_said(
        backend, engine, fake_wechat, aiohttp_client, tmp_path):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    assert mall.svc.runner.related is None
    await say(mall, "搜索 桂花乌龙")
    await say(mall, "1")
    added = await say(mall, "加购")
    assert added.startswith("已加入购物车 ✅") and "买了它的人还买了" not in added


async def test_the_payment_push_names_the_related_providers_products(
        backend, engine, fake_wechat, aiohttp_client, tmp_path):
    from tests.fakes.console_kit import paid_order

    related = Related(())
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, related=related)
    ids = await ids_by_title(mall)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        sku = (await uow.catalog.skus(tenant, ids["桂花乌龙"]))[0].id
    related.answer = (ids["西湖龙井"],)
    await paid_order(mall.svc.uows, tenant, "oBuyer_related_push_0000001", sku_id=sku)
    await mall.settle()
    (push,) = [m["text"]["content"] for m in mall.fake.sent_messages("oBuyer_related_push_0000001")]
    link = f'<a href="{mall.svc.product_url("demo", ids["西湖龙井"])}?src=rec.paid">西湖龙井</a>'
    assert "支付成功" in push and f"你可能还喜欢：{link}（" in push, push
    assert related.asked[-1][2:] == (ids["桂花乌龙"], 3, AFTER_PAY)
    related.answer = ()
    await paid_order(mall.svc.uows, tenant, "oBuyer_related_push_0000002", sku_id=sku)
    await mall.settle()
    (push,) = [m["text"]["content"] for m in mall.fake.sent_messages("oBuyer_related_push_0000002")]
    assert "支付成功" in push and "你可能还喜欢" not in push
