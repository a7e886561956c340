"""The group-buy conversation inside a WeCom group (企业微信群), channel-neutral.

A group leader posts 「@机器人 开团 <商品>」: a team of that campaign opens in this group
with the leader's seat and order. Members reply 「参团」 (the group's oldest open team)
or a number (the n-th open team of the group, as the bot lists them) and get their own
order and pay link. Group members collect from their leader (a pickup address is made
for them unless they saved one on the official account: members are one person across
channels when WeCom gives a unionid). Other chatter is ignored; a mention without a
command gets the help text.

A member with no official-account identity (WeCom gave no unionid, or they never used
the account) gets, with their 开团/参团 answer, a one-time bind link @-addressed to them
(social_mall/members/linking.py; the page is handlers/wecom_bind.py): opened in WeChat it
ties their WeCom identity to their official-account member, so they pay, see the order and
get the pushes there. 「绑定」 in the group asks for a fresh link.

Returns what to say (template + context); the adapter renders it and sends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flows.engine import Say, normalize
from flows.types import Links
from social_mall.errors import MallError
from social_mall.groupbuy import service
from social_mall.members import linking
from social_mall.members.service import channel_identity, resolve_member
from storage.uow import UnitOfWork

OPEN_RX = re.compile(r"开团\s*(.{1,40})")
JOIN_RX = re.compile(r"(?:参团|跟团)\s*(\d{1,2})?")
BIND_RX = re.compile(r"绑定(?:公众号)?")
LINKED_CHANNEL = "mp"      # the identity a WeCom member is linked to: the official account's openid
NUMBER_RX = re.compile(r"(\d{1,2})")
MENTION_RX = re.compile(r"@\S+\s*")


@dataclass(frozen=True)
class GroupMessage:
    tenant_id: int
    tenant_code: str
    chat_id: str
    user_id: str
    text: str
    now: datetime
    order_timeout: timedelta
    unionid: str | None = None
    mentioned: bool = False


def parse(text: str, bot_name: str) -> tuple[str, str]:
    """("open", words) | ("join", n or "") | ("bind", "") | ("help", "") | ("", "") for chatter."""
    mentioned = f"@{bot_name}" in text or "@机器人" in text
    said = normalize(MENTION_RX.sub(" ", text)).strip()
    if m := OPEN_RX.fullmatch(said):
        return "open", m.group(1).strip()
    if m := JOIN_RX.fullmatch(said):
        return "join", m.group(1) or ""
    if NUMBER_RX.fullmatch(said):
        return "join", said
    if BIND_RX.fullmatch(said):
        return "bind", ""
    return ("help", "") if mentioned else ("", "")


def bind_url(links: Links, tenant_code: str, token: str) -> str:
    return links.image_url(f"/h5/bind/{tenant_code}?c={token}")


async def bind_offer(uow: UnitOfWork, msg: GroupMessage, member_id: int, links: Links) -> str:
    """A one-time bind link for a member without an official-account identity, else ""."""
    if await channel_identity(uow, msg.tenant_id, member_id, LINKED_CHANNEL) is not None:
        return ""
    token = await linking.issue_link(uow, msg.tenant_id, member_id, channel="wecom", external_id=msg.user_id,
                                     now=msg.now, purpose="wecom_group")
    return bind_url(links, msg.tenant_code, token)


def error_say(exc: MallError) -> Say:
    """chat/errors/<code>.txt for the most specific class (the adapter checks it exists)."""
    return Say(f"chat/errors/{exc.code}.txt", exc.facts())


async def handle(uow: UnitOfWork, msg: GroupMessage, links: Links, bot_name: str) -> list[Say]:
    """Run one group message in the caller's unit of work (commit on a non-empty answer
    that changed something; a MallError is raised for the caller to roll back and render)."""
    kind, arg = parse(msg.text, bot_name)
    if not kind:
        return []
    if kind == "help":
        return [Say("chat/groupbuy/group/help.txt", {"bot": bot_name})]
    member, _ = await resolve_member(uow, msg.tenant_id, "wecom", msg.user_id, unionid=msg.unionid)
    minutes = int(linking.LINK_TTL.total_seconds() // 60)
    if kind == "bind":
        url = await bind_offer(uow, msg, member.id, links)
        return [Say("chat/groupbuy/group/bind.txt", {"user": msg.user_id, "bind_url": url, "minutes": minutes})]
    address = await service.pickup_address(uow, msg.tenant_id, member.id, msg.user_id)
    kw = dict(address_id=address, now=msg.now, timeout=msg.order_timeout, channel="wecom")
    if kind == "open":
        c = await service.find_live_campaign(uow, msg.tenant_id, arg, msg.now)
        if c is None or not c.prices:
            return [Say("chat/groupbuy/group/no_campaign.txt", {"words": arg})]
        r = await service.open_team(uow, msg.tenant_id, member.id, c.id, c.prices[0].sku_id, 1,
                                    chat_id=msg.chat_id, **kw)  # type: ignore[arg-type]
    else:
        teams = await service.open_teams_in_chat(uow, msg.tenant_id, msg.chat_id, msg.now)
        if not teams:
            return [Say("chat/groupbuy/group/no_team.txt", {"bot": bot_name})]
        n = int(arg) if arg else 1
        if not 1 <= n <= len(teams):
            return [Say("chat/groupbuy/group/teams.txt", {"teams": teams, "now": msg.now})]
        team = teams[n - 1]
        c = await service.load_campaign(uow, msg.tenant_id, team.campaign_id)
        r = await service.join_team(uow, msg.tenant_id, member.id, team.id, c.prices[0].sku_id, 1,
                                    **kw)  # type: ignore[arg-type]
    return [Say("chat/groupbuy/group/placed.txt", {
        "r": r, "open": kind == "open", "user": msg.user_id, "now": msg.now,
        "hm": r.team.time_left(msg.now), "pay_url": await links.pay_link(msg.tenant_code, r.order.order_no),
        "bind_url": await bind_offer(uow, msg, member.id, links), "minutes": minutes,
    })]
