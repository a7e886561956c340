"""「猜你喜欢」 end to end: purchases paid through the real paths (a chat purchase with the
sandbox pay page; other members through the core's order and payment services) are
recorded by the module's order.paid subscriber, the nightly job trains, and the chat
shows what members who bought the same also bought; never what is out of stock or
already bought; 「关闭个性化推荐」 (PIPL Art. 24) leaves the shop's most popular only."""

from __future__ import annotations

from sqlalchemy import func, select, update

from social_mall_intelligence.models import Interaction
from storage.models import Sku
from tests.fakes.console_kit import paid_order

from intel_kit import add_fashion, listed, pay_in_sandbox, say, simulator

USER = "oUser_intel_rec_000000000001"


async def first_sku(mall, product_id: int) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == product_id)))


async def job(mall, name: str) -> None:
    await next(j for j in mall.svc.registry.jobs if j.name == name).run()


async def retrain(mall) -> None:
    await job(mall, "intel.retrain")


async def test_members_who_bought_it_also_bought_is_recommended_and_the_setting_is_honoured(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, skirt, cardigan = ids["法式碎花连衣裙"], ids["高腰百褶半身裙"], ids["针织开衫"]
    for n in range(3):
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_rec_ab_{n:08d}", sku_id=await first_sku(mall, dress))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_rec_ab_{n:08d}", sku_id=await first_sku(mall, skirt))
    for n in range(2):
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_rec_ac_{n:08d}", sku_id=await first_sku(mall, dress))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_rec_ac_{n:08d}",
                         sku_id=await first_sku(mall, cardigan))
    async with mall.svc.uows() as uow:   # the cardigan sells out
        await uow.session.execute(update(Sku).where(Sku.product_id == cardigan).values(stock=0))
        await uow.commit()

    wx = simulator(mall)
    card = await say(wx, USER, "搜 法式碎花连衣裙")
    assert "红色 / S" in card, card
    summary = await say(wx, USER, "1")
    placed = await say(wx, USER, "张三 13800138000 上海市黄浦区南京东路1号")
    if "下单成功" not in placed:
        placed = await say(wx, USER, "确认")
    await pay_in_sandbox(mall, placed)
    await mall.settle()
    async with mall.svc.uows() as uow:
        bought = (await uow.session.execute(select(func.count()).select_from(Interaction)
                                            .where(Interaction.tenant_id == tenant))).scalar_one()
    assert bought == 11, summary  # 10 orders of the other members + the chat purchase

    await retrain(mall)
    reply = await say(wx, USER, "猜你喜欢")
    shown = listed(reply)
    assert reply.startswith("猜你喜欢") and shown[0] == "高腰百褶半身裙", reply
    assert "针织开衫" not in shown and "法式碎花连衣裙" not in shown          # sold out; already bought
    card = await say(wx, USER, "1")
    assert "高腰百褶半身裙" in card and "黑色 / S" in card, card

    reply = await say(wx, USER, "关闭个性化推荐")
    assert "已关闭个性化推荐" in reply
    reply = await say(wx, USER, "猜你喜欢")
    assert reply.startswith("全店热销") and listed(reply)[0] == "法式碎花连衣裙", reply   # most buyers, for everyone
    other = await say(simulator(mall), "oUser_intel_rec_000000000002", "猜你喜欢")
    assert listed(other) == listed(reply)   # a member with no history: the same list
    assert "已开启个性化推荐" in await say(wx, USER, "开启个性化推荐")
    assert listed(await say(wx, USER, "猜你喜欢"))[0] == "高腰百褶半身裙"


