"""Referral services: applications, bindings, commissions, the ledger, withdrawals.

Each takes the unit of work; the caller commits (and rolls back on a MallError). Every
money move is one ledger entry with a unique `ref` plus an atomic increment of the
distributor's balance columns, in one transaction: a repeated event, a retried job or a
duplicated gateway result finds its ref taken and changes nothing.

Console pages call the admin services here (approve/reject distributors and
withdrawals, adjust, settings, levels, product rates, reconcile).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from social_mall.errors import IllegalTransitionError, NotFoundError
from social_mall.events import DomainEvent
from social_mall.orders.service import load_order
from social_mall.referral import rules
from social_mall.referral.errors import (
    BelowMinimumError,
    DailyLimitError,
    NotDistributorError,
    OverBalanceError,
    ProgramClosedError,
    WithdrawalStateError,
)
from social_mall.referral.events import (
    CommissionEarned,
    DistributorDecided,
    MemberBound,
    PayoutDue,
    QrRequested,
    WithdrawalSettled,
)
from social_mall.referral.rules import (
    BindVerdict,
    Bucket,
    CommissionStatus,
    DistributorStatus,
    EntryKind,
    ProgramSettings,
    Rates,
    WithdrawalStatus,
)
from storage.referral_models import Binding, Commission, Distributor, LedgerEntry, ReferralLevel, Withdrawal
from storage.referral_repos import ReferralRepo
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

SHANGHAI = timezone(timedelta(hours=8))
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
WITHDRAWAL_COUNTS = (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED, WithdrawalStatus.PAID)
MAX_HOPS = 20      # merges followed from a merged member to the one that finally kept everything
D, CS, WS = DistributorStatus, CommissionStatus, WithdrawalStatus


def repo(uow: UnitOfWork) -> ReferralRepo:
    return ReferralRepo(uow.session)


# -- views ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DistributorView:
    id: int
    tenant_id: int
    member_id: int
    code: str
    status: str
    level_id: int | None
    frozen_fen: int
    available_fen: int

    @property
    def scene(self) -> str:
        return rules.scene_for(self.code)


@dataclass(frozen=True)
class CommissionView:
    id: int
    order_no: str
    level: int
    base_fen: int
    amount_fen: int
    reversed_fen: int
    status: str
    created_at: datetime
    distributor_id: int

    @property
    def net_fen(self) -> int:
        return self.amount_fen - self.reversed_fen


@dataclass(frozen=True)
class WithdrawalView:
    id: int
    tenant_id: int
    distributor_id: int
    member_id: int
    amount_fen: int
    status: str
    out_bill_no: str
    reason: str
    requested_at: datetime
    payout_state: str = ""                     # the gateway's last word on the payout
    payout_checked_at: datetime | None = None  # when it was asked (or answered)
    payout_merchant_id: int | None = None      # the merchant it was sent through (0: default; None: not yet)


@dataclass(frozen=True)
class Summary:
    distributor: DistributorView
    bound_members: int
    recent: tuple[CommissionView, ...]
    settings: ProgramSettings


@dataclass(frozen=True)
class Reconciliation:
    distributor_id: int
    stored_frozen_fen: int
    stored_available_fen: int
    ledger_frozen_fen: int
    ledger_available_fen: int
    by_kind: dict[str, int]

    @property
    def ok(self) -> bool:
        balanced = sum(self.by_kind.values()) == self.ledger_frozen_fen + self.ledger_available_fen
        return balanced and (self.stored_frozen_fen, self.stored_available_fen) == (
            self.ledger_frozen_fen, self.ledger_available_fen)


def distributor_view(d: Distributor) -> DistributorView:
    return DistributorView(d.id, d.tenant_id, d.member_id, d.code, d.status, d.level_id,
                           d.frozen_fen, d.available_fen)


def commission_view(c: Commission) -> CommissionView:
    return CommissionView(c.id, c.order_no, c.level, c.base_fen, c.amount_fen, c.reversed_fen, c.status,
                          c.created_at, c.distributor_id)


def withdrawal_view(w: Withdrawal) -> WithdrawalView:
    return WithdrawalView(w.id, w.tenant_id, w.distributor_id, w.member_id, w.amount_fen, w.status,
                          w.out_bill_no, w.reason, w.requested_at, w.payout_state, w.payout_checked_at,
                          w.payout_merchant_id)


# -- programme settings, levels, product rates ------------------------------------------------

SETTING_FIELDS = ("enabled", "auto_approve", "binding_mode", "lifetime_days", "freeze_days", "level1_bp",
                  "level2_bp", "min_withdraw_fen", "daily_limit_fen")


async def program(uow: UnitOfWork, tenant: int) -> ProgramSettings:
    row = await repo(uow).settings(tenant)
    if row is None:
        return ProgramSettings()
    values = {f: getattr(row, f) for f in SETTING_FIELDS}
    values["binding_mode"] = rules.BindingMode(values["binding_mode"])
    return ProgramSettings(**values)


async def save_program(uow: UnitOfWork, tenant: int, settings: ProgramSettings, *, actor: str,
                       now: datetime) -> ProgramSettings:
    """Store the tenant's programme (validated by ProgramSettings itself)."""
    before = await program(uow, tenant)
    values = {f: getattr(settings, f) for f in SETTING_FIELDS}
    values["binding_mode"] = str(settings.binding_mode)
    await repo(uow).save_settings(tenant, values, now)
    uow.audit(tenant, actor, "referral.settings", f"tenant:{tenant}",
              before={f: _plain(getattr(before, f)) for f in SETTING_FIELDS},
              after={f: _plain(v) for f, v in values.items()})
    return settings


