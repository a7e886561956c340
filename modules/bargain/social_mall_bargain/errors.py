"""The module's refusals: stable codes (chat/errors/<code>.txt in the module's templates)."""

from __future__ import annotations

from social_mall.errors import MallError


class BargainError(MallError):
    code = "bargain_error"


class CampaignClosedError(BargainError):
    code = "bargain_campaign_closed"


class BargainClosedError(BargainError):
    """The bargain is no longer open for helps or an order (expired, ordered, bought)."""

    code = "bargain_closed"

    def __init__(self, code_: str, status: str) -> None:
        super().__init__(code_, status)
        self.bargain_code, self.status = code_, status


class AlreadyBargainingError(BargainError):
    code = "bargain_already_started"

    def __init__(self, bargain_code: str) -> None:
        super().__init__(bargain_code)
        self.bargain_code = bargain_code


class SelfHelpError(BargainError):
    code = "bargain_self_help"


class AlreadyHelpedError(BargainError):
    code = "bargain_already_helped"


class HelpLimitError(BargainError):
    code = "bargain_help_limit"

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class HelperNotEligibleError(BargainError):
    """Not a follower, or a follower for less than the campaign's minimum age."""

    code = "bargain_helper_not_eligible"

    def __init__(self, reason: str, hours: int) -> None:
        super().__init__(reason, hours)
        self.reason, self.hours = reason, hours


class BargainSoldOutError(BargainError):
    code = "bargain_sold_out"


class InvalidTermsError(BargainError):
    code = "bargain_invalid_terms"

    def __init__(self, fields: list[str]) -> None:
        super().__init__(fields)
        self.fields = fields
