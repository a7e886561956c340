"""The home flow: idle, welcome, help and the numbered menu. `取消` anywhere lands here.

Menu CLICK keys: HELP, MENU (keywords match case-insensitively)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

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


def _menu_step(template: str) -> Step:
    return Step(St.MENU, (Say(template, {"menu": MENU}),))


def welcome(turn: Turn) -> Step:
    return _menu_step("chat/welcome.txt")


def welcome_back(turn: Turn) -> Step:
    return _menu_step("chat/welcome_back.txt")


def show_help(turn: Turn) -> Step:
    return _menu_step("chat/help.txt")


def show_menu(turn: Turn) -> Step:
    return _menu_step("chat/menu.txt")


def menu_pick(turn: Turn) -> Step:
    n = turn.said.n or 0
    if not 1 <= n <= len(MENU):
        return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(MENU)}))
    return Step(St.MENU, redirect=MENU[n - 1][1])


def expired(turn: Turn) -> Step:
    """A number or 确认 with nothing to apply it to: the state is gone (timed out)."""
    return Step(St.IDLE, (Say("chat/expired.txt", {"menu": MENU}),), flow=NAME)


TABLE: Mapping[tuple[str, str], StepFn] = {
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

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.HELP, words=("帮助", "help", "?")),
        Keyword(Do.MENU, words=("菜单", "主菜单", "menu")),
    ),
    hints={St.IDLE: "chat/hints/home_idle.txt", St.MENU: "chat/hints/home_menu.txt"},
)
