"""The module's errors: a stable `code` and the facts; the chat words are this package's
templates/chat/errors/<code>.txt."""

from __future__ import annotations

from datetime import datetime

from social_mall.errors import MallError


class SeckillError(MallError):
    code = "seckill_error"


class SoldOutError(SeckillError):
    """No stock left for this item (the admission step or the database said so)."""

    code = "seckill_sold_out"

    def __init__(self, title: str) -> None:
        super().__init__(title)
        self.title = title


class OverLimitError(SeckillError):
    code = "seckill_over_limit"

    def __init__(self, title: str, limit: int) -> None:
        super().__init__(title, limit)
        self.title, self.limit = title, limit


class NotStartedError(SeckillError):
    code = "seckill_not_started"

    def __init__(self, title: str, starts_at: datetime) -> None:
        super().__init__(title, starts_at)
        self.title, self.starts_at = title, starts_at


class EndedError(SeckillError):
    code = "seckill_ended"

    def __init__(self, title: str) -> None:
        super().__init__(title)
        self.title = title


class BusyError(SeckillError):
    """The member's previous attempt is still being answered (one in flight per member)."""

    code = "seckill_busy"


class TooFastError(SeckillError):
    """More attempts than the tenant allows a member in a minute."""

    code = "seckill_too_fast"


class NewMemberError(SeckillError):
    """The tenant bars members who joined less than `minutes` ago."""

    code = "seckill_new_member"

    def __init__(self, minutes: int) -> None:
        super().__init__(minutes)
        self.minutes = minutes


class BusyAgainError(SeckillError):
    """Admission could not be reached (memory being rebuilt for too long): try again."""

    code = "seckill_retry"


class InvalidSessionError(SeckillError):
    """A console form that doesn't make a session or an item."""

    code = "seckill_invalid"

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class NoAddressError(SeckillError):
    """Admitted, but the member has no saved address (the chat asks for one first)."""

    code = "seckill_no_address"
