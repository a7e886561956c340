"""WeChat Pay wants one order's refund requests a minute apart (both backends, memory and
Redis stores): two partial refunds asked at once go to the gateway one after the other,
the second once the order's slot is free; a retry of the first is not held back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from social_mall.outbox import dispatch_due
from social_mall.payments.service import request_refund
from storage.models import Refund
from tests.conftest import app_settings
from tests.fakes.console_kit import paid_order


async def test_two_partial_refunds_of_one_order_go_a_minute_apart(backend, engine, tmp_path, fake_wechat,
                                                                  aiohttp_client):
    from bot import build_app
    from handlers.context import SERVICES

    app = build_app(app_settings(backend, tmp_path, fake_wechat.base_url, refund_spacing_seconds=60),
                    auto_setup=True)
    await aiohttp_client(app)
    svc = app[SERVICES]
    tenant = await svc.tenant("demo")
    order_id, order_no = await paid_order(svc.uows, tenant.id, "o_refund_spacing_0000001", qty=2)
    nos = []
    for _ in range(2):
        async with svc.uows() as uow:
            nos.append((await request_refund(uow, tenant.id, order_id, amount_fen=100, reason="部分退款",
                                             actor="admin:1", now=svc.clock())).out_refund_no)
            await uow.commit()

    async def statuses() -> dict[str, str]:
        async with svc.uows() as uow:
            rows = (await uow.session.scalars(select(Refund).where(Refund.order_id == order_id))).all()
            return {r.out_refund_no: r.status for r in rows}

    await svc.outbox.run_once()
    assert await statuses() == {nos[0]: "succeeded", nos[1]: "pending"}      # the second waits
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    await dispatch_due(svc.uows, svc.registry.subscribers, now=lambda: later)
    assert (await statuses())[nos[1]] == "pending"                           # the slot is still taken
    await svc.kv.delete(f"refund_gap:{tenant.id}:{order_no}")                # a minute on: the slot has expired
    much_later = datetime.now(timezone.utc) + timedelta(minutes=5)
    await dispatch_due(svc.uows, svc.registry.subscribers, now=lambda: much_later)
    assert await statuses() == {nos[0]: "succeeded", nos[1]: "succeeded"}
