"""Member tags (social_mall/members/tags.py): a tenant's tags given by hand and by rules,
read by the audience of pushes and broadcasts, following a member through a merge."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from social_mall.console.errors import InvalidInputError
from social_mall.errors import NotFoundError
from social_mall.loyalty.merge import merge_members
from social_mall.members import tags
from social_mall.members.audience import audience
from social_mall.members.service import resolve_member
from storage.models import AuditEntry, MemberTag, MemberTagLink

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)


async def people(uows, tenant: int, n: int, prefix: str) -> list[int]:
    out = []
    async with uows() as uow:
        for i in range(n):
            m, _ = await resolve_member(uow, tenant, "mp", f"o_{prefix}_{i}")
            out.append(m.id)
        await uow.commit()
    return out


async def holders(uows, tenant: int, tag_id: int) -> dict[int, str]:
    async with uows() as uow:
        rows = await uow.session.execute(select(MemberTagLink.member_id, MemberTagLink.source).where(
            MemberTagLink.tenant_id == tenant, MemberTagLink.tag_id == tag_id))
        return {int(m): s for m, s in rows}


def test_tag_names_are_cleaned_and_bounded():
    assert tags.clean_name("  老客户 ") == "老客户"
    assert tags.clean_name("Ｖ\u0049\u0050") == "ＶIP"
    assert tags.clean_name("e\u0301") == "\u00e9"  # NFC
    for bad in ("", "   ", "x" * 31, "a\x00b", "a\u202eb", "a\u2028b"):
        assert tags.clean_name(bad) is None, bad
    assert tags.clean_name("x" * 30) == "x" * 30
    with pytest.raises(ValueError):
        tags.rule_source("manual")


async def test_a_tag_given_by_hand_once_and_taken_away_audited(uows, demo):
    a, b = await people(uows, demo.id, 2, "tag_hand")
    async with uows() as uow:
        assert await tags.tag_member(uow, demo.id, a, " VIP ", actor="admin:1", now=NOW)
        assert not await tags.tag_member(uow, demo.id, a, "VIP", actor="admin:1", now=NOW)   # holds it already
        assert await tags.tag_member(uow, demo.id, b, "VIP", actor="admin:1", now=NOW)
        await uow.commit()
    async with uows() as uow:
        (vip,) = await tags.list_tags(uow, demo.id)
        assert (vip.name, vip.members) == ("VIP", 2)
        assert [t.name for t in await tags.member_tags(uow, demo.id, a)] == ["VIP"]
        assert await tags.untag_member(uow, demo.id, b, vip.id, actor="admin:1")
        assert not await tags.untag_member(uow, demo.id, b, vip.id, actor="admin:1")
        await uow.commit()
    assert await holders(uows, demo.id, vip.id) == {a: "manual"}
    async with uows() as uow:
        actions = sorted((await uow.session.execute(select(AuditEntry.action).where(
            AuditEntry.tenant_id == demo.id, AuditEntry.action.like("member%tag%")))).scalars())
    assert actions == ["member.tag", "member.tag", "member.untag", "member_tag.create"]


async def test_refusals_change_nothing(uows, demo):
    (a,) = await people(uows, demo.id, 1, "tag_refuse")
    for bad in ("", "x" * 31, "a\x07"):
        async with uows() as uow:
            with pytest.raises(InvalidInputError):
                await tags.tag_member(uow, demo.id, a, bad, actor="admin:1", now=NOW)
    async with uows() as uow:
        with pytest.raises(NotFoundError):
            await tags.tag_member(uow, demo.id, 987654321, "VIP", actor="admin:1", now=NOW)
    async with uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(MemberTag)) == 0
        assert await uow.session.scalar(select(func.count()).select_from(MemberTagLink)) == 0


async def test_a_rule_tags_exactly_its_members_and_leaves_tags_given_by_hand(uows, demo):
    a, b, c, d = await people(uows, demo.id, 4, "tag_rule")
    async with uows() as uow:
        tag = await tags.create_tag(uow, demo.id, "复购", actor="admin:1", now=NOW)
        await tags.tag_member(uow, demo.id, d, "复购", actor="admin:1", now=NOW)   # by hand
        assert await tags.sync_rule_tag(uow, demo.id, tag, "segment:1", [a, b, d], now=NOW) == (2, 0)
        assert await tags.sync_rule_tag(uow, demo.id, tag, "segment:1", [a, b, d], now=NOW) == (0, 0)  # idempotent
        await uow.commit()
    assert await holders(uows, demo.id, tag) == {a: "segment:1", b: "segment:1", d: "manual"}
    async with uows() as uow:   # b and d left the rule, c joined: d keeps the tag given by hand
        assert await tags.sync_rule_tag(uow, demo.id, tag, "segment:1", [a, c], now=NOW) == (1, 1)
        await uow.commit()
    assert await holders(uows, demo.id, tag) == {a: "segment:1", c: "segment:1", d: "manual"}
    async with uows() as uow:
        assert [m for m, _ in await audience(uow, demo.id, "mp", tag=tag)] == [a, c, d]
        assert [m for m, _ in await audience(uow, demo.id, "mp", tag=tag + 999)] == []
        with pytest.raises(NotFoundError):
            await tags.sync_rule_tag(uow, demo.id, tag + 999, "segment:1", [a], now=NOW)


async def test_a_merged_members_tags_follow_it_without_doubles(uows, demo):
    keep, gone = await people(uows, demo.id, 2, "tag_merge")
    async with uows() as uow:
        for name in ("VIP", "团长"):
            await tags.tag_member(uow, demo.id, gone, name, actor="admin:1", now=NOW)
        await tags.tag_member(uow, demo.id, keep, "VIP", actor="admin:1", now=NOW)
        await uow.commit()
    async with uows() as uow:
        await merge_members(uow, demo.id, keep, gone, via="admin", actor="admin:1", now=NOW)
        await uow.commit()
    async with uows() as uow:
        assert sorted(t.name for t in await tags.member_tags(uow, demo.id, keep)) == ["VIP", "团长"]
        assert await tags.member_tags(uow, demo.id, gone) == []
        assert {t.name: t.members for t in await tags.list_tags(uow, demo.id)} == {"VIP": 1, "团长": 1}


async def test_deleting_a_tag_takes_it_from_everyone(uows, demo):
    a, b = await people(uows, demo.id, 2, "tag_del")
    async with uows() as uow:
        t = await tags.create_tag(uow, demo.id, "临时", actor="admin:1", now=NOW)
        await tags.sync_rule_tag(uow, demo.id, t, "segment:9", [a, b], now=NOW)
        await tags.delete_tag(uow, demo.id, t, actor="admin:1")
        await uow.commit()
    async with uows() as uow:
        assert await tags.list_tags(uow, demo.id) == []
        assert await uow.session.scalar(select(func.count()).select_from(MemberTagLink)) == 0


async def test_two_admins_renaming_two_tags_to_one_name_at_once_one_is_refused(uows, other_worker, demo, backend):
    """PostgreSQL, two separate connections: the second's name check passes before the first
    commits and its UPDATE waits on the unique (tenant, name); when the first commits it is
    refused (a savepoint: its transaction goes on). SQLite runs writers one after another:
    the second's check sees the first's name."""
    import asyncio

    from sqlalchemy import text

    async with uows() as uow:
        a = await tags.create_tag(uow, demo.id, "甲", actor="admin:1", now=NOW)
        b = await tags.create_tag(uow, demo.id, "乙", actor="admin:1", now=NOW)
        await uow.commit()
    if backend.name != "pg":
        async with uows() as first:
            assert await tags.rename_tag(first, demo.id, a, "丙", actor="admin:1")
            await first.commit()
        async with other_worker() as second:
            with pytest.raises(InvalidInputError):
                await tags.rename_tag(second, demo.id, b, "丙", actor="admin:2")
    else:
        async with uows() as first, other_worker() as second, uows() as watcher:
            assert await tags.rename_tag(first, demo.id, a, "丙", actor="admin:1")
            late = asyncio.create_task(tags.rename_tag(second, demo.id, b, "丙", actor="admin:2"))
            for _ in range(400):       # until the second waits on the first's row lock
                waiting = await watcher.session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
                await watcher.session.rollback()
                if waiting or late.done():
                    break
                await asyncio.sleep(0.05)
            assert not late.done()
            await first.commit()
            with pytest.raises(InvalidInputError):
                await late
            assert await tags.tag_name(second, demo.id, b) == "乙"      # the transaction goes on
            await second.rollback()
    async with uows() as uow:
        assert sorted(t.name for t in await tags.list_tags(uow, demo.id)) == ["丙", "乙"]
