"""Express shipping-fee templates (运费模板): made in the console (HTTP), shown at checkout
before payment, charged exactly once (the order's total is goods + that fee, and the
sandbox payment of that total is accepted), regions not served refused with a clear
answer and no order; by piece, by weight, free above an amount. Pure fee rules too."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from social_mall.catalog.service import list_products
from social_mall_local.rules_shipping import ANY, Parcel, Template, parse_rule_line, province_of, template_fee
from storage.models import Address, AuditEntry, Order
from tests.fakes.console_kit import login, make_admin
from tests.fakes.pay_kit import XRW, oauth_payer

from local_kit import order, pay_in_sandbox, say, simulator

BUYER = "oUser_local_shipping_000001"


@pytest.fixture
async def boss(mall):
    await make_admin(mall.svc.uows, "boss")
    return await login(mall.client, "boss")


async def make_template(mall, csrf, **form) -> None:
    resp = await mall.client.post("/console/local/shipping", data={"_csrf": csrf, **form}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def checkout_to(wx, keyword: str, qty: int, address: str) -> str:
    """From a search to the summary for `qty` of a one-SKU product, sent to a new `address`."""
    await wx.event(BUYER, "subscribe")
    card = await say(wx, BUYER, f"搜索 {keyword}")                    # one hit: its card at once
    assert keyword in card
    asked = await say(wx, BUYER, f"x{qty}")                            # its only SKU
    if "请发来收货地址" not in asked:                                  # a saved address: type a new one
        asked = await say(wx, BUYER, "新地址")
    assert "请发来收货地址" in asked
    return await say(wx, BUYER, f"王小明 13912345678 {address}")


async def orders(mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Order).where(Order.channel == "mp"))


async def test_a_template_prices_express_once_and_refuses_regions_it_doesnt_serve(mall, boss):
    await make_template(mall, boss, name="江浙沪", mode="piece", rules="上海,江苏,浙江 1 6.00 1 2.00\n* 1 12.00 1 5.00",
                        free_over="0", unserved="新疆,西藏", is_default="1")
    wx = simulator(mall)
    confirm = await checkout_to(wx, "纯棉毛巾", 3, "上海市浦东新区世纪大道100号")
    assert "运费：¥10.00" in confirm and "应付：¥127.00" in confirm        # 3 × ¥39.00 + ¥6 + 2 × ¥2
    order_no = await pay_in_sandbox(mall, await say(wx, BUYER, "确认"))
    placed = await order(mall, order_no)
    assert (placed.goods_fen, placed.shipping_fen, placed.total_fen, placed.paid_fen) == (11700, 1000, 12700, 12700)

    far = await checkout_to(wx, "纯棉毛巾", 1, "新疆乌鲁木齐市天山区人民路1号")
    assert "新疆暂不支持快递配送" in far and "请发来收货地址" in far        # asked for another address
    assert await orders(mall) == 1
    async with mall.svc.uows() as uow:                                  # the refused address wasn't kept
        from storage.models import Address

        assert not (await uow.session.scalars(select(Address).where(Address.detail.like("新疆%")))).all()
    await say(wx, BUYER, "取消")
    elsewhere = await checkout_to(wx, "纯棉毛巾", 1, "广东省深圳市南山区科技园1号")
    assert "运费：¥12.00" in elsewhere


async def test_by_weight_and_free_above_an_amount(mall, boss):
    await make_template(mall, boss, name="按重", mode="weight", rules="* 1000 10.00 500 3.00", free_over="199")
    async with mall.svc.uows() as uow:
        tenant = await mall.svc.tenant("demo")
        product = (await list_products(uow, tenant.id, keyword="洗衣凝珠")).items[0]
    template_id = re.search(r"(\d+)\. 按重", await (await mall.client.get("/console/local/shipping")).text())
    resp = await mall.client.post(f"/console/local/products/{product.id}", data={
        "_csrf": boss, "kind": "goods", "m_express": "1", "uses": "1", "valid_days": "30",
        "ship_template_id": template_id.group(1), "weight_g": "1500"}, allow_redirects=False)
    assert resp.status == 303
    wx = simulator(mall)
    two = await checkout_to(wx, "洗衣凝珠", 2, "广东省深圳市南山区科技园1号")    # 3000 g
    assert "运费：¥22.00" in two                                         # ¥10 + 4 × ¥3
    five = await checkout_to(wx, "洗衣凝珠", 5, "广东省深圳市南山区科技园1号")   # ¥199.50 ≥ ¥199
    assert "运费：免运费" in five and "应付：¥199.50" in five
    other = await checkout_to(wx, "纯棉毛巾", 1, "广东省深圳市南山区科技园1号")  # no template, no default
    assert "运费：¥8.00" in other                                         # the core's flat fee


async def test_the_console_refuses_a_bad_template(mall, boss):
    for bad in ({"rules": "火星 1 6.00 1 2.00"}, {"rules": "* 0 6.00 1 2.00"}, {"rules": "* 1 6.005 1 2"},
                {"mode": "volume"}, {"unserved": "火星"}, {"rules": ""}, {"free_over": "-1"}):
        form = {"name": "t", "mode": "piece", "rules": "* 1 6.00 1 2.00", "free_over": "0", **bad}
        resp = await mall.client.post("/console/local/shipping", data={"_csrf": boss, **form})
        assert resp.status == 400, bad
    assert "还没有运费模板" in await (await mall.client.get("/console/local/shipping")).text()


def test_fee_rules():
    t = Template.from_json(1, "t", "piece", 0, ["西藏"], [
        {"regions": ["上海"], "first": 2, "first_fen": 500, "extra": 3, "extra_fen": 100},
        {"regions": ["*"], "first": 1, "first_fen": 1000, "extra": 1, "extra_fen": 500}])
    assert template_fee(t, "上海", Parcel(100, 2, 0)) == 500
    assert template_fee(t, "上海", Parcel(100, 3, 0)) == 600          # one started block of 3
    assert template_fee(t, "上海", Parcel(100, 6, 0)) == 700
    assert template_fee(t, "广东", Parcel(100, 2, 0)) == 1500
    assert template_fee(t, "西藏", Parcel(100, 1, 0)) is None
    assert province_of("内蒙古自治区呼和浩特市") == "内蒙古" and province_of(" 上海市 浦东") == "上海"
    assert province_of("浦东新区世纪大道") == ANY
    assert parse_rule_line("上海，江苏 1 6 1 2.5").first_fen == 600
    assert parse_rule_line("上海 1 6.00 1") is None


def picked(province: str, city: str, district: str, street: str) -> dict:
    return {"errMsg": "openAddress:ok", "userName": "李四", "telNumber": "13900139000", "provinceName": province,
            "cityName": city, "countryName": district, "detailInfo": street}


async def test_the_pay_page_address_picker_never_changes_what_express_costs(mall, boss):
    """The pay page's WeChat address picker on an unpaid order: a region priced otherwise or
    not served is refused and nothing changes (order, address book, audit); one priced the
    same is taken."""
    await make_template(mall, boss, name="江浙沪", mode="piece", rules="上海,江苏,浙江 1 6.00 1 2.00\n* 1 12.00 1 5.00",
                        free_over="0", unserved="新疆,西藏", is_default="1")
    wx = simulator(mall)
    confirm = await checkout_to(wx, "纯棉毛巾", 1, "上海市浦东新区世纪大道100号")
    assert "运费：¥6.00" in confirm and "应付：¥45.00" in confirm
    placed = await say(wx, BUYER, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    path = url[url.index("/h5/"):]
    await oauth_payer(mall, mall.client, path, BUYER)
    order_path, _, query = path.partition("?")

    async def pick(address: dict):
        return await mall.client.post(f"{order_path}/address?{query}", data=json.dumps(address, ensure_ascii=False),
                                      headers={**XRW, "Content-Type": "application/json"})

    async def state():
        placed_order = await order(mall, order_no)
        async with mall.svc.uows() as uow:
            book = (await uow.session.scalars(select(Address.detail).order_by(Address.id))).all()
            audits = await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                              .where(AuditEntry.action == "order.ship_to"))
        return (placed_order.ship_name, placed_order.ship_address, placed_order.shipping_fen,
                placed_order.total_fen), list(book), audits

    before = await state()
    assert before[0] == ("王小明", "上海市浦东新区世纪大道100号", 600, 4500)
    far = await pick(picked("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "人民路1号"))
    assert far.status == 409 and "不在配送范围" in (await far.json())["message"]
    dearer = await pick(picked("广东省", "深圳市", "南山区", "科技园1号"))
    assert dearer.status == 409
    assert "运费是 ¥12.00（下单时 ¥6.00）" in (await dearer.json())["message"]
    assert await state() == before
    same = await pick(picked("江苏省", "南京市", "玄武区", "中山路1号"))
    assert same.status == 200, await same.text()
    after = await state()
    assert after[0] == ("李四", "江苏省南京市玄武区中山路1号", 600, 4500)
    assert after[1] == [*before[1], "江苏省南京市玄武区中山路1号"] and after[2] == before[2] + 1
