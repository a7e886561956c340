"""Referral errors: stable codes and facts (the chat words live in
templates/chat/errors/referral_*.txt)."""

from __future__ import annotations

from social_mall.errors import MallError


class ReferralError(MallError):
    code = "referral_error"


class NotDistributorError(ReferralError):
    code = "referral_not_distributor"

    def __init__(self, status: str = "") -> None:
        super().__init__(status)
        self.status = status   # "" (never applied) | pending | rejected | disabled


class ProgramClosedError(ReferralError):
    code = "referral_closed"


class BadAmountError(ReferralError):
    code = "referral_bad_amount"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class BelowMinimumError(ReferralError):
    code = "referral_below_minimum"

    def __init__(self, amount_fen: int, min_fen: int) -> None:
        super().__init__(amount_fen, min_fen)
        self.amount_fen, self.min_fen = amount_fen, min_fen


class OverBalanceError(ReferralError):
    code = "referral_over_balance"

    def __init__(self, amount_fen: int, available_fen: int) -> None:
        super().__init__(amount_fen, available_fen)
        self.amount_fen, self.available_fen = amount_fen, available_fen


class DailyLimitError(ReferralError):
    code = "referral_daily_limit"

    def __init__(self, amount_fen: int, limit_fen: int, used_fen: int) -> None:
        super().__init__(amount_fen, limit_fen, used_fen)
        self.amount_fen, self.limit_fen, self.used_fen = amount_fen, limit_fen, used_fen
        self.left_fen = max(limit_fen - used_fen, 0)


class WithdrawalStateError(ReferralError):
    code = "referral_withdrawal_state"

    def __init__(self, withdrawal_id: int, status: str, wanted: str) -> None:
        super().__init__(withdrawal_id, status, wanted)
        self.withdrawal_id, self.status, self.wanted = withdrawal_id, status, wanted
