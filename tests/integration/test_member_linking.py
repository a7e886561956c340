"""One-time identity links (social_mall/members/linking.py) on real databases, and the
group-buy module following a member merge (seats and teams move with the member)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from social_mall.groupbuy import service as groupbuy
from social_mall.loyalty.merge import merge_members
from social_mall.members import linking
from social_mall.members.service import resolve_member
from storage.groupbuy_models import GroupbuySeat, GroupbuyTeam
from storage.identity_models import MemberLinkToken
from storage.models import MemberIdentity
from tests.fakes.groupbuy_kit import T0, TIMEOUT, make_campaign, make_member


async def wecom_member(uows, tenant, userid: str) -> int:
    async with uows() as uow:
        m, _ = await resolve_member(uow, tenant.id, "wecom", userid)
        await uow.commit()
    return m.id


async def issue(uows, tenant, member: int, userid: str, *, now=T0) -> str:
    async with uows() as uow:
        token = await linking.issue_link(uow, tenant.id, member, channel="wecom", external_id=userid, now=now,
                                         purpose="wecom_group")
        await uow.commit()
    return token


async def redeem(uows, tenant, token: str, openid: str, *, now=T0) -> linking.LinkResult:
    async with uows() as uow:
        try:
            result = await linking.redeem_link(uow, tenant.id, token, channel="mp", external_id=openid, now=now,
                                               merge=merge_members)
        except Exception:
            await uow.rollback()
            raise
        await uow.commit()
    return result


async def owner(uows, tenant, channel: str, external_id: str) -> int | None:
    async with uows() as uow:
        m = await uow.members.by_identity(tenant.id, channel, external_id)
    return m.id if m else None


async def test_a_link_ties_an_unknown_openid_once_and_only_its_hash_is_stored(uows, demo):
    w = await wecom_member(uows, demo, "wm_a")
    token = await issue(uows, demo, w, "wm_a")
    async with uows() as uow:
        view = await linking.peek_link(uow, demo.id, token, T0)
        stored = (await uow.session.scalars(select(MemberLinkToken.token_hash))).all()
    assert (view.member_id, view.channel, view.external_id) == (w, "wecom", "wm_a")
    assert stored == [linking.token_hash(token)] and token not in stored
    result = await redeem(uows, demo, token, "o_link_a")
    assert (result.outcome, result.member_id) == (linking.Outcome.LINKED, w)
    assert await owner(uows, demo, "mp", "o_link_a") == w
    with pytest.raises(linking.LinkUsedError):
        await redeem(uows, demo, token, "o_link_a")
    with pytest.raises(linking.LinkUsedError):
        async with uows() as uow:
            await linking.peek_link(uow, demo.id, token, T0)


async def test_expired_unknown_and_replaced_links_change_nothing(uows, demo):
    w = await wecom_member(uows, demo, "wm_b")
    old = await issue(uows, demo, w, "wm_b")
    token = await issue(uows, demo, w, "wm_b")          # a new link replaces the unused one
    with pytest.raises(linking.LinkUnknownError):
        await redeem(uows, demo, old, "o_link_b")
    with pytest.raises(linking.LinkUnknownError):
        await redeem(uows, demo, "x" * 32, "o_link_b")
    with pytest.raises(linking.LinkUnknownError):
        await redeem(uows, demo, "../../etc", "o_link_b")
    with pytest.raises(linking.LinkExpiredError):
        await redeem(uows, demo, token, "o_link_b", now=T0 + linking.LINK_TTL)
    assert await owner(uows, demo, "mp", "o_link_b") is None
    async with uows() as uow:
        row = await uow.session.scalar(select(MemberLinkToken))
    assert row.used_at is None                            # a refusal spends nothing


async def test_two_clicks_at_once_link_once(uows, demo):
    w = await wecom_member(uows, demo, "wm_c")
    token = await issue(uows, demo, w, "wm_c")
    results = await asyncio.gather(redeem(uows, demo, token, "o_link_c1"), redeem(uows, demo, token, "o_link_c2"),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["LinkResult", "LinkUsedError"]
    async with uows() as uow:
        n = await uow.session.scalar(select(func.count()).select_from(MemberIdentity)
                                     .where(MemberIdentity.channel == "mp"))
    assert n == 1


async def test_a_known_openid_merges_the_members_and_conflicts_are_refused(uows, demo):
    async with uows() as uow:
        follower = (await resolve_member(uow, demo.id, "mp", "o_link_known"))[0].id
        other = (await resolve_member(uow, demo.id, "mp", "o_link_other"))[0].id
        await uow.commit()
    w = await wecom_member(uows, demo, "wm_d")
    result = await redeem(uows, demo, await issue(uows, demo, w, "wm_d"), "o_link_known")
    assert (result.outcome, result.member_id) == (linking.Outcome.MERGED, follower)
    assert await owner(uows, demo, "wecom", "wm_d") == follower
    # the same person again: nothing to do
    again = await redeem(uows, demo, await issue(uows, demo, follower, "wm_d"), "o_link_known")
    assert (again.outcome, again.member_id) == (linking.Outcome.ALREADY, follower)
    # the WeCom member already has another WeChat account: refused, the link stays unspent
    token = await issue(uows, demo, follower, "wm_d")
    with pytest.raises(linking.LinkConflictError) as refused:
        await redeem(uows, demo, token, "o_link_other")
    assert refused.value.reason == "source_has_other"
    assert await owner(uows, demo, "mp", "o_link_other") == other
    async with uows() as uow:
        await linking.peek_link(uow, demo.id, token, T0)
    # a WeChat account whose member has another WeCom identity: refused too
    w2 = await wecom_member(uows, demo, "wm_e")
    with pytest.raises(linking.LinkConflictError) as refused:
        await redeem(uows, demo, await issue(uows, demo, w2, "wm_e"), "o_link_known")
    assert refused.value.reason == "target_has_other"


async def test_a_merge_moves_group_buy_seats_and_teams_but_never_two_seats_in_one_team(uows, demo):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=3)
        keep = await make_member(uow, demo.id, "o_keep")
        gone = await make_member(uow, demo.id, "o_gone", channel="wecom")
        friend = await make_member(uow, demo.id, "o_friend")
        await uow.commit()
    sku = c.prices[0].sku_id

    async def open_(m):
        async with uows() as uow:
            r = await groupbuy.open_team(uow, demo.id, m[0], c.id, sku, 1, address_id=m[1], now=T0, timeout=TIMEOUT)
            await uow.commit()
        return r.team.id

    async def join(m, team):
        async with uows() as uow:
            await groupbuy.join_team(uow, demo.id, m[0], team, sku, 1, address_id=m[1], now=T0, timeout=TIMEOUT)
            await uow.commit()

    both = await open_(friend)
    await join(keep, both)
    await join(gone, both)            # both members sit in this team
    led = await open_(gone)           # gone leads this one
    async with uows() as uow:
        assert await groupbuy.absorb_member(uow, demo.id, keep[0], gone[0]) == (1, 1)
        await uow.commit()
    async with uows() as uow:
        assert await groupbuy.absorb_member(uow, demo.id, keep[0], gone[0]) == (0, 0)   # idempotent
        seats = {(s.team_id, s.member_id) for s in (await uow.session.scalars(select(GroupbuySeat))).all()}
        team = await uow.session.get(GroupbuyTeam, led)
    assert team.leader_member_id == keep[0]
    assert seats == {(both, friend[0]), (both, keep[0]), (both, gone[0]), (led, keep[0])}
    async with uows() as uow:
        unpaid = await groupbuy.unpaid_orders(uow, demo.id, keep[0])
    assert sorted(t for t, _ in unpaid) == [both]   # by the order's owner: gone's orders weren't merged here
    assert timedelta(0) < unpaid[0][1].expires_at - T0 <= TIMEOUT
