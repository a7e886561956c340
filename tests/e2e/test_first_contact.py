"""First contact: many new members at once, through the real endpoint and on both backends.

Every new user's first message creates exactly one member (one identity, one
member.joined event, no row left behind by a lost race) and is answered once; a first
message WeChat delivers twice is answered once. Speed is the bench's business
(bench/wechat_endpoint.py, app-*-first), not these tests'.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.members.desk import DESK, SightDesk
from social_mall.members.service import resolve_member
from storage.models import Member, MemberIdentity, OutboxEvent
from tests.conftest import TEST_APP_ID, TEST_TOKEN, app_settings

NEW_USERS = 40


def simulator(client) -> MPSimulator:
    return MPSimulator(client.session, str(client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                       app_id=TEST_APP_ID)


async def census(uows, before: tuple[int, ...] = (0, 0, 0, 0)) -> tuple[int, int, int, int]:
    """(members behind an mp identity, mp identities, members with no identity at all,
    member.joined events), less `before` (the demo shop's own members)."""
    async with uows() as uow:
        s = uow.session
        with_mp = await s.scalar(
            select(func.count(func.distinct(MemberIdentity.member_id))).where(MemberIdentity.channel == "mp"))
        idents = await s.scalar(select(func.count()).select_from(MemberIdentity)
                                .where(MemberIdentity.channel == "mp"))
        orphans = await s.scalar(select(func.count()).select_from(Member).where(
            ~select(MemberIdentity.id).where(MemberIdentity.member_id == Member.id).exists()))
        joined = await s.scalar(select(func.count(func.distinct(OutboxEvent.event_uid)))
                                .where(OutboxEvent.topic == "member.joined"))
    now = (int(with_mp or 0), int(idents or 0), int(orphans or 0), int(joined or 0))
    return tuple(a - b for a, b in zip(now, before))  # type: ignore[return-value]


async def test_many_new_users_at_once_each_get_one_member_and_one_answer(mall):
    sim = simulator(mall.client)
    before = await census(mall.svc.uows)
    users = [f"oFirstContact_{i:012d}" for i in range(NEW_USERS)]
    answers = await asyncio.gather(*(sim.text(u, "逛逛") for u in users))
    assert all(a.status == 200 and a.msg_type == "text" for a in answers)
    assert all("水果生鲜" in a.content for a in answers)  # the category list, to every one of them
    await mall.settle()
    assert await census(mall.svc.uows, before) == (NEW_USERS, NEW_USERS, 0, NEW_USERS)
    # in the desk's batched transactions, none of them fallen back to one sight each
    desk = mall.svc.uows().shared[DESK]
    assert isinstance(desk, SightDesk)
    assert desk.sights == NEW_USERS and desk.batches < NEW_USERS
    # and the second message is a member's like any other
    again = await asyncio.gather(*(sim.text(u, "逛逛") for u in users[:5]))
    assert all("水果生鲜" in a.content for a in again)
    assert await census(mall.svc.uows, before) == (NEW_USERS, NEW_USERS, 0, NEW_USERS)


async def test_a_first_message_delivered_twice_at_once_is_answered_once(mall):
    sim = simulator(mall.client)
    before = await census(mall.svc.uows)
    user = "oFirstTwice_000000000001"
    query, body = sim.signed_request(sim.text_xml(user, "逛逛"), user=user)
    first, second = await asyncio.gather(sim.post(query, body), sim.post(query, body))
    bodies = sorted([first.body, second.body], key=len)
    assert bodies[0] == "success"                  # the repeat: no effect
    assert "水果生鲜" in bodies[1]                  # the one answer
    await mall.settle()
    assert await census(mall.svc.uows, before) == (1, 1, 0, 1)


async def test_first_messages_of_one_user_on_two_workers_make_one_member(mall, backend, tmp_path, aiohttp_client):
    """Two workers (two apps, two connection pools: on PostgreSQL, separate connections)
    take the new user's first two messages at once: one member, both messages answered."""
    from bot import build_app
    from handlers.context import SERVICES

    other = build_app(app_settings(backend, tmp_path, mall.fake.base_url,
                                   kv_prefix=mall.settings.kv_prefix, data_dir=tmp_path / "var2"),
                      auto_setup=True)
    client = await aiohttp_client(other)
    if not backend.redis_url:  # the embedded store is per process: share it to model two workers
        other[SERVICES].kv = other[SERVICES].runner.kv = mall.svc.kv
    sims = [simulator(mall.client), simulator(client)]
    before = await census(mall.svc.uows)
    for round_ in range(5):
        user = f"oFirstTwoWorkers_{round_:08d}"
        answers = await asyncio.gather(sims[0].text(user, "逛逛"), sims[1].text(user, "帮助"))
        assert all(a.status == 200 and a.msg_type == "text" and a.content for a in answers)
    await mall.settle()
    assert await census(mall.svc.uows, before) == (5, 5, 0, 5)


async def test_resolving_one_identity_in_two_open_transactions_makes_one_member(uows, other_worker, demo):
    """The race itself, on two connections: the second transaction's identity insert meets
    the first's (on PostgreSQL it waits for that commit, then does nothing; SQLite's
    single writer makes it wait at its first statement); it ends with the first's member
    and leaves no member row of its own behind."""
    before = await census(uows)
    async with uows() as first:
        mine, created = await resolve_member(first, demo.id, "mp", "oRace_000000000000000001")
        assert created

        async def second() -> tuple[int, bool]:
            async with other_worker() as uow:
                theirs, made = await resolve_member(uow, demo.id, "mp", "oRace_000000000000000001")
                await uow.commit()
                return theirs.id, made

        racer = asyncio.create_task(second())
        await asyncio.sleep(0.2)  # the racer is in (or queued behind) this transaction
        await first.commit()
    assert await racer == (mine.id, False)
    assert await census(uows, before) == (1, 1, 0, 1)


async def test_an_identity_taken_first_leaves_the_unit_of_work_usable(uows, demo):
    """The loser's path without a savepoint: the identity insert does nothing, its own new
    member row goes, and the same transaction goes on to commit other work."""
    before = await census(uows)
    async with uows() as uow:
        winner, _ = await resolve_member(uow, demo.id, "mp", "oTaken_000000000000000001")
        await uow.commit()
    async with uows() as uow:
        members = uow.members
        now = datetime.now(timezone.utc)
        loser = await members.insert(demo.id, nickname="", unionid=None, entry_source="", now=now)
        assert not await members.claim_identity(demo.id, loser, "mp", "oTaken_000000000000000001", now)
        await members.delete_new(demo.id, loser)
        again, created = await resolve_member(uow, demo.id, "mp", "oTaken_000000000000000002")
        assert created
        await uow.commit()
    assert await census(uows, before) == (2, 2, 0, 2)
    async with uows() as uow:
        assert (await uow.members.row_by_identity(demo.id, "mp", "oTaken_000000000000000001")).id == winner.id


async def test_a_crowd_of_new_members_gets_the_welcome_coupons_once_each_until_they_run_out(mall):
    """The welcome coupons of a crowd's member.joined go out in lots (one transaction per
    lot): one per member, never more than the template's total."""
    from social_mall.loyalty import service as loyalty
    from social_mall.pricing.rules import CouponKind
    from storage.loyalty_models import Coupon

    async with mall.svc.uows() as uow:
        tenant = await mall.svc.tenant("demo")
        await loyalty.create_template(uow, tenant.id, name="新人券", kind=CouponKind.SHIPPING, claimable=False,
                                      issue_on="member.joined", total_qty=30)
        await uow.commit()
    sim = simulator(mall.client)
    answers = await asyncio.gather(*(sim.text(f"oWelcome_{i:012d}", "逛逛") for i in range(NEW_USERS)))
    assert all("水果生鲜" in a.content for a in answers)
    await mall.settle()
    async with mall.svc.uows() as uow:
        holders = (await uow.session.scalars(select(Coupon.member_id))).all()
    assert len(holders) == 30 and len(set(holders)) == 30
