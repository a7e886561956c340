"""A price that a rule changes between the card and 「确认」, through the signed WeChat
endpoint and the sandbox pay page: the core's rule (checkout places the order only at
the total the member was shown, `expect_total_fen`) tells the member the price changed,
writes no order, shows the new total; the order is placed and paid at exactly the total
shown at confirmation. (A change before the confirmation summary: the summary shows the
new price and the order is at it.) Every member sees the same new price at once."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from social_mall_intelligence import pricing as P
from storage.models import Order, Sku

from intel_kit import ORDER_NO, add_fashion, pay_in_sandbox, say, simulator

UTC = timezone.utc
USER = "oUser_intel_price_e2e_000001"
OTHER = "oUser_intel_price_e2e_000002"
TOTAL = re.compile(r"应付[^¥\n]*¥\s?([0-9]+\.[0-9]{2})")


async def orders(mall) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Order)) or 0)


async def test_a_price_changed_between_card_and_confirmation_is_told_and_the_order_is_at_the_price_shown(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        sku = int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == ids["纯棉短袖T恤"])))
        await P.save_rule(uow, tenant, "admin:e2e", sku, {"cost": "100", "min_margin_pct": "20", "max_step_pct": "10",
                                                          "max_day_pct": "30", "evening": "1", "evening_hour": "19",
                                                          "evening_off_pct": "20"}, datetime.now(UTC))
        await uow.commit()
    wx = simulator(mall)
    card = await say(wx, USER, "搜 纯棉短袖T恤")
    assert "199.00" in card and "白色 / L" in card, card
    summary = await say(wx, USER, "1")
    assert "199.00" in summary, summary

    evening = (datetime.now(UTC) + timedelta(days=1)).replace(hour=12, minute=30)   # 20:30 in Shanghai
    [step] = await P.run_all(mall.svc.uows, evening)
    assert (step.before_fen, step.after_fen) == (19_900, 17_910)
    assert "179.10" in await say(simulator(mall), OTHER, "搜 纯棉短袖T恤")      # everyone: the new price

    shown = await say(wx, USER, "张三 13800138000 上海市黄浦区南京东路1号")   # the confirmation: the new price
    assert "请确认订单" in shown and "应付：¥179.10" in shown, shown

    [step] = await P.run_all(mall.svc.uows, evening + timedelta(seconds=P.STEP_SECONDS))   # between it and 确认
    assert (step.before_fen, step.after_fen) == (17_910, 16_119)
    before = await orders(mall)
    told = await say(wx, USER, "确认")
    assert "价格有变动，订单还没有提交" in told and "¥179.10" in told and "应付：¥161.19" in told, told
    assert await orders(mall) == before                                           # nothing written

    placed = await say(wx, USER, "确认")
    assert "下单成功" in placed, placed
    order_no = await pay_in_sandbox(mall, placed)
    async with mall.svc.uows() as uow:
        order = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
    assert order.total_fen == order.paid_fen == 16_119 + order.shipping_fen - order.discount_fen
    assert ORDER_NO.search(placed).group(1) == order_no