def _plain(v: object) -> object:
    return str(v) if isinstance(v, rules.BindingMode) else v


async def add_level(uow: UnitOfWork, tenant: int, name: str, level1_bp: int, level2_bp: int, *,
                    actor: str, sort: int = 0) -> int:
    rules.check_rates(level1_bp, level2_bp)
    row = await repo(uow).add_level(ReferralLevel(tenant_id=tenant, name=name[:40], level1_bp=level1_bp,
                                                  level2_bp=level2_bp, sort=sort))
    uow.audit(tenant, actor, "referral.level.add", f"level:{row.id}",
              after={"name": name, "level1_bp": level1_bp, "level2_bp": level2_bp})
    return row.id


async def set_distributor_level(uow: UnitOfWork, tenant: int, distributor_id: int, level_id: int | None, *,
                                actor: str) -> None:
    r = repo(uow)
    if level_id is not None and await r.level(tenant, level_id) is None:
        raise NotFoundError("referral_level", level_id)
    d = await _distributor(uow, tenant, distributor_id)
    await r.set_distributor(tenant, distributor_id, level_id=level_id)
    uow.audit(tenant, actor, "referral.distributor.level", f"distributor:{distributor_id}",
              before={"level_id": d.level_id}, after={"level_id": level_id})


async def set_product_rate(uow: UnitOfWork, tenant: int, product_id: int, level1_bp: int, level2_bp: int, *,
                           actor: str) -> None:
    rules.check_rates(level1_bp, level2_bp)
    if await uow.catalog.product(tenant, product_id) is None:
        raise NotFoundError("product", product_id)
    await repo(uow).set_product_rate(tenant, product_id, level1_bp, level2_bp)
    uow.audit(tenant, actor, "referral.product_rate", f"product:{product_id}",
              after={"level1_bp": level1_bp, "level2_bp": level2_bp})


# -- distributors ----------------------------------------------------------------------------

async def _distributor(uow: UnitOfWork, tenant: int, distributor_id: int) -> Distributor:
    d = await repo(uow).distributor(tenant, distributor_id, fresh=True)
    if d is None:
        raise NotFoundError("distributor", distributor_id)
    return d


async def find_distributor(uow: UnitOfWork, tenant: int, member_id: int) -> DistributorView | None:
    d = await repo(uow).distributor_of(tenant, member_id, fresh=True)
    return distributor_view(d) if d else None


async def current_record(uow: UnitOfWork, tenant: int, d: Distributor | None) -> Distributor | None:
    """Where a distributor's code leads: itself, or, once its member was merged into
    another (status `merged`), the kept member's record (following later merges too), so
    QR codes and links already out in the world keep crediting the same person."""
    r = repo(uow)
    for _ in range(MAX_HOPS):
        if d is None or d.status != D.MERGED:
            return d
        into = await r.merged_into(tenant, d.member_id)
        if into is None:
            return d
        d = await r.distributor_of(tenant, into, fresh=True)
    return d


async def distributor_by_code(uow: UnitOfWork, tenant: int, code: str) -> DistributorView | None:
    d = await current_record(uow, tenant, await repo(uow).distributor_by_code(tenant, code.lower()))
    return distributor_view(d) if d else None


async def list_distributors(uow: UnitOfWork, tenant: int, status: str | None = None) -> tuple[DistributorView, ...]:
    return tuple(distributor_view(d) for d in await repo(uow).distributors(tenant, status))


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


async def apply(uow: UnitOfWork, tenant: int, member_id: int, *, now: datetime) -> DistributorView:
    """A member applies to become a distributor (approved at once with auto-approve).
    Applying again returns the standing application; a rejected one may re-apply."""
    settings = await program(uow, tenant)
    if not settings.enabled:
        raise ProgramClosedError()
    r = repo(uow)
    d = await r.distributor_of(tenant, member_id, fresh=True)
    if d is None:
        for _ in range(5):
            if await r.add_distributor(Distributor(tenant_id=tenant, member_id=member_id, code=new_code(),
                                                   status=D.PENDING, created_at=now)):
                break
            if await r.distributor_of(tenant, member_id) is not None:
                break  # a concurrent application won
        d = await r.distributor_of(tenant, member_id, fresh=True)
        assert d is not None
    elif d.status == D.REJECTED:
        await r.move_distributor(tenant, d.id, D.REJECTED, D.PENDING, decided_at=None)
    d = await _distributor(uow, tenant, d.id)
    if d.status == D.PENDING and settings.auto_approve:
        await approve_distributor(uow, tenant, d.id, actor="auto", now=now)
        d = await _distributor(uow, tenant, d.id)
    return distributor_view(d)


async def _decide(uow: UnitOfWork, tenant: int, distributor_id: int, src: DistributorStatus,
                  dst: DistributorStatus, *, actor: str, now: datetime) -> DistributorView:
    d = await _distributor(uow, tenant, distributor_id)
    if not await repo(uow).move_distributor(tenant, distributor_id, src, dst, decided_at=now):
        if d.status == dst:
            return distributor_view(d)
        raise _illegal(d, dst)
    uow.audit(tenant, actor, f"referral.distributor.{dst}", f"distributor:{distributor_id}",
              before={"status": src}, after={"status": dst})
    uow.emit(DistributorDecided(tenant_id=tenant, member_id=d.member_id, status=dst, code=d.code,
                                auto=actor == "auto"))
    return distributor_view(await _distributor(uow, tenant, distributor_id))


