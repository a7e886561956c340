"""The module's checkout questions (the core's checkout hands over here when the member
picks one of its methods, and gets the choice back with `checkout.confirm_with`):

pick-up: a store (the member's own first) → for goods, a pick-up time → confirmation.

State data: the checkout's source (what is bought: checkout.source_of), stores (listed
store ids), store (picked), times (listed pick-up times, epoch minutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows import checkout
from flows.engine import Ctx, Data, Flow, Intent, Outcome, Say, Step, StepFn, Turn, Value
from social_mall_local import fulfil
from social_mall_local.stores import active_store

NAME = fulfil.CHECKOUT_FLOW


class St(StrEnum):
    IDLE = "idle"
    PICKUP_STORE = "pickup_store"
    PICKUP_TIME = "pickup_time"


def source(data: Data) -> dict[str, Value]:
    return checkout.source_of(data)


@dataclass(frozen=True)
class PickupTimes:
    store_id: int
    data: Mapping[str, Value]

    async def run(self, ctx: Ctx) -> Outcome:
        store = await active_store(ctx.uow, ctx.tenant_id, self.store_id)
        lines, _ = await checkout._lines(ctx, self.data)
        from social_mall.pricing import service as pricing

        priced = await pricing.price_lines(ctx.uow, ctx.tenant_id, [(ln.sku_id, ln.price_fen, ln.qty) for ln in lines])
        if not fulfil.needs_time(await fulfil.line_settings(ctx.uow, ctx.tenant_id, priced)):
            step = checkout.confirm_with(self.data, method=fulfil.PICKUP.key, detail={"store": store.id})
            assert step.command is not None
            out = await step.command.run(ctx)
            return Outcome(out.replies, {**step.data, **out.data}, to=step.to, flow=checkout.NAME)
        times = fulfil.pickup_times(store, ctx.now)
        if not times:
            return Outcome((Say("chat/local/checkout/pickup_no_time.txt", {"store": store}),), to=St.PICKUP_STORE)
        say = Say("chat/local/checkout/pickup_times.txt",
                  {"store": store, "times": [fulfil.time_text(t, ctx.now) for t in times]})
        return Outcome((say,), {"store": store.id, "times": [int(t.timestamp()) // 60 for t in times]})


def pick_store(turn: Turn) -> Step:
    store = turn.pick("stores")
    if store is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("stores"))}))
    return Step(St.PICKUP_TIME, data={**source(turn.data), "stores": turn.ids("stores")},
                command=PickupTimes(store, source(turn.data)))


def pick_time(turn: Turn) -> Step:
    at, store = turn.pick("times"), turn.num("store")
    if store is None:
        return turn.stay(Say("chat/local/checkout/pick_store_first.txt"))
    if at is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("times"))}))
    return checkout.confirm_with(turn.data, method=fulfil.PICKUP.key, detail={"store": store, "at": at})


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.PICKUP_STORE, Intent.NUMBER): pick_store,
    (St.PICKUP_TIME, Intent.NUMBER): pick_time,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    hints={
        St.PICKUP_STORE: "chat/local/hints/pickup_store.txt",
        St.PICKUP_TIME: "chat/local/hints/pickup_time.txt",
    },
)
