"""WeChat's own address picker on the pay page (JS-SDK wx.openAddress), over HTTP: inside
WeChat the buyer's pay page carries a wx.config signed with the jsapi_ticket the fake WeChat
API issued (sha1 of jsapi_ticket=…&noncestr=…&timestamp=…&url=…, checked here with the
formula itself and by the fake the way the WeChat client checks it); the picked address,
POSTed by the page, is saved as the buyer's default and set on the unpaid order; a paid
order, another person, a forged link or a malformed address change nothing."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.members.service import list_addresses, resolve_member
from storage.models import AuditEntry
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.pay_kit import WECHAT_UA, XRW, load
from tests.fakes.pay_kit import oauth_payer as login
from tests.fakes.wechat_pay import attach_real_pay

BUYER = "oUser_picker_buyer_00000001"
PICKED = {"errMsg": "openAddress:ok", "userName": "李四", "telNumber": "13900139000", "provinceName": "上海市",
          "cityName": "上海市", "countryName": "浦东新区", "detailInfo": "世纪大道200号", "postalCode": "200120",
          "nationalCode": "310115"}
FIRST = ("王小明", "13912345678", "广东省深圳市南山区科技园1号")


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY)


async def chat_order(wx, user: str = BUYER) -> tuple[str, str]:
    """A new customer buys 西湖龙井 in chat: (order no, pay page path)."""
    await wx.event(user, "subscribe")
    await wx.text(user, "搜索 龙井")
    await wx.text(user, "购买")
    await wx.text(user, " ".join(FIRST))
    placed = (await wx.text(user, "确认")).text
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    return order_no, url[url.index("/h5/"):]


async def page_config(client, path: str) -> dict | None:
    """The wx.config on the pay page as WeChat's browser gets it (None: no picker offered)."""
    resp = await client.get(path, headers={"User-Agent": WECHAT_UA}, allow_redirects=False)
    assert resp.status == 200, resp.status
    html = await resp.text()
    found = re.search(r"var cfg = (\{.*?\});", html)
    return json.loads(found.group(1)) if found else None