def _illegal(d: Distributor, dst: str) -> Exception:
    return IllegalTransitionError(f"distributor:{d.id}", d.status, dst)


async def approve_distributor(uow: UnitOfWork, tenant: int, distributor_id: int, *, actor: str,
                              now: datetime) -> DistributorView:
    d = await _distributor(uow, tenant, distributor_id)
    src = D.DISABLED if d.status == D.DISABLED else D.PENDING
    return await _decide(uow, tenant, distributor_id, src, D.APPROVED, actor=actor, now=now)


async def reject_distributor(uow: UnitOfWork, tenant: int, distributor_id: int, *, actor: str,
                             now: datetime) -> DistributorView:
    return await _decide(uow, tenant, distributor_id, D.PENDING, D.REJECTED, actor=actor, now=now)


async def disable_distributor(uow: UnitOfWork, tenant: int, distributor_id: int, *, actor: str,
                              now: datetime) -> DistributorView:
    return await _decide(uow, tenant, distributor_id, D.APPROVED, D.DISABLED, actor=actor, now=now)


async def set_qr_url(uow: UnitOfWork, tenant: int, distributor_id: int, url: str, *, account: int = 0,
                     now: datetime | None = None) -> None:
    """Keep what the distributor's QR encodes at official account `account` (0: the primary)."""
    if not account:
        await repo(uow).set_distributor(tenant, distributor_id, qr_url=url[:200])
        return
    await repo(uow).set_account_qr_url(tenant, distributor_id, account, url[:200], now or datetime.now(timezone.utc))


async def qr_url(uow: UnitOfWork, tenant: int, distributor_id: int, *, account: int = 0) -> str:
    """What the distributor's QR encodes at official account `account` (0: the primary; ""
    until made): a QR made with one account's token follows that account."""
    if not account:
        return (await _distributor(uow, tenant, distributor_id)).qr_url
    return await repo(uow).account_qr_url(tenant, distributor_id, account)


def request_qr(uow: UnitOfWork, d: DistributorView, *, explicit: bool = True, account: int = 0) -> None:
    """Send the distributor its QR; `account`: the official account it asked through (its
    openid there is sent the image, made at that account), 0 for the primary or none."""
    uow.emit(QrRequested(tenant_id=d.tenant_id, member_id=d.member_id, code=d.code, explicit=explicit,
                         account_id=account))


# -- bindings --------------------------------------------------------------------------------

async def upline(uow: UnitOfWork, tenant: int, member_id: int, now: datetime, depth: int = 50) -> list[int]:
    """The members above `member_id` through live bindings (referrer first)."""
    r, chain, seen = repo(uow), [], {member_id}
    current = member_id
    for _ in range(depth):
        b = await r.binding(tenant, current)
        if b is None or not rules.binding_live(rules.CurrentBinding(b.distributor_member_id, b.expires_at), now):
            break
        if b.distributor_member_id in seen:
            break  # defensive: never loop even on bad data
        chain.append(b.distributor_member_id)
        seen.add(b.distributor_member_id)
        current = b.distributor_member_id
    return chain


async def bind_member(uow: UnitOfWork, tenant: int, member_id: int, code: str, *, source: str,
                      now: datetime) -> BindVerdict | None:
    """Bind a member who came through distributor `code`'s QR or link, per the tenant's
    policy. None when the code is unknown or its distributor is not approved."""
    settings = await program(uow, tenant)
    r = repo(uow)
    d = await current_record(uow, tenant, await r.distributor_by_code(tenant, code.lower()))
    if not settings.enabled or d is None or d.status != D.APPROVED:
        return None
    b = await r.binding(tenant, member_id)
    current = rules.CurrentBinding(b.distributor_member_id, b.expires_at) if b else None
    verdict = rules.decide_binding(
        member_id=member_id, referrer_member_id=d.member_id,
        referrer_chain=await upline(uow, tenant, d.member_id, now), current=current,
        mode=settings.binding_mode, now=now)
    expires = rules.binding_expiry(now, settings.lifetime_days)
    if verdict == BindVerdict.BIND and b is None:
        if not await r.add_binding(Binding(tenant_id=tenant, member_id=member_id, distributor_member_id=d.member_id,
                                           source=source, bound_at=now, expires_at=expires)):
            return BindVerdict.KEEP  # bound concurrently by another arrival
    elif verdict in (BindVerdict.BIND, BindVerdict.REBIND, BindVerdict.SAME):
        assert b is not None
        if not await r.rebind(tenant, member_id, b.version, distributor_member_id=d.member_id, source=source,
                              bound_at=now if verdict != BindVerdict.SAME else b.bound_at, expires_at=expires):
            return BindVerdict.KEEP
    else:
        log.info("referral.bind.refused", extra={"tenant": tenant, "verdict": str(verdict)})
        return verdict
    if verdict != BindVerdict.SAME:
        uow.audit(tenant, "system", f"referral.{verdict}", f"member:{member_id}",
                  before={"distributor_member_id": b.distributor_member_id} if b else None,
                  after={"distributor_member_id": d.member_id, "source": source})
        uow.emit(MemberBound(tenant_id=tenant, member_id=member_id, distributor_member_id=d.member_id,
                             source=source))
    return verdict


