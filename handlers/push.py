"""Pushing a chat message to a member on the official account (outbox subscribers)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from handlers.context import Services
from adapters.wechat_client import WeChatAPIError

log = logging.getLogger(__name__)

#: Unfollowed (43004), outside the 48-hour window (45015), over quota (45047): the push
#: can never be delivered, so it is dropped instead of retried.
UNDELIVERABLE = frozenset({43004, 45015, 45047})


async def push_to_member(
    svc: Services, tenant_id: int, member_id: int, template: str, ctx: Mapping[str, object]
) -> bool:
    """Render `template` and send it to the member's official-account openid, through the
    account that openid belongs to (about an order: the account it was placed on, when the
    member has an openid there).

    False when there is nobody to send to (no openid) or WeChat says it never can be;
    any other API error raises, so the outbox retries the delivery.
    """
    order_id = ctx.get("order_id")
    target = await svc.push_target(tenant_id, member_id, order_id=order_id if isinstance(order_id, int) else None)
    if target is None:
        return False
    tenant, openid = target
    text = svc.templates.get_template(template).render(**ctx).strip()
    try:
        await svc.wechat(tenant).send_text(openid, text)
    except WeChatAPIError as exc:
        if exc.errcode not in UNDELIVERABLE:
            raise
        log.info("push.undeliverable", extra={"tenant": tenant.code, "errcode": exc.errcode})
        return False
    return True
