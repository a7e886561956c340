"""`member.merged`, the referral side: two members turned out to be one person
(social_mall/loyalty/merge.py keeps the older one and moves identities, orders, points
and coupons); this moves the merged member's referral state to the kept member.

The rules (pure parts in rules.py, "member merges"):

* Their own binding (who referred them): the tenant's binding mode picks between the two
  members' live bindings as if they were two touches of one person (first-touch: the
  earlier, last-touch: the later; a tie keeps the kept member's). A binding between the
  two, or one that would close a cycle once the downline moved, is dropped: nobody is
  ever bound to themself.
* Downline: bindings to the merged member now point at the kept member.
* Distributor records (`rules.distributor_merge`): only the merged member's → it becomes
  the kept member's as it is (code, status, level, balances, ledger, withdrawals). Both →
  the kept member's record stays and takes over the other's commissions and withdrawals
  in flight, and its balance through transfer entries on both ledgers (out on one, in on
  the other: the ledger stays append-only and balance = sum of ledger holds on each
  record); the merged record is closed (`merged`) and its code leads to the kept
  record, so QR codes and links already shared keep crediting the same person. A kept
  member with only a bare application (pending/rejected, never any money) gives way to
  the merged member's distributor record.
* Withdrawals in flight move with the rest: their hold left the merged record's balance
  before the transfer, so a rejection or failed payout returning the funds to the kept
  record leaves both records exact (and nothing is created or lost across the two).
  Every withdrawal of the merged member is paid to the kept member (who has the
  identities now).
* Commissions the merged member earned as a buyer name the kept member.

Applied once per merged member: the first thing written is a `referral_merges` row with a
unique key, so a repeated delivery finds it and changes nothing, and a concurrent one
waits on it (PostgreSQL) or on the database lock (SQLite), then does the same. The
distributor rows are locked before balances move, so a commission or reversal on them
waits for the merge (PostgreSQL resolves a crosswise wait by failing one transaction,
which the outbox retries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from social_mall.referral import rules
from social_mall.referral.rules import BindingPick, Bucket, DistributorStatus, EntryKind, RecordMerge
from social_mall.referral.service import MAX_HOPS, _post, program, repo, upline
from storage.referral_models import Binding, Distributor, ReferralMerge
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

D = DistributorStatus
IN_FLIGHT = (rules.WithdrawalStatus.REQUESTED, rules.WithdrawalStatus.APPROVED)


@dataclass(frozen=True)
class MergeOutcome:
    kept_member_id: int
    merged_member_id: int
    applied: bool                               # False: applied before (a repeated delivery)
    binding: BindingPick = BindingPick.NONE     # which of the two bindings the kept member has now
    referrer_member_id: int | None = None
    dropped_self: int = 0                       # bindings between the two, dropped
    downline: int = 0                           # bindings now pointing at the kept member
    record: RecordMerge = RecordMerge.NONE
    distributor_id: int | None = None           # the kept member's record after the merge
    frozen_fen: int = 0                         # transferred onto it (ABSORB)
    available_fen: int = 0
    commissions: int = 0                        # commissions that changed record (ABSORB)
    withdrawals: tuple[int, ...] = field(default=())   # withdrawals in flight that changed record


async def successor(uow: UnitOfWork, tenant: int, member_id: int) -> int:
    """The member `member_id` finally merged into (itself when never merged)."""
    r, current = repo(uow), member_id
    for _ in range(MAX_HOPS):
        into = await r.merged_into(tenant, current)
        if into is None or into == current:
            break
        current = into
    return current


async def absorb_member(uow: UnitOfWork, tenant: int, keep: int, gone: int, *, now: datetime) -> MergeOutcome:
    """Move `gone`'s referral state to `keep` (see the module docstring). Idempotent."""
    r = repo(uow)
    # if the kept member was merged further already (deliveries out of order), go there
    keep = await successor(uow, tenant, keep)
    if keep == gone or not await r.claim_merge(
            ReferralMerge(tenant_id=tenant, merged_member_id=gone, kept_member_id=keep, created_at=now)):
        return MergeOutcome(keep, gone, applied=False)

    dk, dg = await r.distributor_of(tenant, keep, fresh=True), await r.distributor_of(tenant, gone, fresh=True)
    before: dict[str, object] = {
        "kept_referrer": _referrer(await r.binding(tenant, keep)),
        "merged_referrer": _referrer(await r.binding(tenant, gone)),
        "kept_distributor": _describe(dk), "merged_distributor": _describe(dg)}
    # one referred the other: after the merge that is the person referring themself
    dropped = await r.drop_binding(tenant, keep, gone) + await r.drop_binding(tenant, gone, keep)
    downline = await r.move_downline(tenant, gone, keep)
    pick, referrer = await _own_binding(uow, tenant, keep, gone, now)

    record, dist = await _distributors(uow, tenant, keep, gone, dk, dg, now)
    withdrawals_paid_to = await r.withdrawals_to_member(tenant, gone, keep)
    bought = await r.move_buyer(tenant, gone, keep)
    outcome = MergeOutcome(keep, gone, True, pick, referrer, dropped, downline, record, *dist)
    uow.audit(tenant, "system", "referral.member_merged", f"member:{keep}", before=before, after={
        "from_member_id": gone, "binding": str(pick), "referrer_member_id": referrer, "dropped_self": dropped,
        "downline": downline, "record": str(record), "distributor_id": outcome.distributor_id,
        "transferred_frozen_fen": outcome.frozen_fen, "transferred_available_fen": outcome.available_fen,
        "commissions_moved": outcome.commissions, "withdrawals_moved": list(outcome.withdrawals),
        "withdrawals_paid_to_kept": withdrawals_paid_to, "buyer_commissions": bought,
    })
    log.info("referral.member_merged", extra={"tenant": tenant, "kept": keep, "merged": gone,
                                              "binding": str(pick), "record": str(record)})
    return outcome


