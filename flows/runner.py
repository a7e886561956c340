"""FlowRunner: the I/O around the pure flow tables.

One message: claim its de-duplication key and load the conversation from the KV store
(one round trip), take the member the conversation remembers (or resolve it, noting a QR
scene), pick the step, run its command through the core in one unit of work, render the
replies, compare-and-set the new state on the raw value it read, then commit. The CAS is
the linearisation point: of two quick messages only one advances from a given state;
the other rolls its unit of work back, re-loads and runs once more against the new
state (twice lost: "操作太快了，请再发一次").

The one-round-trip path: a worker keeps the conversations it last wrote. A text or menu
click from a sender it has one for runs the step on that copy first and then claims the
message and compare-and-sets the state in one atomic call. Nothing outside the unit of
work may happen before the claim, so this path runs only steps whose commands are
marked `reads_only` (browsing); any other command, a stale copy (another worker moved
the conversation, it expired) or a lost claim sends the message down the path above.
A repeat still has exactly one effect: its claim is checked before anything is written.

The claim-first path's claim is provisional: a lease of `CLAIM_LEASE` seconds (shorter than
the 5 s after which WeChat retries a message it has no answer for), which the runner turns
into the hour-long claim once the step's work is committed. A worker that dies between
claim and commit leaves only the lease: WeChat's retry, 5 s later and on any worker, finds
it gone and runs the step (the conversation's compare-and-set still lets one step through
from a given state). A retry that finds the lease still held (the first handler at work)
waits for it to be confirmed (a repeat: nothing to do) or to run out (then it runs the step).
The one-round-trip path claims for good at once: its claim and its state write are one
atomic call, and the step behind it only read.

A message may come with a ticket (the official account's signed query string, which in
plaintext mode signs no body): the claim spends it, in the same call, and a ticket spent on
another message refuses this one (`Replayed`) before anything is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import jinja2

from flows import cart, checkout, home, orders, shop
from flows.engine import CardNote, CheckoutMethod, Conv, Ctx, Data, Flow, Flows, Out, Say, normalize
from flows.types import Article, Inbound, Kind, Links, MemberRef, Reply
from social_mall import activity
from social_mall.activity import Activity, ActivitySink
from social_mall.errors import MallError
from social_mall.logs import log_member
from social_mall.members.desk import Sighting, first_sight
from social_mall.members.service import note_identity_account
from social_mall.orders.entrance import entered
from social_mall.places import city_of
from social_mall.search import RelatedProvider, SearchProvider
from social_mall.values import value
from social_mall.kv import Claimed, KVStore
from storage.outage import is_outage
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

BUSY = "系统繁忙，请稍后再试"
TOO_FAST = "操作太快了，请再发一次"
FALLBACK_ERROR = "chat/errors/mall_error.txt"
MAX_REDIRECTS = 2
RENDERED_MAX = 1024  # texts kept by the render cache (see Say.key); past it, start over
DEDUPE_TTL = 3600.0
CLAIM_LEASE = 4.0  # s: a provisional claim; below WeChat's 5 s retry spacing, above the reply budget
LEASE_POLL = 0.1   # s between looks at a lease another handler holds
MESSAGE_KEY_MAX = 96  # what an order keeps of the message that placed it (orders.idem_key)
RECENT_MAX = 20_000  # conversations a worker keeps for the one-round-trip path
QUICK_KINDS = frozenset({Kind.TEXT, Kind.CLICK})  # no QR scene, no unsubscribe
# Events after which a remembered member id may be stale (identities moved to another member).
IDENTITY_TOPICS = frozenset({"member.merged"})
BUILTIN_FLOWS: tuple[Flow, ...] = (shop.FLOW, cart.FLOW, checkout.FLOW, orders.FLOW)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def conv_key(inbound: Inbound) -> str:
    return conversation_key(inbound.tenant_id, inbound.channel, inbound.user_id)


def conversation_key(tenant_id: int, channel: str, user_id: str) -> str:
    return f"conv:{tenant_id}:{channel}:{user_id}"


async def claim_message(kv: KVStore, claim: str, key: str, ticket: str = "", ticket_ttl: float = 0.0,
                        lease: float = CLAIM_LEASE) -> tuple[Claimed, str | None]:
    """`kv.claim_and_get` (a lease of `lease` seconds on `claim`, and `key`'s value) that
    waits out another handler's lease: WROTE (this caller holds the lease now; it calls
    `kv.confirm(claim, DEDUPE_TTL)` once its work is committed), REPEAT (the other handler
    confirmed: the message was handled) or SPENT. A lease that outlives its TTL plus a
    margin (clock trouble) is answered as a repeat."""
    deadline = asyncio.get_running_loop().time() + lease + 1.0
    while True:
        verdict, raw = await kv.claim_and_get(claim, lease, key, ticket, ticket_ttl)
        if verdict is not Claimed.LEASED:
            return verdict, raw
        if asyncio.get_running_loop().time() >= deadline:
            return Claimed.REPEAT, None
        await asyncio.sleep(LEASE_POLL)


class Replayed(Exception):
    """The message's ticket was spent on another message: it was not handled."""


