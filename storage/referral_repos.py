"""The referral module's SQL. Constructed from a unit of work's session:

    repo = ReferralRepo(uow.session)

Every state change is one conditional UPDATE whose rowcount says who won; balances move
by atomic increments (`col = col + :delta`), never read-modify-write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, exists, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.referral_models import (
    Binding,
    Commission,
    Distributor,
    DistributorAccountQr,
    LedgerEntry,
    ReferralLevel,
    ReferralMerge,
    ReferralProductRate,
    ReferralSettings,
    Withdrawal,
)

NO_SYNC = {"synchronize_session": False}


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class ReferralRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: Select[Any]) -> list[Any]:
        return list((await self.session.scalars(stmt)).all())

    async def _update(self, stmt: Any) -> int:
        return _rowcount(await self.session.execute(stmt.execution_options(**NO_SYNC)))

    async def _insert_once(self, row: Any) -> bool:
        """Insert unless a unique key says it is already there (savepoint: the caller's
        transaction stays usable). True when this call inserted it."""
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    # -- settings, levels, product rates ------------------------------------------------
    async def settings(self, tenant: int) -> ReferralSettings | None:
        return await self.session.scalar(select(ReferralSettings).where(ReferralSettings.tenant_id == tenant))

    async def save_settings(self, tenant: int, values: Mapping[str, object], now: datetime) -> None:
        found = await self.settings(tenant)
        if found is None:
            if await self._insert_once(ReferralSettings(tenant_id=tenant, updated_at=now, **values)):
                return
        await self._update(update(ReferralSettings).where(ReferralSettings.tenant_id == tenant)
                           .values(updated_at=now, **values))

    async def add_level(self, level: ReferralLevel) -> ReferralLevel:
        self.session.add(level)
        await self.session.flush()
        return level

    async def level(self, tenant: int, level_id: int) -> ReferralLevel | None:
        return await self.session.scalar(
            select(ReferralLevel).where(ReferralLevel.tenant_id == tenant, ReferralLevel.id == level_id))

    async def levels(self, tenant: int) -> list[ReferralLevel]:
        return await self._all(select(ReferralLevel).where(ReferralLevel.tenant_id == tenant)
                               .order_by(ReferralLevel.sort, ReferralLevel.id))

    async def set_product_rate(self, tenant: int, product_id: int, level1_bp: int, level2_bp: int) -> None:
        row = ReferralProductRate(tenant_id=tenant, product_id=product_id, level1_bp=level1_bp, level2_bp=level2_bp)
        if not await self._insert_once(row):
            await self._update(update(ReferralProductRate)
                               .where(ReferralProductRate.tenant_id == tenant,
                                      ReferralProductRate.product_id == product_id)
                               .values(level1_bp=level1_bp, level2_bp=level2_bp))

    async def product_rates(self, tenant: int, product_ids: Sequence[int]) -> list[ReferralProductRate]:
        if not product_ids:
            return []
        return await self._all(select(ReferralProductRate).where(
            ReferralProductRate.tenant_id == tenant, ReferralProductRate.product_id.in_(product_ids)))

    # -- distributors -------------------------------------------------------------------
    async def add_distributor(self, row: Distributor) -> bool:
        return await self._insert_once(row)

    async def distributor(self, tenant: int, distributor_id: int, *, fresh: bool = False) -> Distributor | None:
        stmt = select(Distributor).where(Distributor.tenant_id == tenant, Distributor.id == distributor_id)
        if fresh:
            stmt = stmt.execution_options(populate_existing=True)
        return await self.session.scalar(stmt)

    async def distributor_of(self, tenant: int, member_id: int, *, fresh: bool = False) -> Distributor | None:
        stmt = select(Distributor).where(Distributor.tenant_id == tenant, Distributor.member_id == member_id)
        if fresh:
            stmt = stmt.execution_options(populate_existing=True)
        return await self.session.scalar(stmt)

    async def distributor_by_code(self, tenant: int, code: str) -> Distributor | None:
        return await self.session.scalar(
            select(Distributor).where(Distributor.tenant_id == tenant, Distributor.code == code))

    async def distributors(self, tenant: int, status: str | None = None, limit: int = 100) -> list[Distributor]:
        stmt = select(Distributor).where(Distributor.tenant_id == tenant)
        if status:
            stmt = stmt.where(Distributor.status == status)
        return await self._all(stmt.order_by(Distributor.id).limit(limit))

    async def move_distributor(self, tenant: int, distributor_id: int, src: str, dst: str, **values: object) -> bool:
        return await self._update(
            update(Distributor)
            .where(Distributor.tenant_id == tenant, Distributor.id == distributor_id, Distributor.status == src)
            .values(status=dst, **values)) == 1

    async def set_distributor(self, tenant: int, distributor_id: int, **values: object) -> None:
        await self._update(update(Distributor)
                           .where(Distributor.tenant_id == tenant, Distributor.id == distributor_id)
                           .values(**values))

    async def account_qr_url(self, tenant: int, distributor_id: int, account_id: int) -> str:
        """The distributor's QR at another official account ("" until made)."""
        return await self.session.scalar(select(DistributorAccountQr.url).where(
            DistributorAccountQr.tenant_id == tenant, DistributorAccountQr.distributor_id == distributor_id,
            DistributorAccountQr.account_id == account_id)) or ""

    async def set_account_qr_url(self, tenant: int, distributor_id: int, account_id: int, url: str,
                                 now: datetime) -> None:
        if not await self._insert_once(DistributorAccountQr(tenant_id=tenant, distributor_id=distributor_id,
                                                            account_id=account_id, url=url, created_at=now)):
            await self._update(update(DistributorAccountQr).where(
                DistributorAccountQr.tenant_id == tenant, DistributorAccountQr.distributor_id == distributor_id,
                DistributorAccountQr.account_id == account_id).values(url=url))

    async def add_funds(self, tenant: int, distributor_id: int, *, frozen: int = 0, available: int = 0) -> None:
        """Atomic increments (either may be negative; available may go below zero)."""
        await self._update(
            update(Distributor)
            .where(Distributor.tenant_id == tenant, Distributor.id == distributor_id)
            .values(frozen_fen=Distributor.frozen_fen + frozen,
                    available_fen=Distributor.available_fen + available))

    async def take_available(self, tenant: int, distributor_id: int, amount_fen: int) -> bool:
        """Hold funds for a withdrawal; refused (False) when the balance is short."""
        return await self._update(
            update(Distributor)
            .where(Distributor.tenant_id == tenant, Distributor.id == distributor_id,
                   Distributor.available_fen >= amount_fen)
            .values(available_fen=Distributor.available_fen - amount_fen)) == 1

    # -- bindings ----------------------------------------------------------------------
    async def binding(self, tenant: int, member_id: int) -> Binding | None:
        return await self.session.scalar(
            select(Binding).where(Binding.tenant_id == tenant, Binding.member_id == member_id)
            .execution_options(populate_existing=True))

    async def add_binding(self, row: Binding) -> bool:
        return await self._insert_once(row)

    async def rebind(self, tenant: int, member_id: int, version: int, **values: object) -> bool:
        return await self._update(
            update(Binding)
            .where(Binding.tenant_id == tenant, Binding.member_id == member_id, Binding.version == version)
            .values(version=version + 1, **values)) == 1

    async def bound_count(self, tenant: int, distributor_member_id: int, now: datetime) -> int:
        stmt = select(func.count()).select_from(Binding).where(
            Binding.tenant_id == tenant, Binding.distributor_member_id == distributor_member_id,
            (Binding.expires_at.is_(None)) | (Binding.expires_at > now))
        return int(await self.session.scalar(stmt) or 0)

    # -- commissions -------------------------------------------------------------------
    async def add_commission(self, row: Commission) -> bool:
        return await self._insert_once(row)

    async def commissions_for_order(self, tenant: int, order_id: int) -> list[Commission]:
        return await self._all(
            select(Commission).where(Commission.tenant_id == tenant, Commission.order_id == order_id)
            .order_by(Commission.level).execution_options(populate_existing=True))

    async def commission(self, tenant: int, commission_id: int) -> Commission | None:
        return await self.session.scalar(
            select(Commission).where(Commission.tenant_id == tenant, Commission.id == commission_id)
            .execution_options(populate_existing=True))

    async def recent_commissions(self, tenant: int, distributor_id: int, limit: int = 5) -> list[Commission]:
        return await self._all(
            select(Commission).where(Commission.tenant_id == tenant, Commission.distributor_id == distributor_id)
            .order_by(Commission.id.desc()).limit(limit))

    async def commissions_page(self, tenant: int, distributor_id: int, offset: int, limit: int
                               ) -> tuple[list[Commission], int]:
        """A page of the distributor's commissions, newest first, and how many there are."""
        where = (Commission.tenant_id == tenant, Commission.distributor_id == distributor_id)
        total = await self.session.scalar(select(func.count()).select_from(Commission).where(*where))
        rows = await self._all(select(Commission).where(*where).order_by(Commission.id.desc())
                               .offset(offset).limit(limit))
        return rows, int(total or 0)

    async def schedule_unfreeze(self, tenant: int, order_id: int, at: datetime) -> int:
        return await self._update(
            update(Commission)
            .where(Commission.tenant_id == tenant, Commission.order_id == order_id,
                   Commission.status == "frozen", Commission.unfreeze_at.is_(None))
            .values(unfreeze_at=at))

    async def reverse(self, commission_id: int, *, status: str, reversed_fen: int, refunded_fen: int,
                      new_reversed: int, new_refunded: int, new_status: str) -> bool:
        """Record a reversal if nobody touched the commission since it was read."""
        return await self._update(
            update(Commission)
            .where(Commission.id == commission_id, Commission.status == status,
                   Commission.reversed_fen == reversed_fen, Commission.refunded_fen == refunded_fen)
            .values(reversed_fen=new_reversed, refunded_fen=new_refunded, status=new_status)) == 1

    async def unfreeze(self, commission_id: int, reversed_fen: int, now: datetime) -> bool:
        return await self._update(
            update(Commission)
            .where(Commission.id == commission_id, Commission.status == "frozen",
                   Commission.reversed_fen == reversed_fen)
            .values(status="available", unfrozen_at=now)) == 1

    async def due_commissions(self, now: datetime, limit: int = 200) -> list[Commission]:
        stmt = (select(Commission)
                .where(Commission.status == "frozen", Commission.unfreeze_at.is_not(None),
                       Commission.unfreeze_at <= now)
                .order_by(Commission.unfreeze_at, Commission.id).limit(limit)
                .execution_options(populate_existing=True))
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return await self._all(stmt)

    # -- ledger ------------------------------------------------------------------------
    async def append(self, entry: LedgerEntry) -> bool:
        """Append once per `ref`; False when that money move was already recorded."""
        return await self._insert_once(entry)

    async def has_entry(self, tenant: int, ref: str) -> bool:
        found = await self.session.scalar(
            select(LedgerEntry.id).where(LedgerEntry.tenant_id == tenant, LedgerEntry.ref == ref))
        return found is not None

    async def entries(self, tenant: int, distributor_id: int) -> list[LedgerEntry]:
        return await self._all(
            select(LedgerEntry).where(LedgerEntry.tenant_id == tenant, LedgerEntry.distributor_id == distributor_id)
            .order_by(LedgerEntry.id))

    async def ledger_sums(self, tenant: int, distributor_id: int) -> dict[tuple[str, str], int]:
        """(kind, bucket) → sum of amounts."""
        stmt = (select(LedgerEntry.kind, LedgerEntry.bucket, func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
                .where(LedgerEntry.tenant_id == tenant, LedgerEntry.distributor_id == distributor_id)
                .group_by(LedgerEntry.kind, LedgerEntry.bucket))
        return {(k, b): int(s) for k, b, s in (await self.session.execute(stmt)).all()}

    # -- withdrawals -------------------------------------------------------------------
    async def add_withdrawal(self, row: Withdrawal) -> Withdrawal:
        self.session.add(row)
        await self.session.flush()
        return row

    async def withdrawal(self, tenant: int, withdrawal_id: int) -> Withdrawal | None:
        return await self.session.scalar(
            select(Withdrawal).where(Withdrawal.tenant_id == tenant, Withdrawal.id == withdrawal_id)
            .execution_options(populate_existing=True))

    async def withdrawal_by_bill(self, out_bill_no: str) -> Withdrawal | None:
        return await self.session.scalar(
            select(Withdrawal).where(Withdrawal.out_bill_no == out_bill_no)
            .execution_options(populate_existing=True))

    async def withdrawals(self, tenant: int, status: str | None = None, distributor_id: int | None = None,
                          limit: int = 100) -> list[Withdrawal]:
        stmt = select(Withdrawal).where(Withdrawal.tenant_id == tenant)
        if status:
            stmt = stmt.where(Withdrawal.status == status)
        if distributor_id is not None:
            stmt = stmt.where(Withdrawal.distributor_id == distributor_id)
        return await self._all(stmt.order_by(Withdrawal.id.desc()).limit(limit))

    async def note_payout(self, tenant: int, withdrawal_id: int, state: str, checked_at: datetime) -> None:
        """What the gateway last said about a payout still under way (approved), and when."""
        await self._update(
            update(Withdrawal).where(Withdrawal.tenant_id == tenant, Withdrawal.id == withdrawal_id,
                                     Withdrawal.status == "approved")
            .values(payout_state=state[:24], payout_checked_at=checked_at))

    async def choose_payout_merchant(self, tenant: int, withdrawal_id: int, merchant_id: int) -> int:
        """Record the merchant a payout goes through, once (the first choice stays); the
        merchant it goes through."""
        await self._update(
            update(Withdrawal).where(Withdrawal.tenant_id == tenant, Withdrawal.id == withdrawal_id,
                                     Withdrawal.payout_merchant_id.is_(None))
            .values(payout_merchant_id=merchant_id))
        chosen = await self.session.scalar(select(Withdrawal.payout_merchant_id).where(
            Withdrawal.tenant_id == tenant, Withdrawal.id == withdrawal_id).execution_options(populate_existing=True))
        return int(chosen or 0)

    async def payouts_in_flight(self, limit: int) -> list[tuple[int, str]]:
        """(tenant, out_bill_no) of approved withdrawals, the longest unchecked first."""
        stmt = (select(Withdrawal.tenant_id, Withdrawal.out_bill_no)
                .where(Withdrawal.status == "approved")
                .order_by(Withdrawal.payout_checked_at.is_not(None), Withdrawal.payout_checked_at, Withdrawal.id)
                .limit(limit))
        return [(t, no) for t, no in (await self.session.execute(stmt)).all()]

    async def move_withdrawal(self, tenant: int, withdrawal_id: int, src: str, dst: str, **values: object) -> bool:
        return await self._update(
            update(Withdrawal)
            .where(Withdrawal.tenant_id == tenant, Withdrawal.id == withdrawal_id, Withdrawal.status == src)
            .values(status=dst, **values)) == 1

    async def withdrawn_since(self, tenant: int, distributor_id: int, since: datetime,
                              statuses: Sequence[str], exclude_id: int | None = None) -> int:
        stmt = select(func.coalesce(func.sum(Withdrawal.amount_fen), 0)).where(
            Withdrawal.tenant_id == tenant, Withdrawal.distributor_id == distributor_id,
            Withdrawal.requested_at >= since, Withdrawal.status.in_(statuses))
        if exclude_id is not None:
            stmt = stmt.where(Withdrawal.id != exclude_id)
        return int(await self.session.scalar(stmt) or 0)

    # -- member merges -----------------------------------------------------------------
    async def claim_merge(self, row: ReferralMerge) -> bool:
        """Record that this merge is being applied; False when it was already (or is being,
        by a concurrent delivery: the unique key makes the later one wait, then refuse)."""
        return await self._insert_once(row)

    async def merged_into(self, tenant: int, member_id: int) -> int | None:
        found = await self.session.scalar(select(ReferralMerge.kept_member_id).where(
            ReferralMerge.tenant_id == tenant, ReferralMerge.merged_member_id == member_id))
        return int(found) if found is not None else None

    async def drop_binding(self, tenant: int, member_id: int, distributor_member_id: int | None = None) -> int:
        """Delete a member's binding (only if it points at `distributor_member_id`, when given)."""
        stmt = delete(Binding).where(Binding.tenant_id == tenant, Binding.member_id == member_id)
        if distributor_member_id is not None:
            stmt = stmt.where(Binding.distributor_member_id == distributor_member_id)
        return await self._update(stmt)

    async def hand_binding(self, tenant: int, binding_id: int, to_member_id: int) -> bool:
        """A binding row becomes another member's (who must have none)."""
        return await self._update(
            update(Binding).where(Binding.tenant_id == tenant, Binding.id == binding_id)
            .values(member_id=to_member_id, version=Binding.version + 1)) == 1

    async def move_downline(self, tenant: int, from_member_id: int, to_member_id: int) -> int:
        """Members bound to `from_member_id` are bound to `to_member_id` (the caller drops a
        binding that would become a self-binding first)."""
        return await self._update(
            update(Binding).where(Binding.tenant_id == tenant, Binding.distributor_member_id == from_member_id)
            .values(distributor_member_id=to_member_id, version=Binding.version + 1))

    async def lock_distributors(self, tenant: int, member_ids: Sequence[int]) -> list[Distributor]:
        """The members' distributor records, fresh and row-locked on PostgreSQL (in id order,
        so two transactions never wait on each other crosswise): increments from a
        concurrent commission wait until the merge has committed."""
        return await self._all(
            select(Distributor).where(Distributor.tenant_id == tenant, Distributor.member_id.in_(member_ids))
            .order_by(Distributor.id).with_for_update().execution_options(populate_existing=True))

    async def hand_distributor(self, tenant: int, distributor_id: int, from_member_id: int, to_member_id: int
                               ) -> bool:
        return await self._update(
            update(Distributor)
            .where(Distributor.tenant_id == tenant, Distributor.id == distributor_id,
                   Distributor.member_id == from_member_id)
            .values(member_id=to_member_id)) == 1

    async def has_history(self, tenant: int, distributor_id: int) -> bool:
        """Any ledger entry, commission or withdrawal on this record?"""
        stmt = select(
            exists().where(LedgerEntry.tenant_id == tenant, LedgerEntry.distributor_id == distributor_id)
            | exists().where(Commission.tenant_id == tenant, Commission.distributor_id == distributor_id)
            | exists().where(Withdrawal.tenant_id == tenant, Withdrawal.distributor_id == distributor_id))
        return bool(await self.session.scalar(stmt))

    async def delete_distributor(self, tenant: int, distributor_id: int) -> bool:
        return await self._update(
            delete(Distributor).where(Distributor.tenant_id == tenant, Distributor.id == distributor_id)) == 1

    async def move_commissions(self, tenant: int, from_distributor_id: int, to_distributor_id: int) -> int:
        return await self._update(
            update(Commission)
            .where(Commission.tenant_id == tenant, Commission.distributor_id == from_distributor_id)
            .values(distributor_id=to_distributor_id))

    async def move_buyer(self, tenant: int, from_member_id: int, to_member_id: int) -> int:
        return await self._update(
            update(Commission)
            .where(Commission.tenant_id == tenant, Commission.buyer_member_id == from_member_id)
            .values(buyer_member_id=to_member_id))

    async def move_withdrawals(self, tenant: int, from_distributor_id: int, to_distributor_id: int,
                               statuses: Sequence[str]) -> list[int]:
        """Withdrawals in these statuses change record; returns their ids. (Row-locked on
        PostgreSQL before the distributor rows, the order a reject or payout result takes.)"""
        ids = [int(i) for i in (await self.session.scalars(
            select(Withdrawal.id).where(Withdrawal.tenant_id == tenant,
                                        Withdrawal.distributor_id == from_distributor_id,
                                        Withdrawal.status.in_(statuses))
            .order_by(Withdrawal.id).with_for_update())).all()]
        if ids:
            await self._update(update(Withdrawal).where(Withdrawal.tenant_id == tenant, Withdrawal.id.in_(ids))
                               .values(distributor_id=to_distributor_id))
        return ids

    async def withdrawals_to_member(self, tenant: int, from_member_id: int, to_member_id: int) -> int:
        """Whom the payouts go to (the member's identities moved with the merge)."""
        return await self._update(
            update(Withdrawal).where(Withdrawal.tenant_id == tenant, Withdrawal.member_id == from_member_id)
            .values(member_id=to_member_id))
