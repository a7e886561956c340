"""Reviews in chat (评价): after an order completes the member is invited; 「评价」 lists
the products of their completed orders not reviewed yet → a number → stars 1–5 → a few
words and/or photos (image messages, up to 3) → 「提交」. Nothing is written unless the
member submits.

State data: items (flat order id, product id), order, product, stars, text, photos."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, pairs, reads_only
from social_mall_after_sale import reviews
from social_mall_after_sale import rules_reviews as R

NAME = "reviews"
T = "chat/after_sale/reviews/"


class St(StrEnum):
    IDLE = "idle"
    PICK = "pick"
    STARS = "stars"
    TEXT = "text"


class Do(StrEnum):
    START = "reviews.start"
    SUBMIT = "reviews.submit"


@reads_only
@dataclass(frozen=True)
class ListReviewable:
    async def run(self, ctx: Ctx) -> Outcome:
        items = await reviews.reviewable(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not items:
            return Outcome((Say(T + "none.txt"),), to=St.IDLE)
        return Outcome((Say(T + "list.txt", {"items": items}),),
                       {"items": [x for i in items for x in (i.order_id, i.product_id)]})


@dataclass(frozen=True)
class Write:
    order_id: int
    product_id: int
    stars: int
    text: str
    photos: tuple[str, ...]

    async def run(self, ctx: Ctx) -> Outcome:
        view = await reviews.write_review(ctx.uow, ctx.tenant_id, ctx.member.id, self.order_id, self.product_id,
                                          stars=self.stars, text=self.text, photos=self.photos, now=ctx.now,
                                          account=ctx.account)
        left = await reviews.reviewable(ctx.uow, ctx.tenant_id, ctx.member.id)
        return Outcome((Say(T + "written.txt", {"r": view, "left": len(left), "photos": len(self.photos)}),),
                       to=St.IDLE)


def start(turn: Turn) -> Step:
    return Step(St.PICK, command=ListReviewable())


def pick(turn: Turn) -> Step:
    items = pairs(turn.data, "items")
    n = turn.said.n
    if n is None or not 1 <= n <= len(items):
        return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(items)}))
    order, product = items[n - 1]
    return Step(St.STARS, (Say(T + "ask_stars.txt"),), {"order": order, "product": product})


def stars(turn: Turn) -> Step:
    n = turn.said.n
    if n is None or not R.stars_ok(n):
        return turn.stay(Say(T + "bad_stars.txt"), hint=False)
    return Step(St.TEXT, (Say(T + "ask_text.txt", {"stars": R.stars_text(n), "max": R.MAX_TEXT}),),
                {**turn.data, "stars": n})


def text(turn: Turn) -> Step:
    body = turn.said.text.strip()
    if len(body) > R.MAX_TEXT:
        return turn.stay(Say(T + "too_long.txt", {"max": R.MAX_TEXT, "n": len(body)}), hint=False)
    return Step(St.TEXT, (Say(T + "got_text.txt"),), {**turn.data, "text": body})


def photo(turn: Turn) -> Step:
    photos = turn.text("photos").split()
    if len(photos) >= R.MAX_PHOTOS:
        return turn.stay(Say("chat/after_sale/photos_full.txt", {"max": R.MAX_PHOTOS}), hint=False)
    photos.append(turn.said.args[0])
    return Step(St.TEXT, (Say(T + "got_photo.txt", {"n": len(photos), "max": R.MAX_PHOTOS}),),
                {**turn.data, "photos": " ".join(photos)})


def submit(turn: Turn) -> Step:
    order, product, n = turn.num("order"), turn.num("product"), turn.num("stars")
    if order is None or product is None or n is None:
        return turn.stay()
    return Step(St.TEXT, data=turn.data,
                command=Write(order, product, n, turn.text("text"), tuple(turn.text("photos").split())))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.START): start,
    (St.PICK, Intent.NUMBER): pick,
    (St.STARS, Intent.NUMBER): stars,
    (St.TEXT, Intent.TEXT): text,
    (St.TEXT, Intent.NUMBER): text,
    (St.TEXT, Intent.IMAGE): photo,
    (St.TEXT, Do.SUBMIT): submit,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(Keyword(Do.START, words=("评价", "我要评价", "去评价")),),
    words={"提交": Do.SUBMIT, "发表": Do.SUBMIT, "提交评价": Do.SUBMIT},
    hints={
        St.PICK: T + "hints/pick.txt",
        St.STARS: T + "hints/stars.txt",
        St.TEXT: T + "hints/text.txt",
    },
    free_text=frozenset({St.TEXT}),
    menu=(MenuEntry(36, T + "_help.txt"),),
)