async def referrer_of(uow: UnitOfWork, tenant: int, member_id: int, now: datetime) -> int | None:
    chain = await upline(uow, tenant, member_id, now, depth=1)
    return chain[0] if chain else None


# -- ledger ----------------------------------------------------------------------------------

async def _post(uow: UnitOfWork, tenant: int, distributor_id: int, kind: EntryKind, bucket: Bucket,
                amount_fen: int, ref: str, *, commission_id: int | None = None, withdrawal_id: int | None = None,
                order_no: str = "", note: str = "", actor: str = "system", now: datetime) -> bool:
    """One ledger entry and the matching balance change, once per `ref`."""
    entry = LedgerEntry(tenant_id=tenant, distributor_id=distributor_id, kind=kind, bucket=bucket,
                        amount_fen=amount_fen, ref=ref[:64], commission_id=commission_id,
                        withdrawal_id=withdrawal_id, order_no=order_no, note=note[:80], actor=actor[:64],
                        created_at=now)
    if not await repo(uow).append(entry):
        return False
    if bucket == Bucket.FROZEN:
        await repo(uow).add_funds(tenant, distributor_id, frozen=amount_fen)
    else:
        await repo(uow).add_funds(tenant, distributor_id, available=amount_fen)
    return True


async def adjust(uow: UnitOfWork, tenant: int, distributor_id: int, amount_fen: int, *, reason: str,
                 actor: str, ref: str, now: datetime) -> bool:
    """An admin's correction of the available balance (±), with a reason; once per ref."""
    if amount_fen == 0 or not reason.strip():
        raise ValueError("an adjustment needs an amount and a reason")
    await _distributor(uow, tenant, distributor_id)
    done = await _post(uow, tenant, distributor_id, EntryKind.ADJUSTMENT, Bucket.AVAILABLE, amount_fen,
                       f"adj:{ref}", note=reason, actor=actor, now=now)
    if done:
        uow.audit(tenant, actor, "referral.adjust", f"distributor:{distributor_id}",
                  after={"amount_fen": amount_fen, "reason": reason})
    return done


async def reconcile(uow: UnitOfWork, tenant: int, distributor_id: int) -> Reconciliation:
    """Prove the stored balance equals the ledger: commissions − reversals − withdrawals
    (+ returns, adjustments; unfreezes net to zero)."""
    d = await _distributor(uow, tenant, distributor_id)
    sums = await repo(uow).ledger_sums(tenant, distributor_id)
    by_kind: dict[str, int] = {}
    for (kind, _), s in sums.items():
        by_kind[kind] = by_kind.get(kind, 0) + s
    frozen = sum(s for (_, b), s in sums.items() if b == Bucket.FROZEN)
    available = sum(s for (_, b), s in sums.items() if b == Bucket.AVAILABLE)
    return Reconciliation(distributor_id, d.frozen_fen, d.available_fen, frozen, available, by_kind)


# -- commissions -----------------------------------------------------------------------------

async def _rates_of(uow: UnitOfWork, tenant: int, d: Distributor, settings: ProgramSettings) -> Rates:
    if d.level_id is not None:
        level = await repo(uow).level(tenant, d.level_id)
        if level is not None:
            return Rates(level.level1_bp, level.level2_bp)
    return Rates(settings.level1_bp, settings.level2_bp)


async def record_commissions(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime
                             ) -> tuple[CommissionView, ...]:
    """Frozen commissions for a paid order: the buyer's referrer (level 1) and theirs
    (level 2), per line on what was actually paid. Idempotent per (order, level).

    Correct in any delivery order: the order is read as it is now, so refunds whose
    `order.refunded` was handled before this (and found nothing to reverse) are reversed
    at once, and an order that completed already starts its commissions' freeze clock."""
    settings = await program(uow, tenant)
    r = repo(uow)
    if not settings.enabled or any(c.level in rules.LEVELS for c in await r.commissions_for_order(tenant, order_id)):
        return ()
    order = await load_order(uow, tenant, order_id)
    if order.paid_fen <= 0:
        return ()
    chain = await upline(uow, tenant, order.member_id, now, depth=len(rules.LEVELS))
    if not chain:
        return ()
    found = {s.id: p.id for s, p in await uow.catalog.skus_by_ids(tenant, [ln.sku_id for ln in order.lines])}
    paid = rules.paid_per_line([ln.line_fen for ln in order.lines], order.discount_fen)
    lines = [rules.LineBase(found.get(ln.sku_id, 0), p) for ln, p in zip(order.lines, paid, strict=True)]
    product_rates = {pr.product_id: Rates(pr.level1_bp, pr.level2_bp)
                     for pr in await r.product_rates(tenant, sorted({ln.product_id for ln in lines}))}
    made: list[CommissionView] = []
    for level, member in zip(rules.LEVELS, chain, strict=False):
        d = await r.distributor_of(tenant, member, fresh=True)
        if d is None or d.status != D.APPROVED or member == order.member_id:
            continue
        amount, base = rules.order_commission(lines, level, await _rates_of(uow, tenant, d, settings),
                                              product_rates)
        if amount <= 0:
            continue
        row = Commission(tenant_id=tenant, order_id=order.id, order_no=order.order_no,
                         buyer_member_id=order.member_id, distributor_id=d.id, level=level, base_fen=base,
                         paid_fen=order.paid_fen, amount_fen=amount, status=CS.FROZEN, created_at=now)
        if not await r.add_commission(row):
            continue  # a concurrent delivery recorded it
        await _post(uow, tenant, d.id, EntryKind.COMMISSION, Bucket.FROZEN, amount, f"com:{row.id}",
                    commission_id=row.id, order_no=order.order_no, now=now)
        reversed_now = await _follow_refunds(uow, tenant, row, order.refunded_fen, now=now)
        if amount > reversed_now:
            uow.emit(CommissionEarned(tenant_id=tenant, member_id=d.member_id, order_no=order.order_no,
                                      level=level, amount_fen=amount - reversed_now,
                                      freeze_days=settings.freeze_days))
        fresh = await r.commission(tenant, row.id)
        assert fresh is not None
        made.append(commission_view(fresh))
    placed = await uow.orders.get(tenant, order_id)
    if made and placed is not None and placed.completed_at is not None:
        await r.schedule_unfreeze(tenant, order_id, rules.unfreeze_at(placed.completed_at, settings.freeze_days))
    return tuple(made)


