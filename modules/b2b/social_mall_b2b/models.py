"""The module's tables (on the core's Base). Every row carries tenant_id; money is integer
fen (BIGINT); times are timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class CustomerGroup(Base):
    """A customer group (客户分组): companies in it get its price lists."""

    __tablename__ = "b2b_groups"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class Company(Base):
    """A business account: applied for by a member (its owner), approved or rejected by an
    admin. One per member and one per 统一社会信用代码 within a tenant."""

    __tablename__ = "b2b_companies"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    owner_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    name: Mapped[str] = mapped_column(String(60))
    uscc: Mapped[str] = mapped_column(String(18))
    contact_name: Mapped[str] = mapped_column(String(20))
    contact_phone: Mapped[str] = mapped_column(String(20))
    invoice_title: Mapped[str] = mapped_column(String(60), default="")
    invoice_tax_no: Mapped[str] = mapped_column(String(20), default="")
    invoice_bank: Mapped[str] = mapped_column(String(100), default="")
    invoice_address: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")   # pending | approved | rejected
    reason: Mapped[str] = mapped_column(String(200), default="")
    # Unused since b2b_0012 (always NULL): a company's groups are its CompanyGroup rows. Kept
    # because SQLite can't drop a column a foreign key uses (see that migration).
    group_id: Mapped[int | None] = mapped_column(ForeignKey("b2b_groups.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    __table_args__ = (UniqueConstraint("tenant_id", "owner_member_id"), UniqueConstraint("tenant_id", "uscc"))


class CompanyGroup(Base):
    """A company's membership of a customer group: a company may be in several, and gets
    the best price over all of their lists (rules.company_price)."""

    __tablename__ = "b2b_company_groups"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"))
    group_id: Mapped[int] = mapped_column(ForeignKey("b2b_groups.id"))
    __table_args__ = (UniqueConstraint("company_id", "group_id"),)


class PriceListRow(Base):
    """A price list for a customer group or one company: per-SKU tier prices
    (b2b_list_prices) and/or a percentage off retail, within validity dates."""

    __tablename__ = "b2b_price_lists"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16), default="override")   # sale | override
    group_id: Mapped[int | None] = mapped_column(ForeignKey("b2b_groups.id"), nullable=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("b2b_companies.id"), nullable=True)
    percent_off_bp: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (CheckConstraint("percent_off_bp >= 0 AND percent_off_bp < 10000", name="ck_b2b_price_lists_percent"),)


class ListPrice(Base):
    """One quantity tier of a SKU in a list: from `min_qty` on, `price_fen` each."""

    __tablename__ = "b2b_list_prices"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    list_id: Mapped[int] = mapped_column(ForeignKey("b2b_price_lists.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    min_qty: Mapped[int] = mapped_column(Integer, default=1)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("list_id", "sku_id", "min_qty"),
                      CheckConstraint("price_fen > 0 AND min_qty >= 1", name="ck_b2b_list_prices_positive"))


class SkuTerms(Base):
    """A SKU's B2B order rules: minimum order quantity and case pack (multiples of)."""

    __tablename__ = "b2b_sku_terms"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    moq: Mapped[int] = mapped_column(Integer, default=1)
    case_pack: Mapped[int] = mapped_column(Integer, default=1)
    __table_args__ = (UniqueConstraint("tenant_id", "sku_id"),
                      CheckConstraint("moq >= 1 AND case_pack >= 1", name="ck_b2b_sku_terms_positive"))


class SkuCode(Base):
    """A SKU's code for quick orders (「快速下单 A1023 x 24」): unique within the tenant,
    stored upper case. The core's SKUs have no code of their own."""

    __tablename__ = "b2b_sku_codes"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    code: Mapped[str] = mapped_column(String(32))
    __table_args__ = (UniqueConstraint("tenant_id", "sku_id"), UniqueConstraint("tenant_id", "code"))


class Quote(Base):
    """A request for a quote (询价): a business member's SKUs and quantities; an admin
    answers with a unit price per line and an expiry; the member accepts it once, before
    it expires, and the order is placed at the quoted prices."""

    __tablename__ = "b2b_quotes"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(16), default="requested")   # requested | answered | accepted
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    answered_by: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)


