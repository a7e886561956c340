"""The order notes seam (social_mall/orders/notes.py): a module's lines appear under an
order on the chat's order detail, the H5 pay/order page (escaped) and the console's order
page; without the module every page reads exactly as before."""

from __future__ import annotations

from datetime import timedelta

from bot import BUILTIN_MODULES
from handlers.mp_simulator import MPSimulator
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from social_mall.plugins import Module, Registry
from sqlalchemy import select
from storage.models import Sku, Tenant
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings
from tests.fakes.console_kit import login, make_admin

USER = "oUser_order_notes_000000001"


async def make_mall(backend, tmp_path, fake_wechat, aiohttp_client, noted: bool) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    async def note(uow, tenant, order) -> str:
        return f"备注<b>{order.order_no[-4:]}</b> 共 {len(order.lines)} 种" if order.lines else ""

    async def silent(uow, tenant, order) -> str:
        return ""

    def setup(reg: Registry) -> None:
        reg.add_order_note(note)
        reg.add_order_note(silent)

    extra = [Module("scripted_notes", setup)] if noted else []
    settings = app_settings(backend, tmp_path, fake_wechat.base_url)
    app = build_app(settings, auto_setup=True, modules=[*BUILTIN_MODULES, *extra])
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def pages(mall: Mall) -> tuple[str, str, str, str]:
    """(order no, chat detail, H5 page, console page) of one order placed for USER."""
    svc = mall.svc
    async with svc.uows() as uow:
        tenant = (await uow.session.execute(select(Tenant).where(Tenant.code == "demo"))).scalar_one()
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
        address = await add_address(uow, tenant.id, member.id, "李四", "13912345678", "北京市朝阳区建国路88号")
        sku = await uow.session.scalar(select(Sku.id).where(Sku.tenant_id == tenant.id, Sku.stock >= 5)
                                       .order_by(Sku.id))
        order = await place_order(uow, tenant.id, member.id, [(sku, 1)], address_id=address.id, now=svc.clock(),
                                  timeout=timedelta(minutes=30))
        await uow.commit()
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                     app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    await wx.text(USER, "我的订单")
    chat = (await wx.text(USER, "1")).text
    h5 = await (await mall.client.get(f"/h5/pay/demo/{order.order_no}?t={svc.pay_token('demo', order.order_no)}")).text()
    await make_admin(svc.uows, "notes_admin", "owner")
    await login(mall.client, "notes_admin")
    console = await (await mall.client.get(f"/console/orders/{order.id}")).text()
    return order.order_no, chat, h5, console


async def test_a_modules_order_note_shows_on_the_chat_h5_and_console_order_pages(
        backend, engine, fake_wechat, aiohttp_client, tmp_path):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, noted=True)
    no, chat, h5, console = await pages(mall)
    line = f"备注<b>{no[-4:]}</b> 共 1 种"
    assert no in chat and line in chat
    escaped = f"备注&lt;b&gt;{no[-4:]}&lt;/b&gt; 共 1 种"
    assert escaped in h5 and line not in h5
    assert escaped in console and 'class="order-note"' in console


async def test_without_a_note_the_order_pages_read_as_before(backend, engine, fake_wechat, aiohttp_client, tmp_path):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, noted=False)
    no, chat, h5, console = await pages(mall)
    assert no in chat and "备注" not in chat and "备注" not in h5 and "order-note" not in console
    assert no in h5 and no in console
