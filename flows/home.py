"""The home flow: idle, welcome, help and the numbered menu. `取消` anywhere lands here.
Modules add menu entries (and help lines) through the registry: `build(entries)`.

Menu CLICK keys: HELP, MENU (keywords match case-insensitively)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from social_mall.plugins import MenuEntry

from flows.engine import Flow, Intent, Keyword, Say, Step, StepFn, Turn


NAME = "home"


class St(StrEnum):
    IDLE = "idle"
    MENU = "menu"


class Do(StrEnum):
    HELP = "home.help"
    MENU = "home.menu"


#: (label, the keyword it stands for): menu number n redirects to the n-th keyword.
MENU: tuple[tuple[str, str], ...] = (
    ("逛逛分类", "分类"),
    ("搜索商品", "搜索"),
    ("购物车", "购物车"),
    ("我的订单", "我的订单"),
    ("帮助", "帮助"),
)


def expired(turn: Turn) -> Step:
    """A number or 确认 with nothing to apply it to: the state is gone (timed out)."""
    return Step(St.IDLE, (Say("chat/expired.txt", {"menu": MENU}),), flow=NAME)


def build(entries: Sequence[MenuEntry] = ()) -> Flow:
    """The home flow with the modules' menu entries after the core's."""
    menu = (*MENU, *((e.label, e.word) for e in entries))
    more = tuple(e.help for e in entries if e.help)

    def menu_step(template: str) -> Step:
        return Step(St.MENU, (Say(template, {"menu": menu, "more": more}),))

    def welcome(turn: Turn) -> Step:
        return menu_step("chat/welcome.txt")

    def welcome_back(turn: Turn) -> Step:
        return menu_step("chat/welcome_back.txt")

    def show_help(turn: Turn) -> Step:
        return menu_step("chat/help.txt")

    def show_menu(turn: Turn) -> Step:
        return menu_step("chat/menu.txt")

    def menu_pick(turn: Turn) -> Step:
        n = turn.said.n or 0
        if not 1 <= n <= len(menu):
            return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(menu)}))
        return Step(St.MENU, redirect=menu[n - 1][1])

    table: Mapping[tuple[str, str], StepFn] = {
        (St.IDLE, Intent.SUBSCRIBE): welcome,
        (St.IDLE, Intent.SCAN): welcome_back,
        (St.IDLE, Do.HELP): show_help,
        (St.IDLE, Do.MENU): show_menu,
        (St.IDLE, Intent.TEXT): show_help,
        (St.IDLE, Intent.NUMBER): expired,
        (St.IDLE, Intent.YES): expired,
        (St.IDLE, Intent.NEXT): expired,
        (St.IDLE, Intent.PREV): expired,
        (St.IDLE, Intent.BACK): show_menu,
        (St.MENU, Intent.NUMBER): menu_pick,
        (St.MENU, Intent.TEXT): show_help,
        (St.MENU, Intent.BACK): show_menu,
    }
    return Flow(
        name=NAME,
        start=St.IDLE,
        table=table,
        keywords=(
            Keyword(Do.HELP, words=("帮助", "help", "?")),
            Keyword(Do.MENU, words=("菜单", "主菜单", "menu")),
        ),
        hints={St.IDLE: "chat/hints/home_idle.txt", St.MENU: "chat/hints/home_menu.txt"},
    )


FLOW = build()
# the core menu's steps, by name (tests, other flows)
welcome, show_help, show_menu, menu_pick = (
    FLOW.table[(St.IDLE, Intent.SUBSCRIBE)], FLOW.table[(St.IDLE, Do.HELP)], FLOW.table[(St.IDLE, Do.MENU)],
    FLOW.table[(St.MENU, Intent.NUMBER)],
)
