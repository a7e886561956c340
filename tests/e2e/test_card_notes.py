"""The card-note seam (both backends): a module's `reg.add_card_note` adds its lines to a
product's card in chat, for that product only; without notes the card is what it was."""

from __future__ import annotations

from bot import BUILTIN_MODULES
from handlers.mp_simulator import MPSimulator
from social_mall.plugins import Module
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, app_settings

USER = "oUser_e2e_card_notes_000001"


async def card(backend, tmp_path, fake_wechat, aiohttp_client, modules, keyword: str) -> str:
    from bot import build_app
    from handlers.context import SERVICES

    app = build_app(app_settings(backend, tmp_path, fake_wechat.base_url), auto_setup=True, modules=modules)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    wx = MPSimulator(client.session, str(client.make_url("/wechat/mp/demo")), token=TEST_TOKEN, app_id=TEST_APP_ID,
                     aes_key=TEST_AES_KEY, safe_mode=True)
    await wx.event(USER, "subscribe")
    answer = await wx.text(USER, f"搜索 {keyword}")
    return answer.text + "".join(a.get("Description", "") for a in answer.articles)


async def test_a_modules_card_note_shows_on_its_products_card(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    async def note(uow, tenant: int, product_id: int) -> str:
        from storage.models import Product

        p = await uow.session.get(Product, product_id)
        return "★4.8 好评如潮" if p is not None and p.title == "芒果干" else ""

    noted = Module("notes", lambda reg: reg.add_card_note(note))
    plain = await card(backend, tmp_path / "a", fake_wechat, aiohttp_client, list(BUILTIN_MODULES), "芒果干")
    with_note = await card(backend, tmp_path / "b", fake_wechat, aiohttp_client, [*BUILTIN_MODULES, noted], "芒果干")
    other = await card(backend, tmp_path / "c", fake_wechat, aiohttp_client, [*BUILTIN_MODULES, noted], "海苔脆")
    assert "★4.8 好评如潮" not in plain and "★4.8 好评如潮" in with_note
    assert with_note.replace("★4.8 好评如潮\n", "") == plain
    assert "好评如潮" not in other and "海苔脆" in other


async def test_card_notes_show_on_the_h5_product_page_escaped(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    from bot import build_app
    from handlers.context import SERVICES
    from social_mall.catalog.service import list_products

    async def note(uow, tenant: int, product_id: int) -> str:
        return "好评 <script>alert(1)</script>\n第二行"

    app = build_app(app_settings(backend, tmp_path, fake_wechat.base_url), auto_setup=True,
                    modules=[*BUILTIN_MODULES, Module("notes", lambda reg: reg.add_card_note(note))])
    client = await aiohttp_client(app)
    svc = app[SERVICES]
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        pid = (await list_products(uow, tenant.id, keyword="芒果干")).items[0].id
    page = await (await client.get(f"/h5/product/demo/{pid}")).text()
    assert "<p>好评 &lt;script&gt;alert(1)&lt;/script&gt;</p><p>第二行</p>" in page and "<script>alert" not in page
