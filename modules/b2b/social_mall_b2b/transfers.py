"""Bank transfers (对公转账): a member of an approved company answers an unpaid order with
「对公转账」 and gets the shop's account and the order's reference (附言); the order then
stays open for the shop's transfer window (`ShopTerms.transfer_hours`, through the core's
payments.methods.extend_deadline) instead of the WeChat Pay timeout. An admin confirms each
receipt in the console (amount + the bank's serial number: once per serial; partial
receipts allowed, never more than what is due); when the order is fully received it is
paid through the core's payment-method seam (`mark_paid`, once). Audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from social_mall.errors import NotFoundError
from social_mall.orders.rules import OrderStatus
from social_mall.payments.methods import RefundWay, extend_deadline, mark_paid
from social_mall.views import OrderView
from social_mall_b2b.accounts import approved_company
from social_mall_b2b.errors import CreditRefusedError, InvalidApplicationError
from social_mall_b2b.models import ShopTerms, Transfer, TransferReceipt
from storage.uow import UnitOfWork

METHOD = "transfer"


@dataclass(frozen=True)
class BankAccount:
    bank_name: str = ""
    account_name: str = ""
    account_no: str = ""
    transfer_hours: int = 72

    @property
    def ready(self) -> bool:
        return bool(self.account_no and self.account_name)


async def shop_terms(uow: UnitOfWork, tenant: int) -> BankAccount:
    row = (await uow.session.execute(select(ShopTerms).where(ShopTerms.tenant_id == tenant))).scalar_one_or_none()
    return BankAccount() if row is None else BankAccount(row.bank_name, row.account_name, row.account_no,
                                                         row.transfer_hours)


async def set_shop_terms(uow: UnitOfWork, tenant: int, terms: BankAccount, actor: str) -> None:
    if not 1 <= terms.transfer_hours <= 24 * 60:
        raise InvalidApplicationError("transfer_hours")
    s = uow.session
    row = (await s.execute(select(ShopTerms).where(ShopTerms.tenant_id == tenant))).scalar_one_or_none()
    if row is None:
        row = ShopTerms(tenant_id=tenant)
        s.add(row)
    row.bank_name, row.account_name = terms.bank_name, terms.account_name
    row.account_no, row.transfer_hours = terms.account_no, terms.transfer_hours
    await s.flush()
    uow.audit(tenant, actor, "b2b.shop_terms", f"tenant:{tenant}",
              after={"account_no": terms.account_no, "transfer_hours": terms.transfer_hours})


def reference_of(order: OrderView) -> str:
    return f"ZZ{order.order_no}"


async def choose(uow: UnitOfWork, tenant: int, member: int, order: OrderView, now: datetime
                 ) -> tuple[Transfer, BankAccount, datetime]:
    """The member pays `order` by transfer: its reference, the account, the new deadline."""
    if order.member_id != member or order.status != OrderStatus.PENDING_PAYMENT:
        raise CreditRefusedError("order")
    terms = await shop_terms(uow, tenant)
    if await approved_company(uow, tenant, member) is None or not terms.ready:
        raise CreditRefusedError("no_transfer")
    s = uow.session
    found = (await s.execute(select(Transfer).where(Transfer.tenant_id == tenant,
                                                    Transfer.order_id == order.id))).scalar_one_or_none()
    if found is None:
        found = Transfer(tenant_id=tenant, order_id=order.id, member_id=member, reference=reference_of(order),
                         expected_fen=order.total_fen, received_fen=0, created_at=now)
        s.add(found)
        await s.flush()
    until = order.created_at + timedelta(hours=terms.transfer_hours)
    await extend_deadline(uow, tenant, order.id, until, method=METHOD, actor=f"member:{member}")
    return found, terms, max(until, order.expires_at)


async def transfers(uow: UnitOfWork, tenant: int) -> list[Transfer]:
    return list((await uow.session.execute(select(Transfer).where(Transfer.tenant_id == tenant)
                                           .order_by(Transfer.id.desc()).limit(200))).scalars().all())


async def confirm_receipt(uow: UnitOfWork, tenant: int, transfer_id: int, amount_fen: int, serial: str,
                          actor: str, now: datetime) -> tuple[bool, bool]:
    """An admin confirms money received for a transfer: (recorded, the order is now paid).
    Once per bank serial ((False, False) the second time); refused (nothing written) over
    what is still due or when the order is no longer waiting for payment."""
    serial = serial.strip()[:60]
    if amount_fen <= 0 or not serial:
        raise InvalidApplicationError("receipt")
    s = uow.session
    t = (await s.execute(select(Transfer).where(Transfer.tenant_id == tenant,
                                                Transfer.id == transfer_id))).scalar_one_or_none()
    if t is None:
        raise NotFoundError("b2b_transfer", transfer_id)
    if (await s.execute(select(TransferReceipt.id).where(TransferReceipt.tenant_id == tenant,
                                                         TransferReceipt.serial == serial))).first() is not None:
        return False, False
    order = await uow.orders.get(tenant, t.order_id)
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        raise InvalidApplicationError("transfer_closed")
    res = await s.execute(update(Transfer).where(
        Transfer.id == t.id, Transfer.received_fen + amount_fen <= Transfer.expected_fen,
    ).values(received_fen=Transfer.received_fen + amount_fen))
    if getattr(res, "rowcount", 0) != 1:
        raise InvalidApplicationError("receipt")
    s.add(TransferReceipt(tenant_id=tenant, transfer_id=t.id, serial=serial, amount_fen=amount_fen, actor=actor,
                          created_at=now))
    await s.flush()
    uow.audit(tenant, actor, "b2b.transfer_receipt", f"order:{t.order_id}",
              after={"amount_fen": amount_fen, "serial": serial})
    received = await s.scalar(select(Transfer.received_fen).where(Transfer.id == t.id))
    paid = False
    if received == t.expected_fen:
        paid = await mark_paid(uow, tenant, t.order_id, method=METHOD, actor=actor, now=now)
    return True, paid


class TransferMethod:
    """The payment method the module registers (registry.add_payment_method)."""

    key = METHOD

    async def offer(self, uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> str:
        if await approved_company(uow, tenant, order.member_id) is None:
            return ""
        terms = await shop_terms(uow, tenant)
        if not terms.ready:
            return ""
        return f"对公转账：回复「对公转账」获取收款账户（{terms.transfer_hours} 小时内到账即可）。"

    async def refund(self, uow: UnitOfWork, tenant: int, order: OrderView, out_refund_no: str, amount_fen: int,
                     now: datetime) -> RefundWay | None:
        """An order paid by transfer is refunded by transfer, confirmed by an admin (refunds.py)."""
        from social_mall_b2b.refunds import transfer_refund

        return await transfer_refund(uow, tenant, order, out_refund_no, amount_fen, now)


METHOD_OBJ = TransferMethod()