async def _reward_account(uow: UnitOfWork, tenant: int, member_id: int, *, now: datetime) -> Distributor:
    """The member's ledger record: their distributor record, made (as an application,
    approved when the programme approves automatically) when they have none."""
    r = repo(uow)
    d = await r.distributor_of(tenant, member_id, fresh=True)
    if d is not None:
        return d
    try:
        await apply(uow, tenant, member_id, now=now)
    except ProgramClosedError:
        for _ in range(5):
            if await r.add_distributor(Distributor(tenant_id=tenant, member_id=member_id, code=new_code(),
                                                   status=D.PENDING, created_at=now)):
                break
            if await r.distributor_of(tenant, member_id) is not None:
                break
    d = await r.distributor_of(tenant, member_id, fresh=True)
    assert d is not None
    return d


async def record_leader_reward(uow: UnitOfWork, tenant: int, *, team_id: int, leader_member_id: int,
                               order_ids: tuple[int, ...], fixed_fen: int, rate_bp: int, now: datetime
                               ) -> tuple[CommissionView, ...]:
    """A group-buy leader's reward (团长奖励) for a successful team, in the referral ledger
    like a commission: one frozen entry per paid order of the team (level 0; its part of a
    fixed reward, or the rate of what it paid for its goods), unique per (order, level), so
    a repeated or concurrent `groupbuy.team_succeeded` credits the team once. Each part
    unfreezes `freeze_days` after its order completes and is reversed in proportion to its
    order's refunds (`reverse_for_refund`), exactly as commissions are. The leader's record
    is made when they have none. Audited."""
    r = repo(uow)
    settings = await program(uow, tenant)
    orders = [await load_order(uow, tenant, oid) for oid in order_ids]
    bases = [sum(rules.paid_per_line([ln.line_fen for ln in o.lines], o.discount_fen)) if o.paid_fen > 0 else 0
             for o in orders]
    parts = rules.leader_reward_split(bases, fixed_fen=fixed_fen, rate_bp=rate_bp)
    if sum(parts) <= 0:
        return ()
    d = await _reward_account(uow, tenant, leader_member_id, now=now)
    made: list[CommissionView] = []
    for order, base, amount in zip(orders, bases, parts, strict=True):
        if amount <= 0:
            continue
        row = Commission(tenant_id=tenant, order_id=order.id, order_no=order.order_no, buyer_member_id=order.member_id,
                         distributor_id=d.id, level=rules.LEADER_LEVEL, base_fen=base, paid_fen=order.paid_fen,
                         amount_fen=amount, status=CS.FROZEN, created_at=now)
        if not await r.add_commission(row):
            continue  # credited already (a repeated delivery)
        await _post(uow, tenant, d.id, EntryKind.COMMISSION, Bucket.FROZEN, amount, f"lead:{row.id}",
                    commission_id=row.id, order_no=order.order_no, note=f"leader team:{team_id}", now=now)
        await _follow_refunds(uow, tenant, row, order.refunded_fen, now=now)
        placed = await uow.orders.get(tenant, order.id)
        if placed is not None and placed.completed_at is not None:
            await r.schedule_unfreeze(tenant, order.id, rules.unfreeze_at(placed.completed_at, settings.freeze_days))
        fresh = await r.commission(tenant, row.id)
        assert fresh is not None
        made.append(commission_view(fresh))
    if made:
        total = sum(c.amount_fen for c in made)
        uow.audit(tenant, "system", "referral.leader_reward", f"groupbuy_team:{team_id}",
                  after={"distributor_id": d.id, "member_id": leader_member_id, "amount_fen": total,
                         "fixed_fen": fixed_fen, "rate_bp": rate_bp,
                         "orders": {c.order_no: c.amount_fen for c in made}})
        uow.emit(CommissionEarned(tenant_id=tenant, member_id=d.member_id, order_no=made[0].order_no,
                                  level=rules.LEADER_LEVEL, amount_fen=total, freeze_days=settings.freeze_days))
    return tuple(made)


async def schedule_unfreeze(uow: UnitOfWork, tenant: int, order_id: int, *, completed_at: datetime) -> int:
    """The order completed: its commissions unfreeze after the freeze period."""
    settings = await program(uow, tenant)
    return await repo(uow).schedule_unfreeze(tenant, order_id, rules.unfreeze_at(completed_at, settings.freeze_days))