async def test_a_repeated_paid_event_records_the_purchase_once_and_retraining_twice_is_the_same(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    _, order_no = await paid_order(mall.svc.uows, tenant, "oBuyer_intel_rec_once_0000001",
                                   sku_id=await first_sku(mall, ids["针织开衫"]))
    await mall.settle()
    from social_mall_intelligence.recommendations import record_purchase, retrain as fit

    async with mall.svc.uows() as uow:
        assert await record_purchase(uow, tenant, order_no, mall.svc.clock()) == 0   # the subscriber did it
        first = await fit(uow, tenant, mall.svc.clock())
        second = await fit(uow, tenant, mall.svc.clock())
        await uow.commit()
        rows = (await uow.session.execute(select(func.count()).select_from(Interaction)
                                          .where(Interaction.tenant_id == tenant))).scalar_one()
    assert rows == 1 and second == first + 1


async def test_cold_start_shows_the_shop_in_its_own_order(mall):
    reply = await say(simulator(mall), USER, "猜你喜欢")
    assert reply.startswith("猜你喜欢") and listed(reply)[0] == "赣南脐橙", reply


async def test_adding_to_the_cart_names_what_its_buyers_also_bought_unless_switched_off(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, skirt = ids["法式碎花连衣裙"], ids["高腰百褶半身裙"]
    for n in range(2):
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_rel_{n:010d}", sku_id=await first_sku(mall, dress))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_rel_{n:010d}", sku_id=await first_sku(mall, skirt))
    await mall.settle()
    await retrain(mall)
    wx = simulator(mall)
    await say(wx, USER, "搜 法式碎花连衣裙")
    await say(wx, USER, "1")
    added = await say(wx, USER, "加购")
    assert "已加入购物车" in added and "买了它的人还买了：<a href=" in added and "高腰百褶半身裙</a>" in added, added
    await say(wx, USER, "关闭个性化推荐")
    await say(wx, USER, "搜 法式碎花连衣裙")
    await say(wx, USER, "2")
    added = await say(wx, USER, "加购")
    assert "已加入购物车" in added and "买了它的人还买了" not in added, added


async def test_two_workers_recording_and_retraining_at_once_count_each_purchase_once(mall, other_worker):
    """Separate connections (PostgreSQL: two engines; SQLite: one writer at a time)."""
    import asyncio

    from social_mall_intelligence.recommendations import record_purchase, retrain as fit
    from storage.db import session_factory  # noqa: F401  (the fixtures build both factories)

    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    _, order_no = await paid_order(mall.svc.uows, tenant, "oBuyer_intel_race_0000000001",
                                   sku_id=await first_sku(mall, ids["针织开衫"]))
    async with mall.svc.uows() as uow:   # as if the subscriber had not run yet
        await uow.session.execute(Interaction.__table__.delete())
        await uow.commit()

    async def record(uows) -> int:
        async with uows() as uow:
            n = await record_purchase(uow, tenant, order_no, mall.svc.clock())
            await uow.commit()
            return n

    async def train(uows) -> int:
        async with uows() as uow:
            v = await fit(uow, tenant, mall.svc.clock())
            await uow.commit()
            return v

    added = await asyncio.gather(record(mall.svc.uows), record(other_worker))
    assert sorted(added) == [0, 1]
    versions = await asyncio.gather(train(mall.svc.uows), train(other_worker))
    assert sorted(versions) == [1, 2]
    async with mall.svc.uows() as uow:
        rows = (await uow.session.execute(select(func.count()).select_from(Interaction)
                                          .where(Interaction.tenant_id == tenant))).scalar_one()
    assert rows == 1


async def test_a_purchase_after_a_recommendation_counts_for_it_in_the_console(mall):
    from tests.fakes.console_kit import login, make_admin

    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, skirt = ids["法式碎花连衣裙"], ids["高腰百褶半身裙"]
    for n in range(2):
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_attr_{n:09d}", sku_id=await first_sku(mall, dress))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_attr_{n:09d}", sku_id=await first_sku(mall, skirt))
    await paid_order(mall.svc.uows, tenant, USER, sku_id=await first_sku(mall, dress))
    await mall.settle()
    await retrain(mall)
    wx = simulator(mall)
    assert listed(await say(wx, USER, "猜你喜欢"))[0] == "高腰百褶半身裙"
    assert "高腰百褶半身裙" in await say(wx, USER, "1")   # opened from the list: a click of 猜你喜欢
    assert "法式碎花连衣裙" in await say(wx, USER, "搜 法式碎花连衣裙")   # a search's card: no click
    await job(mall, "intel.views")
    await paid_order(mall.svc.uows, tenant, USER, sku_id=await first_sku(mall, skirt), qty=2)
    await paid_order(mall.svc.uows, tenant, "oBuyer_intel_attr_never_shown", sku_id=await first_sku(mall, skirt))
    await mall.settle()

    await make_admin(mall.svc.uows, "intel_fin", "finance")
    await login(mall.client, "intel_fin")
    page = await (await mall.client.get("/console/intelligence/recommendations")).text()
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title and page.count('id="cycle-form"') == 0   # finance may look, not mark; no form in the title
    row = next(line for line in page.split("<tr>") if "<td>猜你喜欢</td>" in line)
    cells = [c.split("<")[0] for c in row.split("<td>")[1:]]
    # 6 shown to 1 member, 1 opened (1/6 = 16.7 %); 1 bought (2 × ¥199)
    assert cells[1:7] == ["6", "1", "1", "16.7%", "1", "¥398.00"], cells
    assert "第 1 版" in page