def expected_signature(ticket: str, cfg: dict, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={cfg['nonceStr']}&timestamp={cfg['timestamp']}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()


async def post(client, path: str, body: object, *, headers=XRW, raw: bytes | None = None):
    order_path, _, query = path.partition("?")
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    return await client.post(f"{order_path}/address?{query}", data=data,
                             headers={**headers, "Content-Type": "application/json"})


async def state(mall, order_no: str) -> tuple:
    """What a refused request must leave as it was: the order's ship-to and total, the
    buyer's address book, the audit trail of address changes."""
    tenant = await mall.svc.tenant("demo")
    order = await load(mall, tenant, order_no)
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", BUYER)
        book = [(a.name, a.phone, a.detail, a.is_default) for a in await list_addresses(uow, tenant.id, member.id)]
        audits = (await uow.session.scalars(select(AuditEntry.after).where(AuditEntry.action == "order.ship_to"))).all()
    return (order.ship_name, order.ship_phone, order.ship_address, order.total_fen, order.status), book, list(audits)


@pytest.fixture
async def wxpay(mall, aiohttp_server, tmp_path):
    return await attach_real_pay(mall, aiohttp_server, tmp_path)


async def test_the_buyers_pay_page_in_wechat_carries_a_config_signed_with_the_jsapi_ticket(mall, wx, wxpay):
    order_no, path = await chat_order(wx)
    first = await mall.client.get(path, headers={"User-Agent": WECHAT_UA}, allow_redirects=False)
    assert first.status == 302                                           # who is this? OAuth first
    await login(mall, mall.client, path, BUYER)
    cfg = await page_config(mall.client, path)
    assert cfg is not None and cfg["appId"] == TEST_APP_ID
    url = f"{mall.svc.public_base_url}{path}"
    assert cfg["signature"] == expected_signature(mall.fake.jsapi_ticket, cfg, url)
    assert mall.fake.js_config_ok(app_id=cfg["appId"], timestamp=cfg["timestamp"], nonce=cfg["nonceStr"],
                                  signature=cfg["signature"], url=url + "#wechat_redirect")
    assert cfg["post"] == path.replace("?", "/address?")
    again = await page_config(mall.client, path)                        # the ticket is cached, the nonce new
    assert again["nonceStr"] != cfg["nonceStr"]
    assert again["signature"] == expected_signature(mall.fake.jsapi_ticket, again, url)
    assert len(mall.fake.calls_to("/cgi-bin/ticket/getticket")) == 1
    # outside WeChat no picker, and none for a paid order (below) or another person
    html = await (await mall.client.get(path)).text()
    assert "wx.config" not in html and "jweixin" not in html


async def test_a_picked_address_is_saved_and_set_on_the_unpaid_order(mall, wx, wxpay):
    order_no, path = await chat_order(wx)
    (ship_before, book_before, _) = await state(mall, order_no)
    assert ship_before[:3] == FIRST and book_before == [(*FIRST, True)]
    await login(mall, mall.client, path, BUYER)
    resp = await post(mall.client, path, PICKED)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["ship"] == "李四，上海市浦东新区世纪大道200号" and answer["total"] == "¥298.00"
    (ship, book, audits) = await state(mall, order_no)
    assert ship == ("李四", "13900139000", "上海市浦东新区世纪大道200号", ship_before[3], "pending_payment")
    assert book == [("李四", "13900139000", "上海市浦东新区世纪大道200号", True), (*FIRST, False)]
    assert audits == [{"name": "李四", "phone": "139****9000", "address": "上海市浦东新区世纪大道200号"}]
    page = await (await mall.client.get(path, headers={"User-Agent": WECHAT_UA})).text()
    assert "李四，上海市浦东新区世纪大道200号" in page
    # the next chat checkout ships to it without asking
    await wx.text(BUYER, "搜索 龙井")
    assert "收货：李四 139****9000 上海市浦东新区世纪大道200号" in (await wx.text(BUYER, "购买")).text


async def test_a_paid_order_refuses_a_new_address_and_nothing_changes(mall, wx, wxpay):
    order_no, path = await chat_order(wx)
    await login(mall, mall.client, path, BUYER)
    token = parse_qs(urlsplit(path).query)["t"][0]
    prepay = await mall.client.post(f"/h5/pay/demo/{order_no}/jsapi?t={token}", headers={**XRW, "User-Agent": WECHAT_UA})
    assert prepay.status == 200
    assert await wxpay.pay(order_no) == 204
    await mall.settle()
    before = await state(mall, order_no)
    assert before[0][4] == "paid"
    assert await page_config(mall.client, path) is None                  # no picker on a paid order
    resp = await post(mall.client, path, PICKED)
    assert resp.status == 409 and "不能再修改收货地址" in (await resp.json())["message"]
    assert await state(mall, order_no) == before


@pytest.mark.parametrize("case", ["no_header", "forged_link", "no_cookie", "another_person", "not_json",
                                  "not_an_object", "lone_surrogate", "landline", "no_detail", "too_big"])
async def test_refused_requests_change_nothing(mall, wx, wxpay, aiohttp_client, case):
    order_no, path = await chat_order(wx)
    await login(mall, mall.client, path, BUYER)
    before = await state(mall, order_no)
    client, body, raw, headers, target = mall.client, dict(PICKED), None, XRW, path
    if case == "no_header":
        headers = {}
    elif case == "forged_link":
        target = path.split("?t=")[0] + "?t=0123456789abcdef0123"
    elif case == "no_cookie":
        client = await aiohttp_client(mall.app)
    elif case == "another_person":
        client = await aiohttp_client(mall.app)
        await chat_order(wx, "oUser_picker_other_00000001")         # a member of the shop, not the buyer
        await login(mall, client, path, "oUser_picker_other_00000001")
    elif case == "not_json":
        raw = b"userName=%E6%9D%8E"
    elif case == "not_an_object":
        body = ["李四", "13900139000"]
    elif case == "lone_surrogate":
        raw = b'{"userName": "\\ud800", "telNumber": "13900139000", "provinceName": "x", "cityName": "y", ' \
              b'"countryName": "z", "detailInfo": "\\u4e16\\u7eaa\\u5927\\u9053200\\u53f7"}'
    elif case == "landline":
        body["telNumber"] = "021-12345678"
    elif case == "no_detail":
        body["detailInfo"] = ""
    elif case == "too_big":
        body["detailInfo"] = "路" * 5000
    resp = await post(client, target, body, headers=headers, raw=raw)
    expected = {"no_header": 403, "forged_link": 403, "no_cookie": 401, "another_person": 403,
                "too_big": 413}.get(case, 400)
    assert resp.status == expected, await resp.text()
    if expected == 400:
        message = (await resp.json())["message"]
        assert "请" in message and "重新选择" in message
        if case == "landline":
            assert "手机号" in message
    assert await state(mall, order_no) == before


async def test_the_sandbox_pay_page_offers_the_picker_to_a_known_buyer_too(mall, wx):
    order_no, path = await chat_order(wx)
    await login(mall, mall.client, path, BUYER)
    cfg = await page_config(mall.client, path)
    assert cfg is not None
    assert cfg["signature"] == expected_signature(mall.fake.jsapi_ticket, cfg, f"{mall.svc.public_base_url}{path}")
    resp = await post(mall.client, path, PICKED)
    assert resp.status == 200
    assert (await state(mall, order_no))[0][:3] == ("李四", "13900139000", "上海市浦东新区世纪大道200号")


async def test_no_ticket_from_wechat_leaves_the_page_as_it_was(mall, wx):
    order_no, path = await chat_order(wx)
    await login(mall, mall.client, path, BUYER)
    mall.fake.fail_next("/cgi-bin/ticket/getticket", -1)
    resp = await mall.client.get(path, headers={"User-Agent": WECHAT_UA})
    html = await resp.text()
    assert resp.status == 200 and "确认支付" in html and "wx.config" not in html
