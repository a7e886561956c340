"""The loyalty module's SQL (levels, points, coupons, promotions, order discounts, merges).
Constructed from a unit of work's session:

    repo = LoyaltyRepo(uow.session)

Every state change is one conditional UPDATE whose rowcount says who won; the points
balance and coupon counters move by atomic increments, never read-modify-write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.loyalty_models import (
    BindCode,
    BirthdayGift,
    Coupon,
    CouponTemplate,
    FlashPrice,
    FullReductionTier,
    LoyaltyAccount,
    LoyaltyLevel,
    LoyaltySettings,
    MemberMerge,
    OrderDiscount,
    OrderLoyalty,
    PointsEntry,
)
from storage.models import Address, CartItem, Member, MemberIdentity, MemberTagLink, Order, Sku

NO_SYNC = {"synchronize_session": False}


class _Refused(Exception):
    """Rolls a savepoint back (e.g. a ledger row whose balance update was refused)."""


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class LoyaltyRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: Any) -> list[Any]:
        return list((await self.session.scalars(stmt)).all())

    async def _update(self, stmt: Any) -> int:
        return _rowcount(await self.session.execute(stmt.execution_options(**NO_SYNC)))

    async def _insert_once(self, row: Any) -> bool:
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    # -- settings and levels --------------------------------------------------------------
    async def settings(self, tenant: int) -> LoyaltySettings | None:
        return await self.session.scalar(select(LoyaltySettings).where(LoyaltySettings.tenant_id == tenant))

    async def put_settings(self, tenant: int, values: dict[str, int | str]) -> None:
        if await self.settings(tenant) is None:
            await self._insert_once(LoyaltySettings(tenant_id=tenant))
        await self._update(update(LoyaltySettings).where(LoyaltySettings.tenant_id == tenant).values(**values))

    async def levels(self, tenant: int) -> list[LoyaltyLevel]:
        return await self._all(select(LoyaltyLevel).where(LoyaltyLevel.tenant_id == tenant)
                               .order_by(LoyaltyLevel.min_growth))

    async def replace_levels(self, tenant: int, levels: Sequence[LoyaltyLevel]) -> None:
        await self.session.execute(delete(LoyaltyLevel).where(LoyaltyLevel.tenant_id == tenant))
        self.session.add_all(levels)
        await self.session.flush()

    # -- accounts and the points ledger ------------------------------------------------------
    async def account(self, tenant: int, member: int) -> LoyaltyAccount | None:
        stmt = select(LoyaltyAccount).where(LoyaltyAccount.tenant_id == tenant, LoyaltyAccount.member_id == member)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def ensure_account(self, tenant: int, member: int, level: str) -> LoyaltyAccount:
        found = await self.account(tenant, member)
        if found is None:
            await self._insert_once(LoyaltyAccount(tenant_id=tenant, member_id=member, level=level))
            found = await self.account(tenant, member)
        assert found is not None
        return found

    async def post_points(
        self, tenant: int, member: int, delta: int, kind: str, ref: str, *, note: str = "",
        expires_at: datetime | None = None, lot_id: int | None = None, now: datetime,
        may_owe: bool = False,
    ) -> str:
        """Append one ledger row and move the balance with it: "ok", "duplicate" (ref seen
        before) or "insufficient" (the balance would go below zero; nothing written).
        With `may_owe` (a refund's clawback) the balance may go below zero: the member owes
        the difference, and every other debit is refused until it is repaid."""
        try:
            async with self.session.begin_nested():
                self.session.add(PointsEntry(tenant_id=tenant, member_id=member, delta=delta, kind=kind,
                                             ref=ref[:64], note=note[:80], expires_at=expires_at, lot_id=lot_id,
                                             created_at=now))
                try:
                    await self.session.flush()
                except IntegrityError:
                    raise _Refused("duplicate") from None
                stmt = update(LoyaltyAccount).where(LoyaltyAccount.tenant_id == tenant,
                                                    LoyaltyAccount.member_id == member)
                if not may_owe:
                    stmt = stmt.where(LoyaltyAccount.points + delta >= 0)
                moved = await self._update(stmt.values(points=LoyaltyAccount.points + delta))
                if moved != 1:
                    raise _Refused("insufficient")
        except _Refused as exc:
            return str(exc)
        return "ok"

    async def has_ref(self, tenant: int, ref: str) -> bool:
        stmt = select(PointsEntry.id).where(PointsEntry.tenant_id == tenant, PointsEntry.ref == ref)
        return await self.session.scalar(stmt) is not None

    async def ledger(self, tenant: int, member: int) -> list[PointsEntry]:
        return await self._all(select(PointsEntry).where(PointsEntry.tenant_id == tenant,
                                                         PointsEntry.member_id == member).order_by(PointsEntry.id))

    async def ledger_sum(self, tenant: int, member: int) -> int:
        stmt = select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
            PointsEntry.tenant_id == tenant, PointsEntry.member_id == member)
        return int(await self.session.scalar(stmt) or 0)

    async def with_due_points(self, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
        """(tenant, member) holding lots past expiry (possibly already expired: the caller checks)."""
        expired = select(PointsEntry.lot_id).where(PointsEntry.kind == "expire", PointsEntry.lot_id.is_not(None))
        stmt = (select(PointsEntry.tenant_id, PointsEntry.member_id)
                .where(PointsEntry.delta > 0, PointsEntry.expires_at <= now, PointsEntry.id.not_in(expired))
                .distinct().limit(limit))
        return [(int(t), int(m)) for t, m in (await self.session.execute(stmt)).all()]

    async def add_growth(self, tenant: int, member: int, delta: int) -> None:
        new = LoyaltyAccount.growth + delta
        await self._update(update(LoyaltyAccount)
                           .where(LoyaltyAccount.tenant_id == tenant, LoyaltyAccount.member_id == member)
                           .values(growth=case((new < 0, 0), else_=new)))

    async def set_level(self, tenant: int, member: int, old: str, new: str) -> bool:
        return await self._update(
            update(LoyaltyAccount)
            .where(LoyaltyAccount.tenant_id == tenant, LoyaltyAccount.member_id == member,
                   LoyaltyAccount.level == old)
            .values(level=new)) == 1

    async def sign_in(self, tenant: int, member: int, last: str, today: str, streak: int) -> bool:
        return await self._update(
            update(LoyaltyAccount)
            .where(LoyaltyAccount.tenant_id == tenant, LoyaltyAccount.member_id == member,
                   LoyaltyAccount.last_signin == last)
            .values(last_signin=today, streak=streak)) == 1

    # -- coupons --------------------------------------------------------------------------------
    async def add_template(self, row: CouponTemplate) -> CouponTemplate:
        self.session.add(row)
        await self.session.flush()
        return row

    async def template(self, tenant: int, template_id: int) -> CouponTemplate | None:
        stmt = select(CouponTemplate).where(CouponTemplate.tenant_id == tenant, CouponTemplate.id == template_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def template_named(self, tenant: int, name: str) -> CouponTemplate | None:
        """The tenant's first template with this exact name (the demo finds its own by it)."""
        stmt = (select(CouponTemplate).where(CouponTemplate.tenant_id == tenant, CouponTemplate.name == name)
                .order_by(CouponTemplate.id).limit(1))
        return await self.session.scalar(stmt)

    async def claimable(self, tenant: int, now: datetime) -> list[CouponTemplate]:
        stmt = (select(CouponTemplate)
                .where(CouponTemplate.tenant_id == tenant, CouponTemplate.active.is_(True),
                       CouponTemplate.claimable.is_(True),
                       or_(CouponTemplate.valid_until.is_(None), CouponTemplate.valid_until > now))
                .order_by(CouponTemplate.id))
        return await self._all(stmt.execution_options(populate_existing=True))

    async def issuable(self, tenant: int, now: datetime) -> list[CouponTemplate]:
        """Active templates not past their end: what an administrator may give a member."""
        stmt = (select(CouponTemplate)
                .where(CouponTemplate.tenant_id == tenant, CouponTemplate.active.is_(True),
                       or_(CouponTemplate.valid_until.is_(None), CouponTemplate.valid_until > now))
                .order_by(CouponTemplate.id))
        return await self._all(stmt.execution_options(populate_existing=True))

    async def issued_on(self, tenant: int, event: str) -> list[CouponTemplate]:
        stmt = select(CouponTemplate).where(CouponTemplate.tenant_id == tenant, CouponTemplate.active.is_(True),
                                            CouponTemplate.issue_on == event).order_by(CouponTemplate.id)
        return await self._all(stmt)

    async def tenants_issuing_on(self, event: str) -> list[int]:
        """Tenants with an active template issued on `event` (e.g. the birthday job's)."""
        stmt = (select(CouponTemplate.tenant_id)
                .where(CouponTemplate.active.is_(True), CouponTemplate.issue_on == event)
                .distinct().order_by(CouponTemplate.tenant_id))
        return [int(t) for t in (await self.session.scalars(stmt)).all()]

    async def take_one(self, tenant: int, template_id: int) -> bool:
        """Count one more claim, unless the total quantity is reached (0: unlimited)."""
        return await self._update(
            update(CouponTemplate)
            .where(CouponTemplate.tenant_id == tenant, CouponTemplate.id == template_id,
                   CouponTemplate.active.is_(True),
                   or_(CouponTemplate.total_qty == 0, CouponTemplate.claimed_qty < CouponTemplate.total_qty))
            .values(claimed_qty=CouponTemplate.claimed_qty + 1)) == 1

    async def held(self, tenant: int, template_id: int, member: int) -> int:
        stmt = select(func.count()).select_from(Coupon).where(
            Coupon.tenant_id == tenant, Coupon.template_id == template_id, Coupon.member_id == member)
        return int(await self.session.scalar(stmt) or 0)

    async def add_coupon(self, row: Coupon) -> bool:
        """False when the (template, member, seq) slot is taken: a concurrent claim won it."""
        return await self._insert_once(row)

    async def coupons(self, tenant: int, member: int, statuses: Sequence[str] | None = None
                      ) -> list[tuple[Coupon, CouponTemplate]]:
        stmt = (select(Coupon, CouponTemplate).join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
                .where(Coupon.tenant_id == tenant, Coupon.member_id == member))
        if statuses is not None:
            stmt = stmt.where(Coupon.status.in_(list(statuses)))
        stmt = stmt.order_by(Coupon.valid_until.is_(None), Coupon.valid_until, Coupon.id)
        rows = (await self.session.execute(stmt.execution_options(populate_existing=True))).all()
        return [(c, t) for c, t in rows]

    async def coupon(self, tenant: int, coupon_id: int) -> tuple[Coupon, CouponTemplate] | None:
        stmt = (select(Coupon, CouponTemplate).join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
                .where(Coupon.tenant_id == tenant, Coupon.id == coupon_id))
        row = (await self.session.execute(stmt.execution_options(populate_existing=True))).first()
        return (row[0], row[1]) if row else None

    async def move_coupon(self, tenant: int, coupon_id: int, src: str, dst: str, **values: Any) -> bool:
        return await self._update(
            update(Coupon).where(Coupon.tenant_id == tenant, Coupon.id == coupon_id, Coupon.status == src)
            .values(status=dst, **values)) == 1

    # -- promotions ------------------------------------------------------------------------------
    async def flash_prices_of(self, tenant: int, sku_id: int) -> list[FlashPrice]:
        stmt = (select(FlashPrice).where(FlashPrice.tenant_id == tenant, FlashPrice.sku_id == sku_id)
                .order_by(FlashPrice.id))
        return await self._all(stmt)

    async def set_flash_window(self, tenant: int, flash_id: int, starts_at: datetime, ends_at: datetime) -> bool:
        return await self._update(
            update(FlashPrice).where(FlashPrice.tenant_id == tenant, FlashPrice.id == flash_id)
            .values(starts_at=starts_at, ends_at=ends_at)) == 1

    async def active_flash(self, tenant: int, sku_ids: Sequence[int], now: datetime
                           ) -> list[tuple[int, int, int, datetime]]:
        """(product id, sku id, flash price, ends at) of the flash prices live at `now` that
        sell below the SKU's own price: per SKU the lowest (ties: the one lasting longest)."""
        return self._lowest(await self._flash_rows(tenant, now, Sku.id.in_(list(sku_ids))))

    async def flash_schedule(self, tenant: int, now: datetime) -> list[tuple[int, int, int, datetime, datetime]]:
        """(product id, sku id, flash price, starts at, ends at) of every flash price of
        an on-shelf SKU that is not over at `now` and sells below the SKU's own price."""
        stmt = (select(Sku.product_id, FlashPrice.sku_id, FlashPrice.price_fen, FlashPrice.starts_at,
                       FlashPrice.ends_at)
                .join(Sku, Sku.id == FlashPrice.sku_id)
                .where(FlashPrice.tenant_id == tenant, Sku.tenant_id == tenant, FlashPrice.ends_at > now,
                       FlashPrice.price_fen < Sku.price_fen, Sku.on_shelf.is_(True)))
        return [(int(p), int(k), int(f), b, e) for p, k, f, b, e in (await self.session.execute(stmt)).all()]

    async def _flash_rows(self, tenant: int, now: datetime, *where: Any) -> list[tuple[int, int, int, datetime]]:
        stmt = (select(Sku.product_id, FlashPrice.sku_id, FlashPrice.price_fen, FlashPrice.ends_at)
                .join(Sku, Sku.id == FlashPrice.sku_id)
                .where(FlashPrice.tenant_id == tenant, Sku.tenant_id == tenant, FlashPrice.starts_at <= now,
                       FlashPrice.ends_at > now, FlashPrice.price_fen < Sku.price_fen, *where))
        return [(int(p), int(s), int(f), e) for p, s, f, e in (await self.session.execute(stmt)).all()]

    @staticmethod
    def _lowest(rows: list[tuple[int, int, int, datetime]]) -> list[tuple[int, int, int, datetime]]:
        best: dict[int, tuple[int, int, int, datetime]] = {}
        for row in rows:
            held = best.get(row[1])
            if held is None or (row[2], -row[3].timestamp()) < (held[2], -held[3].timestamp()):
                best[row[1]] = row
        return sorted(best.values(), key=lambda r: r[1])

    async def full_reductions(self, tenant: int, now: datetime) -> list[FullReductionTier]:
        stmt = select(FullReductionTier).where(
            FullReductionTier.tenant_id == tenant,
            or_(FullReductionTier.starts_at.is_(None), FullReductionTier.starts_at <= now),
            or_(FullReductionTier.ends_at.is_(None), FullReductionTier.ends_at > now))
        return await self._all(stmt)

    async def add(self, row: Any) -> Any:
        self.session.add(row)
        await self.session.flush()
        return row

    # -- order discounts and per-order loyalty state -------------------------------------------------
    async def discount(self, tenant: int, order_id: int) -> OrderDiscount | None:
        stmt = select(OrderDiscount).where(OrderDiscount.tenant_id == tenant, OrderDiscount.order_id == order_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def set_line_refunds(self, tenant: int, order_id: int, old: list[int], new: list[int]) -> bool:
        d = await self.discount(tenant, order_id)
        if d is None or list(d.line_refunds or []) != old:
            return False
        d.line_refunds = new
        await self.session.flush()
        return True

    async def order_state(self, tenant: int, order_id: int) -> OrderLoyalty | None:
        stmt = select(OrderLoyalty).where(OrderLoyalty.tenant_id == tenant, OrderLoyalty.order_id == order_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def start_order_state(self, row: OrderLoyalty) -> bool:
        return await self._insert_once(row)

    async def advance_order_state(self, tenant: int, order_id: int, refunded_before: int, *,
                                  paid_before: int | None = None, **values: Any) -> bool:
        """Move an order's state if its refunded total (and, given, its booked payment) is
        still what was read: of two deliveries for one order, one moves it, the other retries."""
        stmt = update(OrderLoyalty).where(OrderLoyalty.tenant_id == tenant, OrderLoyalty.order_id == order_id,
                                          OrderLoyalty.refunded_fen == refunded_before)
        if paid_before is not None:
            stmt = stmt.where(OrderLoyalty.paid_fen == paid_before)
        return await self._update(stmt.values(**values)) == 1

    # -- birthday gifts -----------------------------------------------------------------------------------
    async def add_birthday_gift(self, row: BirthdayGift) -> bool:
        """False when this member's gift of that year exists (or is being written by a
        concurrent transaction that then commits): the unique key decides, not a read."""
        return await self._insert_once(row)

    async def set_birthday_gift_count(self, gift_id: int, coupons: int) -> None:
        await self._update(update(BirthdayGift).where(BirthdayGift.id == gift_id).values(coupons=coupons))

    async def birthday_gifted(self, tenant: int, year: int, members: Sequence[int]) -> set[int]:
        if not members:
            return set()
        stmt = select(BirthdayGift.member_id).where(BirthdayGift.tenant_id == tenant, BirthdayGift.year == year,
                                                    BirthdayGift.member_id.in_(list(members)))
        return {int(m) for m in (await self.session.scalars(stmt)).all()}

    # -- merging two members ---------------------------------------------------------------------------
    async def merged_into(self, tenant: int, member: int) -> int | None:
        stmt = select(MemberMerge.into_member_id).where(MemberMerge.tenant_id == tenant,
                                                        MemberMerge.from_member_id == member)
        found = await self.session.scalar(stmt)
        return int(found) if found is not None else None

    async def merge(self, tenant: int, keep: int, gone: int, *, via: str, now: datetime) -> bool:
        """Move everything of `gone` to `keep`: identities, orders, addresses, cart (the kept
        member's line wins on the same SKU), points ledger and balance, growth, coupons and
        order discounts. False if `gone` was merged already."""
        if not await self._insert_once(MemberMerge(tenant_id=tenant, from_member_id=gone, into_member_id=keep,
                                                   via=via, created_at=now)):
            return False
        moves: list[Any] = [MemberIdentity, Order, Address, PointsEntry, OrderDiscount, OrderLoyalty]
        for model in moves:
            await self._update(update(model).where(model.tenant_id == tenant, model.member_id == gone)
                               .values(member_id=keep))
        kept_skus = select(CartItem.sku_id).where(CartItem.tenant_id == tenant, CartItem.member_id == keep)
        await self.session.execute(delete(CartItem).where(CartItem.tenant_id == tenant, CartItem.member_id == gone,
                                                          CartItem.sku_id.in_(kept_skus))
                                   .execution_options(**NO_SYNC))
        await self._update(update(CartItem).where(CartItem.tenant_id == tenant, CartItem.member_id == gone)
                           .values(member_id=keep))
        # coupons: negative seq keeps (template, member, seq) unique after the move
        await self._update(update(Coupon).where(Coupon.tenant_id == tenant, Coupon.member_id == gone)
                           .values(member_id=keep, seq=-Coupon.id))
        old = await self.account(tenant, gone)
        if old is not None:
            await self._update(
                update(LoyaltyAccount).where(LoyaltyAccount.tenant_id == tenant, LoyaltyAccount.member_id == keep)
                .values(points=LoyaltyAccount.points + old.points, growth=LoyaltyAccount.growth + old.growth))
            await self.session.execute(delete(LoyaltyAccount).where(LoyaltyAccount.id == old.id)
                                       .execution_options(**NO_SYNC))
        gone_m = await self.session.get(Member, gone)
        keep_m = await self.session.get(Member, keep)
        if gone_m is not None and keep_m is not None and gone_m.unionid and not keep_m.unionid:
            union = gone_m.unionid
            await self._update(update(Member).where(Member.id == gone).values(unionid=None))
            await self._update(update(Member).where(Member.id == keep).values(unionid=union))
        # the birthday: the kept member's if set, else the merged one's; birthday gifts
        # move along unless the kept member has that year's already (never two a year)
        born = (await self.session.execute(select(Member.birth_month, Member.birth_day, Member.birth_year)
                                           .where(Member.tenant_id == tenant, Member.id == gone))).first()
        if born is not None and born[0] is not None:
            await self._update(
                update(Member).where(Member.tenant_id == tenant, Member.id == keep, Member.birth_month.is_(None))
                .values(birth_month=born[0], birth_day=born[1], birth_year=born[2]))
        await self._update(update(Member).where(Member.tenant_id == tenant, Member.id == gone)
                           .values(birth_month=None, birth_day=None, birth_year=None))
        kept_years = select(BirthdayGift.year).where(BirthdayGift.tenant_id == tenant,
                                                     BirthdayGift.member_id == keep)
        await self._update(update(BirthdayGift).where(BirthdayGift.tenant_id == tenant,
                                                      BirthdayGift.member_id == gone,
                                                      BirthdayGift.year.not_in(kept_years))
                           .values(member_id=keep))
        # member tags: the merged member's move along unless the kept member holds that tag
        kept_tags = select(MemberTagLink.tag_id).where(MemberTagLink.tenant_id == tenant,
                                                       MemberTagLink.member_id == keep)
        await self._update(update(MemberTagLink).where(MemberTagLink.tenant_id == tenant,
                                                       MemberTagLink.member_id == gone,
                                                       MemberTagLink.tag_id.not_in(kept_tags))
                           .values(member_id=keep))
        await self.session.execute(delete(MemberTagLink).where(MemberTagLink.tenant_id == tenant,
                                                               MemberTagLink.member_id == gone)
                                   .execution_options(**NO_SYNC))
        return True

    # -- bind codes ------------------------------------------------------------------------------------
    async def add_bind_code(self, row: BindCode) -> None:
        self.session.add(row)
        await self.session.flush()

    async def bind_codes(self, tenant: int, selector: str) -> list[BindCode]:
        """The issued codes with this selector (any state: the caller decides)."""
        return await self._all(select(BindCode).where(BindCode.tenant_id == tenant, BindCode.selector == selector)
                               .order_by(BindCode.id))

    async def spend_bind_code(self, code_id: int, now: datetime) -> bool:
        """Spend a live code once (the conditional UPDATE decides between two redeemers)."""
        return await self._update(update(BindCode).where(BindCode.id == code_id, BindCode.used_at.is_(None),
                                                         BindCode.expires_at > now)
                                  .values(used_at=now)) == 1

    async def drop_bind_codes(self, tenant: int, member: int, now: datetime) -> None:
        """The member's unspent codes (a new one replaces them) and the tenant's dead ones."""
        await self.session.execute(delete(BindCode).where(
            BindCode.tenant_id == tenant,
            or_(and_(BindCode.member_id == member, BindCode.used_at.is_(None)), BindCode.expires_at <= now),
        ).execution_options(**NO_SYNC))