async def test_the_payment_push_names_what_its_buyers_also_bought(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, skirt = ids["法式碎花连衣裙"], ids["高腰百褶半身裙"]
    for n in range(2):
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_push_{n:09d}", sku_id=await first_sku(mall, dress))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_push_{n:09d}", sku_id=await first_sku(mall, skirt))
    await mall.settle()
    await retrain(mall)
    buyer = "oBuyer_intel_push_paid_000001"
    await paid_order(mall.svc.uows, tenant, buyer, sku_id=await first_sku(mall, dress))
    await mall.settle()
    (push,) = [m["text"]["content"] for m in mall.fake.sent_messages(buyer) if "支付成功" in m["text"]["content"]]
    assert f"你可能还喜欢：<a href=\"{mall.svc.product_url('demo', skirt)}?src=rec.paid\">高腰百褶半身裙</a>" \
        "（回复「猜你喜欢」看更多）" in push, push
    await say(simulator(mall), buyer, "关闭个性化推荐")
    await paid_order(mall.svc.uows, tenant, buyer, sku_id=await first_sku(mall, dress))
    await mall.settle()
    pushes = [m["text"]["content"] for m in mall.fake.sent_messages(buyer) if "支付成功" in m["text"]["content"]]
    assert len(pushes) == 2 and "你可能还喜欢" not in pushes[-1]


class KeptFrom:
    """A visibility on the core's seam (as B2B's 企业专供 keeps products from consumers):
    `product` kept from every member."""

    def __init__(self, product: int) -> None:
        self.product = product

    async def hidden(self, uow, tenant: int, member: int | None) -> frozenset[int]:
        return frozenset({self.product})


async def shown(mall, openid: str) -> list[tuple[str, int]]:
    from social_mall_intelligence.models import Impression
    from storage.models import MemberIdentity

    async with mall.svc.uows() as uow:
        member = await uow.session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.external_id == openid))
        rows = await uow.session.execute(select(Impression.source, Impression.product_id)
                                         .where(Impression.member_id == member).order_by(Impression.id))
        return [(s, int(p)) for s, p in rows.all()]


async def test_a_product_kept_from_the_member_is_never_offered_nor_counted_as_shown(mall):
    """Beside 加购 and in the payment push, a product the core's visibility keeps from the
    member is left out before the list is cut, and no showing of it is recorded: the
    console's click-through divides by what members saw."""
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, skirt, tee = ids["法式碎花连衣裙"], ids["高腰百褶半身裙"], ids["纯棉短袖T恤"]
    for n in range(3):
        buyer = f"oBuyer_intel_kept_{n:010d}"
        for product in (dress, skirt) if n else (dress, skirt, tee):
            await paid_order(mall.svc.uows, tenant, buyer, sku_id=await first_sku(mall, product))
    await mall.settle()
    await retrain(mall)
    mall.svc.registry.visibility.append(KeptFrom(skirt))

    wx = simulator(mall)
    await say(wx, USER, "搜 法式碎花连衣裙")
    await say(wx, USER, "1")
    added = await say(wx, USER, "加购")
    assert "买了它的人还买了：" in added and "纯棉短袖T恤</a>" in added and "高腰百褶半身裙" not in added, added
    assert await shown(mall, USER) == [("related", tee)]

    buyer = "oBuyer_intel_kept_paid_00001"
    await paid_order(mall.svc.uows, tenant, buyer, sku_id=await first_sku(mall, dress))
    await mall.settle()
    (push,) = [m["text"]["content"] for m in mall.fake.sent_messages(buyer) if "支付成功" in m["text"]["content"]]
    assert "你可能还喜欢：" in push and "纯棉短袖T恤</a>" in push and "高腰百褶半身裙" not in push, push
    assert await shown(mall, buyer) == [("paid", tee)]

    listed_now = listed(await say(wx, USER, "猜你喜欢"))
    assert "高腰百褶半身裙" not in listed_now and len(listed_now) == len(set(listed_now)) >= 5, listed_now
    assert ("for_me", skirt) not in await shown(mall, USER)
