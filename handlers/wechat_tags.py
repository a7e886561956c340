"""Member tags kept in line with WeChat's user tags (用户标签) of the tenant's official
accounts: a subscription account can't mass-send to a list of openids, only to one of its
tags, so a tag a broadcast goes to must exist there with the right followers.

「同步到微信」 (`sync_tag`, the console's 会员标签 page) makes the tag on each enabled official
account (a tag of that name already there — 45157 — is found by tags/get and taken over),
tags the members holding it, 50 openids a call, and only then records the link
(social_mall/members/tags.py): an account that refused (45056: its 100 tags are used up)
is left unsynced, nothing half-done recorded. From then on the outbox drives the changes
(`subscribe`): members given or taken the tag → batchtagging / batchuntagging, a rename →
tags/update, a deletion → tags/delete, a merge → the kept member's synced tags onto the
openids it gained; a failed call raises and is retried by the outbox's rules.

Each account is sent only the openids at it (member identities remember their account:
`account_id`, 0 for the primary); a lot WeChat still refuses for one openid (40003 unknown,
49003 another account's, 45059 already holding 20 tags) is split in halves until the
refused ones are left out alone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.wechat_client import WeChatAPIError, WeChatClient
from handlers.context import Services
from social_mall.channels import service as channels
from social_mall.errors import NotFoundError
from social_mall.members import tags
from social_mall.plugins import Delivery, Registry
from social_mall.tenants import with_account

log = logging.getLogger(__name__)

BATCH = 50                                    # openids in one batch(un)tagging call (WeChat's cap)
NOT_HERE = frozenset({40003, 49003, 45059})   # WeChat won't (un)tag that openid on this account
UNKNOWN_TAG = 45159
TAGGING = "/cgi-bin/tags/members/batchtagging"
UNTAGGING = "/cgi-bin/tags/members/batchuntagging"


@dataclass(frozen=True)
class Outcome:
    """One official account's answer to 「同步到微信」."""

    account: str          # its name (or code)
    wechat_tag_id: int    # 0: refused
    errcode: int = 0
    errmsg: str = ""
    skipped: int = 0      # openids WeChat wouldn't tag there (another account's followers…)

    @property
    def ok(self) -> bool:
        return self.errcode == 0


async def _accounts(svc: Services, tenant_id: int) -> list[tuple[channels.AccountView, WeChatClient]]:
    """The tenant's enabled official accounts, each with a client of its own credentials."""
    tenant = await svc.tenant_by_id(tenant_id)
    async with svc.uows() as uow:
        rows = await channels.accounts(uow, tenant_id)
    return [(a, svc.wechat(with_account(tenant, a))) for a in rows if a.kind == "mp" and a.enabled]


async def _client(svc: Services, tenant_id: int, account_id: int) -> tuple[WeChatClient, int] | None:
    """The client of that official account and the account its followers' identities name
    (`_at`); None when it is gone or switched off (never another account's: a tag id means
    nothing elsewhere)."""
    tenant = await svc.tenant_by_id(tenant_id)
    try:
        async with svc.uows() as uow:
            a = await channels.account(uow, tenant_id, account_id)
    except NotFoundError:
        return None
    return (svc.wechat(with_account(tenant, a)), _at(a)) if a.kind == "mp" and a.enabled else None


def _at(a: channels.AccountView) -> int:
    """The account a member identity names for this official account's openids (0: the primary)."""
    return 0 if a.is_primary else a.id


async def _wechat_tag(client: WeChatClient, name: str) -> int:
    """The id of the account's tag of that name, made unless it is there."""
    try:
        made = await client.call("POST", "/cgi-bin/tags/create", json={"tag": {"name": name}})
        return int(made["tag"]["id"])
    except WeChatAPIError as exc:
        if exc.errcode != 45157:   # 45157: the name is taken (or invalid)
            raise
        taken = exc
    listed = await client.call("GET", "/cgi-bin/tags/get")
    for t in listed.get("tags") or []:
        if isinstance(t, dict) and t.get("name") == name and isinstance(t.get("id"), int):
            return int(t["id"])
    raise taken


async def apply(client: WeChatClient, path: str, wechat_tag_id: int, openids: Sequence[str]) -> int:
    """(Un)tag those openids, 50 a call; how many WeChat wouldn't take on this account."""
    skipped = 0
    unique = list(dict.fromkeys(openids))
    for i in range(0, len(unique), BATCH):
        skipped += await _lot(client, path, wechat_tag_id, unique[i:i + BATCH])
    return skipped


async def _lot(client: WeChatClient, path: str, wechat_tag_id: int, openids: list[str]) -> int:
    try:
        await client.call("POST", path, json={"openid_list": openids, "tagid": wechat_tag_id})
        return 0
    except WeChatAPIError as exc:
        if exc.errcode not in NOT_HERE:
            raise
    if len(openids) == 1:
        return 1
    half = len(openids) // 2
    return (await _lot(client, path, wechat_tag_id, openids[:half])
            + await _lot(client, path, wechat_tag_id, openids[half:]))


