"""Core errors: a stable `code` and the facts. The edge turns them into words."""

from __future__ import annotations


class MallError(Exception):
    code = "mall_error"

    def facts(self) -> dict[str, object]:
        """The fields a template may show (public attributes set by the subclass)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class NotFoundError(MallError):
    code = "not_found"

    def __init__(self, what: str, key: object) -> None:
        super().__init__(what, key)
        self.what, self.key = what, key


class OutOfStockError(MallError):
    code = "out_of_stock"

    def __init__(self, sku_name: str, left: int) -> None:
        super().__init__(sku_name, left)
        self.sku_name, self.left = sku_name, left


class OffShelfError(MallError):
    code = "off_shelf"

    def __init__(self, sku_name: str) -> None:
        super().__init__(sku_name)
        self.sku_name = sku_name


class RestrictedProductError(MallError):
    """The member may not buy this product (a module keeps it to some members:
    social_mall/catalog/visibility.py)."""

    code = "product_restricted"

    def __init__(self, sku_name: str) -> None:
        super().__init__(sku_name)
        self.sku_name = sku_name


class InvalidQuantityError(MallError):
    code = "invalid_quantity"

    def __init__(self, qty: int, max_qty: int) -> None:
        super().__init__(qty, max_qty)
        self.qty, self.max_qty = qty, max_qty


class EmptyCartError(MallError):
    code = "empty_cart"


class NoFulfilmentError(MallError):
    """No fulfilment method can take every line of this order (e.g. a pick-up-only item
    next to an express-only one)."""

    code = "no_fulfilment"


class InvalidAddressError(MallError):
    code = "invalid_address"

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class AddressLockedError(MallError):
    """The order's address can't change any more: it is paid (or closed)."""

    code = "address_locked"

    def __init__(self, order_no: str, status: str) -> None:
        super().__init__(order_no, status)
        self.order_no, self.status = order_no, status


class ShippingChangedError(MallError):
    """Another address would change what the order's delivery costs (a region priced
    otherwise or not served), or the order isn't delivered to an address at all (a
    pick-up): its address stays, the buyer places a new order instead."""

    code = "shipping_changed"

    def __init__(self, order_no: str, shipping_fen: int, quoted_fen: int | None, why: str = "") -> None:
        super().__init__(order_no, shipping_fen, quoted_fen, why)
        self.order_no, self.shipping_fen, self.quoted_fen, self.why = order_no, shipping_fen, quoted_fen, why


class IllegalTransitionError(MallError):
    code = "illegal_transition"

    def __init__(self, order_no: str, src: str, dst: str) -> None:
        super().__init__(order_no, src, dst)
        self.order_no, self.src, self.dst = order_no, src, dst


class NotShippableError(MallError):
    """Express-only steps (a tracking number) on an order fulfilled another way, or the
    reverse (`hand_over` on an express order)."""

    code = "not_shippable"

    def __init__(self, order_no: str, fulfilment: str) -> None:
        super().__init__(order_no, fulfilment)
        self.order_no, self.fulfilment = order_no, fulfilment


class AmountMismatchError(MallError):
    code = "amount_mismatch"

    def __init__(self, order_no: str, expected_fen: int, paid_fen: int) -> None:
        super().__init__(order_no, expected_fen, paid_fen)
        self.order_no, self.expected_fen, self.paid_fen = order_no, expected_fen, paid_fen


class MerchantMismatchError(MallError):
    code = "merchant_mismatch"

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class NotRefundableError(MallError):
    code = "not_refundable"

    def __init__(self, order_no: str, status: str) -> None:
        super().__init__(order_no, status)
        self.order_no, self.status = order_no, status


class RefundTooLargeError(MallError):
    code = "refund_too_large"

    def __init__(self, order_no: str, requested_fen: int, refundable_fen: int) -> None:
        super().__init__(order_no, requested_fen, refundable_fen)
        self.order_no, self.requested_fen, self.refundable_fen = order_no, requested_fen, refundable_fen


class RefundLimitError(MallError):
    """WeChat Pay's limits on one order's refunds: at most `MAX_REFUNDS_PER_ORDER` refunds
    (`limit` "count"), none later than a year after payment ("age")."""

    code = "refund_limit"

    def __init__(self, order_no: str, limit: str) -> None:
        super().__init__(order_no, limit)
        self.order_no, self.limit = order_no, limit


class InvalidPriceError(MallError):
    code = "invalid_price"

    def __init__(self, sku_id: int, price_fen: int) -> None:
        super().__init__(sku_id, price_fen)
        self.sku_id, self.price_fen = sku_id, price_fen


class InvalidBirthdayError(MallError):
    """What was typed is not a birthday (a bad format, a day the month doesn't have, a
    date in the future)."""

    code = "invalid_birthday"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class BirthdayLockedError(MallError):
    """The member set a birthday already: only an admin may change it (coupon farming)."""

    code = "birthday_locked"

    def __init__(self, month: int, day: int, year: int | None) -> None:
        super().__init__(month, day, year)
        self.month, self.day, self.year = month, day, year


class OrderTooLargeError(MallError):
    """The order would cost more than the tenant allows for one order (tenants.max_order_fen)."""

    code = "order_too_large"

    def __init__(self, total_fen: int, max_fen: int) -> None:
        super().__init__(total_fen, max_fen)
        self.total_fen, self.max_fen = total_fen, max_fen


class PriceChangedError(MallError):
    """The order would cost another total than the one the buyer was shown and confirmed."""

    code = "price_changed"

    def __init__(self, shown_fen: int, total_fen: int) -> None:
        super().__init__(shown_fen, total_fen)
        self.shown_fen, self.total_fen = shown_fen, total_fen
