"""The module's errors: a stable `code` and the facts; the chat words are the templates
templates/chat/errors/<code>.txt of this package, the console's `REFUSED_ZH`."""

from __future__ import annotations

from social_mall.errors import MallError


class AfterSaleRefusedError(MallError):
    """A request or a step on it that can't be taken. `reason`:
    order_state (the order takes no after-sale now), kind (not for this order), no_lines,
    qty (more units than the line still has: `left`), reason (not one of the numbers),
    photos (too many), state (the request is not where the step starts: `status`),
    tracking (not a tracking number), reject_reason (missing or too long), ambiguous
    (several returns wait for a tracking number: name one), stock (an exchange's replacement
    is out of stock: `left`)."""

    code = "aftersale_refused"

    def __init__(self, reason: str, *, left: int = 0, status: str = "") -> None:
        super().__init__(reason, left, status)
        self.reason, self.left, self.status = reason, left, status