async def sync_tag(svc: Services, tenant_id: int, tag_id: int, *, actor: str) -> list[Outcome]:
    """「同步到微信」: the tag on each official account with its members; the link recorded
    (audited) per account once they are all tagged there. Refusals are answered, and
    audited, account by account."""
    async with svc.uows() as uow:
        name = await tags.tag_name(uow, tenant_id, tag_id)
        if name is None:
            raise NotFoundError("tag", tag_id)
        held = await tags.holders(uow, tenant_id, tag_id)
    out: list[Outcome] = []
    for a, client in await _accounts(svc, tenant_id):
        label = a.name or a.code
        async with svc.uows() as uow:
            openids = await tags.openids_of(uow, tenant_id, held, account=_at(a))
        try:
            wechat_tag_id = await _wechat_tag(client, name)
            skipped = await apply(client, TAGGING, wechat_tag_id, openids)
        except WeChatAPIError as exc:
            out.append(Outcome(label, 0, exc.errcode, exc.errmsg))
            async with svc.uows() as uow:
                await tags.wechat_sync_refused(uow, tenant_id, tag_id, a.id, exc.errcode, actor=actor)
                await uow.commit()
            continue
        async with svc.uows() as uow:
            await tags.record_wechat_sync(uow, tenant_id, tag_id, a.id, wechat_tag_id, actor=actor,
                                          now=svc.clock())
            await uow.commit()
        out.append(Outcome(label, wechat_tag_id, skipped=skipped))
        await _catch_up(svc, client, _at(a), tenant_id, tag_id, wechat_tag_id, held)
    return out


async def _catch_up(svc: Services, client: WeChatClient, at: int, tenant_id: int, tag_id: int, wechat_tag_id: int,
                    held: set[int]) -> None:
    """Members who got or lost the tag while the account was being tagged (no event told
    of them: the link wasn't there yet)."""
    async with svc.uows() as uow:
        now_held = await tags.holders(uow, tenant_id, tag_id)
        late_given = await tags.openids_of(uow, tenant_id, now_held - held, account=at)
        late_taken = await tags.openids_of(uow, tenant_id, held - now_held, account=at)
    try:
        await apply(client, TAGGING, wechat_tag_id, late_given)
        await apply(client, UNTAGGING, wechat_tag_id, late_taken)
    except WeChatAPIError as exc:
        log.warning("wechat_tags.catch_up_failed", extra={"tenant": tenant_id, "tag": tag_id, "errcode": exc.errcode})


def subscribe(reg: Registry, svc: Services) -> None:
    """The outbox subscribers keeping synced tags in line."""

    async def forget(tenant_id: int, tag_id: int, account_id: int) -> None:
        async with svc.uows() as uow:
            await tags.forget_wechat_sync(uow, tenant_id, tag_id, account_id)
            await uow.commit()

    async def on_members_changed(d: Delivery) -> None:
        """Each synced account's tag follows who holds ours now among these members
        (whatever order the changes come in)."""
        tag_id = int(d.payload["tag_id"])
        ids = {int(m) for m in d.payload["member_ids"]}
        async with svc.uows() as uow:
            links = await tags.wechat_links(uow, d.tenant_id, tag_id)
            if not links:
                return
            held = await tags.holders(uow, d.tenant_id, tag_id) & ids
        for account_id, wechat_tag_id in links:
            found = await _client(svc, d.tenant_id, account_id)
            if found is None:
                continue
            client, at = found
            async with svc.uows() as uow:
                give = await tags.openids_of(uow, d.tenant_id, held, account=at)
                take = await tags.openids_of(uow, d.tenant_id, ids - held, account=at)
            try:
                await apply(client, TAGGING, wechat_tag_id, give)
                await apply(client, UNTAGGING, wechat_tag_id, take)
            except WeChatAPIError as exc:
                if exc.errcode != UNKNOWN_TAG:
                    raise
                await forget(d.tenant_id, tag_id, account_id)   # deleted on WeChat's side

    async def on_renamed(d: Delivery) -> None:
        tag_id = int(d.payload["tag_id"])
        async with svc.uows() as uow:
            links = await tags.wechat_links(uow, d.tenant_id, tag_id)
        for account_id, wechat_tag_id in links:
            found = await _client(svc, d.tenant_id, account_id)
            if found is None:
                continue
            client, _ = found
            try:
                await client.call("POST", "/cgi-bin/tags/update",
                                  json={"tag": {"id": wechat_tag_id, "name": str(d.payload["name"])}})
            except WeChatAPIError as exc:
                if exc.errcode == UNKNOWN_TAG:
                    await forget(d.tenant_id, tag_id, account_id)
                elif exc.errcode in (45157, 45158):   # taken or too long there: retrying won't help
                    log.warning("wechat_tags.rename_refused", extra={"tenant": d.tenant_id, "tag": tag_id,
                                                                     "errcode": exc.errcode})
                else:
                    raise

    async def on_unsynced(d: Delivery) -> None:
        found = await _client(svc, d.tenant_id, int(d.payload["account_id"]))
        if found is None:
            return
        client, _ = found
        try:
            await client.call("POST", "/cgi-bin/tags/delete", json={"tag": {"id": int(d.payload["wechat_tag_id"])}})
        except WeChatAPIError as exc:
            if exc.errcode != UNKNOWN_TAG:   # already gone there: done
                raise

    async def on_merged(d: Delivery) -> None:
        """The kept member holds the merged one's tags and openids now: each synced tag it
        holds reaches all its openids on WeChat."""
        kept = int(d.payload["kept_member_id"])
        async with svc.uows() as uow:
            held = [t.id for t in await tags.member_tags(uow, d.tenant_id, kept)]
            synced = [(t, await tags.wechat_links(uow, d.tenant_id, t)) for t in held]
        for _tag_id, links in synced:
            for account_id, wechat_tag_id in links:
                found = await _client(svc, d.tenant_id, account_id)
                if found is not None:
                    async with svc.uows() as uow:
                        openids = await tags.openids_of(uow, d.tenant_id, [kept], account=found[1])
                    await apply(found[0], TAGGING, wechat_tag_id, openids)

    reg.subscribe("member.merged", "wechat_tags.merged", on_merged)
    reg.subscribe("member_tag.members_changed", "wechat_tags.members", on_members_changed)
    reg.subscribe("member_tag.renamed", "wechat_tags.rename", on_renamed)
    reg.subscribe("member_tag.wechat_unsynced", "wechat_tags.delete", on_unsynced)
