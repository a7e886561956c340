"""The member JSON API of the mini-program (/api/app/v1/), end to end against the fake
WeChat: wx.login code → jscode2session → session token → catalog → cart → address →
checkout (idempotent) → orders; tenant isolation and other members' orders."""

from __future__ import annotations

from pydantic import SecretStr

from social_mall.demo import DemoCredentials, seed_demo
from tests.conftest import TEST_AES_KEY

BASE = "/api/app/v1/demo"


def _mini(mall) -> None:
    mall.svc.settings.mini_app_id = mall.fake.mini_app_id
    mall.svc.settings.mini_app_secret = SecretStr(mall.fake.mini_app_secret)


async def login(mall, openid: str, tenant: str = "demo", unionid: str | None = None) -> dict:
    code = mall.fake.mint_js_code(openid, unionid=unionid)
    resp = await mall.client.post(f"/api/app/v1/{tenant}/session", json={"code": code})
    assert resp.status == 200, await resp.text()
    return await resp.json()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_code_to_session_and_refusals(mall):
    _mini(mall)
    code = mall.fake.mint_js_code("mini_open_1")
    first = await mall.client.post(f"{BASE}/session", json={"code": code})
    body = await first.json()
    assert first.status == 200 and body["token"] and "session_key" not in body
    call = mall.fake.calls_to("/sns/jscode2session")[-1]
    assert call.query["appid"] == mall.fake.mini_app_id and call.query["grant_type"] == "authorization_code"
    again = await mall.client.post(f"{BASE}/session", json={"code": code})  # 40163: code used
    assert again.status == 401 and "40163" in (await again.json())["error"]["message"]
    bad = await mall.client.post(f"{BASE}/session", json={"code": "nope"})  # 40029
    assert bad.status == 401 and "40029" in (await bad.json())["error"]["message"]
    none = await mall.client.get(f"{BASE}/cart")
    assert none.status == 401
    forged = await mall.client.get(f"{BASE}/cart", headers=auth("forged"))
    assert forged.status == 401


async def test_browse_cart_checkout_once_and_isolation(mall):
    _mini(mall)
    s = await login(mall, "mini_open_2")
    h = auth(s["token"])
    cats = await (await mall.client.get(f"{BASE}/categories", headers=h)).json()
    assert cats["items"]
    listing = await (await mall.client.get(f"{BASE}/products", headers=h)).json()
    assert listing["total"] >= 1
    pid = listing["items"][0]["product_id"] if "product_id" in listing["items"][0] else listing["items"][0]["id"]
    detail = await (await mall.client.get(f"{BASE}/products/{pid}", headers=h)).json()
    sku = detail["skus"][0]
    sku_id = sku.get("sku_id", sku.get("id"))
    added = await mall.client.post(f"{BASE}/cart/items", json={"sku_id": sku_id, "qty": 2}, headers=h)
    assert added.status == 200 and (await added.json())["lines"]
    changed = await mall.client.put(f"{BASE}/cart/items/{sku_id}", json={"qty": 1}, headers=h)
    assert changed.status == 200 and (await changed.json())["lines"][0]["qty"] == 1
    addr = await mall.client.post(f"{BASE}/addresses", json={"name": "张三", "phone": "13800000000",
                                                            "detail": "上海市黄浦区人民大道1号"}, headers=h)
    assert addr.status == 201, await addr.text()
    address_id = (await addr.json())["id"]
    tap = {**h, "Idempotency-Key": "tap-1"}
    one = await mall.client.post(f"{BASE}/orders", json={"address_id": address_id}, headers=tap)
    assert one.status == 201, await one.text()
    two = await mall.client.post(f"{BASE}/orders", json={"address_id": address_id}, headers=tap)
    order = await one.json()
    assert (await two.json())["id"] == order["id"]
    mine = await (await mall.client.get(f"{BASE}/orders", headers=h)).json()
    assert mine["total"] == 1 and mine["items"][0]["order_no"] == order["order_no"]

    other = await login(mall, "mini_open_3")  # another member: 404, and nothing cancelled
    oh = auth(other["token"])
    assert (await mall.client.get(f"{BASE}/orders/{order['id']}", headers=oh)).status == 404
    assert (await mall.client.post(f"{BASE}/orders/{order['id']}/cancel", headers=oh)).status == 404
    still = await (await mall.client.get(f"{BASE}/orders/{order['id']}", headers=h)).json()
    assert still["status"] == order["status"]

    async with mall.svc.uows() as uow:  # tenant B: A's token reads nothing of it
        await seed_demo(uow, DemoCredentials(wechat_app_id="wx_shopb_00000000001", wechat_token="tok_b",
                                             wechat_aes_key=TEST_AES_KEY, wechat_app_secret="secret_b"), code="shopb")
        await uow.commit()
    assert (await mall.client.get("/api/app/v1/shopb/orders", headers=h)).status == 401
    assert (await mall.client.get("/api/app/v1/shopb/cart", headers=h)).status == 401

    cancelled = await mall.client.post(f"{BASE}/orders/{order['id']}/cancel", headers=h)
    assert cancelled.status == 200 and (await cancelled.json())["status"] != order["status"]


async def test_same_unionid_is_the_official_account_member(mall):
    _mini(mall)
    from social_mall.members.service import resolve_member

    async with mall.svc.uows() as uow:
        demo = await mall.svc.tenant("demo")
        oa, _ = await resolve_member(uow, demo.id, "mp", "oa_open_9", unionid="union_9")
        await uow.commit()
    s = await login(mall, "mini_open_9", unionid="union_9")
    assert s["member_id"] == oa.id
