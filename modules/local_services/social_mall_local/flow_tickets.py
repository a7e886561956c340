"""Chat: tickets and verification.

* 「我的券码」: the member's usable tickets (code, what it is for, uses left, store,
  valid until) and a link to each one's H5 page with its QR code.
* 「核销 123456789012」, or scanning a member's QR with the menu's scan button (menu key
  LOCAL_VERIFY, event scancode_waitmsg): a staff member sees what the code redeems and
  confirms with 「确认」. Refusals (not staff, wrong store, expired, used, unknown, too
  many tries) are clear answers and change nothing.
* 「绑定核销员 ABCDE-FGHJK」: bind oneself as a store's staff with the console's code.

State data: ticket (the ticket shown for confirmation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Intent, Keyword, Outcome, Say, Step, StepFn, Turn, reads_only
from social_mall_local import staff as staff_service
from social_mall_local import verify as V
from social_mall_local.tickets import member_tickets

NAME = "local_tickets"
SCAN_KEY = "LOCAL_VERIFY"

#: ticket link maker: (tenant code, ticket id, member id) → the H5 page's signed URL
TicketLink = Callable[[str, int, int], str]


class St(StrEnum):
    IDLE = "idle"
    CONFIRM = "confirm"     # a ticket shown to a staff member: 确认 redeems one use


class Do(StrEnum):
    MINE = "local.tickets"
    VERIFY = "local.verify"
    SCAN = "local.scan"
    VERIFY_HELP = "local.verify_help"
    BIND = "local.bind"


@reads_only
@dataclass(frozen=True)
class MyTickets:
    link: TicketLink

    async def run(self, ctx: Ctx) -> Outcome:
        found = await member_tickets(ctx.uow, ctx.tenant_id, ctx.member.id)
        links = {t.id: self.link(ctx.tenant_code, t.id, ctx.member.id) for t in found}
        return Outcome((Say("chat/local/tickets.txt", {"tickets": found, "links": links}),))


@dataclass(frozen=True)
class Lookup:
    raw: str

    async def run(self, ctx: Ctx) -> Outcome:
        found = await V.lookup(ctx.uow, ctx.tenant_id, self.raw, ctx.now, staff=ctx.member.id)
        if isinstance(found, V.Refusal):
            return Outcome((Say("chat/local/verify_refused.txt", {"r": found}),), to=St.IDLE)
        return Outcome((Say("chat/local/verify_confirm.txt", {"t": found}),), {"ticket": found.id})


@dataclass(frozen=True)
class Redeem:
    ticket_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        done = await V.verify(ctx.uow, ctx.tenant_id, self.ticket_id, ctx.now, staff=ctx.member.id,
                              actor=f"staff:{ctx.member.id}")
        if isinstance(done, V.Refusal):
            return Outcome((Say("chat/local/verify_refused.txt", {"r": done}),))
        return Outcome((Say("chat/local/verified.txt", {"v": done}),))


@dataclass(frozen=True)
class Bind:
    raw: str

    async def run(self, ctx: Ctx) -> Outcome:
        result = await staff_service.bind(ctx.uow, ctx.tenant_id, ctx.member.id, self.raw, ctx.now)
        if isinstance(result, staff_service.BindRefusal):
            return Outcome((Say("chat/local/bind_refused.txt", {"reason": result.reason}),))
        return Outcome((Say("chat/local/bound.txt", {"store": result}),))


def build(link: TicketLink) -> Flow:
    """The flow, with the maker of the tickets' H5 links (the composition root signs them)."""

    def mine(turn: Turn) -> Step:
        return Step(St.IDLE, command=MyTickets(link))

    def lookup(turn: Turn) -> Step:
        raw = next((a for a in turn.said.args if a), "")
        return Step(St.CONFIRM, command=Lookup(raw))

    def verify_help(turn: Turn) -> Step:
        return Step(St.IDLE, (Say("chat/local/verify_help.txt"),))

    def confirm(turn: Turn) -> Step:
        ticket = turn.num("ticket")
        if ticket is None:
            return Step(St.IDLE, (Say("chat/local/verify_help.txt"),))
        return Step(St.IDLE, command=Redeem(ticket))

    def bind(turn: Turn) -> Step:
        raw = next((a for a in turn.said.args if a), "")
        return Step(St.IDLE, command=Bind(raw))

    table: Mapping[tuple[str, str], StepFn] = {
        (St.IDLE, Do.MINE): mine,
        (St.IDLE, Do.VERIFY): lookup,
        (St.IDLE, Do.SCAN): lookup,
        (St.IDLE, Do.VERIFY_HELP): verify_help,
        (St.IDLE, Do.BIND): bind,
        (St.CONFIRM, Intent.YES): confirm,
    }
    return Flow(
        name=NAME,
        start=St.IDLE,
        table=table,
        keywords=(
            Keyword(Do.MINE, words=("我的券码", "券码", "取货码", "核销码", "MY_TICKETS")),
            Keyword(Do.VERIFY_HELP, words=("核销",)),
            Keyword(Do.SCAN, words=(SCAN_KEY,)),
            Keyword(Do.VERIFY, pattern=r"核销\s*(\S.{0,39})"),
            Keyword(Do.BIND, pattern=r"绑定核销员\s*(\S.{0,39})"),
        ),
        hints={St.CONFIRM: "chat/local/hints/verify_confirm.txt"},
    )
