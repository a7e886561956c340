"""「最新活动」 in chat: the latest published article as a news card (its H5 page, its cover),
or a word that there is none and the main menu."""

from __future__ import annotations

from dataclasses import dataclass

from flows.engine import MENU_WORD, Ctx, Flow, Keyword, MenuEntry, Outcome, Say, Step, Turn, reads_only
from social_mall import codes
from social_mall.members.service import identities_on
from social_mall_content import articles, broadcasts

NAME = "content"


def article_path(tenant_code: str, article_id: int) -> str:
    return f"/h5/article/{tenant_code}/{article_id}"


@reads_only
@dataclass(frozen=True)
class Latest:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await articles.latest(ctx.uow, ctx.tenant_id, limit=1)
        if not found:
            return Outcome((Say("chat/content/none.txt"),), to="idle", redirect=MENU_WORD)
        a = found[0]
        cover = ctx.links.image_url(a.cover) if a.cover else ""
        return Outcome((Say("chat/content/card.txt", {"a": a}, card=True,
                            url=ctx.links.page_url(article_path(ctx.tenant_code, a.id)), image=cover),), to="idle")


def latest(turn: Turn) -> Step:
    return Step("idle", command=Latest())


@dataclass(frozen=True)
class BindPreview:
    """「预览绑定 K7Q2M-9XD3F」: the admin who was shown the code previews broadcasts to this
    openid (social_mall.codes: attempts counted per member and per code)."""

    code: str

    async def run(self, ctx: Ctx) -> Outcome:
        # the openid at the official account talked to: previews then go through that account
        openid = dict(await identities_on(ctx.uow, ctx.tenant_id, ctx.member.id, "mp")).get(ctx.account) \
            if ctx.channel == "mp" else None
        if openid is None:
            return Outcome((Say("chat/content/bind_bad.txt"),), to="idle")
        try:
            await broadcasts.bind(ctx.uow, ctx.kv, ctx.tenant_id, ctx.member.id, self.code, openid, ctx.now,
                                  ctx.account)
        except codes.CodeAttemptsError as exc:
            return Outcome((Say("chat/errors/code_attempts.txt", {"minutes": exc.minutes}),), to="idle")
        except codes.CodeError:
            return Outcome((Say("chat/content/bind_bad.txt"),), to="idle")
        return Outcome((Say("chat/content/bound.txt"),), to="idle")


def bind_preview(turn: Turn) -> Step:
    return Step("idle", command=BindPreview(turn.said.args[0] if turn.said.args else ""))


FLOW = Flow(
    name=NAME,
    start="idle",
    table={("idle", "content.latest"): latest, ("idle", "content.bind_preview"): bind_preview},
    keywords=(Keyword("content.latest", words=("最新活动", "活动")),
              Keyword("content.bind_preview", pattern=r"预览绑定\s*(\S.{0,39})")),
    menu=(MenuEntry(15, "chat/content/_help.txt", (("最新活动", "最新活动"),)),),
)
