"""A business buyer's line may go past the retail cap of 99 — on the product card's 「xN」,
the checkout summary's 「xN」, 「加购」 and the cart's 「改 N M」 — up to the module's
maximum (the core's per-line cap seam, pricing/unit.max_qty), and is placed and paid at
that quantity; a consumer in the same shop stays at 99 everywhere, nothing written."""

from __future__ import annotations

from sqlalchemy import select, update

from storage.models import CartItem, Order, Sku

from b2b_kit import console, count, make_mall, pay_in_sandbox, say, simulator
from test_b2b_prices import ADDRESS, BUYER, SHOPPER, approved_company_with_prices, sku_of


async def test_a_business_buyer_orders_240_from_card_summary_and_cart_a_consumer_stays_at_99(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    csrf = await console(mall)
    sku = await sku_of(mall, "芒果干")                  # tiers 1 / 10 / 50+ (¥19.90), cases of 12
    await approved_company_with_prices(mall, wx, csrf, sku.id)
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Sku).where(Sku.id == sku.id).values(stock=5000))
        await uow.commit()

    # the card: 「x240」 straight to the summary at the 50+ tier
    await say(wx, BUYER, "搜索 芒果干")
    summary = await say(wx, BUYER, "x240")
    assert "企业价 ¥19.90 × 240 = ¥4776.00" in summary, summary
    # the summary's 「xN」 past 99
    assert "企业价 ¥19.90 × 480" in await say(wx, BUYER, "x480")
    assert "企业价 ¥19.90 × 240" in await say(wx, BUYER, "x240")
    # into the cart at 240, then 「改 1 360」
    await say(wx, BUYER, "加购")
    cart = await say(wx, BUYER, "购物车")
    assert "企业价 ¥19.90 × 240" in cart, cart
    assert "企业价 ¥19.90 × 360" in await say(wx, BUYER, "改 1 360")
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(CartItem.qty).where(CartItem.sku_id == sku.id)) == 360
    # ordered from the card and paid at 240
    await say(wx, BUYER, "搜索 芒果干")
    await say(wx, BUYER, "x240")
    summary = await say(wx, BUYER, ADDRESS)
    assert "应付：¥4776.00" in summary, summary
    order_no = await pay_in_sandbox(mall, await say(wx, BUYER, "确认"))
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        assert (o.status, o.goods_fen, o.paid_fen) == ("paid", 477600, 477600)

    # a consumer: 99 a line on the card, the summary and the cart, nothing written
    await wx.event(SHOPPER, "subscribe")
    orders = await count(mall, Order)
    await say(wx, SHOPPER, "搜索 芒果干")
    assert "数量需在 1–99 之间（收到的是 240）" in await say(wx, SHOPPER, "x240")
    await say(wx, SHOPPER, "x2")
    assert "数量需在 1–99 之间（收到的是 100）" in await say(wx, SHOPPER, "x100")
    await say(wx, SHOPPER, "加购")
    assert "数量需在 1–99 之间（收到的是 120）" in await say(wx, SHOPPER, "改 1 120")
    assert await count(mall, Order) == orders
    async with mall.svc.uows() as uow:
        qtys = (await uow.session.scalars(select(CartItem.qty).where(CartItem.sku_id == sku.id))).all()
    assert sorted(qtys) == [2, 360]
