"""What the module registers with the core's registry: templates, the chat flow and its
menu entry, console pages, jobs and event subscribers. The composition root's `Services`
(reg.services) is the only handle it keeps.

Subscribers:
  aftersale.changed   push the step to the member (submitted, approved, rejected, received,
                      refunding, withdrawn, closed; 已退款 is the core's order.refunded push)
  aftersale.photos    fetch the photos' bytes through WeChat's media API and keep them
  order.refunded      one of our refunds settled: 退款中 → 已退款
  order.completed     invite the member to review (nothing is written unless they do)
  aftersale.review_photos  keep a review's photos (media API)
Card note: the product card in chat shows its reviews (average, count, latest 3).
Completion hold: a shipped order with an open request is not confirmed received automatically
(nor told it will be) until the request ends.
Jobs: aftersale.approve_unanswered (the merchant's answer timer), aftersale.close_unreturned
(the member's send-back timer). Both idempotent: conditional moves, one request per
transaction.
"""

from __future__ import annotations

import logging

from handlers.context import Services
from handlers.push import push_to_member
from adapters.wechat_client import WeChatAPIError
from social_mall.plugins import Delivery, Registry
from storage.uow import UnitOfWork
from social_mall_after_sale import HERE, flow, flow_reviews, reviews, service, web_console, web_reviews
from social_mall_after_sale.rules import St

log = logging.getLogger(__name__)
INVALID_MEDIA = 40007   # WeChat no longer has the image (kept 3 days): nothing to fetch


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow.FLOW)
    reg.add_flow(flow_reviews.FLOW)
    web_console.register(reg)
    web_reviews.register(reg)
    reg.add_completion_hold(service.has_open)   # no auto-confirm while a request is being worked on

    async def push_changed(d: Delivery) -> None:
        p = d.payload
        if p["status"] == St.REFUNDED and int(p.get("refund_fen", 0)) > 0:
            return   # the core's order.refunded push says it, with the amount
        async with svc.uows() as uow:
            settings = await service.settings_of(uow, d.tenant_id)
        await push_to_member(svc, d.tenant_id, int(p["member_id"]), "chat/after_sale/push/changed.txt",
                             {**p, "return_days": settings.return_days})

    async def fetch_photos(d: Delivery) -> None:
        tenant = await svc.tenant_by_id(d.tenant_id)
        rid = int(d.payload["request_id"])
        async with svc.uows() as uow:
            todo = await service.photos_to_fetch(uow, d.tenant_id, rid)
        # through the account the member sent them to: its media ids mean nothing to another's token
        client = svc.wechat(await svc.channel_by_id(tenant, int(d.payload.get("account_id", 0))))
        for photo_id, media_id in todo:
            try:
                data, ctype = await client.download_media(media_id)
            except WeChatAPIError as exc:
                if exc.errcode == INVALID_MEDIA:
                    log.info("aftersale.photo.gone", extra={"tenant": tenant.code, "request": rid})
                    continue
                raise   # the outbox retries
            async with svc.uows() as uow:
                await service.keep_photo(uow, d.tenant_id, photo_id, data, ctype, now=svc.clock())
                await uow.commit()

    async def fetch_review_photos(d: Delivery) -> None:
        tenant = await svc.tenant_by_id(d.tenant_id)
        rid = int(d.payload["review_id"])
        async with svc.uows() as uow:
            todo = await reviews.review_photos_to_fetch(uow, d.tenant_id, rid)
        client = svc.wechat(await svc.channel_by_id(tenant, int(d.payload.get("account_id", 0))))
        for photo_id, media_id in todo:
            try:
                data, ctype = await client.download_media(media_id)
            except WeChatAPIError as exc:
                if exc.errcode == INVALID_MEDIA:
                    continue
                raise
            async with svc.uows() as uow:
                await reviews.keep_review_photo(uow, d.tenant_id, photo_id, data, ctype, now=svc.clock())
                await uow.commit()

    async def invite_review(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/after_sale/reviews/invite.txt",
                             d.payload)

    async def card_note(uow: UnitOfWork, tenant: int, product_id: int) -> str:
        avg, count, latest = await reviews.card_note_data(uow, tenant, product_id)
        if not count:
            return ""
        return svc.templates.get_template("chat/after_sale/reviews/card_note.txt").render(
            avg=avg, count=count, latest=latest).strip()

    reg.add_card_note(card_note)

    async def on_refunded(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await service.on_refunded(uow, d.tenant_id, str(d.payload.get("out_refund_no", "")),
                                         now=svc.clock()):
                await uow.commit()

    async def approve_unanswered() -> int:
        return await service.approve_unanswered(svc.uows, svc.clock())

    async def close_unreturned() -> int:
        return await service.close_unreturned(svc.uows, svc.clock())

    reg.subscribe("aftersale.changed", "aftersale.push", push_changed)
    reg.subscribe("aftersale.photos", "aftersale.fetch_photos", fetch_photos)
    reg.subscribe("order.refunded", "aftersale.refunded", on_refunded)
    reg.subscribe("order.completed", "aftersale.invite_review", invite_review)
    reg.subscribe("aftersale.review_photos", "aftersale.fetch_review_photos", fetch_review_photos)
    reg.add_job("aftersale.approve_unanswered", svc.settings.sweep_interval_seconds * 5, approve_unanswered)
    reg.add_job("aftersale.close_unreturned", svc.settings.sweep_interval_seconds * 5, close_unreturned)