class QuoteLine(Base):
    __tablename__ = "b2b_quote_lines"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    quote_id: Mapped[int] = mapped_column(ForeignKey("b2b_quotes.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    qty: Mapped[int] = mapped_column(Integer)
    unit_fen: Mapped[int] = mapped_column(BigInteger, default=0)     # 0 until answered
    __table_args__ = (UniqueConstraint("quote_id", "sku_id"),
                      CheckConstraint("qty >= 1 AND unit_fen >= 0", name="ck_b2b_quote_lines_positive"))


class CompanyMember(Base):
    """A buyer of a company (采购员), joined with the owner's one-time invite code. A
    member belongs to at most one company in a tenant (as its owner or a buyer)."""

    __tablename__ = "b2b_company_members"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    role: Mapped[str] = mapped_column(String(16), default="buyer")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id"),)


class Invite(Base):
    """An owner's one-time invite code (social_mall/codes.py: 50 bits, only its SHA-256
    stored, expiring, attempt-limited per member and per code)."""

    __tablename__ = "b2b_invites"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"))
    selector: Mapped[str] = mapped_column(String(2))
    digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column()
    used_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BuyerBudget(Base):
    """A buyer's monthly budget (采购限额) and what this month's orders have used of it:
    `spent_fen` counts the orders placed in `period` (Shanghai "YYYY-MM"), moved by one
    conditional UPDATE per order (spent + total ≤ limit), so two orders at once can't
    both pass it."""

    __tablename__ = "b2b_buyer_budgets"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    limit_fen: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(7), default="")
    spent_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id"),
                      CheckConstraint("limit_fen >= 0 AND spent_fen >= 0", name="ck_b2b_buyer_budgets_amounts"))


class BudgetEntry(Base):
    """One order counted against a budget (once: unique order), and whether its
    cancellation gave it back (once: a conditional UPDATE of `returned`)."""

    __tablename__ = "b2b_budget_entries"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    period: Mapped[str] = mapped_column(String(7))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    returned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"),)


class CreditAccount(Base):
    """A company's credit terms (账期/月结): its limit and what it owes now. `outstanding_fen`
    moves only by conditional UPDATEs (an order on credit: outstanding + total ≤ limit; a
    repayment or refund: outstanding ≥ amount), each with its CreditEntry in one
    transaction, so outstanding == Σ orders − Σ repayments − Σ refunds (credit.reconcile)."""

    __tablename__ = "b2b_credit_accounts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"))
    limit_fen: Mapped[int] = mapped_column(BigInteger)
    outstanding_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (UniqueConstraint("tenant_id", "company_id"),
                      CheckConstraint("limit_fen >= 0 AND outstanding_fen >= 0", name="ck_b2b_credit_amounts"))


class CreditEntry(Base):
    """One movement of a company's balance: kind order (+), repayment (−) or refund (−);
    `ref` makes each once (an order's id, a bank reference)."""

    __tablename__ = "b2b_credit_entries"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    ref: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "ref"),
                      CheckConstraint("amount_fen > 0", name="ck_b2b_credit_entries_amount"))


class Statement(Base):
    """A company's monthly statement (对账单) of its credit orders: `amount_fen` = Σ orders −
    Σ refunds entered in `period` (Shanghai "YYYY-MM"), repaid oldest first (`paid_fen`);
    one unpaid past `due_at` is overdue and blocks new credit orders."""

    __tablename__ = "b2b_statements"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"))
    period: Mapped[str] = mapped_column(String(7))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    __table_args__ = (UniqueConstraint("tenant_id", "company_id", "period"),
                      CheckConstraint("paid_fen >= 0 AND paid_fen <= amount_fen", name="ck_b2b_statements_paid"))


