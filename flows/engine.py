"""The flow engine: declared states, intents parsed from a normalized Inbound, one table
`(state, intent) → step` per flow, and the registry other modules add flows to.

Pure: no I/O here. A step is a plain function of a `Turn` (what was said, the state, the
state's data) returning a `Step`; whatever needs the core is a `Command` the runner runs.

Adding a flow from another module::

    class St(StrEnum):
        IDLE = "idle"
        JOIN = "join"

    FLOW = Flow(
        name="groupbuy", start=St.IDLE,
        table={(St.IDLE, Do.TEAMS): list_teams, (St.JOIN, Intent.YES): join},
        keywords=(Keyword(Do.TEAMS, words=("拼团", "GROUPBUY")), Keyword(Do.JOIN, scene="team_")),
        hints={St.JOIN: 'chat/groupbuy/hint_join.txt'},   # under make_env(extra_dirs)
    )
    FlowRunner(..., extra_flows=[FLOW])        # or registry.add_flow(FLOW)
"""

from __future__ import annotations

import json
import json.encoder
import re
import unicodedata
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from flows.types import Inbound, Kind, Links, MemberRef, Reply
from social_mall.fulfilment import FulfilmentMethod
from social_mall.search import RelatedProvider, SearchProvider
from social_mall.values import value
from social_mall.kv import KVStore
from storage.uow import UnitOfWork

#: What a state may remember: ids and short texts, never prices.
Value = str | int | list[int]
Data = Mapping[str, Value]


class Intent(StrEnum):
    """Gestures every flow understands. Flows declare their own intents (another StrEnum)
    for their keywords and in-flow words; the table is keyed by plain strings."""

    TEXT = "text"            # anything not recognised below (said.text)
    NUMBER = "number"        # "1".."999999" (said.n)
    TIMES = "times"          # 「2 x3」: item 2, quantity 3 (said.n, said.qty); 「x3」: said.n None
    NEXT = "next"            # 下一页
    PREV = "prev"            # 上一页
    YES = "yes"              # 确认
    NO = "no"                # 取消: from every state
    BACK = "back"            # 返回
    SUBSCRIBE = "subscribe"  # followed the account (said.args: (scene,) when from a QR code)
    SCAN = "scan"            # scanned a parametric QR code while following
    LOCATION = "location"    # a location (said.args: lat, lng, label, src) for a state that asks for one
    IMAGE = "image"          # a photo (said.args: media_id, pic_url) for a state that asks for one


CANCEL_WORDS = frozenset({"取消", "退出"})
GENERIC_WORDS: Mapping[str, Intent] = {
    "下一页": Intent.NEXT, "下页": Intent.NEXT, "上一页": Intent.PREV, "上页": Intent.PREV,
    "确认": Intent.YES, "确定": Intent.YES, "确认下单": Intent.YES, "是": Intent.YES,
    "好的": Intent.YES, "ok": Intent.YES, "返回": Intent.BACK,
}
NUMBER = re.compile(r"[0-9]{1,6}")
#: 「2 x3」「2×3」「2 X 3」「2 *3」「x3」 (full-width forms arrive NFKC-normalized)
TIMES = re.compile(r"(?:([0-9]{1,6})\s*)?[xX×*]\s*([0-9]{1,6})")
DEFAULT_HINT = "chat/hints/default.txt"


