"""One member across a tenant's official accounts: when someone follows an account, ask
WeChat for the follower's unionid (`cgi-bin/user/info`, through *that* account's client)
and hand it to the core merge path (`channels.service.link_unionid`: another member with
the unionid is the same person and is merged, audited, member.merged emitted).

An activity sink (Registry.add_activity_sink) hears the subscribe after its step and only
starts a background task (the chat path is not held up); the task is best-effort: a lost
one (the worker died) leaves the unionid to the next subscribe or login that brings it. An
account not bound to an open-platform account answers without a unionid: nothing happens.
"""

from __future__ import annotations

import asyncio
import logging

from handlers.context import Services
from adapters.wechat_client import WeChatAPIError
from social_mall import activity
from social_mall.activity import Activity, ActivitySink
from social_mall.channels import service as channels
from social_mall.parsing import is_storable_text

log = logging.getLogger(__name__)
INVALID_OPENID = 40003  # an openid of another account (or unknown) for this app id


def sink_for(svc: Services) -> ActivitySink:
    def sink(a: Activity) -> None:
        if a.kind != activity.SUBSCRIBE or a.channel != "mp" or not a.member_id:
            return
        account = a.props.get("account", 0)
        task = asyncio.ensure_future(fetch_unionid(svc, a.tenant_id, a.member_id,
                                                   account if isinstance(account, int) else 0))
        svc.background.add(task)
        task.add_done_callback(svc.background.discard)

    return sink


async def fetch_unionid(svc: Services, tenant_id: int, member_id: int, account: int) -> None:
    """user/info for the member's openids (newest first) with the followed account's
    credentials; the first that is this account's follower gives the unionid, if any."""
    try:
        tenant = await svc.channel_by_id(await svc.tenant_by_id(tenant_id), account)
        if tenant.account_id != account or svc.simulates_wechat(tenant) or not tenant.wechat_app_secret:
            return
        client = svc.wechat(tenant)  # the followed account's client (its own token)
        async with svc.uows() as uow:
            openids = await channels.member_openids(uow, tenant_id, member_id)
        for openid in openids:
            try:
                info = await client.call("GET", "/cgi-bin/user/info", params={"openid": openid, "lang": "zh_CN"})
            except WeChatAPIError as exc:
                if exc.errcode == INVALID_OPENID:
                    continue
                raise
            unionid = info.get("unionid")
            if not (isinstance(unionid, str) and 0 < len(unionid) <= 64 and unionid.isascii()
                    and is_storable_text(unionid)):
                return  # no open-platform binding: nothing to merge by
            async with svc.uows() as uow:
                kept = await channels.link_unionid(uow, tenant_id, member_id, unionid, now=svc.clock())
                await uow.commit()
            log.info("member.unionid_linked", extra={"tenant": tenant_id, "member": kept})
            return
    except Exception:  # noqa: BLE001 - best-effort, in the background: never a member's problem
        log.warning("member.unionid_fetch_failed", extra={"tenant": tenant_id, "member": member_id}, exc_info=True)
