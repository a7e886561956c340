"""Helpers for the module's tests: a small fashion catalog in the demo tenant, the signed
WeChat simulator, and what a reply lists."""

from __future__ import annotations

import re

from handlers.mp_simulator import MPSimulator
from storage.models import Category, Product, Sku
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall

# title, subtitle, specs
FASHION = [
    ("法式碎花连衣裙", "夏季新款 收腰显瘦", ["红色 / S", "红色 / M", "红色 / L", "蓝色 / L"]),
    ("高腰百褶半身裙", "A字 通勤", ["黑色 / S", "红色 / M"]),
    ("纯棉短袖T恤", "宽松百搭", ["白色 / L", "黑色 / M"]),
    ("针织开衫", "秋冬 软糯", ["红色 / L", "米色 / M"]),
    ("蓝色牛仔连衣裙", "复古 水洗", ["蓝色 / M"]),
]


async def add_fashion(mall: Mall) -> dict[str, int]:
    """A 女装 category with FASHION in the demo tenant: title → product id."""
    tenant = await mall.svc.tenant("demo")
    ids: dict[str, int] = {}
    async with mall.svc.uows() as uow:
        cat = Category(tenant_id=tenant.id, name="女装", sort=9)
        await uow.catalog.add(cat)
        for n, (title, sub, specs) in enumerate(FASHION):
            p = Product(tenant_id=tenant.id, category_id=cat.id, title=title, subtitle=sub,
                        description="", image="", sort=n)
            await uow.catalog.add(p)
            await uow.catalog.add(*(Sku(tenant_id=tenant.id, product_id=p.id, spec=s, price_fen=19900, stock=50)
                                    for s in specs))
            ids[title] = p.id
        await uow.commit()
    return ids


def simulator(mall: Mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx: MPSimulator, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


def listed(reply: str) -> list[str]:
    """The titles of a numbered product list, in order."""
    return [m.group(1) for m in re.finditer(r"^\d+\. (\S+)", reply, re.M)]


async def make_mall(backend, tmp_path, fake_wechat, aiohttp_client, *, disabled=(), modules=None) -> Mall:
    """The real app with the module on, off (`disabled`), or given `modules` only."""
    from bot import build_app
    from handlers.context import SERVICES
    from tests.conftest import app_settings

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, disabled_modules=list(disabled))
    app = build_app(settings, auto_setup=True, modules=modules)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


ORDER_NO = re.compile(r"订单号：(\d+)")
PAY_URL = re.compile(r"(http\S+/h5/pay/demo/\S+)")


async def pay_in_sandbox(mall: Mall, placed_text: str) -> str:
    """Open the pay link of a placed order, press 确认支付 (a signed notify into the real
    endpoint), deliver the outbox; the order number."""
    order_no = ORDER_NO.search(placed_text).group(1)
    pay_url = PAY_URL.search(placed_text).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    return order_no
