"""The home flow: idle, welcome, help and the numbered menu. `取消` anywhere lands here.

The menu and the help list what the deployment's flows offer (each flow's `menu`
entries, so a switched-off module's vanish); the home flow names no other flow.
Menu CLICK keys: HELP, MENU (keywords match case-insensitively)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from flows.engine import MENU_WORD, Flow, Intent, Keyword, MenuEntry, Say, Step, StepFn, Turn


NAME = "home"


class St(StrEnum):
    IDLE = "idle"
    MENU = "menu"


class Do(StrEnum):
    HELP = "home.help"
    MENU = "home.menu"


#: The home flow's own entry: 「帮助」 last in the menu, 「取消」 last in the help.
ENTRY = MenuEntry(1000, "chat/home/_help.txt", (("帮助", "帮助"),))


def _menu_step(template: str, turn: Turn, **ctx: object) -> Step:
    """The template with the deployment's menu (and help lines); a number picks next."""
    return Step(St.MENU, (Say(template, {"menu": turn.menu.items, "help": turn.menu.help, **ctx}),))


def welcome(turn: Turn) -> Step:
    return _menu_step("chat/welcome.txt", turn)


def welcome_back(turn: Turn) -> Step:
    return _menu_step("chat/welcome_back.txt", turn)


def show_help(turn: Turn) -> Step:
    return _menu_step("chat/help.txt", turn)


def show_menu(turn: Turn) -> Step:
    return _menu_step("chat/menu.txt", turn)


#: what people open a chat with: answered with a greeting and the menu, not 「没看懂」 (inside
#: a step they get that step's own answer, so a greeting never throws a checkout away)
GREETINGS = frozenset({"你好", "您好", "你好呀", "您好呀", "你好啊", "在吗", "在么", "在不在", "有人吗", "哈喽",
                       "嗨", "hi", "hello", "hey", "早", "早上好", "上午好", "中午好", "下午好", "晚上好"})


def puzzled(turn: Turn) -> Step:
    """Text nobody understood, outside any step: say so, briefly, then the short menu
    (a greeting is understood: hello back, then the menu)."""
    text = turn.said.text.strip().strip("!！~～。.?？ ").lower()
    if text in GREETINGS:
        return _menu_step("chat/hello.txt", turn)
    return _menu_step("chat/puzzled.txt", turn, text=turn.said.text[:20])


def menu_pick(turn: Turn) -> Step:
    n, items = turn.said.n or 0, turn.menu.items
    if not 1 <= n <= len(items):
        return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(items)}))
    return Step(St.MENU, redirect=items[n - 1][1])


def expired(turn: Turn) -> Step:
    """A number or 确认 with nothing to apply it to: the state is gone (timed out)."""
    return Step(St.IDLE, (Say("chat/expired.txt"),), flow=NAME)


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Intent.SUBSCRIBE): welcome,
    (St.IDLE, Intent.SCAN): welcome_back,
    (St.IDLE, Do.HELP): show_help,
    (St.IDLE, Do.MENU): show_menu,
    (St.IDLE, Intent.TEXT): puzzled,
    (St.IDLE, Intent.NUMBER): expired,
    (St.IDLE, Intent.YES): expired,
    (St.IDLE, Intent.NEXT): expired,
    (St.IDLE, Intent.PREV): expired,
    (St.IDLE, Intent.BACK): show_menu,
    (St.MENU, Intent.NUMBER): menu_pick,
    (St.MENU, Intent.TEXT): puzzled,
    (St.MENU, Intent.BACK): show_menu,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.HELP, words=("帮助", "help", "?")),
        Keyword(Do.MENU, words=(MENU_WORD, "主菜单", "menu")),
    ),
    menu=(ENTRY,),
    hints={St.IDLE: "chat/hints/home_idle.txt", St.MENU: "chat/hints/home_menu.txt"},
)
