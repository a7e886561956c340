"""The sandbox gateway is an explicit choice (issue 17, item 2).

A tenant created in the console has no payment method until one is configured: the chat
says payment is unavailable instead of sending a link, the pay page says so too, and the
sandbox's 确认支付 refuses (no payment row, the order stays unpaid). The demo tenant keeps
its sandbox where the settings allow it; the production flag takes it away."""

from __future__ import annotations

import re
import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from storage.models import Payment, PayNotification
from tests.fakes.console_kit import PASSWORD, csrf_of, issue_token, login, make_admin

NEW_TOKEN = "new_shop_token_42"
NEW_APP_ID = "wx_new_shop_0000001"
BUYER = "o_new_shop_buyer_000000000001"


async def _console_tenant(mall, code: str) -> None:
    """The platform super-admin creates `code` over HTTP; its owner sets the official
    account's credentials (no pay credentials) and adds a product through the API."""
    client = mall.client
    await make_admin(mall.svc.uows, "platform_root", role="super", tenant_code=None)
    csrf = await login(client, "platform_root")
    csrf = await csrf_of(client, "/console/tenants")
    created = await client.post("/console/tenants", data={
        "_csrf": csrf, "code": code, "name": "新开的店", "owner_username": f"{code}_owner",
        "owner_password": PASSWORD}, allow_redirects=False)
    assert created.status == 303, await created.text()
    client.session.cookie_jar.clear()
    await login(client, f"{code}_owner")
    csrf = await csrf_of(client, "/console/settings")
    saved = await client.post("/console/settings", data={
        "_csrf": csrf, "wechat_app_id": NEW_APP_ID, "wechat_token": NEW_TOKEN,
        "wechat_app_secret": "new_shop_secret_0123456789abcdef"}, allow_redirects=False)
    assert saved.status == 303, await saved.text()
    auth = {"Authorization": f"Bearer {await issue_token(client, await csrf_of(client))}"}
    cat = await client.post("/api/v1/categories", headers=auth, json={"name": "新品"})
    assert cat.status == 201, await cat.text()
    product = await client.post("/api/v1/products", headers=auth, json={
        "title": "手工皂", "category_id": (await cat.json())["id"],
        "skus": [{"spec": "标准", "price_fen": 2590, "stock": 10}]})
    assert product.status == 201, await product.text()
    client.session.cookie_jar.clear()


async def _say(wx, text: str) -> str:
    answer = await wx.text(BUYER, text)
    assert answer.status == 200, answer.body
    return answer.text


async def _counts(mall) -> tuple[int, int]:
    async with mall.svc.uows() as uow:
        payments = await uow.session.scalar(select(func.count()).select_from(Payment))
        notifies = await uow.session.scalar(select(func.count()).select_from(PayNotification))
    return int(payments or 0), int(notifies or 0)


async def test_console_created_tenant_has_no_payment_method_until_one_is_configured(mall):
    code = "shop_" + uuid.uuid4().hex[:6]
    await _console_tenant(mall, code)
    wx = MPSimulator(mall.client.session, str(mall.client.make_url(f"/wechat/mp/{code}")),
                     token=NEW_TOKEN, app_id=NEW_APP_ID)
    for step in ("分类", "1", "1", "1", "1", "立即购买", "王小明", "13912345678"):
        await _say(wx, step)
    assert "应付" in await _say(wx, "广东省深圳市南山区科技园1号")
    placed = await _say(wx, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    # no pay link: the buyer is told payment is unavailable and what happens to the order
    assert "/h5/pay/" not in placed
    assert "暂未开通在线支付" in placed and "自动取消" in placed
    again = await _say(wx, "付款")
    assert "/h5/pay/" not in again and "暂未开通在线支付" in again

    tenant = await mall.svc.tenant(code)
    before = await _counts(mall)
    token = mall.svc.pay_token(code, order_no)
    page = await mall.client.get(f"/h5/pay/{code}/{order_no}?t={token}")
    html = await page.text()
    assert page.status == 200
    assert "暂未开通在线支付" in html and "确认支付" not in html and "/confirm" not in html
    # the sandbox's 确认支付, posted anyway: a clear refusal, nothing paid, nothing written
    confirm = await mall.client.post(f"/h5/pay/{code}/{order_no}/confirm?t={token}", allow_redirects=False)
    assert confirm.status == 403 and "暂未开通在线支付" in await confirm.text()
    native = await mall.client.post(f"/h5/pay/{code}/{order_no}/native?t={token}",
                                    headers={"X-Requested-With": "social_mall"})
    assert native.status == 409 and "暂未开通在线支付" in (await native.json())["message"]
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        assert await uow.payments.for_order(tenant.id, order.id) is None
    assert (order.status, order.paid_fen) == ("pending_payment", 0)
    assert await _counts(mall) == before
    assert mall.svc.gateway(tenant) is None

    # the demo tenant keeps the sandbox the settings give it
    demo = await mall.svc.tenant("demo")
    assert mall.svc.can_pay(demo) and mall.svc.gateway(demo).name == "sandbox"


async def _demo_pay_page(aiohttp_client, settings) -> str:
    from bot import build_app
    from handlers.context import SERVICES
    from social_mall.demo import ensure_demo_order

    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    svc = app[SERVICES]
    demo = await svc.tenant("demo")
    async with svc.uows() as uow:
        from datetime import timedelta

        order_no = await ensure_demo_order(uow, demo, now=svc.clock(), timeout=timedelta(minutes=30))
        await uow.commit()
    url = svc.pay_url("demo", order_no)
    page = await client.get(url[url.index("/h5/"):])
    assert page.status == 200
    return await page.text()


def _defaults(backend, tmp_path, **overrides):
    """The settings of a fresh `python3 dev.py run` (demo official account, sandbox "auto"),
    only pointed at this test's database."""
    from social_mall.settings import Settings

    return Settings(database_url=backend.db_url, database_schema=backend.schema, redis_url=backend.redis_url,
                    kv_prefix=f"test:{uuid.uuid4().hex}:", data_dir=tmp_path / "var", scheduler_enabled=False,
                    _env_file=None, **overrides)


async def test_fresh_embedded_default_gives_the_demo_a_sandbox_that_production_takes_away(
        backend, engine, aiohttp_client, tmp_path):
    html = await _demo_pay_page(aiohttp_client, _defaults(backend, tmp_path))
    if backend.name == "sqlite":  # the embedded default: the demo's sandbox pay page works
        assert "确认支付" in html and "暂未开通在线支付" not in html
    else:                         # PostgreSQL + Redis is a deployment: "auto" is off there
        assert "确认支付" not in html and "暂未开通在线支付" in html
    production = _defaults(backend, tmp_path / "prod", production=True)
    assert not production.sandbox_pay_enabled
    html = await _demo_pay_page(aiohttp_client, production)
    assert "确认支付" not in html and "暂未开通在线支付" in html
    real_account = _defaults(backend, tmp_path / "real", wechat_app_id="wx_real_account_01")
    assert not real_account.sandbox_pay_enabled


def test_sandbox_switched_on_in_production_is_refused_at_start():
    from social_mall.settings import Settings

    with pytest.raises(ValidationError, match="SANDBOX_PAY=on is refused"):
        Settings(production=True, sandbox_pay="on", _env_file=None)
    assert not Settings(production=True, _env_file=None).sandbox_pay_enabled
