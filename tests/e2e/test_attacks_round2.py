"""Round 2 of the outside attack (after #17): what was added since, attacked through the real
interfaces on both backends. Each test names the attack; a refusal asserts nothing changed.
See docs/security.md for what holds and what was tried."""

from __future__ import annotations

import dataclasses

from social_mall.orders.service import find_order
from social_mall.payments.service import request_refund
from storage.models import Payment, Refund
from sqlalchemy import select
from tests.channels_kit import APP2, SECRET2, TOKEN2, second_account, second_merchant
from tests.e2e.test_channel_accounts import buy
from handlers.mp_simulator import MPSimulator
from tests.conftest import TEST_TOKEN
from tests.fakes.pay_kit import XRW
from tests.fakes.wechat_pay import attach_real_pay


async def _mini(mall, tenant, *, code: str = "mini", app_id: str = "", secret: str = "") -> None:
    """The tenant's mini-program as a channel row (what the member API reads): by default the
    fake WeChat's own mini-program."""
    from social_mall.channels import service as channels

    app_id, secret = app_id or mall.fake.mini_app_id, secret or mall.fake.mini_app_secret
    if app_id != mall.fake.mini_app_id:
        mall.fake.mini_apps[app_id] = secret
    async with mall.svc.uows() as uow:
        await channels.save_account(uow, tenant.id, None, kind="mini", code=code,
                                    values={"name": "小程序", "app_id": app_id, "app_secret": secret},
                                    pay_account_id=None, enabled=True, actor="test", now=mall.svc.clock())
        await uow.commit()
    mall.svc.forget_tenants()


async def _open_native(mall, order_no: str) -> None:
    resp = await mall.client.post(f"/h5/pay/demo/{order_no}/native?t={mall.svc.pay_token('demo', order_no)}",
                                  headers=XRW)
    assert resp.status == 200, await resp.text()


async def _state(mall, tenant_id: int, order_no: str) -> tuple[str, int, list[str]]:
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant_id, order_no)
        pays = (await uow.session.execute(select(Payment.status).where(
            Payment.tenant_id == tenant_id, Payment.order_id == order.id))).scalars().all()
    return order.status, order.paid_fen, sorted(pays)


