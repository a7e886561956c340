"""Loyalty errors: a stable code and the facts; the chat templates word them."""

from __future__ import annotations

from social_mall.errors import MallError


class CouponSoldOutError(MallError):
    code = "coupon_sold_out"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class CouponLimitError(MallError):
    code = "coupon_limit"

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(name, limit)
        self.name, self.limit = name, limit


class CouponUnavailableError(MallError):
    """The coupon chosen at checkout is gone (used, locked by another order, expired)."""

    code = "coupon_unavailable"

    def __init__(self, coupon_id: int) -> None:
        super().__init__(coupon_id)
        self.coupon_id = coupon_id


class PointsInsufficientError(MallError):
    code = "points_insufficient"

    def __init__(self, wanted: int, balance: int) -> None:
        super().__init__(wanted, balance)
        self.wanted, self.balance = wanted, balance


class MergeRefusedError(MallError):
    code = "merge_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason



class PointsOwedError(PointsInsufficientError):
    """The balance is below zero (a refund took back points already spent): no points can
    be spent until what is owed is repaid."""

    code = "points_owed"

    def __init__(self, wanted: int, balance: int) -> None:
        super().__init__(wanted, balance)
        self.owed = -balance