def normalize(text: str) -> str:
    """Full-width to half-width (NFKC), whitespace collapsed to single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _literal_prefix(pattern: str) -> int:
    """How many characters a pattern fixes before its first regex syntax: its specificity."""
    n = 0
    for ch in pattern:
        if ch in "\\.^$*+?{}[]|()":
            break
        n += 1
    return n


def _match_form(text: str) -> str:
    return text.rstrip(".。!~").lower()


# -- data accessors (state data comes back from JSON: check every type) -----------------

def num(data: Data, key: str) -> int | None:
    v = data.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def ids(data: Data, key: str) -> list[int]:
    v = data.get(key)
    return [i for i in v if isinstance(i, int)] if isinstance(v, list) else []


def text(data: Data, key: str) -> str:
    v = data.get(key)
    return v if isinstance(v, str) else ""


def pairs(data: Data, key: str) -> list[tuple[int, int]]:
    """A flat [a1, b1, a2, b2, …] list read back as pairs (e.g. sku id, quantity)."""
    flat = ids(data, key)
    return list(zip(flat[0::2], flat[1::2], strict=False))


# -- the main menu -----------------------------------------------------------------------

@dataclass(frozen=True)
class MenuEntry:
    """What a flow offers at the top of the chat: its lines of 「帮助」 (a template under
    templates/) and its items of the numbered main menu, each (label, the keyword it
    stands for). Entries show in `order`; a switched-off module's flow, and so its
    entries, isn't there."""

    order: int
    help: str = ""
    items: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Menu:
    """The deployment's main menu and help, gathered from its flows' entries."""

    items: tuple[tuple[str, str], ...] = ()
    help: tuple[str, ...] = ()

    @staticmethod
    def of(entries: Sequence[MenuEntry]) -> Menu:
        ordered = sorted(entries, key=lambda e: e.order)
        return Menu(tuple(item for e in ordered for item in e.items), tuple(e.help for e in ordered if e.help))


NO_MENU = Menu()
MENU_WORD = "菜单"  # the home flow's keyword for the main menu (an empty listing hands over to it)


# -- values flowing through one turn ----------------------------------------------------

@value
class Said:
    intent: str
    text: str = ""
    n: int | None = None
    args: tuple[str, ...] = ()
    flow: str = ""          # a keyword of this flow matched: dispatch there
    qty: int | None = None  # TIMES: the quantity after the x


@value
class Say:
    """A reply still to render: a template under templates/ and its context. With
    `card`, a news card: the first rendered line is the title, the rest the description.

    `key`, when set, is a hashable value that determines `ctx` entirely (e.g. the frozen
    views themselves): the runner then renders the template once per key. Lists every
    member browses render the same text over and over; a key made of the values (not
    ids or versions) can't go stale, whatever changed them."""

    template: str
    ctx: Mapping[str, object] = field(default_factory=dict)
    card: bool = False
    url: str = ""
    image: str = ""
    key: Hashable = None


Out = Say | Reply


class CardNote(Protocol):
    """Lines a module adds to a product's card in chat (reviews: the average, the count, the
    latest ones), rendered by the module; "" for none. Runs on every card shown: one
    indexed query at most."""

    async def __call__(self, uow: UnitOfWork, tenant_id: int, product_id: int) -> str: ...


@value
class Ctx:
    """What a command may use: the unit of work, who is talking, the key-value store for
    what must outlive a rolled-back unit of work (attempt counters: social_mall/codes.py),
    the fulfilment methods the deployment offers at checkout (key → method), and the
    module answering keyword searches and the one naming related products, if any
    (social_mall/search.py)."""

    uow: UnitOfWork
    tenant_id: int
    tenant_code: str
    channel: str
    member: MemberRef
    links: Links
    now: datetime
    order_timeout: timedelta
    kv: KVStore
    methods: Mapping[str, CheckoutMethod] = field(default_factory=dict)
    card_notes: tuple[CardNote, ...] = ()
    search: SearchProvider | None = None
    related: RelatedProvider | None = None
    account: int = 0  # the channel account talking (0: the tenant's primary one): orders remember it
    # the inbound message's de-duplication key ("" when it has none): an order placed by this
    # step carries it, so a redelivery after a crash finds that order (orders/desk.placed_by)
    message: str = ""
    # what the member did in this step, for the activity sinks (social_mall/activity.py)
    noted: list[tuple[str, int, Mapping[str, str | int], str]] = field(default_factory=list, compare=False,
                                                                        hash=False)

    def note(self, kind: str, ref: int = 0, *, source: str = "", **props: str | int) -> None:
        """Report a member activity (a product viewed, a search…) once the step is done;
        `source`: what led to it (a listing's tracking token, e.g. a module's
        recommendation placement), the Activity's source."""
        self.noted.append((kind, ref, props, source))