async def test_merchant_a_notify_for_an_order_of_merchant_b_of_the_same_tenant_is_refused(
        mall, aiohttp_server, tmp_path):
    """Two merchants of one tenant: each order is paid through its entrance's merchant. A
    genuine, correctly signed notify from merchant B, sent to B's own URL, that names an order
    taken by the default merchant must not mark it paid (the money would sit at B while refunds
    go out through the default merchant), and the other way round."""
    default = await attach_real_pay(mall, aiohttp_server, tmp_path)
    tenant = await mall.svc.tenant("demo")
    fake_b, merchant_b = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid="1900000222", appid=APP2)
    await second_account(mall, tenant, merchant_b)
    mall.fake.more_apps[APP2] = SECRET2

    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    first_no = await buy(wx1, "oUser_attack_primary_0000001")     # the default merchant's order
    second_no = await buy(wx2, "oUser_attack_second_00000001")    # merchant B's order
    await _open_native(mall, first_no)
    await _open_native(mall, second_no)
    before_first = await _state(mall, tenant.id, first_no)
    before_second = await _state(mall, tenant.id, second_no)

    # merchant B "took" a payment under the default merchant's out_trade_no and notifies its own URL
    theirs = default.orders[first_no]
    fake_b.orders[first_no] = dataclasses.replace(
        theirs, mchid=fake_b.mchid, appid=APP2, notify_url=fake_b.orders[second_no].notify_url)
    assert fake_b.orders[first_no].notify_url.endswith(f"/pay/notify/demo/{merchant_b}")
    assert await fake_b.pay(first_no) == 400
    # the default merchant notifies its URL for merchant B's order
    default.orders[second_no] = dataclasses.replace(
        fake_b.orders[second_no], mchid=default.mchid, appid=tenant.wechat_app_id,
        notify_url=default.orders[first_no].notify_url)
    assert await default.pay(second_no) == 400
    await mall.settle()
    assert await _state(mall, tenant.id, first_no) == before_first == ("pending_payment", 0, ["created"])
    assert await _state(mall, tenant.id, second_no) == before_second == ("pending_payment", 0, ["created"])

    # each merchant's own notify still pays its own order
    assert await default.pay(first_no) == 204
    assert await fake_b.pay(second_no) == 204
    await mall.settle()
    assert (await _state(mall, tenant.id, first_no))[0] == "paid"
    assert (await _state(mall, tenant.id, second_no))[0] == "paid"

    # refunds: merchant B's genuine REFUND.ABNORMAL for the default merchant's refund would mark
    # it failed and let the shop refund the same money again
    async with mall.svc.uows() as uow:
        first = await find_order(uow, tenant.id, first_no)
        await request_refund(uow, tenant.id, first.id, amount_fen=first.total_fen, reason="缺货", actor="admin",
                             now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    ref = next(iter(default.refunds.values()))
    fake_b.refunds[ref.out_refund_no] = dataclasses.replace(
        ref, status="ABNORMAL", notify_url=ref.notify_url.replace("/refund-notify/demo", f"/refund-notify/demo/{merchant_b}"))
    assert fake_b.refunds[ref.out_refund_no].notify_url.endswith(f"/pay/refund-notify/demo/{merchant_b}")
    assert await fake_b.send_refund_notify(fake_b.refunds[ref.out_refund_no]) == 400
    await mall.settle()
    async with mall.svc.uows() as uow:
        refund = await uow.session.scalar(select(Refund).where(Refund.out_refund_no == ref.out_refund_no))
    assert refund.status == "processing"
    assert (await _state(mall, tenant.id, first_no))[:2] == ("refund_requested", first.total_fen)
    # the default merchant's own notify settles it
    assert await default.complete_refunds() == [204]
    await mall.settle()
    assert (await _state(mall, tenant.id, first_no))[0] == "refunded"


async def test_the_app_api_pays_an_order_only_through_the_merchant_of_its_entrance(mall, aiohttp_server, tmp_path):
    """An order placed through the second official account (merchant B) and paid from the
    mini-program's tenant API must be opened at merchant B, never at the tenant's default
    merchant: the default's notify for it is refused (see above), so the buyer's money would
    sit there with the order unpaid."""
    from social_mall.members.service import resolve_member

    default = await attach_real_pay(mall, aiohttp_server, tmp_path)
    default.bound_appids.add(mall.fake.mini_app_id)
    tenant = await mall.svc.tenant("demo")
    fake_b, merchant_b = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid="1900000222", appid=APP2)
    await second_account(mall, tenant, merchant_b)
    mall.fake.more_apps[APP2] = SECRET2
    await _mini(mall, tenant)

    code = mall.fake.mint_js_code("mini_open_attack_1", unionid="union_attack_1")
    session = await (await mall.client.post("/api/app/v1/demo/session", json={"code": code})).json()
    async with mall.svc.uows() as uow:   # the same person follows the second official account
        oa, _ = await resolve_member(uow, tenant.id, "mp", "oUser_attack_union_000001", unionid="union_attack_1")
        await uow.commit()
    assert oa.id == session["member_id"]
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    order_no = await buy(wx2, "oUser_attack_union_000001")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
    assert (order.member_id, order.pay_account_id) == (oa.id, merchant_b)

    h = {"Authorization": f"Bearer {session['token']}"}
    refused = await mall.client.post(f"/api/app/v1/demo/orders/{order.id}/pay", headers=h)
    assert refused.status == 502          # merchant B has no binding to the mini-program
    assert order_no not in default.orders and order_no not in fake_b.orders   # refused by B, never sent to the default
    fake_b.bound_appids.add(mall.fake.mini_app_id)
    resp = await mall.client.post(f"/api/app/v1/demo/orders/{order.id}/pay", headers=h)
    assert resp.status == 200, await resp.text()
    params = (await resp.json())["params"]
    fo = fake_b.order_by_prepay(params["package"].removeprefix("prepay_id="))
    assert (fo.mchid, fo.appid) == ("1900000222", mall.fake.mini_app_id)
    assert order_no not in default.orders
    assert await fake_b.pay(order_no) == 204
    await mall.settle()
    assert (await _state(mall, tenant.id, order_no))[0] == "paid"


