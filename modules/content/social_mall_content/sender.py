"""Sending broadcasts through the official accounts' mass-send API (the edge: WeChat is
called here, the rows are kept by `broadcasts`). `dispatch` claims the broadcast in one
transaction (one winner among double clicks and workers), calls, through each official
account with followers in the segment,
`/cgi-bin/message/mass/send` with that account's openids (a subscription account's broadcast to a tag:
`mass/sendall` to the tag's copy on WeChat; an article alone as a 图文 card: mpnews.py)
and a `clientmsgid` of its own (WeChat
refuses a second job with it: 45065, so even a retried call sends once), then records the
msg_id, or the error with the quota given back; an account WeChat didn't answer (busy,
unreachable, a 5xx) is left "sending" and sent again by the stale sweep with the same
clientmsgid, the other accounts going out meanwhile. `preview` sends to the admin's bound openid
(`/cgi-bin/message/mass/preview`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pathlib import Path

from handlers.context import Services
from adapters.wechat_client import WeChatAPIError
from social_mall.tenants import TenantView
from social_mall_content import broadcasts as B
from social_mall_content import mpnews as M
from social_mall_content.flow import article_path

log = logging.getLogger(__name__)

CLIENT_MSG_ID_TAKEN = 45065
UNANSWERED = -1      # WeChat busy, unreachable, a 5xx or no JSON (adapters.wechat_client): it may have taken the job


def page_urls(svc: Services, tenant_code: str) -> B.Urls:
    return B.Urls(article=lambda article_id: svc.page_url(article_path(tenant_code, article_id)),
                  product=lambda product_id: svc.product_url(tenant_code, product_id))


async def dispatch(svc: Services, tenant_id: int, broadcast_id: int, *, actor: str, now: datetime,
                   retry: bool = False) -> bool:
    """Send the broadcast if it is due and nobody else has (`retry`: one left "sending" by a
    worker that died): one mass send per official account with followers in it, each
    through that account (its token, its followers' openids, its own draft for a 图文
    card); an account WeChat refuses doesn't stop the others. True when this call sent it."""
    tenant = await svc.tenant_by_id(tenant_id)
    take = B.reclaim if retry else B.claim
    async with svc.uows() as uow:
        claimed = await take(uow, tenant_id, broadcast_id, now=now, page_url=page_urls(svc, tenant.code))
        await uow.commit()
    if claimed is None:
        return False
    for send in claimed.sends:
        await _send_part(svc, tenant, claimed, send)
    async with svc.uows() as uow:
        state = await B.settle(uow, tenant_id, broadcast_id, actor=actor)
        await uow.commit()
    return state == "sent" and bool(claimed.sends)


async def _send_part(svc: Services, tenant: TenantView, claimed: B.Claimed, send: B.Send) -> None:
    """One official account's mass send, its outcome kept on its row (a refusal there only)."""
    via = await svc.channel_by_id(tenant, send.account_id)
    try:
        message = await card_message(svc, via, claimed.card_article) if claimed.card_article else None
        body: dict[str, Any] = {**(message or claimed.message), "clientmsgid": send.client_msg_id,
                                "send_ignore_reprint": 0}
        if send.wechat_tag_id:   # a subscription account: to its user tag (no openid lists there)
            body["filter"] = {"is_to_all": False, "tag_id": send.wechat_tag_id}
            path = "/cgi-bin/message/mass/sendall"
        else:
            body["touser"] = list(send.openids)
            path = "/cgi-bin/message/mass/send"
        answer = await svc.wechat(via).call("POST", path, json=body)
    except WeChatAPIError as exc:
        async with svc.uows() as uow:
            if exc.errcode == CLIENT_MSG_ID_TAKEN:   # the lost call went through: it was sent
                await B.part_sent(uow, tenant.id, claimed.id, send.account_id, 0)
            elif exc.errcode == UNANSWERED:         # maybe taken, maybe not: again later, same clientmsgid
                await B.part_unanswered(uow, tenant.id, claimed.id, send.account_id, f"{exc.errcode} {exc.errmsg}")
            else:
                await B.part_failed(uow, tenant.id, claimed.id, send.account_id, f"{exc.errcode} {exc.errmsg}")
            await uow.commit()
        log.warning("content.broadcast_unanswered" if exc.errcode == UNANSWERED else "content.broadcast_refused",
                    extra={"tenant": tenant.code, "account": send.account_id, "errcode": exc.errcode})
        return
    async with svc.uows() as uow:
        await B.part_sent(uow, tenant.id, claimed.id, send.account_id, int(answer.get("msg_id") or 0))
        await uow.commit()


async def card_message(svc: Services, tenant: TenantView, article_id: int) -> dict[str, Any] | None:
    """The article as a 图文 card (`mpnews`): its draft on this official account, uploaded
    once per version of the article (mpnews.py); None when its cover isn't a picture this
    server holds (the text with its link goes instead). WeChatAPIError when WeChat refuses."""
    url = svc.page_url(article_path(tenant.code, article_id))
    async with svc.uows() as uow:
        found = await M.draft_of(uow, tenant.id, article_id, url)
        if found is None:
            return None
        draft, cover_path = found
        media_id = await M.uploaded(uow, tenant.id, article_id, tenant.wechat_app_id, draft.updated_at)
    if media_id is None:
        cover = M.cover_of(cover_path, tenant.id, Path(svc.settings.data_dir))
        if cover is None:
            return None
        client = svc.wechat(tenant)
        thumb = await client.upload_material(cover.data, cover.filename)
        answer = await client.call("POST", "/cgi-bin/draft/add", json={"articles": [{
            "title": draft.title, "author": "", "digest": draft.digest, "content": draft.content,
            "content_source_url": draft.source_url, "thumb_media_id": thumb,
            "need_open_comment": 0, "only_fans_can_comment": 0}]})
        media_id = str(answer["media_id"])
        async with svc.uows() as uow:
            await M.remember(uow, tenant.id, article_id, tenant.wechat_app_id, thumb, media_id, draft.updated_at)
            await uow.commit()
    return {"msgtype": "mpnews", "mpnews": {"media_id": media_id}}


async def dispatch_due(svc: Services) -> int:
    """The scheduling job: every due broadcast, and every one a dead worker left "sending",
    each sent once however many workers run this."""
    now = svc.clock()
    async with svc.uows() as uow:
        found = await B.due(uow, now)
        stale = await B.stale(uow, now)
    sent = 0
    for tenant_id, broadcast_id in found:
        sent += await dispatch(svc, tenant_id, broadcast_id, actor="system:schedule", now=now)
    for tenant_id, broadcast_id in stale:
        sent += await dispatch(svc, tenant_id, broadcast_id, actor="system:retry", now=now, retry=True)
    return sent


async def preview(svc: Services, tenant_id: int, openid: str, article_id: int | None, text: str,
                  product_id: int | None = None, account: int = B.PRIMARY) -> None:
    """The message as it will go out, to one openid at the official account `account`
    (through that account; WeChatAPIError when WeChat refuses)."""
    tenant = await svc.channel_by_id(await svc.tenant_by_id(tenant_id), account)
    async with svc.uows() as uow:
        message = await B.message_of(uow, tenant_id, article_id, text, page_urls(svc, tenant.code), product_id)
    if article_id is not None and M.as_card(article_id, product_id, text):
        message = await card_message(svc, tenant, article_id) or message
    await svc.wechat(tenant).call("POST", "/cgi-bin/message/mass/preview", json={"touser": openid, **message})
