"""`member.merged`, the referral side, on a real database (SQLite and PostgreSQL): the
merged member's binding, downline, distributor record, commissions, balance and
withdrawals become the kept member's; nobody ends up bound to themself; the ledgers stay
append-only with balance = sum of ledger on every record and no fen created or lost; a
repeated or concurrent delivery changes nothing more."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from social_mall.loyalty.merge import merge_members
from social_mall.orders.service import complete_order, ship_order
from social_mall.referral import merge, service
from social_mall.referral.rules import BindingMode, BindingPick, BindVerdict, ProgramSettings, RecordMerge
from storage.models import AuditEntry
from storage.referral_models import Binding, Commission, Distributor, LedgerEntry, Withdrawal
from tests.fakes.referral_world import (NOW, bind, commissions, distributor, fresh, member, paid_order, reconciled,
                                        refunded, sku)


async def configure(uows, tenant, **changes):
    async with uows() as uow:
        current = await service.program(uow, tenant.id)
        await service.save_program(uow, tenant.id, ProgramSettings(**{**current.__dict__, **changes}),
                                   actor="admin:1", now=NOW)
        await uow.commit()


async def merged(uows, tenant, a: int, b: int, now=NOW):
    """The loyalty merge (identities, orders, points…): returns (kept, merged)."""
    async with uows() as uow:
        result = await merge_members(uow, tenant.id, a, b, via="bind_code", actor="test", now=now)
        await uow.commit()
    return result.kept, result.merged


async def deliver(uows, tenant, keep: int, gone: int, now=NOW) -> merge.MergeOutcome:
    """What the `referral.merge` subscriber does with the event."""
    async with uows() as uow:
        outcome = await merge.absorb_member(uow, tenant.id, keep, gone, now=now)
        await uow.commit()
    return outcome


async def referrer(uows, tenant, member_id: int, now=NOW):
    async with uows() as uow:
        return await service.referrer_of(uow, tenant.id, member_id, now)


async def bound_count(uows, tenant, member_id: int) -> int:
    async with uows() as uow:
        return await service.repo(uow).bound_count(tenant.id, member_id, NOW)


async def snapshot(uows, tenant) -> dict[str, object]:
    """Every referral row a merge may touch (and its audit entries)."""
    async with uows() as uow:
        s, t = uow.session, tenant.id

        async def rows(model, *cols):
            found = (await s.execute(select(*cols).where(model.tenant_id == t))).all()
            return sorted(tuple(r) for r in found)

        return {
            "bindings": await rows(Binding, Binding.member_id, Binding.distributor_member_id, Binding.version,
                                   Binding.bound_at),
            "distributors": await rows(Distributor, Distributor.id, Distributor.member_id, Distributor.code,
                                       Distributor.status, Distributor.frozen_fen, Distributor.available_fen,
                                       Distributor.level_id),
            "ledger": await rows(LedgerEntry, LedgerEntry.id, LedgerEntry.distributor_id, LedgerEntry.kind,
                                 LedgerEntry.bucket, LedgerEntry.amount_fen),
            "commissions": await rows(Commission, Commission.id, Commission.distributor_id,
                                      Commission.buyer_member_id, Commission.status, Commission.reversed_fen),
            "withdrawals": await rows(Withdrawal, Withdrawal.id, Withdrawal.distributor_id, Withdrawal.member_id,
                                      Withdrawal.status),
            "audit": await s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.tenant_id == t, AuditEntry.action == "referral.member_merged")),
        }


async def no_self_bindings(uows, tenant) -> None:
    async with uows() as uow:
        found = (await uow.session.execute(select(Binding.member_id).where(
            Binding.tenant_id == tenant.id, Binding.member_id == Binding.distributor_member_id))).all()
    assert found == []


async def total_fen(uows, tenant, *distributor_ids: int) -> int:
    total = 0
    for did in distributor_ids:
        r = await reconciled(uows, tenant, did)
        assert r.ok, r                                   # balance = sum of ledger, on every record
        total += r.stored_frozen_fen + r.stored_available_fen
    return total


async def unfrozen_order(uows, tenant, buyer: int, sku_id: int, now=NOW):
    """A paid order whose commissions are unfrozen (available)."""
    order = await paid_order(uows, tenant, buyer, [(sku_id, 1)], now=now)
    await commissions(uows, tenant, order.id, now=now)
    async with uows() as uow:
        await ship_order(uow, tenant.id, order.id, tracking_no="SF1", now=now)
        await complete_order(uow, tenant.id, order.id, now=now)
        await service.schedule_unfreeze(uow, tenant.id, order.id, completed_at=now)
        await uow.commit()
    await service.unfreeze_due(uows, now=now + timedelta(days=8))
    return order


# -- the member's own binding --------------------------------------------------------------

async def test_the_merged_members_binding_moves_to_an_unbound_kept_member(uows, demo):
    a = await distributor(uows, demo)
    keep, gone = await member(uows, demo), await member(uows, demo)
    assert await bind(uows, demo, gone, a.code) == BindVerdict.BIND
    keep, gone = await merged(uows, demo, keep, gone)
    outcome = await deliver(uows, demo, keep, gone)
    assert outcome.applied and outcome.binding == BindingPick.MERGED and outcome.referrer_member_id == a.member_id
    assert await referrer(uows, demo, keep) == a.member_id
    assert await referrer(uows, demo, gone) is None
    assert await bound_count(uows, demo, a.member_id) == 1          # one person, counted once
    async with uows() as uow:
        entry = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "referral.member_merged"))
    assert entry.subject == f"member:{keep}" and entry.after["from_member_id"] == gone
    assert entry.before["merged_referrer"] == a.member_id and entry.after["binding"] == "merged"


@pytest.mark.parametrize(("mode", "winner"), [(BindingMode.FIRST_TOUCH, "earlier"),
                                              (BindingMode.LAST_TOUCH, "later")])
async def test_the_binding_mode_picks_between_two_live_bindings(uows, demo, mode, winner):
    await configure(uows, demo, binding_mode=mode)
    early, late = await distributor(uows, demo), await distributor(uows, demo)
    keep, gone = await member(uows, demo), await member(uows, demo)
    await bind(uows, demo, gone, early.code, now=NOW - timedelta(days=3))   # the merged one was touched first
    await bind(uows, demo, keep, late.code, now=NOW - timedelta(days=1))
    await deliver(uows, demo, *await merged(uows, demo, keep, gone))
    expected = early if winner == "earlier" else late
    assert await referrer(uows, demo, keep) == expected.member_id
    assert await referrer(uows, demo, gone) is None
    assert await bound_count(uows, demo, early.member_id) + await bound_count(uows, demo, late.member_id) == 1


async def test_the_kept_members_live_binding_stays_when_it_came_first(uows, demo):
    x, y = await distributor(uows, demo), await distributor(uows, demo)
    keep, gone = await member(uows, demo), await member(uows, demo)
    await bind(uows, demo, keep, x.code, now=NOW - timedelta(days=2))
    await bind(uows, demo, gone, y.code, now=NOW - timedelta(days=1))
    outcome = await deliver(uows, demo, *await merged(uows, demo, keep, gone))
    assert outcome.binding == BindingPick.KEPT
    assert await referrer(uows, demo, keep) == x.member_id
    assert await bound_count(uows, demo, y.member_id) == 0


async def test_an_expired_kept_binding_gives_way_to_the_merged_members_live_one(uows, demo):
    await configure(uows, demo, lifetime_days=30)
    x, y = await distributor(uows, demo), await distributor(uows, demo)
    keep, gone = await member(uows, demo), await member(uows, demo)
    await bind(uows, demo, keep, x.code, now=NOW - timedelta(days=40))       # expired 10 days ago
    await bind(uows, demo, gone, y.code, now=NOW - timedelta(days=5))
    await deliver(uows, demo, *await merged(uows, demo, keep, gone))
    assert await referrer(uows, demo, keep) == y.member_id


# -- self-bindings and cycles ------------------------------------------------------------------

async def test_a_member_referred_by_the_other_is_never_bound_to_itself(uows, demo):
    # the merged member had followed the kept member's QR, and referred someone else
    kd = await distributor(uows, demo)
    gd = await distributor(uows, demo)
    assert await bind(uows, demo, gd.member_id, kd.code) == BindVerdict.BIND
    c = await member(uows, demo)
    await bind(uows, demo, c, gd.code)
    keep, gone = await merged(uows, demo, kd.member_id, gd.member_id)
    outcome = await deliver(uows, demo, keep, gone)
    assert outcome.dropped_self == 1 and outcome.binding == BindingPick.NONE
    await no_self_bindings(uows, demo)
    assert await referrer(uows, demo, keep) is None
    assert await referrer(uows, demo, c) == keep
    assert await bound_count(uows, demo, keep) == 1                 # c, not the member themself


async def test_a_kept_member_referred_by_the_merged_one_drops_that_binding(uows, demo):
    keep = await member(uows, demo)
    gd = await distributor(uows, demo)
    await bind(uows, demo, keep, gd.code)
    c = await member(uows, demo)
    await bind(uows, demo, c, gd.code)
    keep, gone = await merged(uows, demo, keep, gd.member_id)
    outcome = await deliver(uows, demo, keep, gone)
    assert outcome.dropped_self == 1 and outcome.record == RecordMerge.MOVE
    await no_self_bindings(uows, demo)
    assert await referrer(uows, demo, keep) is None
    assert await bound_count(uows, demo, keep) == 1
    assert (await fresh(uows, demo, keep)).code == gd.code


async def test_a_binding_that_would_close_a_cycle_through_the_downline_is_dropped(uows, demo):
    keep = await member(uows, demo)
    gd, xd = await distributor(uows, demo), await distributor(uows, demo)
    await bind(uows, demo, xd.member_id, gd.code)          # x was referred by the merged member…
    await bind(uows, demo, keep, xd.code)                  # …and referred the kept member
    keep, gone = await merged(uows, demo, keep, gd.member_id)
    await deliver(uows, demo, keep, gone)
    assert await referrer(uows, demo, xd.member_id) == keep   # downline: x now hangs under the person
    assert await referrer(uows, demo, keep) is None           # who cannot also hang under x
    async with uows() as uow:
        assert await service.upline(uow, demo.id, xd.member_id, NOW) == [keep]
    await no_self_bindings(uows, demo)


# -- distributor records and money -------------------------------------------------------------

async def test_only_the_merged_member_a_distributor_its_record_moves_whole(uows, demo):
    x = await distributor(uows, demo)
    keep = await member(uows, demo)
    await bind(uows, demo, keep, x.code, now=NOW - timedelta(days=1))
    gd = await distributor(uows, demo)
    c = await member(uows, demo)
    await bind(uows, demo, c, gd.code)
    s = await sku(uows, demo, price_fen=10_000)
    await commissions(uows, demo, (await paid_order(uows, demo, c, [(s, 1)])).id)        # frozen 1000
    await unfrozen_order(uows, demo, c, s)                                                # available 1000
    keep, gone = await merged(uows, demo, keep, gd.member_id)
    outcome = await deliver(uows, demo, keep, gone)
    assert outcome.record == RecordMerge.MOVE and outcome.distributor_id == gd.id
    d = await fresh(uows, demo, keep)
    assert (d.id, d.code, d.status, d.frozen_fen, d.available_fen) == (gd.id, gd.code, "approved", 1000, 1000)
    assert await fresh(uows, demo, gone) is None
    assert await total_fen(uows, demo, gd.id) == 2000
    assert await referrer(uows, demo, keep) == x.member_id       # the kept member's binding stays
    assert await referrer(uows, demo, c) == keep
    async with uows() as uow:
        summary = await service.summary(uow, demo.id, keep, now=NOW)
    assert summary.bound_members == 1 and len(summary.recent) == 2
    # the next order of the downline credits the same record; so does a withdrawal
    await commissions(uows, demo, (await paid_order(uows, demo, c, [(s, 1)])).id)
    async with uows() as uow:
        w = await service.request_withdrawal(uow, demo.id, keep, 500, now=NOW)
        await uow.commit()
    assert w.distributor_id == gd.id and w.member_id == keep
    assert (await fresh(uows, demo, keep)).frozen_fen == 2000
    assert await total_fen(uows, demo, gd.id) == 3000 - 500


async def test_both_distributors_the_kept_record_takes_commissions_balance_downline_and_withdrawals(uows, demo):
    z = await distributor(uows, demo)
    kd = await distributor(uows, demo)
    ck = await member(uows, demo)
    await bind(uows, demo, ck, kd.code)
    gd_member = await member(uows, demo)
    await bind(uows, demo, gd_member, z.code)                   # Z referred the merged member
    gd = await distributor(uows, demo, gd_member)
    c = await member(uows, demo)
    await bind(uows, demo, c, gd.code)
    s = await sku(uows, demo, price_fen=10_000)
    await commissions(uows, demo, (await paid_order(uows, demo, ck, [(s, 1)])).id)          # K frozen 1000
    frozen_order = await paid_order(uows, demo, c, [(s, 1)])
    await commissions(uows, demo, frozen_order.id)                                          # G frozen 1000
    await unfrozen_order(uows, demo, c, s)                                                  # G available 1000
    async with uows() as uow:
        held = await service.request_withdrawal(uow, demo.id, gd_member, 400, now=NOW)      # G available 600
        await uow.commit()
    before = await total_fen(uows, demo, kd.id, gd.id)
    assert before == 1000 + 1000 + 600
    z_before = await fresh(uows, demo, z.member_id)

    keep, gone = await merged(uows, demo, kd.member_id, gd_member)
    outcome = await deliver(uows, demo, keep, gone)
    assert outcome.record == RecordMerge.ABSORB and outcome.distributor_id == kd.id
    assert (outcome.frozen_fen, outcome.available_fen) == (1000, 600)
    assert outcome.commissions == 2 and outcome.withdrawals == (held.id,)
    k, g = await fresh(uows, demo, keep), await reconciled(uows, demo, gd.id)
    assert (k.code, k.status, k.frozen_fen, k.available_fen) == (kd.code, "approved", 2000, 600)
    assert (g.stored_frozen_fen, g.stored_available_fen) == (0, 0)
    assert g.by_kind["merge_transfer"] == -1600
    assert (await reconciled(uows, demo, kd.id)).by_kind["merge_transfer"] == 1600
    assert await total_fen(uows, demo, kd.id, gd.id) == before           # nothing created or lost
    async with uows() as uow:
        closed = await service.repo(uow).distributor(demo.id, gd.id, fresh=True)
        assert (closed.status, closed.member_id) == ("merged", gone)
        assert {cv.distributor_id for cv in await service.recent_commissions(uow, demo.id, kd.id, 10)} == {kd.id}
        moved = await service.get_withdrawal(uow, demo.id, held.id)
    assert (moved.distributor_id, moved.member_id, moved.status) == (kd.id, keep, "requested")
    # the person: referred by Z (the kept member had no binding), with both downlines
    assert await referrer(uows, demo, keep) == z.member_id
    assert await referrer(uows, demo, c) == keep and await bound_count(uows, demo, keep) == 2
    assert await fresh(uows, demo, z.member_id) == z_before              # Z's own money untouched

    # afterwards everything lands on the kept record: a rejection returns the held amount,
    # a refund reverses the moved commission, the old code binds to the kept member
    await refunded(uows, demo, frozen_order.id, None)
    async with uows() as uow:
        await service.reject_withdrawal(uow, demo.id, held.id, actor="admin:1", now=NOW, reason="信息不符")
        await service.reverse_for_refund(uow, demo.id, frozen_order.id, now=NOW)
        await uow.commit()
    k = await fresh(uows, demo, keep)
    assert (k.frozen_fen, k.available_fen) == (1000, 1000)
    assert await total_fen(uows, demo, kd.id, gd.id) == before + 400 - 1000
    newcomer = await member(uows, demo)
    assert await bind(uows, demo, newcomer, gd.code) == BindVerdict.BIND
    assert await referrer(uows, demo, newcomer) == keep
    async with uows() as uow:
        assert (await service.distributor_by_code(uow, demo.id, gd.code)).id == kd.id


async def test_an_approved_payout_after_the_merge_goes_to_the_kept_member_or_back_to_its_record(uows, demo):
    kd = await distributor(uows, demo)
    gd = await distributor(uows, demo)
    async with uows() as uow:
        await service.adjust(uow, demo.id, gd.id, 3000, reason="期初", actor="admin:1", ref="seed", now=NOW)
        w1 = await service.request_withdrawal(uow, demo.id, gd.member_id, 1000, now=NOW)
        w2 = await service.request_withdrawal(uow, demo.id, gd.member_id, 1000, now=NOW)
        await service.approve_withdrawal(uow, demo.id, w1.id, actor="admin:1", now=NOW)
        await service.approve_withdrawal(uow, demo.id, w2.id, actor="admin:1", now=NOW)
        await uow.commit()
    keep, gone = await merged(uows, demo, kd.member_id, gd.member_id)
    await deliver(uows, demo, keep, gone)
    async with uows() as uow:
        assert (await service.withdrawal_by_bill(uow, demo.id, w1.out_bill_no)).member_id == keep
        await service.apply_payout(uow, w1.out_bill_no, status="SUCCESS", transfer_id="T1", now=NOW)
        await service.apply_payout(uow, w2.out_bill_no, status="FAIL", reason="账户异常", now=NOW)
        await uow.commit()
    k = await fresh(uows, demo, keep)
    assert k.available_fen == 1000 + 1000            # what was left + the failed payout's return
    assert await total_fen(uows, demo, kd.id, gd.id) == 3000 - 1000


async def test_a_bare_application_gives_way_to_the_merged_members_distributor_record(uows, demo):
    await configure(uows, demo, auto_approve=False)
    kd = await distributor(uows, demo)                 # pending, never approved
    gd = await distributor(uows, demo)
    async with uows() as uow:
        await service.approve_distributor(uow, demo.id, gd.id, actor="admin:1", now=NOW)
        await uow.commit()
    keep, gone = await merged(uows, demo, kd.member_id, gd.member_id)
    outcome = await deliver(uows, demo, keep, gone)
    assert outcome.record == RecordMerge.REPLACE
    d = await fresh(uows, demo, keep)
    assert (d.id, d.code, d.status) == (gd.id, gd.code, "approved")
    async with uows() as uow:
        assert [x.id for x in await service.list_distributors(uow, demo.id)] == [gd.id]


# -- idempotency -----------------------------------------------------------------------------------

async def two_distributor_world(uows, demo):
    kd, gd = await distributor(uows, demo), await distributor(uows, demo)
    c = await member(uows, demo)
    await bind(uows, demo, c, gd.code)
    await bind(uows, demo, gd.member_id, kd.code)                     # a self-binding to drop
    s = await sku(uows, demo, price_fen=10_000)
    await commissions(uows, demo, (await paid_order(uows, demo, c, [(s, 1)])).id)
    async with uows() as uow:
        await service.adjust(uow, demo.id, gd.id, 777, reason="奖励", actor="admin:1", ref="g", now=NOW)
        await uow.commit()
    return kd, gd, c


async def test_delivering_the_event_twice_changes_nothing_more(uows, demo):
    kd, gd, c = await two_distributor_world(uows, demo)
    before = await total_fen(uows, demo, kd.id, gd.id)
    keep, gone = await merged(uows, demo, kd.member_id, gd.member_id)
    assert (await deliver(uows, demo, keep, gone)).applied
    once = await snapshot(uows, demo)
    again = await deliver(uows, demo, keep, gone, now=NOW + timedelta(minutes=5))
    assert not again.applied
    assert await snapshot(uows, demo) == once and once["audit"] == 1
    assert await total_fen(uows, demo, kd.id, gd.id) == before
    assert (await fresh(uows, demo, keep)).available_fen == 777


async def test_concurrent_deliveries_apply_the_merge_once(uows, demo):
    kd, gd, c = await two_distributor_world(uows, demo)
    before = await total_fen(uows, demo, kd.id, gd.id)
    keep, gone = await merged(uows, demo, kd.member_id, gd.member_id)
    outcomes = await asyncio.gather(*(deliver(uows, demo, keep, gone) for _ in range(3)))
    assert sorted(o.applied for o in outcomes) == [False, False, True]
    snap = await snapshot(uows, demo)
    assert snap["audit"] == 1
    assert sum(1 for row in snap["ledger"] if row[2] == "merge_transfer") == 4     # frozen and available, out + in
    assert await total_fen(uows, demo, kd.id, gd.id) == before
    k = await fresh(uows, demo, keep)
    assert (k.frozen_fen, k.available_fen) == (500 + 1000, 777)     # its level-2 share + the merged one's
    await no_self_bindings(uows, demo)
    assert await referrer(uows, demo, c) == keep


async def test_a_merge_delivered_after_a_later_one_still_reaches_the_final_member(uows, demo):
    oldest = await member(uows, demo)
    middle = await member(uows, demo)
    gd = await distributor(uows, demo)
    c = await member(uows, demo)
    await bind(uows, demo, c, gd.code)
    first = await merged(uows, demo, middle, gd.member_id)            # middle keeps gd's member
    second = await merged(uows, demo, oldest, middle)                 # then oldest keeps middle
    await deliver(uows, demo, *second)                                # the outbox delivered these
    await deliver(uows, demo, *first)                                 # out of order
    assert (await fresh(uows, demo, oldest)).code == gd.code
    assert await referrer(uows, demo, c) == oldest
    assert await fresh(uows, demo, middle) is None
