"""Payment methods from modules: besides WeChat Pay, a module may offer some members a way
of paying an order of its own (on account, by bank transfer…) and decide when that order
becomes paid.

A module registers a `PaymentMethod` with `registry.add_payment_method(method)`; the
composition root hands the enabled methods to every unit of work (`uow.payment_methods`),
so a switched-off module offers nothing and orders are paid by WeChat Pay as before.

- `offer(...)` → a line shown under a placed order's pay link (what to reply to pay that way) or ""
  when the method is not offered for this order (another member, over a limit…).
- `extend_deadline` gives an unpaid order longer to be paid (a bank transfer takes days).
- The module takes the member's command (its own chat flow) and, when the method says the
  order is paid, calls `mark_paid`: the order moves pending → paid once (a conditional
  update), `order.paid` is emitted as for a WeChat payment, and the step is audited with
  the method's key. Nothing is paid twice: a second call returns False and changes nothing.
- `refund(...)` is asked by the core's one refund path (`payments.service.request_refund`,
  which the console, the after-sale module and every other refund go through) for each new
  refund, in its transaction, with the order's row locked: None when the order was not paid
  by this method (WeChat Pay refunds it, as before); `RefundWay.SETTLED` when the method gave
  the money back there and then (an account's balance lowered: the refund succeeds in the
  same transaction, `order.refunded` follows); `RefundWay.OFFLINE` when the money goes back
  outside (a bank transfer an admin confirms later): the refund stays pending, no WeChat Pay
  call is made, and the module settles it with `payments.service.settle_refund(...,
  status="SUCCESS")` once it is done. Raising a MallError refuses the refund (nothing written).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from social_mall.errors import NotFoundError
from social_mall.events import OrderPaid
from social_mall.orders.rules import OrderStatus

if TYPE_CHECKING:
    from social_mall.views import OrderView
    from storage.uow import UnitOfWork


class RefundWay(StrEnum):
    SETTLED = "settled"   # the method gave the money back now: the refund succeeds at once
    OFFLINE = "offline"   # the money goes back outside WeChat Pay; the module settles it later


class PaymentMethod(Protocol):
    key: str      # recorded on the audit entry of the payment ("credit", "transfer"…)

    async def offer(self, uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> str:
        """The line offering the method for this unpaid order ("": not offered)."""
        ...

    async def refund(self, uow: UnitOfWork, tenant: int, order: OrderView, out_refund_no: str, amount_fen: int,
                     now: datetime) -> RefundWay | None:
        """A new refund of `order` (its row locked): None when this method did not take its
        money; else how the money goes back (see the module docstring)."""
        ...


async def refund_way(uow: UnitOfWork, tenant: int, order: OrderView, out_refund_no: str, amount_fen: int,
                     now: datetime) -> tuple[str, RefundWay] | None:
    """The method that took the order's money and how it gives `amount_fen` back
    (None: no method claims the order; WeChat Pay refunds it)."""
    for method in uow.payment_methods:
        way = await method.refund(uow, tenant, order, out_refund_no, amount_fen, now)
        if way is not None:
            return method.key, way
    return None


async def offers(uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> list[str]:
    """The enabled methods' offers for an unpaid order, in registration order."""
    out: list[str] = []
    for method in uow.payment_methods:
        line = await method.offer(uow, tenant, order, now)
        if line:
            out.append(line)
    return out


async def mark_paid(uow: UnitOfWork, tenant: int, order_id: int, *, method: str, actor: str,
                    now: datetime) -> bool:
    """The order paid in full by `method` (pending → paid, once): emits `order.paid`, audited.
    False (nothing changed) when the order is not pending payment any more."""
    order = await uow.orders.get(tenant, order_id)
    if order is None:
        raise NotFoundError("order", order_id)
    if not await uow.orders.move(tenant, order.id, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID,
                                 paid_at=now, paid_fen=order.total_fen):
        return False
    uow.emit(OrderPaid(tenant_id=tenant, order_id=order.id, order_no=order.order_no, member_id=order.member_id,
                       paid_fen=order.total_fen, channel=order.channel, fulfilment=order.fulfilment))
    uow.audit(tenant, actor, "order.paid_by_method", f"order:{order.id}",
              after={"method": method, "paid_fen": order.total_fen})
    return True


async def extend_deadline(uow: UnitOfWork, tenant: int, order_id: int, until: datetime, *, method: str,
                          actor: str) -> bool:
    """Give an unpaid order paid by a slower method (a bank transfer) until `until` to be
    paid (never earlier than it had): the unpaid-order timeout then closes it later. False
    when the order is no longer pending payment or already had longer. Audited."""
    from sqlalchemy import update

    from storage.models import Order

    res = await uow.session.execute(update(Order).where(
        Order.tenant_id == tenant, Order.id == order_id, Order.status == OrderStatus.PENDING_PAYMENT,
        Order.expires_at < until).values(expires_at=until))
    if getattr(res, "rowcount", 0) != 1:
        return False
    uow.audit(tenant, actor, "order.deadline_extended", f"order:{order_id}",
              after={"method": method, "expires_at": until.isoformat()})
    return True
