"""Orders written in lots: the prebuilt Core statements the desks share.

A desk (orders, group-buy joins) writes a lot of orders in one transaction with one
statement per table whatever the lot's size, as plain rows: no ORM objects to build,
track, flush and refresh for rows that are written once and only shown back. What is
written is what `place_order` writes for the same order (`new_order`, `order_line`):
same columns, same values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from social_mall.desk import BatchFailed
from social_mall.events import OrderPlaced
from social_mall.fulfilment import EXPRESS
from social_mall.orders.rules import OrderStatus, new_order_no
from social_mall.views import OrderLineView, OrderView
from storage.bulk import any_of, arrays, on_postgresql, unnest_insert
from storage.models import Order, OrderLine, Product, Sku
from storage.uow import UnitOfWork

_ORDERS, _LINES, _SKUS = cast(Table, Order.__table__), cast(Table, OrderLine.__table__), cast(Table, Sku.__table__)

# the SKUs of a lot with what an order copies of them and of their product, in the order
# every writer takes SKU rows in (`sku_rows`: IN (…) on SQLite, = ANY(array) on PostgreSQL)
_SKU_COLUMNS = (
    select(Sku.id, Sku.spec, Sku.price_fen, Sku.stock, Sku.on_shelf, Product.id.label("product_id"),
           Product.title, Product.on_shelf.label("product_on_shelf"), Product.category_id)
    .join(Product, Product.id == Sku.product_id)
)
_SKU_ROWS = (_SKU_COLUMNS.where(Sku.tenant_id == bindparam("tenant"), Sku.id.in_(bindparam("ids", expanding=True)))
             .order_by(Sku.id))
_PG_SKU_ROWS = _SKU_COLUMNS.where(Sku.tenant_id == bindparam("tenant"), any_of(Sku.id, "ids")).order_by(Sku.id)
_PG_SKU_ROWS_LOCKED = _PG_SKU_ROWS.with_for_update(of=_SKUS)   # the lot's stock is ours until commit
# PostgreSQL: the whole lot's stock in one statement of one shape (arrays, not VALUES rows)
_PG_TAKE_STOCK = text(
    "UPDATE skus SET stock = skus.stock - w.n FROM unnest(:ids, :ns) AS w(id, n) "
    "WHERE skus.id = w.id AND skus.tenant_id = :tenant AND skus.on_shelf AND skus.stock >= w.n"
).bindparams(bindparam("ids", type_=ARRAY(Integer())), bindparam("ns", type_=ARRAY(Integer())))
_TAKE_STOCK = (
    update(_SKUS)
    .where(_SKUS.c.tenant_id == bindparam("tenant"), _SKUS.c.id == bindparam("sku"),
           _SKUS.c.stock >= bindparam("n"), _SKUS.c.on_shelf.is_(True))
    .values(stock=_SKUS.c.stock - bindparam("n"))
)
_INSERT_ORDERS = _ORDERS.insert().returning(_ORDERS.c.id, _ORDERS.c.order_no, sort_by_parameter_order=True)
_INSERT_LINES = _LINES.insert()
_ORDER_COLUMNS = ("tenant_id", "order_no", "member_id", "status", "channel", "goods_fen", "shipping_fen",
                  "discount_fen", "total_fen", "paid_fen", "refunded_fen", "ship_name", "ship_phone", "ship_address",
                  "remark", "tracking_no", "source", "cancel_reason", "fulfilment", "created_at", "expires_at",
                  "channel_account_id", "pay_account_id", "idem_key")
_LINE_COLUMNS = ("tenant_id", "order_id", "sku_id", "product_id", "title", "spec", "price_fen", "qty", "line_fen",
                 "restocked_qty")
_PG_INSERT_ORDERS = unnest_insert(_ORDERS, _ORDER_COLUMNS, returning=("id", "order_no"))
_PG_INSERT_LINES = unnest_insert(_LINES, _LINE_COLUMNS)


async def sku_rows(uow: UnitOfWork, tenant: int, ids: Sequence[int], *, lock: bool = False) -> dict[int, Any]:
    """The SKUs `ids` of the tenant as rows (id → row, the product's title and shelf with
    them); `lock`: FOR UPDATE of the SKU rows until commit (PostgreSQL; SQLite's one
    writer at a time holds them anyway)."""
    if not ids:
        return {}
    if on_postgres(uow):
        stmt = _PG_SKU_ROWS_LOCKED if lock else _PG_SKU_ROWS
    else:
        stmt = _SKU_ROWS
    return {r.id: r for r in (await uow.session.execute(stmt, {"tenant": tenant, "ids": sorted(ids)})).all()}


def sku_name(row: Any) -> str:
    return f"{row.title} {row.spec}".strip()


def on_postgres(uow: UnitOfWork) -> bool:
    return on_postgresql(uow.session)


async def take_stock(uow: UnitOfWork, tenant: int, taken: Mapping[int, int]) -> None:
    """Take `taken` (sku id → units) off the shelf, every SKU or none: each guarded in SQL
    (on the shelf, that many left). BatchFailed when one guard fails (roll back)."""
    ids = sorted(k for k, n in taken.items() if n)
    if not ids:
        return
    s = uow.session
    if on_postgres(uow):
        got = await s.execute(_PG_TAKE_STOCK.execution_options(stock_only=True),
                              {"ids": ids, "ns": [taken[k] for k in ids], "tenant": tenant})
        if cast(Any, got).rowcount != len(ids):
            raise BatchFailed("stock moved under the lot")
        return
    for k in ids:
        got = await s.execute(_TAKE_STOCK.execution_options(stock_only=True), {"tenant": tenant, "sku": k, "n": taken[k]})
        if cast(Any, got).rowcount != 1:
            raise BatchFailed(f"sku {k}: stock moved under the lot")


def order_row(tenant: int, member_id: int, ship: tuple[str, str, str], goods: int, fee: int, discount: int, *,
              now: datetime, timeout: timedelta, channel: str, source: str, account: tuple[int | None, int | None],
              fulfilment: str = EXPRESS, idem_key: str = "") -> dict[str, Any]:
    """A pending-payment order as `new_order` makes it, as a row (its lines: `line_row`)."""
    return {
        "tenant_id": tenant, "order_no": new_order_no(now), "member_id": member_id,
        "status": OrderStatus.PENDING_PAYMENT, "channel": channel, "goods_fen": goods, "shipping_fen": fee,
        "discount_fen": discount, "total_fen": goods + fee - discount, "paid_fen": 0, "refunded_fen": 0,
        "ship_name": ship[0], "ship_phone": ship[1], "ship_address": ship[2], "remark": "", "tracking_no": "",
        "source": source, "cancel_reason": "", "fulfilment": fulfilment, "created_at": now,
        "expires_at": now + timeout, "channel_account_id": account[0], "pay_account_id": account[1],
        "idem_key": idem_key or None,
    }


def line_row(tenant: int, sku: Any, price: int, qty: int) -> dict[str, Any]:
    """An order line as `order_line` makes it (`sku`: a row of SKU_ROWS); order_id comes
    with `insert_orders`."""
    return {"tenant_id": tenant, "sku_id": sku.id, "product_id": sku.product_id, "title": sku.title,
            "spec": sku.spec, "price_fen": price, "qty": qty, "line_fen": price * qty, "restocked_qty": 0}


async def insert_orders(uow: UnitOfWork, placed: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any]]]]) -> None:
    """Orders and their lines, one INSERT per table; each order row gains its "id", each
    line its "order_id"."""
    s = uow.session
    rows = [o for o, _ in placed]
    if on_postgres(uow):
        got = await s.execute(_PG_INSERT_ORDERS, arrays(rows, _ORDER_COLUMNS))
    else:
        got = await s.execute(_INSERT_ORDERS, rows)
    ids_by_no = {r.order_no: r.id for r in got.all()}
    lines = []
    for o, its in placed:
        o["id"] = ids_by_no[o["order_no"]]
        for ln in its:
            ln["order_id"] = o["id"]
            lines.append(ln)
    if lines:
        if on_postgres(uow):
            await s.execute(_PG_INSERT_LINES, arrays(lines, _LINE_COLUMNS))
        else:
            await s.execute(_INSERT_LINES, lines)


def placed_event(o: Mapping[str, Any]) -> OrderPlaced:
    return OrderPlaced(tenant_id=o["tenant_id"], order_id=o["id"], order_no=o["order_no"],
                       member_id=o["member_id"], total_fen=o["total_fen"], source=o["source"])


def placed_view(o: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> OrderView:
    """What `order_view` shows of the order just written from these rows."""
    return OrderView(
        id=o["id"], tenant_id=o["tenant_id"], order_no=o["order_no"], member_id=o["member_id"],
        status=o["status"], goods_fen=o["goods_fen"], shipping_fen=o["shipping_fen"],
        discount_fen=o["discount_fen"], total_fen=o["total_fen"], paid_fen=0, refunded_fen=0,
        ship_name=o["ship_name"], ship_phone=o["ship_phone"], ship_address=o["ship_address"], tracking_no="",
        created_at=o["created_at"], expires_at=o["expires_at"], paid_at=None,
        lines=tuple(OrderLineView(ln["sku_id"], ln["title"], ln["spec"], ln["price_fen"], ln["qty"], ln["line_fen"])
                    for ln in lines),
        fulfilment=o["fulfilment"], channel_account_id=o["channel_account_id"] or 0,
        pay_account_id=o["pay_account_id"] or 0,
    )
