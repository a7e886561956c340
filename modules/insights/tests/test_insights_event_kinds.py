"""Each kind of thing a follower does in the official account becomes its event, attributed
to the member: a menu click (its key), a scan of a parametric QR code by someone already
following (its scene), an image and a location sent (the message kind), a product added to
the cart (the SKU and the quantity), unfollowing. Signed WeChat requests into the real
endpoint; written by the module's flush, off the chat path."""

from __future__ import annotations

from sqlalchemy import select

from social_mall_insights.models import Event

from ins_kit import member_of, record, say, simulator

FAN = "oIns_kinds_fan_0000000000001"


async def test_clicks_scans_images_locations_cart_adds_and_unfollowing_are_recorded(mall):
    wx = simulator(mall)
    await wx.event(FAN, "subscribe")
    await wx.event(FAN, "CLICK", "分类")
    await wx.event(FAN, "SCAN", "poster_3")
    await wx.image(FAN, "media_ins_kinds_1", "https://example.com/p.jpg")
    await wx.location(FAN, "22.54", "113.95", "深圳市南山区科技园")
    assert "赣南脐橙" in await say(wx, FAN, "搜索 脐橙")
    await say(wx, FAN, "1")
    assert "已加入购物车" in await say(wx, FAN, "加购")
    await wx.event(FAN, "unsubscribe")
    await record(mall)
    member = await member_of(mall, FAN)
    async with mall.svc.uows() as uow:
        rows = [(k, ch, src, ref, props) for k, ch, src, ref, props in await uow.session.execute(
            select(Event.kind, Event.channel, Event.source, Event.ref, Event.props)
            .where(Event.member_id == member).order_by(Event.at, Event.id))]
    kinds = [k for k, *_ in rows]
    assert kinds[0] == "subscribe" and kinds[-1] == "unsubscribe", kinds
    assert all(ch == "mp" for k, ch, *_ in rows if k != "member.joined"), rows
    (click,) = [p for k, _c, _s, _r, p in rows if k == "menu.click"]
    assert click.get("key") == "分类"
    assert [s for k, _c, s, _r, _p in rows if k == "scan"] == ["poster_3"]
    assert {p.get("kind") for k, *_x, p in rows if k == "message"} >= {"image", "location"}
    (cart,) = [(r, p) for k, _c, _s, r, p in rows if k == "cart.add"]
    assert cart[0] > 0 and cart[1].get("qty") == 1
