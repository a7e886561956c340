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