class _Conflict(Exception):
    """A commission changed under us (an unfreeze raced a reversal): try again."""


async def reverse_for_refund(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime) -> int:
    """Bring the order's commissions in line with what has been refunded of it so far;
    returns the total reversed now. `order.refunded` only says "look again": the amount
    comes from the order, so deliveries in any order, repeated or merged, reverse each
    refunded fen once (a commission remembers the refunded total it has followed).

    Still frozen: taken off the frozen balance. Already unfrozen: a negative entry on the
    available balance (which may go below zero and is recovered from later earnings)."""
    order = await load_order(uow, tenant, order_id)
    total = 0
    for c in await repo(uow).commissions_for_order(tenant, order_id):
        total += await _follow_refunds(uow, tenant, c, order.refunded_fen, now=now)
    return total


async def _follow_refunds(uow: UnitOfWork, tenant: int, c: Commission, refunded_fen: int, *, now: datetime) -> int:
    """Reverse what `refunded_fen` (the order's refunded total) takes off this commission
    beyond what was reversed already; one conditional update, one ledger entry."""
    r = repo(uow)
    refunded = min(max(refunded_fen, 0), c.paid_fen)
    if refunded <= c.refunded_fen or c.status == CS.REVERSED:
        return 0
    full = refunded >= c.paid_fen
    due = rules.reversal_due(c.amount_fen, c.reversed_fen, c.paid_fen, refunded, full)
    new_reversed = c.reversed_fen + due
    new_status = CS.REVERSED if new_reversed >= c.amount_fen else c.status
    bucket = Bucket.FROZEN if c.status == CS.FROZEN else Bucket.AVAILABLE
    if not await r.reverse(c.id, status=c.status, reversed_fen=c.reversed_fen, refunded_fen=c.refunded_fen,
                           new_reversed=new_reversed, new_refunded=refunded, new_status=new_status):
        raise _Conflict(f"commission {c.id} changed")
    if due > 0:
        # the record it is on now: a member merge may have moved it since it was read
        fresh = await r.commission(tenant, c.id)
        assert fresh is not None
        await _post(uow, tenant, fresh.distributor_id, EntryKind.REVERSAL, bucket, -due, f"rev:{c.id}:{refunded}",
                    commission_id=c.id, order_no=c.order_no, note="full" if full else "partial", now=now)
    return due


async def unfreeze_one(uow: UnitOfWork, c: Commission, *, now: datetime) -> bool:
    """Frozen → available for what is left after reversals (a pair of entries)."""
    left = c.amount_fen - c.reversed_fen
    if not await repo(uow).unfreeze(c.id, c.reversed_fen, now):
        return False
    if left > 0:
        await _post(uow, c.tenant_id, c.distributor_id, EntryKind.UNFREEZE, Bucket.FROZEN, -left, f"unf:{c.id}:f",
                    commission_id=c.id, order_no=c.order_no, now=now)
        await _post(uow, c.tenant_id, c.distributor_id, EntryKind.UNFREEZE, Bucket.AVAILABLE, left,
                    f"unf:{c.id}:a", commission_id=c.id, order_no=c.order_no, now=now)
    return True


async def unfreeze_due(uows: UowFactory, *, now: datetime, batch: int = 200) -> int:
    """The sweeper: unfreeze every commission whose freeze period has passed. Safe with
    several workers (conditional moves; SKIP LOCKED on PostgreSQL)."""
    done = 0
    async with uows() as uow:
        due = await repo(uow).due_commissions(now, batch)
        for c in due:
            if await unfreeze_one(uow, c, now=now):
                done += 1
        await uow.commit()
    return done


async def recent_commissions(uow: UnitOfWork, tenant: int, distributor_id: int, limit: int = 5
                             ) -> tuple[CommissionView, ...]:
    return tuple(commission_view(c) for c in await repo(uow).recent_commissions(tenant, distributor_id, limit))


async def commission_page(uow: UnitOfWork, tenant: int, member_id: int, *, page: int, per_page: int
                          ) -> tuple[tuple[CommissionView, ...], int]:
    """The member's commissions ledger (newest first) and its length; NotDistributorError
    unless the member is an approved distributor."""
    d = await repo(uow).distributor_of(tenant, member_id)
    if d is None or d.status != D.APPROVED:
        raise NotDistributorError(d.status if d else "")
    rows, total = await repo(uow).commissions_page(tenant, d.id, (page - 1) * per_page, per_page)
    return tuple(commission_view(c) for c in rows), total


async def commissions_for_order(uow: UnitOfWork, tenant: int, order_id: int) -> tuple[CommissionView, ...]:
    return tuple(commission_view(c) for c in await repo(uow).commissions_for_order(tenant, order_id))


async def summary(uow: UnitOfWork, tenant: int, member_id: int, *, now: datetime) -> Summary:
    d = await repo(uow).distributor_of(tenant, member_id, fresh=True)
    if d is None or d.status != D.APPROVED:
        raise NotDistributorError(d.status if d else "")
    return Summary(distributor_view(d), await repo(uow).bound_count(tenant, member_id, now),
                   await recent_commissions(uow, tenant, d.id), await program(uow, tenant))


# -- withdrawals -----------------------------------------------------------------------------