class ApprovalRequest(Base):
    """A buyer's order over its monthly budget, waiting for the company owner's approval
    (待审批): the lines (「sku:qty,…」) and destination as the buyer confirmed them; approving
    places the order (once: pending → approved by a conditional UPDATE)."""

    __tablename__ = "b2b_approvals"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    company_id: Mapped[int] = mapped_column(ForeignKey("b2b_companies.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    lines: Mapped[str] = mapped_column(String(4000))
    total_fen: Mapped[int] = mapped_column(BigInteger)
    ship_name: Mapped[str] = mapped_column(String(40))
    ship_phone: Mapped[str] = mapped_column(String(20))
    ship_address: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="pending")   # pending | approved | rejected
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # the channel account the buyer's order came through (0: the primary): the order placed
    # on approval is placed there (paid at its merchant), wherever the owner approves from
    account_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ShopTerms(Base):
    """A tenant's B2B terms: the bank account buyers transfer to (对公转账), how long an
    unpaid order waiting for a transfer stays open, and the quantity from which a line is
    large enough to ask for a quote (询价)."""

    __tablename__ = "b2b_shop_terms"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    bank_name: Mapped[str] = mapped_column(String(60), default="")
    account_name: Mapped[str] = mapped_column(String(60), default="")
    account_no: Mapped[str] = mapped_column(String(40), default="")
    transfer_hours: Mapped[int] = mapped_column(Integer, default=72)
    # from this many pieces of one line the buyer is told to ask for a quote (0: never)
    quote_from_qty: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (UniqueConstraint("tenant_id"),)


class Transfer(Base):
    """An order to be paid by bank transfer: its reference (附言) and what has been received
    (receipts confirmed by an admin, partial allowed); paid when received == expected."""

    __tablename__ = "b2b_transfers"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reference: Mapped[str] = mapped_column(String(32))
    expected_fen: Mapped[int] = mapped_column(BigInteger)
    received_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"),
                      CheckConstraint("received_fen >= 0 AND received_fen <= expected_fen",
                                      name="ck_b2b_transfers_received"))


class TransferReceipt(Base):
    """One receipt an admin confirmed (the bank's serial number makes it once)."""

    __tablename__ = "b2b_transfer_receipts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    transfer_id: Mapped[int] = mapped_column(ForeignKey("b2b_transfers.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "serial"),
                      CheckConstraint("amount_fen > 0", name="ck_b2b_transfer_receipts_amount"))


class VatRate(Base):
    """A product's VAT rate (增值税率, basis points: 1300 = 13%): prices are tax-inclusive;
    the rate and the tax in an order are shown to the business buyer."""

    __tablename__ = "b2b_vat_rates"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    rate_bp: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),
                      CheckConstraint("rate_bp >= 0 AND rate_bp <= 3000", name="ck_b2b_vat_rates_rate"))


class PromoRules(Base):
    """A tenant's rule for which retail promotions a business buyer's 企业价 lines still take
    (default: none): member level discount, flash price, 满减, coupons, points."""

    __tablename__ = "b2b_promo_rules"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    level: Mapped[bool] = mapped_column(Boolean, default=False)
    flash: Mapped[bool] = mapped_column(Boolean, default=False)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    coupon: Mapped[bool] = mapped_column(Boolean, default=False)
    points: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (UniqueConstraint("tenant_id"),)


class OfflineRefund(Base):
    """A refund of an order paid by transfer (or on credit beyond what the company still
    owes): the core's refund waits (pending) until an admin confirms the money went back by
    bank transfer, with the bank's reference (once per reference)."""

    __tablename__ = "b2b_offline_refunds"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    out_refund_no: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))          # credit | transfer
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="pending")   # pending | confirmed
    bank_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    __table_args__ = (UniqueConstraint("tenant_id", "out_refund_no"), UniqueConstraint("tenant_id", "bank_ref"),
                      CheckConstraint("amount_fen > 0", name="ck_b2b_offline_refunds_amount"))


class ExclusiveProduct(Base):
    """A product sold to business accounts only (企业专供): hidden from everyone else in
    lists, searches, cards, the cart and orders (the core's visibility seam: exclusive.py)."""

    __tablename__ = "b2b_exclusive_products"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),)
