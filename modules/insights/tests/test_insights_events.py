"""Events from every channel reach the record: a purchase in chat through the signed
endpoint and the sandbox payment, a search, an anonymous H5 product view; written off the
chat path (the buffer holds them until the flush job), attributed to the merged member."""

from __future__ import annotations

from sqlalchemy import func, select

from social_mall_insights.models import Event, MemberFacts

from ins_kit import chat_purchase, events_of, job, member_of, record, say, simulator

BUYER = "oIns_buyer_000000000000001"


async def test_a_chat_purchase_is_recorded_in_order_off_the_chat_path(mall):
    wx = simulator(mall)
    order_no = await chat_purchase(mall, wx, BUYER)
    member = await member_of(mall, BUYER)
    async with mall.svc.uows() as uow:
        before = await uow.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "product.view"))
    assert before == 0                                   # still in the buffer: nothing written on the chat path
    await record(mall)
    kinds = [k for k, *_ in await events_of(mall, member)]
    for k in ("subscribe", "message", "category.view", "product.view", "checkout.start", "order.placed",
              "order.paid"):
        assert k in kinds, (k, kinds)
    assert kinds.index("product.view") < kinds.index("checkout.start") < kinds.index("order.paid")
    paid = [(ref, amt) for k, ref, amt, _ in await events_of(mall, member) if k == "order.paid"]
    assert len(paid) == 1 and paid[0][1] > 0
    async with mall.svc.uows() as uow:
        facts = await uow.session.scalar(select(MemberFacts).where(MemberFacts.member_id == member))
    assert (facts.orders, facts.paid_fen, facts.acq_kind) == (1, paid[0][1], "organic")
    assert facts.first_order_at is not None and facts.last_seen_at is not None
    assert order_no


async def test_a_repeated_outbox_delivery_records_once(mall):
    from social_mall.plugins import Delivery
    from social_mall_insights.subscribers import record as rec

    tenant = await mall.svc.tenant("demo")
    d = Delivery(987654, tenant.id, "order.paid", {"order_id": 5, "member_id": 77, "paid_fen": 1000}, 1)
    for _ in range(2):
        async with mall.svc.uows() as uow:
            await rec(uow, [d], mall.svc.clock())
            await uow.commit()
    assert [k for k, *_ in await events_of(mall, 77)] == ["order.paid"]
    async with mall.svc.uows() as uow:
        facts = await uow.session.scalar(select(MemberFacts).where(MemberFacts.member_id == 77))
    assert (facts.orders, facts.paid_fen) == (1, 1000)


async def test_search_with_its_result_count_and_an_h5_view(mall):
    wx = simulator(mall)
    await wx.event(BUYER, "subscribe")
    await say(wx, BUYER, "搜索 脐橙")
    await say(wx, BUYER, "搜索 不存在的东西")
    assert (await mall.client.get("/h5/product/demo/1?src=poster_1")).status == 200
    await record(mall)
    member = await member_of(mall, BUYER)
    async with mall.svc.uows() as uow:
        searches = (await uow.session.execute(select(Event.props).where(Event.member_id == member,
                                                                         Event.kind == "search")
                                              .order_by(Event.id))).scalars().all()
        h5 = (await uow.session.execute(select(Event.member_id, Event.channel, Event.source, Event.ref)
                                        .where(Event.kind == "product.view", Event.channel == "h5"))).all()
    assert [(s["q"], s["results"] > 0) for s in searches] == [("脐橙", True), ("不存在的东西", False)]
    assert h5 == [(0, "h5", "poster_1", 1)]


async def test_a_merge_moves_the_history_to_the_kept_member(mall):
    from social_mall_insights.subscribers import merge

    wx = simulator(mall)
    await chat_purchase(mall, wx, BUYER)
    await record(mall)
    member = await member_of(mall, BUYER)
    n = len(await events_of(mall, member))
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await merge(uow, tenant.id, 4242, member)
        await uow.commit()
    assert await events_of(mall, member) == []
    assert len(await events_of(mall, 4242)) == n
    async with mall.svc.uows() as uow:
        facts = (await uow.session.scalars(select(MemberFacts).where(MemberFacts.member_id.in_([member, 4242])))).all()
    assert [(f.member_id, f.orders) for f in facts] == [(4242, 1)]
    assert await job(mall, "insights.flush") == 0
