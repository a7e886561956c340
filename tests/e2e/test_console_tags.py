"""The console's member tags (会员标签) over HTTP: the tenant's tags with their kind and
member count, rename (a taken or bad name refused, nothing changed), delete behind a
confirmation (audited, the tag taken from everyone), the members list filtered by one or
several tags with the search and the pager, and another tenant's tag ids answered 404 with
nothing changed."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import func, select, update

from social_mall.members import tags
from social_mall.members.service import resolve_member
from storage.models import AuditEntry, Member, MemberTag, MemberTagLink
from tests.fakes.console_kit import CSRF_RE, login, make_admin, make_tenant

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)
ROW_IDS = re.compile(r'<a href="/console/members/(\d+)">')


async def seed(mall, tenant: int, n: int, prefix: str, *, nickname: str = "") -> list[int]:
    out = []
    async with mall.svc.uows() as uow:
        for i in range(n):
            m, _ = await resolve_member(uow, tenant, "mp", f"o_{prefix}_{i:03d}")
            if nickname:
                await uow.session.execute(update(Member).where(Member.id == m.id).values(nickname=f"{nickname}{i}"))
            out.append(m.id)
        await uow.commit()
    return out


async def give(mall, tenant: int, name: str, members: list[int]) -> int:
    async with mall.svc.uows() as uow:
        for m in members:
            await tags.tag_member(uow, tenant, m, name, actor="admin:1", now=NOW)
        tag_id = await tags.create_tag(uow, tenant, name, actor="admin:1", now=NOW)
        await uow.commit()
    return tag_id


async def state(mall) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, int]], int]:
    """Every tag, every link and the audit length: what a refusal must leave alone."""
    async with mall.svc.uows() as uow:
        t = sorted((int(i), int(te), n) for i, te, n in await uow.session.execute(
            select(MemberTag.id, MemberTag.tenant_id, MemberTag.name)))
        links = sorted((int(a), int(b), int(c)) for a, b, c in await uow.session.execute(
            select(MemberTagLink.tenant_id, MemberTagLink.tag_id, MemberTagLink.member_id)))
        audits = int(await uow.session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    return t, links, audits


async def listed(mall, query: str) -> list[int]:
    resp = await mall.client.get(f"/console/members?{query}")
    assert resp.status == 200
    return [int(x) for x in ROW_IDS.findall(await resp.text())]


async def test_tags_page_rename_delete_and_the_members_filter(mall):
    tenant = (await mall.svc.tenant("demo")).id
    people = await seed(mall, tenant, 25, "ctag", nickname="花友")
    vip = await give(mall, tenant, "VIP", people[:22])            # 22: more than one page
    north = await give(mall, tenant, "华北", people[20:25])
    empty = await give(mall, tenant, "空标签", [])
    await make_admin(mall.svc.uows, "boss_tags")
    csrf = await login(mall.client, "boss_tags")

    page = await (await mall.client.get("/console/tags")).text()
    rows = re.findall(r'<tr data-tag="(\d+)">\s*<td><a[^>]*>([^<]+)</a></td>\s*<td>([^<]+)', page)
    assert [(int(i), n, k) for i, n, k in rows] == [(vip, "VIP", "手动"), (north, "华北", "手动"),
                                                    (empty, "空标签", "手动")]
    assert '<td>22</td>' in page and '<td>5</td>' in page and '<td>0</td>' in page
    assert f'href="/console/members?tag={vip}"' in page

    # the members list: one tag (paginated, the pager keeps the filter), two tags, with the search
    first = await listed(mall, f"tag={vip}")
    assert len(first) == 20 and set(first) <= set(people[:22])
    text = await (await mall.client.get(f"/console/members?tag={vip}")).text()
    assert "共 22 条" in text and f"tag={vip}&amp;page=2" in text
    assert set(first + await listed(mall, f"tag={vip}&page=2")) == set(people[:22])
    assert set(await listed(mall, f"tag={vip}&tag={north}")) == {people[20], people[21]}
    assert set(await listed(mall, f"tag={north}&q=花友24")) == {people[24]}
    assert await listed(mall, f"tag={empty}") == []
    assert await listed(mall, "tag=x&tag=&tag=-1") == await listed(mall, "")   # junk ids are ignored

    # rename: done and audited; the same name is a no-op; a taken or bad name is refused, nothing changed
    resp = await mall.client.post(f"/console/tags/{north}/rename", data={"_csrf": csrf, "name": " 华北区 "},
                                  allow_redirects=False)
    assert resp.status == 303
    before = await state(mall)
    assert (north, tenant, "华北区") in before[0]
    for bad, why in (("VIP", "已有同名标签"), ("", "标签名"), ("x" * 31, "标签名")):
        refused = await mall.client.post(f"/console/tags/{north}/rename", data={"_csrf": csrf, "name": bad})
        assert refused.status == 400 and why in await refused.text()
    assert await state(mall) == before

    # delete: asks first (the count is shown); without the confirmation nothing happens
    confirm = await (await mall.client.get(f"/console/tags/{vip}/delete")).text()
    assert "VIP" in confirm and "<strong>22</strong>" in confirm and 'name="confirm" value="1"' in confirm
    unconfirmed = await mall.client.post(f"/console/tags/{vip}/delete", data={"_csrf": csrf},
                                         allow_redirects=False)
    assert unconfirmed.status == 303 and unconfirmed.headers["Location"] == f"/console/tags/{vip}/delete"
    assert await state(mall) == before
    done = await mall.client.post(f"/console/tags/{vip}/delete", data={"_csrf": csrf, "confirm": "1"},
                                  allow_redirects=False)
    assert done.status == 303
    after = await state(mall)
    assert vip not in {i for i, _, _ in after[0]} and vip not in {t for _, t, _ in after[1]}
    assert [x for x in after[1]] == [x for x in before[1] if x[1] != vip]
    async with mall.svc.uows() as uow:
        entry = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "member_tag.delete"))
    assert entry.subject == f"tag:{vip}" and entry.actor.startswith("admin:") and "22" in str(entry.before)
    assert "VIP" not in re.sub(r"<[^>]+>", " ", (await (await mall.client.get("/console/tags")).text()))
    gone = await mall.client.get(f"/console/tags/{vip}/delete")
    assert gone.status == 404


async def test_another_tenants_tag_is_not_found_and_left_alone(mall):
    demo = (await mall.svc.tenant("demo")).id
    other = await make_tenant(mall.svc.uows, "tagother")
    (mine,) = await seed(mall, demo, 1, "ctag_me")
    theirs_people = await seed(mall, other, 3, "ctag_them")
    theirs = await give(mall, other, "他们的", theirs_people)
    await make_admin(mall.svc.uows, "boss_tags_iso")
    csrf = await login(mall.client, "boss_tags_iso")
    before = await state(mall)

    assert (await mall.client.get(f"/console/tags/{theirs}/delete")).status == 404
    for path, data in ((f"/console/tags/{theirs}/rename", {"name": "我的"}),
                       (f"/console/tags/{theirs}/delete", {"confirm": "1"})):
        resp = await mall.client.post(path, data={"_csrf": csrf, **data})
        assert resp.status == 404, path
    assert await state(mall) == before
    assert "他们的" not in await (await mall.client.get("/console/tags")).text()
    assert await listed(mall, f"tag={theirs}") == []        # their tag filters out every member of mine
    assert mine in await listed(mall, "")
