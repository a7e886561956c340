"""Who shared what: the member behind a share scene. A share card, link or QR carries a
scene naming its sharer's object: `ref_<code>` a distributor's card, link or poster,
`gb_<team>` a group-buy team's page and QR (its leader shares it). Following or scanning
such a QR (`subscribe`/`scan` with that scene) and opening such a link
(`activity.SHARE_OPEN`) are what the core can observe of a share; a module that records
them asks here who the sharer was (off the chat path: one query per kind of scene)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from sqlalchemy import select

from social_mall.referral.rules import scene_code
from social_mall.parsing import parse_id
from storage.groupbuy_models import GroupbuyTeam
from storage.referral_models import Distributor
from storage.uow import UnitOfWork

REFERRAL, GROUPBUY = "referral", "groupbuy"
ACCOUNT_ARG = "a"   # a share link's query naming the official account its sharer talks to


def share_path(path: str, account: int = 0, **query: int | str) -> str:
    """`path` as a share link or QR image names it: with the channel account its sharer
    talks to (`?a=<account id>`; none for the primary, so such links read as before) and
    any other non-empty query values. The page and the image then make their QR at that
    account (`Services.shared_at`): following it follows the account the sharer uses, and
    the follower's openid is one that account can answer."""
    params: dict[str, int | str] = {ACCOUNT_ARG: account} if account else {}
    params.update({k: v for k, v in query.items() if v})
    return f"{path}?{urlencode(params)}" if params else path


def share_kind(scene: str) -> str | None:
    """"referral" or "groupbuy" for a share scene, else None."""
    if scene.startswith("ref_") and scene_code(scene) is not None:
        return REFERRAL
    if scene.startswith("gb_") and parse_id(scene[3:]) is not None:
        return GROUPBUY
    return None


async def sharers(uow: UnitOfWork, tenant: int, scenes: Iterable[str]) -> dict[str, int]:
    """scene → the member who shared it, for those of `scenes` that are share scenes of a
    known distributor or team."""
    codes: dict[str, str] = {}
    teams: dict[int, str] = {}
    for scene in set(scenes):
        kind = share_kind(scene)
        if kind == REFERRAL:
            code = scene_code(scene)
            if code is not None:
                codes[code] = scene
        elif kind == GROUPBUY:
            team = parse_id(scene[3:])
            if team is not None:
                teams[team] = scene
    out: dict[str, int] = {}
    if codes:
        rows = await uow.session.execute(select(Distributor.code, Distributor.member_id).where(
            Distributor.tenant_id == tenant, Distributor.code.in_(list(codes))))
        out.update((codes[str(c)], int(m)) for c, m in rows)
    if teams:
        rows = await uow.session.execute(select(GroupbuyTeam.id, GroupbuyTeam.leader_member_id).where(
            GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id.in_(list(teams))))
        out.update((teams[int(t)], int(m)) for t, m in rows)
    return out