class Unavailable(Exception):
    """The database or the key-value store could not be reached (restarting, connection cut):
    nothing was committed and the message's claim is only a lease, so a channel that can
    lets the sender retry (WeChat retries 5 s later, past the lease) instead of answering."""


class _ClaimFirst(Exception):
    """The one-round-trip path can't finish this message: take the claim-first path."""


@value
class _Result:
    conv: Conv
    out: list[Out]
    commit: bool
    writes: bool = False   # a command that is not `reads_only` ran: there is work to commit


class FlowRunner:
    def __init__(
        self,
        *,
        uows: UowFactory,
        kv: KVStore,
        templates: jinja2.Environment,
        links: Links,
        state_ttl: int = 1800,
        order_timeout: timedelta = timedelta(minutes=30),
        clock: Callable[[], datetime] = utcnow,
        claim_lease: float = CLAIM_LEASE,
        extra_flows: Sequence[Flow] = (),
        on_commit: Callable[[], None] = lambda: None,
        methods: Mapping[str, CheckoutMethod] | None = None,
        card_notes: Sequence[CardNote] = (),
        search: SearchProvider | None = None,
        related: RelatedProvider | None = None,
        activity_sinks: Sequence[ActivitySink] = (),
    ) -> None:
        """`methods`: fulfilment methods offered at checkout besides the core's express (a
        module's "express" replaces it). `search`, `related`: a module's keyword search and related products (social_mall/search.py)."""
        self.uows, self.kv, self.templates, self.links = uows, kv, templates, links
        self.state_ttl, self.order_timeout, self.clock = state_ttl, order_timeout, clock
        self.on_commit, self.claim_lease = on_commit, claim_lease
        self.search, self.related = search, related
        self.methods: Mapping[str, CheckoutMethod] = MappingProxyType(
            {checkout.EXPRESS.key: checkout.EXPRESS, **(methods or {})})
        self.card_notes = tuple(card_notes)
        self.activity_sinks = tuple(activity_sinks)
        self.flows = Flows(home.FLOW, (*BUILTIN_FLOWS, *extra_flows))
        self._rendered: dict[tuple[str, Hashable], str] = {}
        # conversation key → the raw value this worker last wrote, and that value loaded
        self._recent: dict[str, tuple[str, Conv]] = {}

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """The replies to one message (no de-duplication: the caller has none to do)."""
        try:
            replies = await self.handle_once(inbound, "")
        except Unavailable:
            return [Reply.of_text(BUSY)]
        assert replies is not None
        return replies

    async def handle_once(self, inbound: Inbound, dedupe_key: str, ticket: str = "",
                          ticket_ttl: float = 0.0) -> list[Reply] | None:
        """As `handle`, for a message the channel may deliver more than once: None when
        `dedupe_key` was seen within the hour (the repeat has no effect). The claim and
        the conversation load are one round trip to the key-value store, the state's
        compare-and-set another; a browsing step on a conversation this worker wrote last
        needs only one (see the module's doc). An empty `dedupe_key` claims nothing.

        `ticket` (with a `dedupe_key`): a key this message spends for `ticket_ttl` seconds
        with its claim; Replayed, with no effect, when another message spent it.

        Unavailable when the database or the store could not be reached (see the class)."""
        try:
            with entered(inbound.account):   # whatever the step places is paid at this account's merchant
                return await self._handle(inbound, dedupe_key, (ticket, ticket_ttl) if dedupe_key else ("", 0.0))
        except Replayed:
            log.warning("flow.replayed", extra={"tenant": inbound.tenant_id, "channel": inbound.channel})
            raise
        except Exception as exc:
            if is_outage(exc):
                log.warning("flow.unavailable", extra={"tenant": inbound.tenant_id, "channel": inbound.channel,
                                                       "error": type(exc).__name__})
                raise Unavailable from exc
            log.exception("flow.failed", extra={"tenant": inbound.tenant_id, "channel": inbound.channel,
                                                "kind": str(inbound.kind)})
            return [Reply.of_text(BUSY)]

    async def state(self, inbound: Inbound) -> Conv | None:
        """The stored conversation of the sender (tests, diagnostics)."""
        return Conv.load(await self.kv.get(conv_key(inbound)))

    async def forget(self, tenant_id: int, channel: str, user_id: str) -> None:
        """Drop a sender's conversation (and the member id it remembers)."""
        key = conversation_key(tenant_id, channel, user_id)
        self._recent.pop(key, None)  # other workers' copies fail their compare-and-set
        await self.kv.delete(key)

    async def _handle(self, inbound: Inbound, dedupe_key: str, ticket: tuple[str, float]) -> list[Reply] | None:
        key = conv_key(inbound)
        if inbound.kind in QUICK_KINDS:
            recent = self._recent.get(key)
            if recent is not None:
                try:
                    return await self._quick(inbound, key, *recent, dedupe_key, ticket)
                except _ClaimFirst:
                    pass
        if not dedupe_key:
            return (await self._claimed(inbound, key, await self.kv.get(key)))[0]
        verdict, raw = await claim_message(self.kv, dedupe_key, key, *ticket, lease=self.claim_lease)
        if verdict is Claimed.SPENT:
            raise Replayed
        if verdict is not Claimed.WROTE:
            log.info("flow.duplicate", extra={"tenant": inbound.tenant_id, "channel": inbound.channel})
            return None
        replies, confirmed = await self._claimed(inbound, key, raw, dedupe_key)
        if confirmed:   # a step with nothing to commit: its state write confirmed the claim too
            return replies
        # committed (or nothing to commit): a retry from now on is a repeat. A failure
        # before this point leaves the lease to run out, and WeChat's retry runs the step.
        try:
            await self.kv.confirm(dedupe_key, DEDUPE_TTL)
        except Exception as exc:  # noqa: BLE001 - the step is done: answer it. A retry after the
            # lease runs against the state it wrote (no second effect), at worst a hint.
            log.warning("flow.confirm_failed", extra={"tenant": inbound.tenant_id, "error": type(exc).__name__})
        return replies

    async def _claimed(self, inbound: Inbound, key: str, raw: str | None,
                       claim: str = "") -> tuple[list[Reply], bool]:
        """The claim-first path once the message is claimed (`raw`: the stored conversation):
        the replies, and whether `claim` (the message's lease) was confirmed already. A step
        that wrote nothing (browsing, a refusal, a reply without a command: nothing left to
        commit) confirms the lease in the same atomic call as its state write, one round trip
        fewer (a first message that browses: claim, then state + confirm); a step with writes
        leaves the confirm to the caller, after its commit."""
        if inbound.kind == Kind.UNSUBSCRIBE:
            self._recent.pop(key, None)
            await self.kv.delete(key)
            if self.activity_sinks:
                gone = Conv.load(raw)
                self._report(inbound, gone.member if gone is not None else 0, [])
            return [], False
        stored = Conv.load(raw)
        member = await self._member(inbound, stored)
        for attempt in range(2):
            if attempt:
                raw = await self.kv.get(key)
                stored = Conv.load(raw)
            conv = self.flows.current(stored)
            async with self.uows() as uow:
                ctx = self._ctx(uow, inbound, member, claim)
                result = await self._advance(ctx, conv, inbound)
                replies = self._render(result.out)
                new = self._next(uow, result, conv, member)
                new_raw = new.dump()
                confirm = bool(claim) and not result.writes
                if confirm:
                    written = await self.kv.cas_and_confirm(key, raw, new_raw, self.state_ttl, claim, DEDUPE_TTL)
                else:
                    written = await self.kv.cas(key, raw, new_raw, self.state_ttl)
                if not written:
                    await uow.rollback()
                    self._recent.pop(key, None)
                    log.info("flow.cas_lost", extra={"tenant": inbound.tenant_id, "attempt": attempt})
                    continue
                await self._commit(uow, result, key, (new_raw, new), raw, conv)
            if self.activity_sinks:
                self._report(inbound, member.id, ctx.noted)
            return replies, confirm
        return [Reply.of_text(TOO_FAST)], False

    async def _quick(self, inbound: Inbound, key: str, raw: str, stored: Conv,
                     dedupe_key: str, ticket: tuple[str, float]) -> list[Reply] | None:
        """The one-round-trip path over the worker's copy (`raw`, loaded: `stored`);
        _ClaimFirst when it can't finish (nothing was claimed, written or committed then)."""
        if not stored.member:
            raise _ClaimFirst
        log_member.set(stored.member)
        member = MemberRef(stored.member)
        conv = self.flows.current(stored)
        async with self.uows() as uow:
            ctx = self._ctx(uow, inbound, member, dedupe_key)
            result = await self._advance(ctx, conv, inbound, claimed=False)
            replies = self._render(result.out)
            new = self._next(uow, result, conv, member)
            new_raw = new.dump()
            verdict = await self.kv.claim_and_cas(dedupe_key, DEDUPE_TTL, key, raw, new_raw, self.state_ttl,
                                                  *ticket)
            if verdict is not Claimed.WROTE:
                await uow.rollback()
                if verdict is Claimed.SPENT:
                    raise Replayed
                if verdict is Claimed.LEASED:  # another handler is at it: wait on the claim-first path
                    raise _ClaimFirst
                if verdict is Claimed.REPEAT:
                    log.info("flow.duplicate", extra={"tenant": inbound.tenant_id, "channel": inbound.channel})
                    return None
                self._recent.pop(key, None)
                log.info("flow.copy_stale", extra={"tenant": inbound.tenant_id})
                raise _ClaimFirst
            await self._commit(uow, result, key, (new_raw, new), raw, conv)
        if self.activity_sinks:
            self._report(inbound, member.id, ctx.noted)
        return replies

    def _report(self, inbound: Inbound, member_id: int,
                noted: Sequence[tuple[str, int, Mapping[str, str | int], str]]) -> None:
        """Hand the message and what its step noted to the activity sinks (they only
        buffer: social_mall/activity.py): what the step noted (a view, a search…), or the
        message itself when it noted nothing or is an event (subscribe, scan, click). A
        sink's failure never reaches the member."""
        now = self.clock()
        t, ch = inbound.tenant_id, inbound.channel
        if noted and inbound.kind in _PLAIN:   # a plain message is what its step did: one record
            done = [Activity(t, member_id, ch, k, now, ref, src, p) for k, ref, p, src in noted]
        else:
            kind, source, props = _inbound_activity(inbound)
            done = [Activity(t, member_id, ch, kind, now, 0, source, props)]
            done.extend(Activity(t, member_id, ch, k, now, ref, src, p) for k, ref, p, src in noted)
        for sink in self.activity_sinks:
            for a in done:
                try:
                    sink(a)
                except Exception:  # noqa: BLE001 - taking note must never break the chat
                    log.exception("activity.sink_failed", extra={"tenant": t, "kind": a.kind})

    def _ctx(self, uow: UnitOfWork, inbound: Inbound, member: MemberRef, message: str = "") -> Ctx:
        if len(message) > MESSAGE_KEY_MAX:
            message = "h:" + hashlib.sha256(message.encode()).hexdigest()
        return Ctx(uow, inbound.tenant_id, inbound.tenant_code, inbound.channel, member,
                   self.links, self.clock(), self.order_timeout, self.kv, self.methods, self.card_notes,
                   self.search, self.related, inbound.account, message=message)

    def _next(self, uow: UnitOfWork, result: _Result, conv: Conv, member: MemberRef) -> Conv:
        """The conversation to store after the step, one version on. Its data can't be
        changed afterwards: this worker may keep it as its copy."""
        # A step that moved identities between members must not leave the old id behind.
        remembered = 0 if any(e.topic in IDENTITY_TOPICS for e in uow.emitted) else member.id
        done = result.conv
        return Conv(done.flow, done.state, MappingProxyType(dict(done.data)), conv.v + 1, remembered)

    async def _commit(self, uow: UnitOfWork, result: _Result, key: str, stored: tuple[str, Conv],
                      raw: str | None, conv: Conv) -> None:
        """Commit the step's work once its state (`stored`: raw, loaded) is written; a
        failed commit puts the state back (the replies are not sent: the error answers
        instead). Then keep `stored` as this worker's copy."""
        new_raw = stored[0]
        if result.commit:
            try:
                await uow.commit()
            except Exception:
                self._recent.pop(key, None)
                back = raw if raw is not None else self.flows.idle(conv.v + 1).dump()
                await self.kv.cas(key, new_raw, back, self.state_ttl)
                raise
            if uow.emitted:  # only then is there anything for the outbox to send
                self.on_commit()
        # the newest last; past RECENT_MAX the oldest goes
        recent = self._recent
        recent.pop(key, None)
        recent[key] = stored
        if len(recent) > RECENT_MAX:
            del recent[next(iter(recent))]

    async def _member(self, inbound: Inbound, stored: Conv | None) -> MemberRef:
        """The member the conversation remembers; otherwise (and on every QR scene, which
        the core records) resolved through the core's desk, created on first sight: a crowd
        of first messages is resolved in one transaction (social_mall/members/desk.py)."""
        scene = inbound.payload.get("scene", "") if inbound.kind in (Kind.SUBSCRIBE, Kind.SCAN) else ""
        if stored is not None and stored.member and not scene:
            log_member.set(stored.member)
            return MemberRef(stored.member)
        async with self.uows() as uow:
            member, created = await first_sight(
                uow, Sighting(inbound.tenant_id, inbound.channel, inbound.user_id, scene))
            # an id of another of the tenant's accounts: pushes to it go through that account
            noted = await note_identity_account(uow, inbound.tenant_id, inbound.channel, inbound.user_id,
                                                inbound.account)
            if created or scene or noted:
                await uow.commit()  # a unit of work made by hand has no desk: it wrote here
            if created or scene:
                self.on_commit()    # member.joined / member.entered are in the outbox
        log_member.set(member.id)
        return MemberRef(member.id)

    async def _advance(self, ctx: Ctx, conv: Conv, inbound: Inbound, *, claimed: bool = True) -> _Result:
        """Run the step (and any redirect it asks for). A MallError rolls the unit of work
        back and keeps the state the failing step started from. Before the message is
        `claimed`, only a `reads_only` command runs (otherwise _ClaimFirst)."""
        said = self.flows.parse(inbound, conv)
        now, kept, ran, writes = conv, conv, False, False
        out: list[Out] = []
        try:
            for _ in range(MAX_REDIRECTS + 1):
                kept = now  # where a refused step leaves the user: where they were
                flow, turn, step_fn = self.flows.decide(now, said)
                step = step_fn(turn)
                target = self.flows[step.flow] if step.flow else flow
                data, to, redirect = dict(step.data), step.to, step.redirect
                out.extend(step.replies)
                if step.command is not None:
                    if not claimed and not getattr(step.command, "reads_only", False):
                        raise _ClaimFirst
                    ran = True
                    writes = writes or not getattr(step.command, "reads_only", False)
                    outcome = await step.command.run(ctx)
                    out.extend(outcome.replies)
                    data.update(outcome.data)
                    to = outcome.to or to
                    if outcome.flow:
                        target = self.flows[outcome.flow]
                    redirect = outcome.redirect or redirect
                now = Conv(target.name, to, data, conv.v)
                if step.hint and not redirect:  # a redirected step's own answer says what's next
                    out.append(self._hint(target, to, data))
                if not redirect:
                    break
                said = self.flows.parse_text(normalize(redirect), now)
        except MallError as exc:
            await ctx.uow.rollback()
            log.info("flow.refused", extra={"tenant": ctx.tenant_id, "code": exc.code})
            kept = self.flows.current(kept)
            return _Result(kept, [self._error(exc), self._hint(self.flows[kept.flow], kept.state, kept.data)], False)
        return _Result(now, out, ran, writes)

    def _hint(self, flow: Flow, state: str, data: Data) -> Say:
        return Say(flow.hint(state), {"data": data})

    def _error(self, exc: MallError) -> Say:
        """errors/<code>.txt for the most specific class in the MRO that has one."""
        for cls in type(exc).__mro__:
            code = vars(cls).get("code")
            if not isinstance(code, str):
                continue
            name = f"chat/errors/{code}.txt"
            try:
                self.templates.get_template(name)
            except jinja2.TemplateNotFound:
                continue
            return Say(name, exc.facts())
        return Say(FALLBACK_ERROR, exc.facts())

    def _render(self, out: Sequence[Out]) -> list[Reply]:
        """Templates to replies; neighbouring texts merge into one message."""
        replies: list[Reply] = []
        for item in out:
            if isinstance(item, Reply):
                reply = item
            else:
                body = self._text(item)
                if item.card:
                    title, _, description = body.partition("\n")
                    reply = Reply.of_article(Article(title.strip(), description.strip(), item.url, item.image))
                else:
                    reply = Reply.of_text(body)
            if reply.kind == "text" and not reply.text:
                continue
            if reply.kind == "text" and replies and replies[-1].kind == "text":
                replies[-1] = Reply.of_text(f"{replies[-1].text}\n{reply.text}")
            else:
                replies.append(reply)
        return replies

    def _text(self, say: Say) -> str:
        """The template rendered and stripped; once per (template, key) when the step gave
        a key (list pages every member reads alike)."""
        if say.key is None:
            return self.templates.get_template(say.template).render(**say.ctx).strip()
        cache_key = (say.template, say.key)
        text = self._rendered.get(cache_key)
        if text is None:
            text = self.templates.get_template(say.template).render(**say.ctx).strip()
            if len(self._rendered) >= RENDERED_MAX:
                self._rendered.clear()
            self._rendered[cache_key] = text
        return text


