"""The module registry: a module (shop, groupbuy, referral, members…) registers its
event subscribers, scheduled jobs, chat flows (with their 「帮助」 and menu entries), HTTP
routes, template folders and its part of the demo shop here, and fills the core's other
seams (fulfilment methods offered at checkout, the keyword search provider, the related
products offered beside an added one).

Built-in modules are listed by the composition root (bot.py); module packages (under
modules/) load through the entry-point group `social_mall.modules`, each
pointing at a `Module`. A package's `Module` also names its Alembic branch
(`migrations`) and its SQLAlchemy models (`models`): storage.db.migrate applies the
branches of every installed package, switched on or not, so switching a module back on
needs no migration. Any module can be switched off with the setting
`SOCIAL_MALL_DISABLED_MODULES`; the core never imports a module.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time as dt_time
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from social_mall.activity import ActivitySink
    from social_mall.demo import DemoSeeder
    from social_mall.books import BooksCheck
    from social_mall.catalog.visibility import ProductVisibility
    from social_mall.fulfilment import FulfilmentMethod
    from social_mall.members.audience import MemberGroups
    from social_mall.orders.notes import OrderNote
    from social_mall.payments.methods import PaymentMethod
    from social_mall.places import PlaceSource
    from social_mall.pricing.unit import UnitPricer
    from social_mall.search import RelatedProvider, SearchProvider

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "social_mall.modules"


@dataclass(frozen=True)
class Delivery:
    """One outbox row handed to one subscriber."""

    id: int
    tenant_id: int
    topic: str
    payload: Mapping[str, Any]
    attempt: int


Subscriber = Callable[[Delivery], Awaitable[None]]
AccountEventHandler = Callable[[int, Mapping[str, Any]], Awaitable[None]]
#: (uow, tenant) → {tag id: the rule that keeps the tag up, in words}
TagRules = Callable[[Any, int], Awaitable[Mapping[int, str]]]
# (unit of work, tenant, sku id, now) → a promotion of the module's sells this SKU now
PriceHold = Callable[[Any, int, int, datetime], Awaitable[bool]]


@dataclass(frozen=True)
class Batched:
    """A subscriber that can also take many deliveries of its topic in one go (`many`: one
    transaction for a crowd's events, e.g. the welcome coupons of a QR campaign's new
    members). `many` does all or nothing: when it raises, the outbox hands each of the lot's
    deliveries to `one`, so they succeed or retry one by one. Registered like any other."""

    one: Subscriber
    many: Callable[[Sequence[Delivery]], Awaitable[None]]

    async def __call__(self, d: Delivery) -> None:
        await self.one(d)


@dataclass(frozen=True)
class Job:
    """Every `seconds`, or daily at the wall-clock time `at` (its tzinfo names the zone)."""
    name: str
    seconds: float
    run: Callable[[], Awaitable[object]]
    at: dt_time | None = None

    def trigger(self) -> tuple[str, dict[str, Any]]:
        """The scheduler's trigger (APScheduler's name and arguments): cron for a daily job."""
        if self.at is None:
            return "interval", {"seconds": self.seconds}
        return "cron", {"hour": self.at.hour, "minute": self.at.minute, "second": self.at.second,
                        "timezone": self.at.tzinfo}


def _core_places() -> list[PlaceSource]:
    from social_mall.places import AddressPlaces   # storage models: imported when a registry is made

    return [AddressPlaces()]


@dataclass
class Registry:
    """What the enabled modules contributed. `services` is the composition root's
    container of shared objects (storage, clients, settings) handed to every module."""

    services: Any
    subscribers: dict[tuple[str, str], Subscriber] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    routes: list[Any] = field(default_factory=list)  # aiohttp route definitions
    flows: list[Any] = field(default_factory=list)   # flows.engine.Flow objects
    template_dirs: list[Path] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    # what each module adds to the demo shop, and whether only to its showcase (DEMO_SHOWCASE)
    demos: list[tuple[DemoSeeder, bool]] = field(default_factory=list)
    # key → method offered at checkout ("express" is the core's own unless a module replaces it)
    fulfilments: dict[str, FulfilmentMethod] = field(default_factory=dict)
    completion_holds: list[Callable[[Any, int, int], Awaitable[bool]]] = field(default_factory=list)
    # who says a SKU is inside a running promotion of theirs (automatic prices may not rise)
    price_holds: list[PriceHold] = field(default_factory=list)
    card_notes: list[Callable[[Any, int, int], Awaitable[str]]] = field(default_factory=list)
    # unit prices of the module's own for some members (social_mall/pricing/unit.py)
    pricers: list[UnitPricer] = field(default_factory=list)
    # who keeps some products to some members (social_mall/catalog/visibility.py)
    visibility: list[ProductVisibility] = field(default_factory=list)
    # ways of paying an order besides WeChat Pay, for some members (social_mall/payments/methods.py)
    payment_methods: list[PaymentMethod] = field(default_factory=list)
    # lines under an order on its chat, H5 and console pages (social_mall/orders/notes.py)
    order_notes: list[OrderNote] = field(default_factory=list)
    # name → a module's check that its own money adds up (social_mall/books.py)
    books_checks: dict[str, BooksCheck] = field(default_factory=dict)
    # who answers keyword searches (social_mall/search.py); None: the core's own
    search: SearchProvider | None = None
    # who names the products offered beside one added to the cart; None: nobody
    related: RelatedProvider | None = None
    # official-account event name (lower case) → who records it (no chat flow runs for it)
    account_events: dict[str, AccountEventHandler] = field(default_factory=dict)
    # who takes note of members' activity (social_mall/activity.py): called on the chat path
    activity_sinks: list[ActivitySink] = field(default_factory=list)
    # key → groups of members a module keeps (a company's buyers…), for segments and audiences
    member_groups: dict[str, MemberGroups] = field(default_factory=dict)
    # who knows where members shop (social_mall/places.py): modules' sources, then the core's
    place_sources: list[PlaceSource] = field(default_factory=_core_places)
    # who keeps member tags up by a rule (social_mall/members/tags.py: a tag's kind)
    tag_rules: list[TagRules] = field(default_factory=list)
    # what a module loads once when a worker starts, before it serves (dictionaries, models)
    warmups: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def subscribe(self, topic: str, name: str, fn: Subscriber) -> None:
        self.subscribers[(topic, name)] = fn

    def add_job(self, name: str, seconds: float, run: Callable[[], Awaitable[object]]) -> None:
        self.jobs.append(Job(name, seconds, run))

    def add_daily_job(self, name: str, at: dt_time, run: Callable[[], Awaitable[object]]) -> None:
        """Run `run` once a day at `at`, a wall-clock time with its zone (tzinfo), e.g. the
        night's quiet hour: like every job, on the worker holding the leader lease only."""
        if at.tzinfo is None:
            raise ValueError("a daily job's time names its zone (tzinfo)")
        self.jobs.append(Job(name, 86400.0, run, at))

    def add_warmup(self, name: str, load: Callable[[], None]) -> None:
        """Load something slow once when a worker starts, before it takes requests (a
        dictionary, a model): `load()` runs in a thread at start-up, so the first message
        that needs it doesn't pay for it inside WeChat's 5-second window. A failing load is
        logged and the worker starts anyway (the first use loads it then)."""
        self.warmups.append((name, load))

    def add_routes(self, routes: Iterable[Any]) -> None:
        self.routes.extend(routes)

    def add_flow(self, flow: Any) -> None:
        self.flows.append(flow)

    def add_templates(self, path: Path) -> None:
        self.template_dirs.append(path)

    def add_demo(self, seed: DemoSeeder, *, showcase: bool = True) -> None:
        """The module's part of the demo shop (social_mall.demo.seed_demo runs it).
        `showcase`: only with DEMO_SHOWCASE (campaigns, coupons, a flash sale…); otherwise
        part of the plain demo shop every start seeds (e.g. the stores of local services)."""
        self.demos.append((seed, showcase))

    def demo_seeders(self, showcase: bool) -> list[DemoSeeder]:
        return [seed for seed, only_showcase in self.demos if showcase or not only_showcase]

    def add_card_note(self, note: Callable[[Any, int, int], Awaitable[str]]) -> None:
        """Add lines to every product card in chat: `note(uow, tenant, product_id)` → text
        ("" for none), e.g. the product's reviews (flows.engine.CardNote)."""
        self.card_notes.append(note)

    def add_completion_hold(self, hold: Callable[[Any, int, int], Awaitable[bool]]) -> None:
        """Keep shipped orders from being confirmed received automatically while `hold`
        (unit of work, tenant, order id) says so, e.g. an after-sale request is open: the
        auto-confirm sweeper and its day-before reminder skip such an order until the hold
        lets go (social_mall/jobs.py)."""
        self.completion_holds.append(hold)

    def add_price_hold(self, hold: PriceHold) -> None:
        """Say when a promotion of the module's is selling a SKU: `hold(uow, tenant, sku_id,
        now)` → True while it runs (a timed sale session, a price-cutting campaign…). Whoever moves list
        prices automatically asks every hold and never raises a held SKU's price then: a
        raise inside a running promotion inflates the 原价 it is advertised against."""
        self.price_holds.append(hold)

    def add_fulfilment(self, method: FulfilmentMethod) -> None:
        """Offer a fulfilment method at checkout (a later module's method with the same
        key replaces an earlier one: that is how a module takes over "express" pricing)."""
        self.fulfilments[method.key] = method

    def add_unit_pricer(self, pricer: UnitPricer) -> None:
        """Sell SKUs to some members at the module's own price (B2B price lists…): consulted
        by the product card, checkout and place_order through every unit of work."""
        self.pricers.append(pricer)

    def add_product_visibility(self, visibility: ProductVisibility) -> None:
        """Keep some products to some members: `visibility.hidden(uow, tenant, member)` → the
        product ids that member may not see or buy (asked once per unit of work). Lists,
        searches, cards, the cart and every order honour it (social_mall/catalog/visibility.py)."""
        self.visibility.append(visibility)

    def add_payment_method(self, method: PaymentMethod) -> None:
        """Offer a way of paying besides WeChat Pay (on account, bank transfer…) under the
        orders it allows; the module marks an order paid with payments.methods.mark_paid."""
        self.payment_methods.append(method)

    def add_order_note(self, note: OrderNote) -> None:
        """Add lines under an order wherever the core shows it (chat detail, H5 page, console):
        `note(uow, tenant, order)` → text ("" for none), e.g. the VAT inside its total."""
        self.order_notes.append(note)

    def add_books_check(self, name: str, check: BooksCheck) -> None:
        """Check the module's own money hourly for every tenant: `check(uow, tenant)` → the
        mismatches ([] when the books agree), logged at ERROR as `books.mismatch`."""
        self.books_checks[name] = check

    def add_account_event(self, event: str, handler: AccountEventHandler) -> None:
        """Take an official-account event that is not a member's action (MASSSENDJOBFINISH,
        TEMPLATESENDJOBFINISH…): `handler(tenant_id, fields)` gets the message's fields as
        WeChat sent them (text values; nested elements as mappings) once per event (the
        endpoint de-duplicates retries), WeChat is answered "success", and no chat flow runs
        and no member is made for the sender. Raising answers 500: WeChat sends it again."""
        self.account_events[event.lower()] = handler

    def add_activity_sink(self, sink: ActivitySink) -> None:
        """Hear of every member activity the core sees (social_mall/activity.py): messages,
        menu clicks, QR scans, product and category views, searches, add-to-cart, checkout
        begun. `sink(activity)` is called on the chat path after the step: it must only
        buffer the activity and return (write it later, in a job of its own)."""
        self.activity_sinks.append(sink)

    def add_member_groups(self, groups: MemberGroups) -> None:
        """Let segments pick members by a kind of group the module keeps (the companies a
        member buys for…): `groups.options(uow, tenant)` lists them, `groups.members(uow,
        tenant, group_id)` names their members (social_mall/members/audience.py)."""
        self.member_groups[groups.key] = groups

    def add_place_source(self, source: PlaceSource) -> None:
        """Say where members shop and where orders were bought (a chosen store, a pick-up
        store…) as places "kind:key" (social_mall/places.py); a module's places come before
        the core's address cities. Readers hold `place_sources` (this list)."""
        self.place_sources.insert(len(self.place_sources) - 1, source)

    def add_tag_rules(self, rules: TagRules) -> None:
        """Say which member tags the module keeps up by a rule: `rules(uow, tenant)` maps
        tag id → the rule in words (the console's tag list shows them as rule tags). A
        deleted tag is announced as `member_tag.deleted` (subscribe to let go of it)."""
        self.tag_rules.append(rules)

    def set_search(self, provider: SearchProvider) -> None:
        """Answer the shop's keyword searches with this provider (the last one set wins)."""
        self.search = provider

    def set_related(self, provider: RelatedProvider) -> None:
        """Offer this provider's products beside one added to the cart (the last one set wins)."""
        self.related = provider

    def topic_map(self) -> Mapping[str, Sequence[str]]:
        """topic → subscriber names: what the unit of work writes to the outbox."""
        out: dict[str, list[str]] = {}
        for topic, name in self.subscribers:
            out.setdefault(topic, []).append(name)
        return out