def day_start(now: datetime) -> datetime:
    """Midnight (Asia/Shanghai) of `now`'s day, in UTC: the daily limit's window."""
    local = now.astimezone(SHANGHAI)
    return datetime.combine(local.date(), time(0), SHANGHAI).astimezone(timezone.utc)


def new_bill_no(now: datetime) -> str:
    return f"RW{now.astimezone(SHANGHAI):%y%m%d%H%M%S}{secrets.randbelow(10**12):012d}"


async def request_withdrawal(uow: UnitOfWork, tenant: int, member_id: int, amount_fen: int, *,
                             now: datetime) -> WithdrawalView:
    """Hold `amount_fen` of the available balance for a payout awaiting approval.

    The hold is one conditional UPDATE (`available_fen >= amount`), so concurrent
    requests can never overdraw; the daily limit is checked after it (the row lock
    orders concurrent requests, so each sees the others' withdrawals)."""
    settings = await program(uow, tenant)
    r = repo(uow)
    d = await r.distributor_of(tenant, member_id, fresh=True)
    if d is None or d.status != D.APPROVED:
        raise NotDistributorError(d.status if d else "")
    if amount_fen < settings.min_withdraw_fen:
        raise BelowMinimumError(amount_fen, settings.min_withdraw_fen)
    if not await r.take_available(tenant, d.id, amount_fen):
        d = await _distributor(uow, tenant, d.id)
        raise OverBalanceError(amount_fen, max(d.available_fen, 0))
    used = await r.withdrawn_since(tenant, d.id, day_start(now), WITHDRAWAL_COUNTS)
    if used + amount_fen > settings.daily_limit_fen:
        await r.add_funds(tenant, d.id, available=amount_fen)  # give the hold back, whatever the caller does
        raise DailyLimitError(amount_fen, settings.daily_limit_fen, used)
    w = await r.add_withdrawal(Withdrawal(tenant_id=tenant, distributor_id=d.id, member_id=member_id,
                                          amount_fen=amount_fen, status=WS.REQUESTED, out_bill_no=new_bill_no(now),
                                          requested_at=now))
    # the balance already moved with the hold: record the entry without moving it again
    await r.append(LedgerEntry(tenant_id=tenant, distributor_id=d.id, kind=EntryKind.WITHDRAWAL,
                               bucket=Bucket.AVAILABLE, amount_fen=-amount_fen, ref=f"wd:{w.id}", withdrawal_id=w.id,
                               actor=f"member:{member_id}", created_at=now))
    uow.audit(tenant, f"member:{member_id}", "referral.withdrawal.request", f"withdrawal:{w.id}",
              after={"amount_fen": amount_fen, "out_bill_no": w.out_bill_no})
    return withdrawal_view(w)


async def _withdrawal(uow: UnitOfWork, tenant: int, withdrawal_id: int) -> Withdrawal:
    w = await repo(uow).withdrawal(tenant, withdrawal_id)
    if w is None:
        raise NotFoundError("withdrawal", withdrawal_id)
    return w


async def _move(uow: UnitOfWork, w: Withdrawal, src: WithdrawalStatus, dst: WithdrawalStatus, *, actor: str,
                now: datetime, reason: str = "", **values: object) -> bool:
    assert rules.can_move(rules.WITHDRAWAL_TRANSITIONS, src, dst)
    if not await repo(uow).move_withdrawal(w.tenant_id, w.id, src, dst, reason=reason[:80], **values):
        return False
    # refresh `w` (the caller's object too): a member merge may have moved it to the kept
    # member's record since it was read, and the funds return there
    await repo(uow).withdrawal(w.tenant_id, w.id)
    if (src, dst) in rules.RETURNS_FUNDS:
        await _post(uow, w.tenant_id, w.distributor_id, EntryKind.WITHDRAWAL_RETURN, Bucket.AVAILABLE, w.amount_fen,
                    f"wret:{w.id}", withdrawal_id=w.id, note=reason or str(dst), actor=actor, now=now)
    uow.audit(w.tenant_id, actor, f"referral.withdrawal.{dst}", f"withdrawal:{w.id}",
              before={"status": src}, after={"status": dst, "amount_fen": w.amount_fen, "reason": reason})
    return True


async def approve_withdrawal(uow: UnitOfWork, tenant: int, withdrawal_id: int, *, actor: str,
                             now: datetime) -> WithdrawalView:
    """Approve: the payout goes out through the outbox (gateway transfer). Idempotent."""
    w = await _withdrawal(uow, tenant, withdrawal_id)
    if await _move(uow, w, WS.REQUESTED, WS.APPROVED, actor=actor, now=now, decided_at=now):
        uow.emit(PayoutDue(tenant_id=tenant, withdrawal_id=w.id, member_id=w.member_id, out_bill_no=w.out_bill_no,
                           amount_fen=w.amount_fen))
    elif w.status not in (WS.APPROVED, WS.PAID):
        raise WithdrawalStateError(w.id, w.status, WS.APPROVED)
    return withdrawal_view(await _withdrawal(uow, tenant, withdrawal_id))


async def reject_withdrawal(uow: UnitOfWork, tenant: int, withdrawal_id: int, *, actor: str, now: datetime,
                            reason: str = "") -> WithdrawalView:
    """Reject: the held amount returns to the available balance. Idempotent."""
    w = await _withdrawal(uow, tenant, withdrawal_id)
    if await _move(uow, w, WS.REQUESTED, WS.REJECTED, actor=actor, now=now, reason=reason, decided_at=now):
        _settled(uow, w, WS.REJECTED, reason)
    elif w.status != WS.REJECTED:
        raise WithdrawalStateError(w.id, w.status, WS.REJECTED)
    return withdrawal_view(await _withdrawal(uow, tenant, withdrawal_id))


