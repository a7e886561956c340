"""The channel account a request came through (its entrance), for every order it places.

A tenant sells through several accounts (official accounts, mini-programs); an order is
paid at the merchant linked to the account its buyer used. The edge that knows the account
sets it around its work (`entered`): the chat runner (the account the message was posted
to), the app API (the mini-program of the session). Every order written then records it,
whichever service placed it: `place_order` reads it when its caller names no account, and
the batched writers' requests (orders/desk.py `PlaceRequest`, groupbuy/desk.py
`JoinRequest`) capture it when they are made, in the requester's task (a desk writes in a
task of its own, with an empty context). A request that is queued for later elsewhere
captures `entrance()` the same way and writes inside `entered(...)`.

0 (the default) is the tenant's primary account.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_ENTRANCE: contextvars.ContextVar[int] = contextvars.ContextVar("entrance", default=0)


def entrance() -> int | None:
    """The channel account of the current request (None: the tenant's primary one)."""
    return _ENTRANCE.get() or None


@contextmanager
def entered(account: int | None) -> Iterator[None]:
    """Orders placed inside come through `account` (None or 0: the primary one)."""
    token = _ENTRANCE.set(account or 0)
    try:
        yield
    finally:
        _ENTRANCE.reset(token)
