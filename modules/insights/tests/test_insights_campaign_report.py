"""A campaign's report at the size of a real shop's audience: more recipients than one SQL
statement takes parameters (32,767 on PostgreSQL's wire protocol, SQLite's default too),
still counting exactly the paid orders of recipients within 7 days of their send."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import insert

from social_mall_insights import campaigns as K
from social_mall_insights.models import Campaign, Segment, Send
from social_mall_insights.recorder import insert_events

RECIPIENTS = 33_000


async def test_a_report_on_more_recipients_than_a_statement_takes_parameters(backend, engine, uows, demo):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    sent = now - timedelta(days=10)
    async with uows() as uow:
        seg = Segment(tenant_id=demo.id, name="全部", rules={}, created_at=now)
        uow.session.add(seg)
        await uow.session.flush()
        c = Campaign(tenant_id=demo.id, segment_id=seg.id, name="大促", text="大促", url="", send_at=sent,
                     status="sent", form_key="big", created_at=sent)
        uow.session.add(c)
        await uow.session.flush()
        cid = c.id
        await uow.session.execute(insert(Send), [
            {"tenant_id": demo.id, "campaign_id": cid, "member_id": 100_000 + i, "status": "sent",
             "via": "template", "reason": "", "msg_id": i, "sent_at": sent, "delivered": i % 2 == 0,
             "opened_at": sent + timedelta(hours=1) if i % 10 == 0 else None} for i in range(RECIPIENTS)])
        await insert_events(uow, [
            (demo.id, 100_007, sent + timedelta(days=1), "order.paid", "mp", "", 1, 5_000, {}),
            (demo.id, 100_007, sent + timedelta(days=2), "order.paid", "mp", "", 2, 7_000, {}),
            (demo.id, 132_999, sent + timedelta(days=6), "order.paid", "mp", "", 3, 1_000, {}),
            (demo.id, 100_008, sent + timedelta(days=8), "order.paid", "mp", "", 4, 9_000, {}),    # too late
            (demo.id, 100_009, sent - timedelta(hours=1), "order.paid", "mp", "", 5, 9_000, {}),   # before
            (demo.id, 99_999, sent + timedelta(days=1), "order.paid", "mp", "", 6, 9_000, {}),     # not sent to
        ])
        await uow.commit()
    async with uows() as uow:
        rep = await K.report(uow, demo.id, cid)
    assert (rep.targeted, rep.sent, rep.delivered, rep.opened) == (RECIPIENTS, RECIPIENTS, RECIPIENTS // 2,
                                                                  RECIPIENTS // 10)
    assert (rep.buyers, rep.orders, rep.revenue_fen) == (2, 3, 13_000)