def _settled(uow: UnitOfWork, w: Withdrawal, status: WithdrawalStatus, reason: str) -> None:
    event: DomainEvent = WithdrawalSettled(tenant_id=w.tenant_id, withdrawal_id=w.id, member_id=w.member_id,
                                           amount_fen=w.amount_fen, status=status, reason=reason)
    uow.emit(event)


async def apply_payout(uow: UnitOfWork, out_bill_no: str, *, status: str, transfer_id: str = "", reason: str = "",
                       now: datetime) -> bool:
    """Apply the gateway's answer for a payout exactly once (a duplicate finds the
    withdrawal already moved and changes nothing). SUCCESS → paid; FAIL → failed and the
    funds return; anything else (ACCEPTED, PROCESSING) leaves it approved."""
    w = await repo(uow).withdrawal_by_bill(out_bill_no)
    if w is None:
        raise NotFoundError("withdrawal", out_bill_no)
    await repo(uow).note_payout(w.tenant_id, w.id, status, now)  # shown on the console (approved only)
    dst = rules.payout_outcome(status)
    if dst is None:
        return False
    moved = await _move(uow, w, WS.APPROVED, dst, actor="gateway", now=now, reason=reason or status,
                        settled_at=now, transfer_id=transfer_id[:64])
    if moved:
        _settled(uow, w, dst, reason)
    return moved


async def payouts_in_flight(uow: UnitOfWork, *, limit: int = 100) -> list[tuple[int, str]]:
    """(tenant, out_bill_no) of approved withdrawals whose payout isn't final here yet: the
    payout sweeper asks the gateway about each, the longest unchecked first."""
    return await repo(uow).payouts_in_flight(limit)


async def check_payout(uow: UnitOfWork, tenant: int, out_bill_no: str, *, state: str, amount_fen: int | None,
                       transfer_id: str = "", reason: str = "", now: datetime) -> bool:
    """Apply what the gateway says about a payout now (the sweeper's query), exactly once:
    SUCCESS → paid; FAIL / CANCELLED → failed and the hold returns to the available balance
    (a ledger entry, audited); anything else is noted with the time and asked again later.
    A bill for another amount than the withdrawal's is never applied (noted, audited)."""
    w = await repo(uow).withdrawal_by_bill(out_bill_no)
    if w is None or w.tenant_id != tenant:
        raise NotFoundError("withdrawal", out_bill_no)
    if amount_fen is not None and amount_fen != w.amount_fen:
        if w.status == WS.APPROVED:
            await repo(uow).note_payout(w.tenant_id, w.id, "AMOUNT_MISMATCH", now)
            log.error("referral.payout.amount_mismatch", extra={"tenant": tenant, "withdrawal_id": w.id})
            uow.audit(tenant, "gateway", "referral.withdrawal.payout_mismatch", f"withdrawal:{w.id}",
                      after={"state": state, "amount_fen": w.amount_fen, "gateway_amount_fen": amount_fen})
        return False
    return await apply_payout(uow, out_bill_no, status=state, transfer_id=transfer_id, reason=reason, now=now)


async def list_withdrawals(uow: UnitOfWork, tenant: int, status: str | None = None,
                           distributor_id: int | None = None) -> tuple[WithdrawalView, ...]:
    return tuple(withdrawal_view(w) for w in await repo(uow).withdrawals(tenant, status, distributor_id))


async def get_withdrawal(uow: UnitOfWork, tenant: int, withdrawal_id: int) -> WithdrawalView:
    return withdrawal_view(await _withdrawal(uow, tenant, withdrawal_id))


async def choose_payout_merchant(uow: UnitOfWork, tenant: int, withdrawal_id: int, merchant_id: int) -> int:
    """The merchant (0: the tenant's default) the withdrawal's payout goes through: the
    first one chosen, so a retried delivery sends the same out_bill_no to the same merchant
    and the sweeper asks that one."""
    return await repo(uow).choose_payout_merchant(tenant, withdrawal_id, merchant_id)


async def withdrawal_by_bill(uow: UnitOfWork, tenant: int, out_bill_no: str) -> WithdrawalView | None:
    w = await repo(uow).withdrawal_by_bill(out_bill_no)
    return withdrawal_view(w) if w is not None and w.tenant_id == tenant else None


# -- share cards -----------------------------------------------------------------------------

async def share_rates(uow: UnitOfWork, tenant: int, member_id: int, product_ids: list[int]) -> dict[int, int]:
    """product id → the level-1 rate (bp) this distributor earns on it: what a share card
    may promise ("直推佣金约 ¥x", floor of the cheapest SKU)."""
    r = repo(uow)
    d = await r.distributor_of(tenant, member_id, fresh=True)
    if d is None or d.status != D.APPROVED:
        raise NotDistributorError(d.status if d else "")
    own = await _rates_of(uow, tenant, d, await program(uow, tenant))
    special = {pr.product_id: pr.level1_bp for pr in await r.product_rates(tenant, product_ids)}
    return {pid: special.get(pid, own.level1_bp) for pid in product_ids}