@value
class Outcome:
    """A command's result: replies, data merged over the step's, and (when the result
    decides between branches, e.g. no saved address → ask for one) another state, of
    another `flow` when set (a checkout method's own questions; 确认 found the price
    changed: back to checkout's summary instead of on to the order)."""

    replies: tuple[Out, ...] = ()
    data: Mapping[str, Value] = field(default_factory=dict)
    to: str | None = None
    flow: str = ""       # continue in this flow (e.g. back to checkout's confirmation)
    redirect: str = ""   # then handle this text as if the user had typed it (e.g. MENU_WORD
                         # after an empty listing: the member lands at the main menu)


class CheckoutMethod(FulfilmentMethod, Protocol):
    """A fulfilment method as checkout drives it: `begin` asks the method's first question
    (the saved addresses, the stores to pick up from…) and returns the state to wait in
    (usually in the method's own flow: Outcome.flow); that flow hands back to checkout's
    confirmation (flows.checkout.confirm_with) with the choice's details."""

    async def begin(self, ctx: Ctx, source: Data) -> Outcome: ...


class Command(Protocol):
    """What a step asks the core to do; run by the runner inside one unit of work.
    A MallError raised here rolls the work back and keeps the previous state."""

    async def run(self, ctx: Ctx) -> Outcome: ...


CommandT = TypeVar("CommandT", bound=type)


def reads_only(cls: CommandT) -> CommandT:
    """Mark a command class that writes nothing anywhere: no unit-of-work writes, no
    transactions of its own, no calls out, no key-value writes. The runner may run such a
    command before the message is claimed (its one-round-trip path for browsing); every
    other command runs only once the message is claimed as not a repeat."""
    cls.reads_only = True  # type: ignore[attr-defined]
    return cls


@value
class Step:
    to: str
    replies: tuple[Out, ...] = ()
    data: Mapping[str, Value] = field(default_factory=dict)   # the new state's data (replaces)
    command: Command | None = None
    flow: str = ""          # "" stays in the flow that ran the step
    hint: bool = False      # append the new state's hint ("what to type next")
    redirect: str = ""      # then handle this text as if the user had typed it


@value
class Turn:
    said: Said
    state: str
    data: Data
    menu: Menu = NO_MENU   # the deployment's main menu and help (what the home flow shows)

    def stay(self, *replies: Out, hint: bool = True) -> Step:
        """Keep the state and its data (a bad input): say why, then what to type."""
        return Step(self.state, replies, self.data, hint=hint)

    def num(self, key: str) -> int | None:
        return num(self.data, key)

    def ids(self, key: str) -> list[int]:
        return ids(self.data, key)

    def text(self, key: str) -> str:
        return text(self.data, key)

    def pick(self, key: str) -> int | None:
        """The id the user's number points at in the listed `key` (1-based), if any."""
        listed, n = self.ids(key), self.said.n
        return listed[n - 1] if n is not None and 1 <= n <= len(listed) else None


StepFn = Callable[[Turn], Step]


def pager(goto: Callable[[Turn, int], Step]) -> tuple[StepFn, StepFn]:
    """下一页 / 上一页 steps for a listing that keeps `page` and `pages` in its data."""

    def next_page(turn: Turn) -> Step:
        page, pages = turn.num("page") or 1, turn.num("pages") or 1
        if page >= pages:
            return turn.stay(Say("chat/last_page.txt"))
        return goto(turn, page + 1)

    def prev_page(turn: Turn) -> Step:
        page = turn.num("page") or 1
        if page <= 1:
            return turn.stay(Say("chat/first_page.txt"))
        return goto(turn, page - 1)

    return next_page, prev_page