@dataclass(frozen=True)
class Module:
    name: str
    setup: Callable[[Registry], None]
    description: str = ""
    migrations: Path | None = None  # a folder of Alembic revisions: the module's own branch
    models: str = ""                # dotted name of the module's SQLAlchemy models (on storage.models.Base)


def installed_modules() -> list[Module]:
    """The module packages installed in this environment (the entry-point group).
    Loading one imports only its package's __init__ (the `Module`); `setup` imports the rest."""
    found: list[Module] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        if not isinstance(module, Module):
            log.warning("module.ignored", extra={"entry_point": ep.name})
            continue
        found.append(module)
    return found


def discover(builtin: Sequence[Module], installed: Sequence[Module] | None = None) -> list[Module]:
    """Built-ins first, then the installed module packages (default: the entry-point group)."""
    found = list(builtin)
    names = {m.name for m in found}
    for module in installed_modules() if installed is None else installed:
        if module.name not in names:
            found.append(module)
            names.add(module.name)
    return found


def build_registry(services: Any, modules: Sequence[Module], disabled: Iterable[str]) -> Registry:
    off = set(disabled)
    reg = Registry(services=services)
    for module in modules:
        if module.name in off:
            log.info("module.disabled", extra={"module": module.name})
            continue
        module.setup(reg)
        reg.modules.append(module.name)
    return reg