def _inbound_activity(inbound: Inbound) -> tuple[str, str, Mapping[str, str | int]]:
    """The activity a message is: (kind, source, props)."""
    k = inbound.kind
    if k == Kind.CLICK:
        return activity.CLICK, "", {"key": inbound.payload.get("key", "")[:64]}
    if k == Kind.SUBSCRIBE:  # the account followed (0: the primary one): its unionid lookup asks it
        return activity.SUBSCRIBE, inbound.payload.get("scene", "")[:64], {"account": inbound.account}
    if k == Kind.SCAN:
        return activity.SCAN, inbound.payload.get("scene", "")[:64], {}
    if k == Kind.UNSUBSCRIBE:
        return activity.UNSUBSCRIBE, "", {}
    if k == Kind.LOCATION and (city := city_of(inbound.payload.get("label", ""))):
        return activity.MESSAGE, "", {"kind": str(k), "city": city}   # where the member says they are
    return activity.MESSAGE, "", _MESSAGE_PROPS[k]


# messages that are what their step did (not events of their own)
_PLAIN = frozenset(Kind) - {Kind.CLICK, Kind.SUBSCRIBE, Kind.SCAN, Kind.UNSUBSCRIBE}
_MESSAGE_PROPS: Mapping[Kind, Mapping[str, str | int]] = {k: MappingProxyType({"kind": str(k)}) for k in Kind}