@dataclass(frozen=True)
class Keyword:
    """A trigger that jumps into its flow from any state: exact `words` (menu CLICK and
    scan-button keys too: a scan's result is said.args[0]), a `pattern` over the whole
    text (groups become said.args; not in free-text states), a QR `scene` prefix on
    SUBSCRIBE/SCAN (said.args = (scene,)), or an inbound `kind` (Kind.LOCATION: said.args =
    (lat, lng, label, src)) that the current state doesn't take itself. `carry` names keys of
    the data of the conversation it jumps from (any flow) that the target's start step gets:
    ids only, checked again by the command that uses them."""

    intent: str
    words: tuple[str, ...] = ()
    pattern: str = ""
    scene: str = ""
    kind: str = ""
    carry: tuple[str, ...] = ()   # keys of the current conversation's data the jump takes along
                                  # (「申请售后」 on an order's detail: its "order" id)


@dataclass(frozen=True)
class Flow:
    name: str
    start: str                                   # where keywords dispatch from
    table: Mapping[tuple[str, str], StepFn]
    keywords: tuple[Keyword, ...] = ()
    words: Mapping[str, str] = field(default_factory=dict)   # in-flow words → intent
    hints: Mapping[str, str] = field(default_factory=dict)   # state → hint template
    free_text: frozenset[str] = frozenset()      # states collecting names, addresses…
    menu: tuple[MenuEntry, ...] = ()             # its lines of 「帮助」 and main-menu items

    @property
    def states(self) -> frozenset[str]:
        return frozenset({self.start, *self.hints, *(s for s, _ in self.table)})

    def hint(self, state: str) -> str:
        return self.hints.get(state, DEFAULT_HINT)


def _json_encoder() -> Callable[[object], str]:
    """Compact JSON with sorted keys and UTF-8 kept, for every `Conv.dump`.

    `JSONEncoder.encode` builds its C encoder (`json.encoder.c_make_encoder`) anew on every
    call, ~100 bytecodes per chat message; this builds the same one once. State data is
    plain JSON values read back from JSON, never circular, so no circular check. Where the
    C accelerator is missing, the encoder's own `encode`."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, check_circular=False)
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:
        return encoder.encode
    chunks = make(None, encoder.default, json.encoder.encode_basestring,
                  None, ":", ",", True, False, True)
    return lambda doc: "".join(chunks(doc, 0))


_encode = _json_encoder()


@value
class Conv:
    """One member's conversation, stored as JSON {flow, state, data, v}."""

    flow: str
    state: str
    data: Data
    v: int = 0
    member: int = 0  # the member behind the sender, remembered so a message needs no lookup (0: unknown)

    def dump(self) -> str:
        doc: dict[str, object] = {"flow": self.flow, "state": self.state, "data": dict(self.data), "v": self.v}
        if self.member:
            doc["m"] = self.member
        return _encode(doc)

    @staticmethod
    def load(raw: str | None) -> Conv | None:
        """None when absent or not a well-formed record (treated as idle)."""
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        flow, state, data, v = doc.get("flow"), doc.get("state"), doc.get("data"), doc.get("v")
        if not (isinstance(flow, str) and isinstance(state, str) and isinstance(data, dict)):
            return None
        if type(v) is not int:  # exact types: JSON's true/false come back as bool
            return None
        m = doc.get("m", 0)
        if type(m) is not int or m < 0:
            m = 0
        # json.loads built `data` afresh from str keys and exact types: check it, no copy
        for val in data.values():
            t = type(val)
            if t is not str and t is not int and not (t is list and all(type(i) is int for i in val)):
                return None
        return Conv(flow, state, data, v, m)


def not_understood(turn: Turn) -> Step:
    return turn.stay(Say("chat/not_understood.txt", {"text": turn.said.text[:20]}))


