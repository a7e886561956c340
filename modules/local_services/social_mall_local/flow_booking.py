"""Chat: appointments (预约).

「预约」: a service → a store (the member's own first) → a date → the free slots → a
confirmation (price, what is paid now: the deposit or all, the cancel rule) → 「确认」
places the order and answers with its pay link. 「我的预约」: upcoming bookings; a number
shows one; 「改期」 picks a new date and slot (until the free-cancel deadline);
「取消预约」 cancels per the rule (refund, or none).

State data: services, stores, days (date ordinals), slots (start epoch minutes), bookings
(listed ids); product, store, day, start, booking (picked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from flows import orders
from flows.engine import Ctx, Flow, Intent, Keyword, Outcome, Say, Step, StepFn, Turn, Value, reads_only
from social_mall_local import bookings as B
from social_mall_local.geo import SHANGHAI, local_day
from social_mall_local.stores import active_store

NAME = "local_booking"
WEEK = "一二三四五六日"


class St(StrEnum):
    IDLE = "idle"
    SERVICE = "service"
    STORE = "store"
    DAY = "day"
    SLOT = "slot"
    CONFIRM = "confirm"
    MINE = "mine"
    DETAIL = "detail"
    RE_DAY = "re_day"
    RE_SLOT = "re_slot"


class Do(StrEnum):
    BOOK = "local.book"
    MINE = "local.my_bookings"
    CANCEL = "local.cancel_booking"
    RESCHEDULE = "local.reschedule"


def day_label(d: date, now: datetime) -> str:
    rel = {0: "今天", 1: "明天", 2: "后天"}.get((d - local_day(now)).days, "")
    return f"{d:%m-%d} 周{WEEK[d.isoweekday() - 1]}{'（' + rel + '）' if rel else ''}"


def time_label(at: datetime, day: date) -> str:
    local = at.astimezone(SHANGHAI)
    return f"{'次日 ' if local.date() > day else ''}{local:%H:%M}"


def when(at: datetime) -> str:
    local = at.astimezone(SHANGHAI)
    return f"{local:%m-%d} 周{WEEK[local.isoweekday() - 1]} {local:%H:%M}"


# -- commands ----------------------------------------------------------------------------------------

@reads_only
@dataclass(frozen=True)
class ListServices:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await B.services(ctx.uow, ctx.tenant_id)
        if not found:
            return Outcome((Say("chat/local/booking/none.txt"),), to=St.IDLE)
        return Outcome((Say("chat/local/booking/services.txt", {"services": found}),),
                       {"services": [s.product_id for s in found]})


@reads_only
@dataclass(frozen=True)
class ListStores:
    product: int

    async def run(self, ctx: Ctx) -> Outcome:
        svc = await B.service(ctx.uow, ctx.tenant_id, self.product)
        found = await B.stores_for(ctx.uow, ctx.tenant_id, ctx.member.id, self.product)
        if not found:
            return Outcome((Say("chat/local/booking/no_store.txt", {"svc": svc}),), to=St.SERVICE)
        return Outcome((Say("chat/local/booking/stores.txt", {"svc": svc, "stores": found}),),
                       {"stores": [s.id for s in found]})


async def _days(ctx: Ctx, product: int, store_id: int) -> tuple[B.ServiceView, list[date]]:
    svc = await B.service(ctx.uow, ctx.tenant_id, product)
    store = await active_store(ctx.uow, ctx.tenant_id, store_id)
    return svc, B.days_for(svc, store, ctx.now)


@reads_only
@dataclass(frozen=True)
class ListDays:
    product: int
    store: int

    async def run(self, ctx: Ctx) -> Outcome:
        svc, days = await _days(ctx, self.product, self.store)
        say = Say("chat/local/booking/days.txt", {"svc": svc, "days": [day_label(d, ctx.now) for d in days]})
        return Outcome((say,), {"days": [d.toordinal() for d in days]})


async def _slots(ctx: Ctx, product: int, store_id: int, day: int) -> tuple[list[B.FreeSlot], Outcome]:
    svc = await B.service(ctx.uow, ctx.tenant_id, product)
    store = await active_store(ctx.uow, ctx.tenant_id, store_id)
    d = date.fromordinal(day)
    free = await B.free_slots(ctx.uow, ctx.tenant_id, svc, store, d, ctx.now)
    if not free:
        return free, Outcome((Say("chat/local/booking/no_slot.txt", {"day": day_label(d, ctx.now)}),))
    say = Say("chat/local/booking/slots.txt", {
        "svc": svc, "store": store, "day": day_label(d, ctx.now),
        "slots": [(time_label(f.starts, d), time_label(f.ends, d), f.free) for f in free]})
    return free, Outcome((say,), {"slots": [int(f.starts.timestamp()) // 60 for f in free]})


@reads_only
@dataclass(frozen=True)
class ListSlots:
    product: int
    store: int
    day: int

    async def run(self, ctx: Ctx) -> Outcome:
        free, out = await _slots(ctx, self.product, self.store, self.day)
        return out if free else Outcome(out.replies, to=St.DAY)


@reads_only
@dataclass(frozen=True)
class ShowConfirm:
    product: int
    store: int
    start: int

    async def run(self, ctx: Ctx) -> Outcome:
        svc = await B.service(ctx.uow, ctx.tenant_id, self.product)
        store = await active_store(ctx.uow, ctx.tenant_id, self.store)
        at = datetime.fromtimestamp(self.start * 60, SHANGHAI)
        say = Say("chat/local/booking/confirm.txt", {
            "svc": svc, "store": store, "when": when(at), "ends": when(at + timedelta(minutes=svc.duration_min))[-5:],
            "rest_fen": svc.price_fen - svc.pay_fen, "late_pct": svc.late_refund_bp // 100})
        return Outcome((say,))


@dataclass(frozen=True)
class PlaceBooking:
    product: int
    store: int
    start: int

    async def run(self, ctx: Ctx) -> Outcome:
        at = datetime.fromtimestamp(self.start * 60, SHANGHAI)
        order = await B.book(ctx.uow, ctx.tenant_id, ctx.member.id, self.product, self.store, at, now=ctx.now,
                             timeout=ctx.order_timeout, channel=ctx.channel)
        minutes = int(ctx.order_timeout.total_seconds() // 60)
        say = Say("chat/local/booking/placed.txt", {"order": order, "when": when(at), "minutes": minutes,
                                                     "pay_url": await ctx.links.pay_link(ctx.tenant_code, order.order_no)})
        return Outcome((say,), {"order": order.id, "orders": [order.id], "page": 1, "pages": 1})


@reads_only
@dataclass(frozen=True)
class MyBookings:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await B.member_bookings(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not found:
            return Outcome((Say("chat/local/booking/mine_none.txt"),), to=St.IDLE)
        items = [(b, when(b.starts_at), B.STATUS_ZH.get(b.status, b.status)) for b in found]
        return Outcome((Say("chat/local/booking/mine.txt", {"items": items}),), {"bookings": [b.id for b in found]})


@reads_only
@dataclass(frozen=True)
class ShowBooking:
    booking: int

    async def run(self, ctx: Ctx) -> Outcome:
        b = await B.own_booking(ctx.uow, ctx.tenant_id, ctx.member.id, self.booking)
        return Outcome((Say("chat/local/booking/detail.txt", {"b": b, "when": when(b.starts_at),
                                                              "status": B.STATUS_ZH.get(b.status, b.status)}),))


@dataclass(frozen=True)
class CancelBooking:
    booking: int

    async def run(self, ctx: Ctx) -> Outcome:
        done = await B.cancel(ctx.uow, ctx.tenant_id, ctx.member.id, self.booking, ctx.now)
        return Outcome((Say("chat/local/booking/cancelled.txt", {"c": done, "when": when(done.booking.starts_at)}),),
                       to=St.IDLE)


@reads_only
@dataclass(frozen=True)
class RescheduleDays:
    booking: int

    async def run(self, ctx: Ctx) -> Outcome:
        b = await B.may_reschedule(ctx.uow, ctx.tenant_id, ctx.member.id, self.booking, ctx.now)
        svc, days = await _days(ctx, b.product_id, b.store_id)
        say = Say("chat/local/booking/days.txt", {"svc": svc, "days": [day_label(d, ctx.now) for d in days]})
        return Outcome((say,), {"days": [d.toordinal() for d in days], "product": b.product_id, "store": b.store_id})


@dataclass(frozen=True)
class Reschedule:
    booking: int
    start: int

    async def run(self, ctx: Ctx) -> Outcome:
        at = datetime.fromtimestamp(self.start * 60, SHANGHAI)
        b = await B.reschedule(ctx.uow, ctx.tenant_id, ctx.member.id, self.booking, at, ctx.now)
        return Outcome((Say("chat/local/booking/rescheduled.txt", {"b": b, "when": when(b.starts_at)}),), to=St.IDLE)


# -- steps (pure) -------------------------------------------------------------------------------------

def _bad(turn: Turn, key: str) -> Step:
    return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids(key))}))


def start(turn: Turn) -> Step:
    return Step(St.SERVICE, command=ListServices())


def pick_service(turn: Turn) -> Step:
    product = turn.pick("services")
    if product is None:
        return _bad(turn, "services")
    return Step(St.STORE, data={"services": turn.ids("services"), "product": product}, command=ListStores(product))


def pick_store(turn: Turn) -> Step:
    store, product = turn.pick("stores"), turn.num("product")
    if store is None or product is None:
        return _bad(turn, "stores")
    return Step(St.DAY, data={"product": product, "store": store, "stores": turn.ids("stores")},
                command=ListDays(product, store))


def pick_day(turn: Turn) -> Step:
    day, product, store = turn.pick("days"), turn.num("product"), turn.num("store")
    if day is None or product is None or store is None:
        return _bad(turn, "days")
    data: dict[str, Value] = {"product": product, "store": store, "day": day, "days": turn.ids("days")}
    return Step(St.SLOT, data=data, command=ListSlots(product, store, day))


def pick_slot(turn: Turn) -> Step:
    at, product, store = turn.pick("slots"), turn.num("product"), turn.num("store")
    if at is None or product is None or store is None:
        return _bad(turn, "slots")
    return Step(St.CONFIRM, data={**turn.data, "start": at}, command=ShowConfirm(product, store, at))


def confirm(turn: Turn) -> Step:
    product, store, at = turn.num("product"), turn.num("store"), turn.num("start")
    if product is None or store is None or at is None:
        return turn.stay(Say("chat/local/booking/pick_slot_first.txt"))
    return Step(orders.St.DETAIL, command=PlaceBooking(product, store, at), flow=orders.NAME)


def mine(turn: Turn) -> Step:
    return Step(St.MINE, command=MyBookings())


def pick_booking(turn: Turn) -> Step:
    booking = turn.pick("bookings")
    if booking is None:
        return _bad(turn, "bookings")
    return Step(St.DETAIL, data={"bookings": turn.ids("bookings"), "booking": booking}, command=ShowBooking(booking))


def cancel_booking(turn: Turn) -> Step:
    booking = turn.num("booking")
    if booking is None:
        return turn.stay(Say("chat/local/booking/pick_booking_first.txt"))
    return Step(St.IDLE, command=CancelBooking(booking))


def reschedule(turn: Turn) -> Step:
    booking = turn.num("booking")
    if booking is None:
        return turn.stay(Say("chat/local/booking/pick_booking_first.txt"))
    return Step(St.RE_DAY, data={"booking": booking}, command=RescheduleDays(booking))


def re_day(turn: Turn) -> Step:
    day, product, store, booking = turn.pick("days"), turn.num("product"), turn.num("store"), turn.num("booking")
    if day is None or product is None or store is None or booking is None:
        return _bad(turn, "days")
    return Step(St.RE_SLOT, data={**turn.data, "day": day}, command=ListSlots(product, store, day))


def re_slot(turn: Turn) -> Step:
    at, booking = turn.pick("slots"), turn.num("booking")
    if at is None or booking is None:
        return _bad(turn, "slots")
    return Step(St.IDLE, command=Reschedule(booking, at))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.BOOK): start,
    (St.IDLE, Do.MINE): mine,
    (St.SERVICE, Intent.NUMBER): pick_service,
    (St.STORE, Intent.NUMBER): pick_store,
    (St.DAY, Intent.NUMBER): pick_day,
    (St.SLOT, Intent.NUMBER): pick_slot,
    (St.CONFIRM, Intent.YES): confirm,
    (St.CONFIRM, Intent.NUMBER): pick_slot,
    (St.MINE, Intent.NUMBER): pick_booking,
    (St.DETAIL, Intent.NUMBER): pick_booking,
    (St.DETAIL, Do.CANCEL): cancel_booking,
    (St.DETAIL, Do.RESCHEDULE): reschedule,
    (St.RE_DAY, Intent.NUMBER): re_day,
    (St.RE_SLOT, Intent.NUMBER): re_slot,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.BOOK, words=("预约", "预约服务", "BOOKING")),
        Keyword(Do.MINE, words=("我的预约", "MY_BOOKINGS")),
    ),
    words={"取消预约": Do.CANCEL, "改期": Do.RESCHEDULE, "改时间": Do.RESCHEDULE},
    hints={
        St.SERVICE: "chat/local/booking/hint_service.txt",
        St.STORE: "chat/local/booking/hint_store.txt",
        St.DAY: "chat/local/booking/hint_day.txt",
        St.SLOT: "chat/local/booking/hint_slot.txt",
        St.CONFIRM: "chat/local/booking/hint_confirm.txt",
        St.MINE: "chat/local/booking/hint_mine.txt",
        St.DETAIL: "chat/local/booking/hint_detail.txt",
        St.RE_DAY: "chat/local/booking/hint_day.txt",
        St.RE_SLOT: "chat/local/booking/hint_slot.txt",
    },
)