def _referrer(b: Binding | None) -> int | None:
    return b.distributor_member_id if b is not None else None


async def _own_binding(uow: UnitOfWork, tenant: int, keep: int, gone: int, now: datetime
                       ) -> tuple[BindingPick, int | None]:
    """Which of the two members' bindings the kept member ends up with (the downline has
    moved already, so a cycle through it shows in the referrer's upline)."""
    r = repo(uow)
    bk, bg = await r.binding(tenant, keep), await r.binding(tenant, gone)

    async def touch(b: Binding | None) -> rules.Touch | None:
        if b is None:
            return None
        chain = await upline(uow, tenant, b.distributor_member_id, now)
        allowed = b.distributor_member_id not in (keep, gone) and keep not in chain and gone not in chain
        return rules.Touch(b.distributor_member_id, b.bound_at, b.expires_at, allowed)

    tk, tg = await touch(bk), await touch(bg)
    settings = await program(uow, tenant)
    pick = rules.pick_binding(tk, tg, settings.binding_mode, now)
    if pick == BindingPick.MERGED:
        assert bg is not None
        if bk is not None:
            await r.drop_binding(tenant, keep)
        await r.hand_binding(tenant, bg.id, keep)
        return pick, bg.distributor_member_id
    if bg is not None:
        await r.drop_binding(tenant, gone)
    if pick == BindingPick.KEPT:
        assert bk is not None
        return pick, bk.distributor_member_id
    if bk is not None and tk is not None and not tk.allowed:
        await r.drop_binding(tenant, keep)      # it would close a cycle
    return pick, None


async def _distributors(uow: UnitOfWork, tenant: int, keep: int, gone: int, dk: Distributor | None,
                        dg: Distributor | None, now: datetime
                        ) -> tuple[RecordMerge, tuple[int | None, int, int, int, tuple[int, ...]]]:
    """The distributor records (rules.distributor_merge). Returns what happened and
    (kept record id, frozen moved, available moved, commissions moved, withdrawals moved)."""
    r = repo(uow)
    how = rules.distributor_merge(D(dk.status) if dk else None, D(dg.status) if dg else None,
                                  kept_has_history=dk is not None and await r.has_history(tenant, dk.id))
    if how == RecordMerge.NONE:
        return how, (dk.id if dk else None, 0, 0, 0, ())
    assert dg is not None
    if how == RecordMerge.REPLACE:
        assert dk is not None
        await r.delete_distributor(tenant, dk.id)   # a bare application: nothing refers to it
    if how in (RecordMerge.MOVE, RecordMerge.REPLACE):
        await r.hand_distributor(tenant, dg.id, gone, keep)
        return how, (dg.id, 0, 0, 0, ())

    assert dk is not None
    # ABSORB. Lock both rows first: a commission, reversal or withdrawal return on either
    # waits until this commits, and the balance read below is the one transferred.
    locked = {d.id: d for d in await r.lock_distributors(tenant, [keep, gone])}
    src, dst = locked[dg.id], locked[dk.id]
    moved_w = await r.move_withdrawals(tenant, src.id, dst.id, IN_FLIGHT)
    moved_c = await r.move_commissions(tenant, src.id, dst.id)
    amounts = {Bucket.FROZEN: src.frozen_fen, Bucket.AVAILABLE: src.available_fen}
    for bucket, amount in amounts.items():
        if amount == 0:
            continue
        await _post(uow, tenant, src.id, EntryKind.MERGE_TRANSFER, bucket, -amount, f"mrg:{gone}:out:{bucket}",
                    note=f"member {gone} merged into {keep}: to distributor {dst.id}", now=now)
        await _post(uow, tenant, dst.id, EntryKind.MERGE_TRANSFER, bucket, amount, f"mrg:{gone}:in:{bucket}",
                    note=f"member {gone} merged into {keep}: from distributor {src.id}", now=now)
    if dst.level_id is None and src.level_id is not None:
        await r.set_distributor(tenant, dst.id, level_id=src.level_id)
    if not await r.move_distributor(tenant, src.id, src.status, D.MERGED, decided_at=now):
        raise RuntimeError(f"distributor {src.id} changed during the merge")  # rolled back; the outbox retries
    return how, (dst.id, amounts[Bucket.FROZEN], amounts[Bucket.AVAILABLE], moved_c, tuple(moved_w))


def _describe(d: Distributor | None) -> dict[str, object] | None:
    if d is None:
        return None
    return {"id": d.id, "code": d.code, "status": d.status, "frozen_fen": d.frozen_fen,
            "available_fen": d.available_fen}
