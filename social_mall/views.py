"""Frozen views the core returns (never ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from social_mall.values import value

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@value
class CategoryView:
    id: int
    name: str


@value
class ProductCard:
    id: int
    title: str
    subtitle: str
    image: str
    min_price_fen: int


@value
class SkuView:
    id: int
    spec: str
    price_fen: int
    stock: int
    on_shelf: bool

    @property
    def available(self) -> bool:
        return self.on_shelf and self.stock > 0


@value
class ProductDetail:
    id: int
    title: str
    subtitle: str
    description: str
    image: str
    category_id: int
    skus: tuple[SkuView, ...]

    @property
    def min_price_fen(self) -> int:
        return min((s.price_fen for s in self.skus), default=0)


@dataclass(frozen=True)
class MemberView:
    id: int
    tenant_id: int
    nickname: str
    unionid: str | None
    entry_source: str


@dataclass(frozen=True)
class AddressView:
    id: int
    name: str
    phone: str
    detail: str
    is_default: bool

    @property
    def masked_phone(self) -> str:
        return self.phone[:3] + "****" + self.phone[-4:] if len(self.phone) >= 7 else self.phone


@dataclass(frozen=True)
class CartLine:
    sku_id: int
    product_id: int
    title: str
    spec: str
    price_fen: int
    qty: int
    stock: int
    available: bool
    label: str = ""          # a module's price for the member (with its label): price_fen is it
    retail_fen: int = 0      # the SKU's own price (shown beside a module's price)
    restricted: bool = False  # a product kept from the member (catalog/visibility.py)

    @property
    def line_fen(self) -> int:
        return self.price_fen * self.qty


@dataclass(frozen=True)
class CartView:
    lines: tuple[CartLine, ...]

    @property
    def goods_fen(self) -> int:
        return sum(line.line_fen for line in self.lines if line.available)

    @property
    def count(self) -> int:
        return sum(line.qty for line in self.lines)


@dataclass(frozen=True)
class OrderLineView:
    sku_id: int
    title: str
    spec: str
    price_fen: int
    qty: int
    line_fen: int


@dataclass(frozen=True)
class OrderView:
    id: int
    tenant_id: int
    order_no: str
    member_id: int
    status: str
    goods_fen: int
    shipping_fen: int
    discount_fen: int
    total_fen: int
    paid_fen: int
    refunded_fen: int
    ship_name: str
    ship_phone: str
    ship_address: str
    tracking_no: str
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    lines: tuple[OrderLineView, ...]
    fulfilment: str = "express"  # the fulfilment method's key (social_mall/fulfilment.py)
    channel_account_id: int = 0  # the channel account it was placed through (0: the primary one)
    pay_account_id: int = 0      # the merchant that takes its payment (0: the tenant's default)
