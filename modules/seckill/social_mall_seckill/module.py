"""What the module registers with the core's registry: templates, the chat flow and its
menu entry, the seckill price (the unit-price seam), console pages, jobs, subscribers and
its part of the demo shop.

Subscribers:
  order.paid         a seckill order paid: marked paid, its reservation held for good
  order.cancelled    a seckill order cancelled (by the member, the shop or a deadline):
                     its stock and claim given back once, in the database and in memory;
                     past the seckill's own deadline, the buyer is told (「名额已释放」)
  seckill.started    the session's start posted to the tenant's WeCom group robot (if set)
  seckill.remind     「提醒我」 pushes, delivered in lots (Batched)
Jobs: seckill.start (30 s), seckill.expire (15 s), seckill.sweep (30 s), seckill.reconcile (60 s): jobs.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers.context import Services
from handlers.push import push_to_member
from social_mall.plugins import Batched, Delivery, Registry
from social_mall_seckill import HERE, buying, demo, flow, jobs, prices, service, web_console
from social_mall_seckill.rules import pool


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    desk = flow.HOLDER.desk = buying.Desk(svc)
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow.FLOW)
    reg.add_unit_pricer(prices.PRICER)
    reg.add_price_hold(service.selling)
    web_console.register(reg)
    reg.add_demo(demo.seed, showcase=False)

    async def start() -> int:
        return await jobs.start_sessions(svc)

    async def expire() -> int:
        return await jobs.expire_unpaid(svc)

    async def sweep() -> int:
        return await jobs.sweep_admission(svc)

    async def reconcile() -> int:
        return await jobs.reconcile_live(svc)

    reg.add_job("seckill.start", 30, start)
    reg.add_job("seckill.reconcile", 60, reconcile)
    reg.add_job("seckill.expire", 15, expire)
    reg.add_job("seckill.sweep", 30, sweep)

    async def paid(d: Delivery) -> None:
        order_id = int(d.payload["order_id"])
        async with svc.uows() as uow:
            taken = await service.mark_paid(uow, d.tenant_id, order_id)
            await uow.commit()
        if taken is not None:
            await svc.admission.confirm(d.tenant_id, pool(taken.item_id), taken.token, taken.member_id, taken.qty,
                                        hold_until=None)

    async def cancelled(d: Delivery) -> None:
        order_id = int(d.payload["order_id"])
        async with svc.uows() as uow:
            taken = await service.release(uow, d.tenant_id, order_id)
            await uow.commit()
        if taken is not None:
            await svc.admission.release(d.tenant_id, pool(taken.item_id), taken.token)
        if d.payload.get("reason") == "seckill_timeout":   # (the sweeper released it already)
            async with svc.uows() as uow:
                minutes = await service.pay_minutes_of(uow, d.tenant_id, order_id)
            await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/seckill/push/released.txt",
                                 {"order_no": d.payload["order_no"], "minutes": minutes or 0})

    async def announce(d: Delivery) -> None:
        from social_mall.groupbuy.service import wecom_settings

        async with svc.uows() as uow:
            settings = await service.settings(uow, d.tenant_id)
            robot = await wecom_settings(uow, d.tenant_id, webhook_base=svc.settings.wecom_api_base)
            s = await service.session(uow, d.tenant_id, int(d.payload["session_id"]))
        if not settings.announce or robot is None or not robot.webhook_url:
            return
        text = svc.templates.get_template("chat/seckill/push/start.txt").render(title=s.title, items=s.items).strip()
        async with svc.http.post(robot.webhook_url, json={"msgtype": "text", "text": {"content": text}}) as resp:
            answer = await resp.json(content_type=None)
        if not isinstance(answer, dict) or answer.get("errcode") != 0:
            raise RuntimeError("wecom webhook refused the announcement")

    async def remind_one(d: Delivery) -> None:
        await remind_many([d])

    async def remind_many(lot: Sequence[Delivery]) -> None:
        shown: dict[tuple[int, int], service.SessionView] = {}
        for d in lot:
            key = (d.tenant_id, int(d.payload["session_id"]))
            if key not in shown:
                async with svc.uows() as uow:
                    shown[key] = await service.session(uow, *key)
            s = shown[key]
            await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/seckill/push/start.txt",
                                 {"title": s.title, "items": s.items})

    reg.subscribe("order.paid", "seckill.paid", paid)
    reg.subscribe("order.cancelled", "seckill.release", cancelled)
    reg.subscribe("seckill.started", "seckill.announce", announce)
    reg.subscribe("seckill.remind", "seckill.push_start", Batched(remind_one, remind_many))
