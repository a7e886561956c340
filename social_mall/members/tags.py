"""Member tags (会员标签): a tenant's named tags, given to members by hand (the console's
member page; audited) or by a rule (a module's segment: `sync_rule_tag` brings the tag in
line with the members the rule holds now, leaving tags given by hand alone). Broadcasts and
segments read them through `members.audience(tag=…)`; a merge moves the merged member's tags
to the kept member (storage/loyalty_repos.py).

A tag may be synced to WeChat's user tags of the tenant's official accounts (「同步到微信」:
handlers/wechat_tags.py makes it there and records the link here once its members are
tagged). From then on giving, taking, renaming and deleting the tag emit events the outbox
turns into the matching WeChat calls, off the path of the change itself."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from social_mall.errors import NotFoundError
from social_mall.console.errors import InvalidInputError
from social_mall.events import MemberTagDeleted, MemberTagMembersChanged, MemberTagRenamed, MemberTagUnsynced
from storage.tag_repos import TagRepo
from storage.uow import UnitOfWork

NAME_MAX = 30
TAGS_MAX = 200        # tags a tenant may have
CHANGED_LOT = 500     # members in one member_tag.members_changed event
MANUAL = "manual"


@dataclass(frozen=True)
class TagView:
    id: int
    name: str
    members: int = 0
    rule: str = ""   # the rule keeping it up, in words ("": given by hand only)
    synced: int = 0  # official accounts whose user tags it is synced to

    @property
    def kind(self) -> str:
        return "rule" if self.rule else MANUAL


@dataclass(frozen=True)
class MemberTagView:
    id: int
    name: str
    source: str  # "manual" or the rule's key

    @property
    def by_hand(self) -> bool:
        return self.source == MANUAL


def clean_name(raw: str) -> str | None:
    """A tag name as stored (NFC, inner spaces kept, 1..30 characters, no control or format
    characters), or None."""
    name = unicodedata.normalize("NFC", raw).strip()
    if not 1 <= len(name) <= NAME_MAX:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in name):
        return None
    return name


def rule_source(key: str) -> str:
    """The source a rule's links carry ("segment:12"); never "manual"."""
    if not 1 <= len(key) <= 40 or key == MANUAL:
        raise ValueError(f"bad rule key {key!r}")
    return key


TagRules = Callable[[UnitOfWork, int], Awaitable[Mapping[int, str]]]


async def list_tags(uow: UnitOfWork, tenant: int, rules: Sequence[TagRules] = ()) -> list[TagView]:
    """The tenant's tags by name with their member counts; with `rules` (the registry's
    tag_rules) each tag a rule keeps up says which."""
    kept: dict[int, str] = {}
    for r in rules:
        kept.update(await r(uow, tenant))
    repo = TagRepo(uow.session)
    synced = await repo.synced_tags(tenant)
    return [TagView(i, n, c, kept.get(i, ""), synced.get(i, 0)) for i, n, c in await repo.tags(tenant)]


async def get_tag(uow: UnitOfWork, tenant: int, tag_id: int, rules: Sequence[TagRules] = ()) -> TagView:
    found = [t for t in await list_tags(uow, tenant, rules) if t.id == tag_id]
    if not found:
        raise NotFoundError("tag", tag_id)
    return found[0]


async def tag_name(uow: UnitOfWork, tenant: int, tag_id: int) -> str | None:
    return await TagRepo(uow.session).name_of(tenant, tag_id)


async def create_tag(uow: UnitOfWork, tenant: int, raw_name: str, *, actor: str, now: datetime) -> int:
    """The tag of that name (made unless it exists). Audited when made."""
    name = clean_name(raw_name)
    if name is None:
        raise InvalidInputError("tag", "tag_name")
    r = TagRepo(uow.session)
    found = await r.by_name(tenant, name)
    if found is not None:
        return found
    if await r.count(tenant) >= TAGS_MAX:
        raise InvalidInputError("tag", "tags_full")
    tag_id = await r.add_tag(tenant, name, now)
    uow.audit(tenant, actor, "member_tag.create", f"tag:{tag_id}", after={"name": name})
    return tag_id


async def rename_tag(uow: UnitOfWork, tenant: int, tag_id: int, raw_name: str, *, actor: str) -> bool:
    """Give the tag a new name (its members keep it); False if the name is the same.
    Another tag's name is refused. Audited."""
    name = clean_name(raw_name)
    if name is None:
        raise InvalidInputError("tag", "tag_name")
    r = TagRepo(uow.session)
    old = await r.name_of(tenant, tag_id)
    if old is None:
        raise NotFoundError("tag", tag_id)
    if old == name:
        return False
    if await r.by_name(tenant, name) is not None or not await r.rename(tenant, tag_id, name):
        raise InvalidInputError("tag", "tag_taken")
    uow.audit(tenant, actor, "member_tag.rename", f"tag:{tag_id}", before={"name": old}, after={"name": name})
    uow.emit(MemberTagRenamed(tenant_id=tenant, tag_id=tag_id, name=name))
    return True


async def delete_tag(uow: UnitOfWork, tenant: int, tag_id: int, *, actor: str) -> int:
    """Delete the tag and take it from everyone (audited); the rule keeping it up hears of
    it (`member_tag.deleted`) and stops. How many members held it."""
    r = TagRepo(uow.session)
    name = await r.name_of(tenant, tag_id)
    if name is None:
        raise NotFoundError("tag", tag_id)
    synced = await r.wechat_links(tenant, tag_id)
    held = await r.drop_tag(tenant, tag_id)
    uow.audit(tenant, actor, "member_tag.delete", f"tag:{tag_id}", before={"name": name, "members": held})
    uow.emit(MemberTagDeleted(tenant_id=tenant, tag_id=tag_id, name=name))
    for account_id, wechat_tag_id in synced:
        uow.emit(MemberTagUnsynced(tenant_id=tenant, tag_id=tag_id, account_id=account_id,
                                   wechat_tag_id=wechat_tag_id))
    return held


