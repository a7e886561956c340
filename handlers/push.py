"""Pushing a chat message to a member on the official account (outbox subscribers)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from handlers.context import Services
from adapters.wechat_client import WeChatAPIError
from social_mall.channels.service import order_channel
from social_mall.members.service import channel_identity

log = logging.getLogger(__name__)

#: Unfollowed (43004), outside the 48-hour window (45015), over quota (45047): the push
#: can never be delivered, so it is dropped instead of retried.
UNDELIVERABLE = frozenset({43004, 45015, 45047})


async def push_to_member(
    svc: Services, tenant_id: int, member_id: int, template: str, ctx: Mapping[str, object]
) -> bool:
    """Render `template` and send it to the member's official-account openid.

    False when there is nobody to send to (no openid) or WeChat says it never can be;
    any other API error raises, so the outbox retries the delivery.
    """
    tenant = await svc.tenant_by_id(tenant_id)
    async with svc.uows() as uow:
        openid = await channel_identity(uow, tenant_id, member_id, "mp")
        order_id = ctx.get("order_id")
        if isinstance(order_id, int):  # about an order: through the official account it was placed on
            view = await svc.for_order(tenant, *await order_channel(uow, tenant_id, order_id))
            tenant = view if view.account_kind == "mp" else tenant
    if openid is None:
        return False
    text = svc.templates.get_template(template).render(**ctx).strip()
    try:
        await svc.wechat(tenant).send_text(openid, text)
    except WeChatAPIError as exc:
        if exc.errcode not in UNDELIVERABLE:
            raise
        log.info("push.undeliverable", extra={"tenant": tenant.code, "errcode": exc.errcode})
        return False
    return True
