"""The module's errors: a stable `code` and the facts; the chat words are the templates
templates/chat/errors/<code>.txt of this package."""

from __future__ import annotations

from social_mall.errors import MallError


class LocalError(MallError):
    code = "local_error"


class BadLocationError(LocalError):
    """A location that is not a usable point (missing, malformed, 0,0)."""

    code = "local_bad_location"


class StoreUnavailableError(LocalError):
    """A store that is switched off, or not this tenant's."""

    code = "local_store_unavailable"

    def __init__(self, store_id: int) -> None:
        super().__init__(store_id)
        self.store_id = store_id


class RegionNotServedError(LocalError):
    """Express doesn't ship to this province (the template's 不配送地区)."""

    code = "local_region_not_served"

    def __init__(self, region: str) -> None:
        super().__init__(region)
        self.region = region


class OutsideZoneError(LocalError):
    """No store delivers to this point (same-city delivery)."""

    code = "local_outside_zone"


class BelowMinimumError(LocalError):
    code = "local_below_minimum"

    def __init__(self, min_fen: int, goods_fen: int) -> None:
        super().__init__(min_fen, goods_fen)
        self.min_fen, self.goods_fen = min_fen, goods_fen


class SlotFullError(LocalError):
    """The delivery slot (or appointment slot) was taken up meanwhile."""

    code = "local_slot_full"


class SlotGoneError(LocalError):
    """The slot is no longer offered (it starts too soon, or the day closed)."""

    code = "local_slot_gone"


class NoPointError(LocalError):
    """Same-city delivery needs the address's location."""

    code = "local_no_point"