async def member_tags(uow: UnitOfWork, tenant: int, member_id: int) -> list[MemberTagView]:
    return [MemberTagView(i, n, s) for i, n, s in await TagRepo(uow.session).of_member(tenant, member_id)]


async def tag_member(uow: UnitOfWork, tenant: int, member_id: int, raw_name: str, *, actor: str,
                     now: datetime) -> bool:
    """Give the member the tag of that name by hand (made if new); False if the member had it."""
    r = TagRepo(uow.session)
    if not await r.member_exists(tenant, member_id):
        raise NotFoundError("member", member_id)
    tag_id = await create_tag(uow, tenant, raw_name, actor=actor, now=now)
    made = await r.link(tenant, tag_id, [member_id], MANUAL, now) == 1
    if made:
        uow.audit(tenant, actor, "member.tag", f"member:{member_id}", after={"tag": tag_id})
        await _changed(uow, tenant, tag_id, [member_id])
    return made


async def untag_member(uow: UnitOfWork, tenant: int, member_id: int, tag_id: int, *, actor: str) -> bool:
    """Take the tag away (whoever gave it: a rule gives it back on its next run if the member
    still matches); False if the member didn't hold it."""
    gone = await TagRepo(uow.session).unlink(tenant, tag_id, [member_id]) == 1
    if gone:
        uow.audit(tenant, actor, "member.untag", f"member:{member_id}", before={"tag": tag_id})
        await _changed(uow, tenant, tag_id, [member_id])
    return gone


async def sync_rule_tag(uow: UnitOfWork, tenant: int, tag_id: int, source: str, members: Iterable[int], *,
                        now: datetime) -> tuple[int, int]:
    """The rule `source` tags exactly `members`: give the tag to those without it, take the
    rule's links from those no longer in `members` (links given by hand stay). Idempotent:
    (given, taken)."""
    src = rule_source(source)
    r = TagRepo(uow.session)
    if await r.name_of(tenant, tag_id) is None:
        raise NotFoundError("tag", tag_id)
    want = set(members)
    mine = await r.holders(tenant, tag_id, source=src)
    taken = await r.unlink(tenant, tag_id, mine - want, source=src)
    given = await r.link(tenant, tag_id, sorted(want - mine), src, now)
    if given or taken:
        await _changed(uow, tenant, tag_id, (mine - want) | (want - mine))
    return given, taken


async def _changed(uow: UnitOfWork, tenant: int, tag_id: int, members: Iterable[int]) -> None:
    """The tag changed hands: if it is synced to WeChat, the outbox brings WeChat in line
    (in lots, so a rule's thousands of changes make a few events)."""
    if not await TagRepo(uow.session).wechat_links(tenant, tag_id):
        return
    ids = sorted(set(members))
    for i in range(0, len(ids), CHANGED_LOT):
        uow.emit(MemberTagMembersChanged(tenant_id=tenant, tag_id=tag_id, member_ids=tuple(ids[i:i + CHANGED_LOT])))


# -- synced to WeChat's user tags ---------------------------------------------------------

async def wechat_links(uow: UnitOfWork, tenant: int, tag_id: int) -> list[tuple[int, int]]:
    """(channel account, WeChat tag id) of each official account the tag is synced to."""
    return await TagRepo(uow.session).wechat_links(tenant, tag_id)


async def holders(uow: UnitOfWork, tenant: int, tag_id: int) -> set[int]:
    return await TagRepo(uow.session).holders(tenant, tag_id)


async def openids_of(uow: UnitOfWork, tenant: int, members: Iterable[int], *,
                     account: int | None = None) -> list[str]:
    """The members' official-account openids: at the identities' channel account `account`
    (0: the primary; an openid is valid only with its own account's token), or (None) at
    any of the tenant's accounts."""
    return await TagRepo(uow.session).openids(tenant, members, account)


async def record_wechat_sync(uow: UnitOfWork, tenant: int, tag_id: int, account_id: int, wechat_tag_id: int, *,
                             actor: str, now: datetime) -> None:
    """The tag is synced to the account's user tag `wechat_tag_id` (its members tagged there). Audited."""
    r = TagRepo(uow.session)
    if await r.name_of(tenant, tag_id) is None:
        raise NotFoundError("tag", tag_id)
    await r.set_wechat_link(tenant, tag_id, account_id, wechat_tag_id, now)
    uow.audit(tenant, actor, "member_tag.wechat_sync", f"tag:{tag_id}",
              after={"account": account_id, "wechat_tag_id": wechat_tag_id})


async def wechat_sync_refused(uow: UnitOfWork, tenant: int, tag_id: int, account_id: int, errcode: int, *,
                              actor: str) -> None:
    """WeChat refused to take the tag on that account (nothing recorded as synced). Audited."""
    uow.audit(tenant, actor, "member_tag.wechat_sync_refused", f"tag:{tag_id}",
              after={"account": account_id, "errcode": errcode})


async def forget_wechat_sync(uow: UnitOfWork, tenant: int, tag_id: int, account_id: int) -> None:
    """The account's user tag is gone on WeChat's side: the tag is no longer synced there."""
    await TagRepo(uow.session).drop_wechat_link(tenant, tag_id, account_id)