async def test_the_per_account_app_api_refuses_hostile_json_with_a_4xx_and_places_nothing(mall):
    """/api/app/v1/{tenant}/{account}/addresses and …/orders (checkout) with a lone surrogate in an address (PostgreSQL can't
    store it), a name that is an object, a NUL, a huge quantity or id: 422, never a 500 (the
    backends must agree), and no address or order written; the tenant's prefix the same."""
    from storage.models import Address, Order

    tenant = await mall.svc.tenant("demo")
    await _mini(mall, tenant, app_id="wx_attack_mini_01", secret="attack_mini_secret_000000000000")
    code = mall.fake.mint_js_code("mini_open_attack_json_1")
    session = await (await mall.client.post("/api/app/v1/demo/mini/session", json={"code": code})).json()
    auth = {"Authorization": f"Bearer {session['token']}", "Content-Type": "application/json",
            "Idempotency-Key": "attack-json-0001"}

    async def counts() -> tuple[int, int]:
        async with mall.svc.uows() as uow:
            return (len((await uow.session.execute(select(Address.id))).all()),
                    len((await uow.session.execute(select(Order.id))).all()))

    good = await mall.client.post("/api/app/v1/demo/mini/addresses", headers=auth, data=(
        '{"name": "王小明", "phone": "13912345678", "detail": "广东省深圳市南山区科技园1号"}').encode())
    assert good.status in (200, 201), await good.text()
    address = (await good.json()).get("id") or 1
    before = await counts()
    for body in (
        '{"name": "\\ud800", "phone": "13912345678", "detail": "深圳市1号"}',
        '{"name": "王\\u0000小明", "phone": "13912345678", "detail": "深圳市1号"}',
        '{"name": {"a": 1}, "phone": "13912345678", "detail": "深圳市1号"}',
        '{"name": "王小明", "phone": "13912345678", "detail": "深圳市\\udfff1号"}',
        '[1, 2]',
    ):
        for prefix in ("/api/app/v1/demo/mini", "/api/app/v1/demo"):
            resp = await mall.client.post(f"{prefix}/addresses", data=body.encode(), headers=auth)
            # the session is the account's: its prefix judges the body (422), the tenant's may
            # refuse the session first (401, the default mini-program is the same row here)
            assert resp.status == 422 or (prefix == "/api/app/v1/demo" and resp.status == 401), (
                prefix, body, resp.status, await resp.text())
    for body in (
        '{"items": [{"sku_id": 1, "qty": 1e400}], "address_id": %d}' % address,
        '{"items": [{"sku_id": 99999999999999999999999, "qty": 1}], "address_id": %d}' % address,
        '{"items": [{"sku_id": "²", "qty": 1}], "address_id": %d}' % address,
        '{"items": [{"sku_id": true, "qty": 1}], "address_id": %d}' % address,
        '{"items": [{"sku_id": 1, "qty": 1}], "address_id": 1e400}',
        '[1, 2]',
    ):
        resp = await mall.client.post("/api/app/v1/demo/mini/orders", data=body.encode(), headers=auth)
        assert resp.status == 422, (body, resp.status, await resp.text())
    assert await counts() == before


async def test_a_flood_of_bogus_login_codes_from_one_address_stops_reaching_wechat(mall):
    """Each POST …/session with a code costs a jscode2session call at WeChat (a per-app quota
    shared by every real buyer). Codes WeChat refused are counted per address and
    mini-program: past REFUSED_CODES_PER_MINUTE the endpoint answers 429 without asking
    WeChat, whichever prefix names that mini-program; successes never count."""
    from handlers.http_utils import REFUSED_CODES_PER_MINUTE

    tenant = await mall.svc.tenant("demo")
    await _mini(mall, tenant)                      # the tenant's only mini-program: its default

    def asked() -> int:
        return len([c for c in mall.fake.calls if c.path == "/sns/jscode2session"])

    genuine = mall.fake.mint_js_code("mini_open_flood_before")   # successes never count
    assert (await mall.client.post("/api/app/v1/demo/session", json={"code": genuine})).status == 200
    before = asked()
    statuses = [(await mall.client.post("/api/app/v1/demo/session", json={"code": f"bogus{i:04d}"})).status
                for i in range(REFUSED_CODES_PER_MINUTE + 5)]
    assert statuses == [401] * REFUSED_CODES_PER_MINUTE + [429] * 5, statuses
    assert asked() - before == REFUSED_CODES_PER_MINUTE
    # the same mini-program by its own prefix: the same counter, WeChat not asked
    statuses = [(await mall.client.post("/api/app/v1/demo/mini/session", json={"code": f"bogus9{i:03d}"})).status
                for i in range(3)]
    assert statuses == [429] * 3 and asked() - before == REFUSED_CODES_PER_MINUTE
    # the flooding address waits out the minute (the key-value TTL), a genuine code included
    code = mall.fake.mint_js_code("mini_open_flood_after")
    assert (await mall.client.post("/api/app/v1/demo/session", json={"code": code})).status == 429
