"""Helpers shared by the pay module's end-to-end tests (real WeChat Pay against the fakes)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

from social_mall.demo import ensure_demo_order
from social_mall.orders.service import find_order
from tests.conftest import TEST_APP_ID

WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN")
XRW = {"X-Requested-With": "social_mall"}


async def new_order(mall, code: str = "demo"):
    """A fresh pending order of the demo buyer (two 5斤 oranges + shipping) in a tenant
    seeded like the demo (`seed_demo`)."""
    from social_mall.members.service import list_addresses, resolve_member
    from social_mall.orders.service import place_order

    svc = mall.svc
    tenant = await svc.tenant(code)
    async with svc.uows() as uow:
        await ensure_demo_order(uow, tenant, now=svc.clock(), timeout=timedelta(minutes=30))
        member, _ = await resolve_member(uow, tenant.id, "demo", "demo_buyer")
        address = (await list_addresses(uow, tenant.id, member.id))[0]
        products = await uow.catalog.products(tenant.id, category_id=None, keyword="脐橙", offset=0, limit=1)
        sku = (await uow.catalog.skus(tenant.id, products[0][0].id))[0]
        placed = await place_order(uow, tenant.id, member.id, [(sku.id, 2)], address_id=address.id,
                                   now=svc.clock(), timeout=timedelta(minutes=30), channel="demo")
        order = await find_order(uow, tenant.id, placed.order_no)
        await uow.commit()
    return tenant, order


async def load(mall, tenant, order_no):
    async with mall.svc.uows() as uow:
        return await find_order(uow, tenant.id, order_no)


async def oauth_login(mall, pay_path: str, openid: str, *, appid: str = TEST_APP_ID) -> str:
    """Follow the pay page through snsapi_base OAuth like WeChat's browser; return the page."""
    client = mall.client
    first = await client.get(pay_path, headers={"User-Agent": WECHAT_UA}, allow_redirects=False)
    assert first.status == 302
    start = first.headers["Location"]
    assert start.startswith("/h5/oauth/demo?next=")
    to_wechat = await client.get(start, allow_redirects=False)
    assert to_wechat.status == 302
    auth = urlsplit(to_wechat.headers["Location"])
    q = parse_qs(auth.query)
    assert auth.path == "/connect/oauth2/authorize" and to_wechat.headers["Location"].endswith("#wechat_redirect")
    assert q["scope"] == ["snsapi_base"] and q["appid"] == [appid] and q["response_type"] == ["code"]
    redirect = urlsplit(q["redirect_uri"][0])
    code = mall.fake.mint_code(openid)
    back = await client.get(f"{redirect.path}?code={code}&state={q['state'][0]}", allow_redirects=False)
    assert back.status == 302 and back.headers["Location"] == pay_path
    page = await client.get(pay_path, headers={"User-Agent": WECHAT_UA})
    assert page.status == 200
    return await page.text()


async def oauth_payer(mall, client, path: str, openid: str) -> None:
    """snsapi_base OAuth from `client`'s browser started by the page itself (as the sandbox
    pay page's picker does): the payer cookie for `openid`, back on `path`."""
    start = await client.get(f"/h5/oauth/demo?next={quote(path, safe='')}", allow_redirects=False)
    q = parse_qs(urlsplit(start.headers["Location"]).query)
    back = await client.get(f"/h5/oauth/demo/callback?code={mall.fake.mint_code(openid)}&state={q['state'][0]}",
                            allow_redirects=False)
    assert back.status == 302 and back.headers["Location"] == path


def later(mall, minutes):
    base = mall.svc.clock
    mall.svc.clock = lambda: base() + timedelta(minutes=minutes)
