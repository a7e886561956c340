"""Chat: 「消息设置」 shows whether the member receives the shop's pushes (campaigns) and how
to change it; 「退订」 (or TD) stops them, 「订阅」 / 「恢复推送」 starts them again. Order and
service messages (payment, shipping, pick-up codes) are not campaigns and keep coming."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn
from social_mall_insights.campaigns import opted_out, prefs, pushes_this_week, set_opt_out

NAME = "insights"


class St(StrEnum):
    IDLE = "idle"


class Do(StrEnum):
    SHOW = "insights.prefs"
    OFF = "insights.opt_out"
    ON = "insights.opt_in"


@dataclass(frozen=True)
class Show:
    async def run(self, ctx: Ctx) -> Outcome:
        out = await opted_out(ctx.uow, ctx.tenant_id, ctx.member.id)
        p = await prefs(ctx.uow, ctx.tenant_id)
        week = await pushes_this_week(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        return Outcome((Say("chat/insights/prefs.txt", {"on": not out, "cap": p.weekly_cap, "week": week,
                                                        "quiet": (p.quiet_start, p.quiet_end)}),))


@dataclass(frozen=True)
class Switch:
    on: bool

    async def run(self, ctx: Ctx) -> Outcome:
        await set_opt_out(ctx.uow, ctx.tenant_id, ctx.member.id, not self.on, ctx.now)
        return Outcome((Say("chat/insights/switched.txt", {"on": self.on}),))


def _show(turn: Turn) -> Step:
    return Step(St.IDLE, command=Show())


def _off(turn: Turn) -> Step:
    return Step(St.IDLE, command=Switch(False))


def _on(turn: Turn) -> Step:
    return Step(St.IDLE, command=Switch(True))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.SHOW): _show,
    (St.IDLE, Do.OFF): _off,
    (St.IDLE, Do.ON): _on,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.SHOW, words=("消息设置", "推送设置")),
        Keyword(Do.OFF, words=("退订", "TD", "取消推送", "关闭推送")),
        Keyword(Do.ON, words=("订阅", "恢复推送", "开启推送")),
    ),
    # near the end of the main menu (after 秒杀, 80), before 帮助
    menu=(MenuEntry(90, "chat/insights/_help.txt", (("消息设置", "消息设置"),)),),
)
