"""Chat: 「猜你喜欢」 (menu and keyword): the member's recommendations as a numbered list
(a consumable bought before whose repurchase cycle has passed comes first, marked
「该补货了」; a number opens the product's card in the shop's flow; the listing carries the tracking
token rec.for_me, so the card's view counts as a click: views.py); 「关闭个性化推荐」 / 「开启个性化推荐」
(PIPL Art. 24): switched off, 「猜你喜欢」 shows the shop's most popular products only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows import catalog
from flows.engine import Ctx, Flow, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn
from social_mall.catalog.service import product_cards
from social_mall.catalog.visibility import hidden_products
from social_mall.pricing.unit import list_prices
from social_mall_intelligence.recommendations import FOR_ME, Recommender, note_shown, report_shown, set_personalised
from social_mall_intelligence.views import token

NAME = "intel"
SHOWN = 6


class St(StrEnum):
    IDLE = "idle"


class Do(StrEnum):
    FOR_ME = "intel.for_me"
    OFF = "intel.personalise_off"
    ON = "intel.personalise_on"


@dataclass(frozen=True)
class ForMe:
    rec: Recommender

    async def run(self, ctx: Ctx) -> Outcome:
        picks = await self.rec.for_member(ctx.uow, ctx.tenant_id, ctx.member.id, SHOWN)
        # never a product kept from this member (the core's visibility seam)
        cards = await product_cards(ctx.uow, ctx.tenant_id, picks.ids,
                                    hidden=await hidden_products(ctx.uow, ctx.tenant_id, ctx.member.id))
        if not cards:
            return Outcome((Say("chat/intel/none.txt"),))
        await note_shown(ctx.uow, ctx.tenant_id, ctx.member.id, [c.id for c in cards], FOR_ME, ctx.now)
        report_shown(self.rec.sinks, ctx.tenant_id, ctx.member.id, [c.id for c in cards], FOR_ME, ctx.now)
        own = await list_prices(ctx.uow, ctx.tenant_id, ctx.member.id, [c.id for c in cards], ctx.now)
        said = Say("chat/intel/for_me.txt", {"items": cards, "personal": picks.personal,
                                             "restock": picks.restock, "own": own})
        return Outcome((said,), {"items": [c.id for c in cards], "pages": 1, "via": token(FOR_ME)},
                       to=catalog.PRODUCTS, flow=catalog.SHOP)


@dataclass(frozen=True)
class Personalise:
    rec: Recommender
    on: bool

    async def run(self, ctx: Ctx) -> Outcome:
        await set_personalised(ctx.uow, ctx.tenant_id, ctx.member.id, self.on, ctx.now)
        self.rec.forget_member(ctx.tenant_id, ctx.member.id)   # honoured on the next request
        return Outcome((Say("chat/intel/personalised.txt", {"on": self.on}),))


def build(rec: Recommender) -> Flow:
    def for_me(turn: Turn) -> Step:
        return Step(St.IDLE, command=ForMe(rec))

    def off(turn: Turn) -> Step:
        return Step(St.IDLE, command=Personalise(rec, False))

    def on(turn: Turn) -> Step:
        return Step(St.IDLE, command=Personalise(rec, True))

    table: Mapping[tuple[str, str], StepFn] = {
        (St.IDLE, Do.FOR_ME): for_me,
        (St.IDLE, Do.OFF): off,
        (St.IDLE, Do.ON): on,
    }
    return Flow(
        name=NAME,
        start=St.IDLE,
        table=table,
        keywords=(
            Keyword(Do.FOR_ME, words=("猜你喜欢", "推荐", "为你推荐", "INTEL_FOR_ME")),
            Keyword(Do.OFF, words=("关闭个性化推荐", "关闭个性化")),
            Keyword(Do.ON, words=("开启个性化推荐", "开启个性化", "打开个性化推荐")),
        ),
        menu=(MenuEntry(12, "chat/intel/_help.txt", (("猜你喜欢", "猜你喜欢"),)),),
    )
