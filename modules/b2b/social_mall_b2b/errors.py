"""The module's errors: a stable `code` and the facts; the chat words are this package's
templates/chat/errors/<code>.txt."""

from __future__ import annotations

from social_mall.errors import MallError


class B2bError(MallError):
    code = "b2b_error"


class InvalidUsccError(B2bError):
    """A 统一社会信用代码 that fails GB 32100-2015 (length, alphabet or check digit)."""

    code = "b2b_invalid_uscc"

    def __init__(self, uscc: str, problem: str) -> None:
        super().__init__(uscc, problem)
        self.uscc, self.problem = uscc, problem


class AlreadyAppliedError(B2bError):
    """The member already has an application under review or an approved account."""

    code = "b2b_already_applied"

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class UsccTakenError(B2bError):
    """Another member's account already uses this code in this shop."""

    code = "b2b_uscc_taken"

    def __init__(self, uscc: str) -> None:
        super().__init__(uscc)
        self.uscc = uscc


class InvalidApplicationError(B2bError):
    """A field missing or malformed (company name, contact, phone…)."""

    code = "b2b_invalid_application"

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class NotPendingError(B2bError):
    """Approve/reject of an application that is not under review any more."""

    code = "b2b_not_pending"

    def __init__(self, company_id: int, status: str) -> None:
        super().__init__(company_id, status)
        self.company_id, self.status = company_id, status


class QuantityRefusedError(B2bError):
    """Below the SKU's minimum order quantity, or not a multiple of its case pack."""

    code = "b2b_quantity_refused"

    def __init__(self, sku_name: str, problem: str, qty: int, moq: int, case: int, nearest: int) -> None:
        super().__init__(sku_name, problem, qty, moq, case, nearest)
        self.sku_name, self.problem, self.qty = sku_name, problem, qty
        self.moq, self.case, self.nearest = moq, case, nearest


class NotBusinessError(B2bError):
    """Quick orders and quotes are for members of an approved business account."""

    code = "b2b_not_business"


class QuoteLinesError(B2bError):
    """A quote request with lines that are not 「编码 x 数量」 or unknown codes."""

    code = "b2b_quote_lines"

    def __init__(self, bad: str) -> None:
        super().__init__(bad)
        self.bad = bad


class QuoteUnavailableError(B2bError):
    """A quote not answered yet, already accepted, or expired."""

    code = "b2b_quote_unavailable"

    def __init__(self, quote_id: int, status: str) -> None:
        super().__init__(quote_id, status)
        self.quote_id, self.status = quote_id, status


class BudgetExceededError(B2bError):
    """A buyer's order over what is left of its monthly budget."""

    code = "b2b_budget_exceeded"

    def __init__(self, limit_fen: int, used_fen: int, order_fen: int) -> None:
        super().__init__(limit_fen, used_fen, order_fen)
        self.limit_fen, self.used_fen, self.order_fen = limit_fen, used_fen, order_fen
        self.left_fen = max(limit_fen - used_fen, 0)


class CreditRefusedError(B2bError):
    """An order on credit refused: no credit terms, over the limit (outstanding + order > limit),
    or the order is not this company's unpaid order."""

    code = "b2b_credit_refused"

    def __init__(self, reason: str, limit_fen: int = 0, outstanding_fen: int = 0, order_fen: int = 0) -> None:
        super().__init__(reason, limit_fen, outstanding_fen, order_fen)
        self.reason, self.limit_fen, self.outstanding_fen, self.order_fen = reason, limit_fen, outstanding_fen, order_fen


class ApprovalRequestedError(B2bError):
    """A buyer's order over its monthly budget was not placed: it waits for the owner's
    approval as request `approval_id` (the order's transaction rolls back)."""

    code = "b2b_approval_requested"

    def __init__(self, approval_id: int, limit_fen: int, used_fen: int, order_fen: int) -> None:
        super().__init__(approval_id, limit_fen, used_fen, order_fen)
        self.approval_id, self.limit_fen, self.used_fen, self.order_fen = approval_id, limit_fen, used_fen, order_fen


class ApprovalError(B2bError):
    """Not the company's owner, no such request, or already decided."""

    code = "b2b_approval"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
