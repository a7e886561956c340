"""Chat: 「附近门店」 asks for a location; a location (sent with + → 位置, the menu's
location_select button, or the location WeChat reports when the chat opens) answers with
the nearest open stores, their distance and a map link; a number picks the member's store.

A location sent while another flow waits for one (a delivery address) goes there; a
reported location never interrupts a conversation in another flow (the engine keeps it
quiet there).

State data: stores (listed store ids).
Menu keys: NEARBY_STORES (CLICK), or a location_select button with any key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, reads_only
from flows.types import Kind
from social_mall_local.errors import BadLocationError
from social_mall_local.geo import Point, parse_point
from social_mall_local.stores import choose_store, nearest_stores

NAME = "local_stores"


class St(StrEnum):
    IDLE = "idle"
    AWAIT = "await"     # asked for a location
    LIST = "list"       # stores listed: a number picks one


class Do(StrEnum):
    NEARBY = "local.nearby"
    AT = "local.at"     # a location arrived from anywhere


def point_of(turn: Turn) -> Point | None:
    args = turn.said.args
    return parse_point(args[0], args[1]) if len(args) >= 2 else None


@reads_only
@dataclass(frozen=True)
class Nearby:
    lat_e6: int
    lng_e6: int

    async def run(self, ctx: Ctx) -> Outcome:
        found = await nearest_stores(ctx.uow, ctx.tenant_id, Point(self.lat_e6, self.lng_e6), ctx.now)
        if not found:
            return Outcome((Say("chat/local/stores_none.txt"),), to=St.AWAIT)
        return Outcome((Say("chat/local/stores_nearby.txt", {"stores": found, "any_open": found[0].open_now}),),
                       {"stores": [f.store.id for f in found]})


@dataclass(frozen=True)
class ChooseStore:
    store_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        store = await choose_store(ctx.uow, ctx.tenant_id, ctx.member.id, self.store_id, ctx.now)
        return Outcome((Say("chat/local/store_chosen.txt", {"store": store}),))


def ask_location(turn: Turn) -> Step:
    return Step(St.AWAIT, (Say("chat/local/ask_location.txt"),))


def at_location(turn: Turn) -> Step:
    point = point_of(turn)
    if point is None:
        raise BadLocationError()
    return Step(St.LIST, command=Nearby(point.lat_e6, point.lng_e6))


def pick(turn: Turn) -> Step:
    store = turn.pick("stores")
    if store is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("stores"))}))
    return Step("idle", command=ChooseStore(store), flow="home")


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.NEARBY): ask_location,
    (St.IDLE, Do.AT): at_location,
    (St.AWAIT, Intent.LOCATION): at_location,
    (St.LIST, Intent.LOCATION): at_location,
    (St.LIST, Intent.NUMBER): pick,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.NEARBY, words=("附近门店", "附近的店", "门店", "NEARBY_STORES")),
        Keyword(Do.AT, kind=Kind.LOCATION),
    ),
    hints={St.AWAIT: "chat/local/hints/await_location.txt", St.LIST: "chat/local/hints/stores_list.txt"},
    menu=(MenuEntry(45, "chat/local/_help.txt", (("附近门店", "附近门店"), ("我的券码", "我的券码"), ("预约服务", "预约"))),),
)
