"""The app API's checkout (POST /api/app/v1/…/orders) through the order desk (#23), as the
chat's 确认: on PostgreSQL a plain order (saved address, no coupon, no points) is written in
the desk's lot, with the rows place_order would write; the cart is emptied in the handler's
own transaction, and if that transaction fails after the desk committed, the desk's order
is cancelled (stock back), the cart kept, and the same Idempotency-Key places it anew.
SQLite: place_order writes it in the handler's transaction, rolled back with it."""

from __future__ import annotations

from sqlalchemy import select

import storage.repos
from social_mall.orders.desk import DESK
from storage.models import Order, OrderLine
from tests.e2e.test_app_api import BASE, _mini, auth, login


async def _desk_done(mall) -> int:
    desk = mall.svc.uows().shared.get(DESK)
    return 0 if desk is None else desk.done + desk.retried


def _pg(mall) -> bool:
    return mall.svc.settings.database_url.startswith("postgresql")


async def _buyer(mall, openid: str) -> tuple[dict[str, str], int, int]:
    """A logged-in member with one SKU ×2 in the cart and a saved address: (headers, sku, address)."""
    await _mini(mall)
    h = auth((await login(mall, openid))["token"])
    listing = await (await mall.client.get(f"{BASE}/products", headers=h)).json()
    item = listing["items"][0]
    detail = await (await mall.client.get(f"{BASE}/products/{item.get('product_id', item.get('id'))}",
                                          headers=h)).json()
    sku = detail["skus"][0]
    sku_id = sku.get("sku_id", sku.get("id"))
    assert (await mall.client.post(f"{BASE}/cart/items", json={"sku_id": sku_id, "qty": 2}, headers=h)).status == 200
    addr = await mall.client.post(f"{BASE}/addresses", headers=h,
                                  json={"name": "李四", "phone": "13900000000", "detail": "杭州市西湖区文三路1号"})
    assert addr.status == 201, await addr.text()
    return h, sku_id, (await addr.json())["id"]


async def _state(mall, h: dict[str, str], sku_id: int) -> tuple[list[tuple[str, str]], int, list]:
    """The member's orders (status, cancel reason), the SKU's stock, the cart's lines."""
    cart = (await (await mall.client.get(f"{BASE}/cart", headers=h)).json())["lines"]
    async with mall.svc.uows() as uow:
        rows = (await uow.session.execute(
            select(Order.status, Order.cancel_reason).join(OrderLine, OrderLine.order_id == Order.id)
            .where(OrderLine.sku_id == sku_id, Order.source == "app").order_by(Order.id))).all()
        tenant = await mall.svc.tenant("demo")
        stock = await uow.catalog.stock(tenant.id, sku_id)
    return [tuple(r) for r in rows], stock, [(ln["sku_id"], ln["qty"]) for ln in cart]


async def test_app_checkout_goes_through_the_order_desk_and_empties_the_cart(mall):
    h, sku_id, address = await _buyer(mall, "mini_desk_buyer_1")
    _, stock, cart = await _state(mall, h, sku_id)
    assert cart == [(sku_id, 2)]
    before = await _desk_done(mall)
    resp = await mall.client.post(f"{BASE}/orders", json={"address_id": address},
                                  headers={**h, "Idempotency-Key": "desk-1"})
    assert resp.status == 201, await resp.text()
    order = await resp.json()
    assert await _desk_done(mall) == before + (1 if _pg(mall) else 0)   # SQLite: place_order
    assert order["status"] == "pending_payment" and [(ln["sku_id"], ln["qty"]) for ln in order["lines"]] == \
        [(sku_id, 2)]
    rows, now_stock, cart = await _state(mall, h, sku_id)
    assert rows == [("pending_payment", "")] and now_stock == stock - 2 and cart == []
    # a second tap with the key answers the same order, nothing more is written
    again = await mall.client.post(f"{BASE}/orders", json={"address_id": address},
                                   headers={**h, "Idempotency-Key": "desk-1"})
    assert again.status == 200 and (await again.json())["id"] == order["id"]
    assert (await _state(mall, h, sku_id))[:2] == (rows, now_stock)


async def test_an_app_checkout_failing_after_the_desk_cancels_the_order_and_keeps_the_cart(mall, monkeypatch):
    h, sku_id, address = await _buyer(mall, "mini_desk_buyer_2")
    _, stock, cart = await _state(mall, h, sku_id)
    before = await _desk_done(mall)

    async def broken(*args, **kwargs):
        raise RuntimeError("the handler's transaction fails after the desk committed")
    monkeypatch.setattr(storage.repos.MemberRepo, "remove_cart_items", broken)
    failed = await mall.client.post(f"{BASE}/orders", json={"address_id": address},
                                    headers={**h, "Idempotency-Key": "desk-2"})
    assert failed.status == 500
    pg = _pg(mall)
    assert await _desk_done(mall) == before + (1 if pg else 0)   # PostgreSQL: the desk did write it…
    rows, now_stock, now_cart = await _state(mall, h, sku_id)
    # …and it was undone; SQLite: place_order wrote it in the handler's transaction, rolled back
    assert rows == ([("cancelled", "checkout_undone")] if pg else [])
    assert now_stock == stock and now_cart == cart
    monkeypatch.undo()
    # the key was given back: the retry places the order
    retry = await mall.client.post(f"{BASE}/orders", json={"address_id": address},
                                   headers={**h, "Idempotency-Key": "desk-2"})
    assert retry.status == 201, await retry.text()
    rows, now_stock, now_cart = await _state(mall, h, sku_id)
    assert rows[-1] == ("pending_payment", "") and now_stock == stock - 2 and now_cart == []