class Flows:
    """The flows of one deployment: the home flow (idle, help, menu) and the others.
    Parses inbound messages into `Said` and picks the step for a conversation."""

    def __init__(self, home: Flow, others: Sequence[Flow]) -> None:
        self.home = home
        self._flows: dict[str, Flow] = {}
        self._words: dict[str, tuple[str, Keyword]] = {}
        self._patterns: list[tuple[str, Keyword, re.Pattern[str]]] = []
        self._scenes: list[tuple[str, Keyword]] = []
        self._kinds: dict[str, tuple[str, Keyword]] = {}
        self._carry: dict[tuple[str, str], tuple[str, ...]] = {}
        for flow in (home, *others):
            if flow.name in self._flows:
                raise ValueError(f"two flows named {flow.name!r}")
            self._flows[flow.name] = flow
            for kw in flow.keywords:
                if kw.carry:
                    self._carry[(flow.name, kw.intent)] = kw.carry
                for word in kw.words:
                    key = _match_form(normalize(word))
                    if key in self._words or key in CANCEL_WORDS:
                        raise ValueError(f"keyword {word!r} of {flow.name!r} is taken")
                    self._words[key] = (flow.name, kw)
                if kw.pattern:
                    self._patterns.append((flow.name, kw, re.compile(kw.pattern)))
                if kw.scene:
                    self._scenes.append((flow.name, kw))
                if kw.kind:
                    if kw.kind in self._kinds:
                        raise ValueError(f"inbound kind {kw.kind!r} of {flow.name!r} is taken")
                    self._kinds[kw.kind] = (flow.name, kw)
        # the most specific pattern first: 「绑定核销员 …」 (a module's) before 「绑定 …」 (the
        # core's), whichever flow registered first (sorted() keeps registration order on ties)
        self._patterns.sort(key=lambda p: -_literal_prefix(p[1].pattern))
        for flow in self._flows.values():
            for word in flow.words:
                if _match_form(normalize(word)) in self._words:
                    raise ValueError(f"in-flow word {word!r} of {flow.name!r} is a global keyword")
        self.menu = Menu.of([entry for f in self._flows.values() for entry in f.menu])
        # a main-menu label typed as text means its keyword (「推广赚钱」 = 「我的推广」), unless
        # the label is a word of its own somewhere (a keyword or a flow's in-flow word)
        in_flow = {_match_form(normalize(w)) for f in self._flows.values() for w in f.words}
        for label, keyword in self.menu.items:
            target = self._words.get(_match_form(normalize(keyword)))
            form = _match_form(normalize(label))
            if target is not None and form not in self._words and form not in in_flow and form not in CANCEL_WORDS:
                self._words[form] = target
        # each flow's states and in-flow words (in their match form), once, not per message
        self._states = {f.name: f.states for f in self._flows.values()}
        self._local: dict[str, dict[str, str]] = {
            f.name: {_match_form(normalize(w)): i for w, i in f.words.items()} for f in self._flows.values()
        }

    def get(self, name: str) -> Flow | None:
        return self._flows.get(name)

    def __getitem__(self, name: str) -> Flow:
        return self._flows[name]

    def idle(self, v: int = 0) -> Conv:
        return Conv(self.home.name, self.home.start, {}, v)

    def current(self, conv: Conv | None) -> Conv:
        """The stored conversation, or idle when it is gone, rests in a flow's start state,
        or names a flow/state that no longer exists (a module switched off, a renamed state)."""
        if conv is None:
            return self.idle()
        flow = self._flows.get(conv.flow)
        if flow is None or conv.state not in self._states[flow.name] or conv.state == flow.start:
            return self.idle(conv.v)  # a flow's start is only an entry point: idle
        return conv

    def parse(self, inbound: Inbound, conv: Conv) -> Said:
        if inbound.kind in (Kind.SUBSCRIBE, Kind.SCAN):
            scene = inbound.payload.get("scene", "")
            for name, kw in self._scenes:
                if scene and scene.startswith(kw.scene):
                    return Said(kw.intent, text=scene, args=(scene,), flow=name)
            intent = Intent.SUBSCRIBE if inbound.kind == Kind.SUBSCRIBE else Intent.SCAN
            return Said(intent, args=(scene,) if scene else (), flow=self.home.name)
        if inbound.kind in (Kind.CLICK, Kind.SCANCODE):
            key = inbound.payload.get("key", "")
            hit = self._words.get(_match_form(key))
            scanned: tuple[str, ...] = (inbound.payload.get("result", ""),) if inbound.kind == Kind.SCANCODE else ()
            return Said(hit[1].intent, text=key, args=scanned, flow=hit[0]) if hit else Said(Intent.TEXT)
        if inbound.kind == Kind.LOCATION:
            p = inbound.payload
            args = (p.get("lat", ""), p.get("lng", ""), p.get("label", ""), p.get("src", ""))
            current = self.current(conv)
            if (current.state, Intent.LOCATION) in self._flows[current.flow].table:
                return Said(Intent.LOCATION, args=args)
            if p.get("src") == "report" and current.flow != self.home.name:
                return Said(Intent.LOCATION, args=args)  # WeChat's report never interrupts a conversation
            kind_hit = self._kinds.get(Kind.LOCATION)
            if kind_hit is not None:
                return Said(kind_hit[1].intent, args=args, flow=kind_hit[0])
            return Said(Intent.TEXT)
        if inbound.kind == Kind.IMAGE:
            current = self.current(conv)
            media_id = inbound.payload.get("media_id", "")
            if media_id and (current.state, Intent.IMAGE) in self._flows[current.flow].table:
                return Said(Intent.IMAGE, args=(media_id, inbound.payload.get("pic_url", "")))
        said = normalize(inbound.text) if inbound.kind == Kind.TEXT else ""
        return self.parse_text(said, conv)

    def parse_text(self, said: str, conv: Conv) -> Said:
        form = _match_form(said)
        if form in CANCEL_WORDS:
            return Said(Intent.NO, said)
        hit = self._words.get(form)
        if hit:
            return Said(hit[1].intent, said, flow=hit[0])
        local = self._local.get(conv.flow, self._local[self.home.name]).get(form)
        if local is not None:
            return Said(local, said)
        flow = self._flows.get(conv.flow, self.home)
        if conv.state not in flow.free_text:
            for name, kw, rx in self._patterns:
                m = rx.fullmatch(said)
                if m:
                    return Said(kw.intent, said, args=tuple(g or "" for g in m.groups()), flow=name)
            times = TIMES.fullmatch(said)
            if times:
                index = times.group(1)
                return Said(Intent.TIMES, said, n=int(index) if index else None, qty=int(times.group(2)))
        if NUMBER.fullmatch(said):
            return Said(Intent.NUMBER, said, n=int(said))
        if form in GENERIC_WORDS:
            return Said(GENERIC_WORDS[form], said)
        return Said(Intent.TEXT, said)

    def decide(self, conv: Conv, said: Said) -> tuple[Flow, Turn, StepFn]:
        """The flow, the turn and the step for what was said in this conversation."""
        conv = self.current(conv)
        flow = self._flows[conv.flow]
        if said.flow:
            target = self._flows[said.flow]
            if target.name == flow.name and (conv.state, said.intent) in target.table:
                turn = Turn(said, conv.state, conv.data, self.menu)
            else:  # jump: from the target's start, with fresh data (and what the keyword carries)
                carried = {k: conv.data[k] for k in self._carry.get((target.name, said.intent), ()) if k in conv.data}
                turn = Turn(said, target.start, carried, self.menu)
            return target, turn, target.table.get((turn.state, said.intent), not_understood)
        turn = Turn(said, conv.state, conv.data, self.menu)
        step = flow.table.get((conv.state, said.intent))
        if step is not None:
            return flow, turn, step
        if said.intent == Intent.NO:
            return flow, turn, self._cancel
        if said.intent == Intent.LOCATION:
            return flow, turn, _quiet
        return flow, turn, not_understood

    def _cancel(self, turn: Turn) -> Step:
        return Step(self.home.start, (Say("chat/cancelled.txt"),), flow=self.home.name)


def _quiet(turn: Turn) -> Step:
    """A location nobody asked for (WeChat reports one when the chat opens): no answer."""
    return Step(turn.state, (), turn.data)
