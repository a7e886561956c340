"""A tenant's second official account with its own pay merchant, for the tests of orders
that must be paid at the merchant of the account their buyer came through (issue 25)."""

from __future__ import annotations

from typing import Any

from handlers.mp_simulator import MPSimulator
from social_mall.channels import service as channels
from social_mall.orders.service import find_order
from social_mall.payments import wxpay_v3
from storage.pay_repos import PayAccountRepo
from tests.fakes.pay_kit import XRW
from tests.fakes.wechat_pay import FakeWeChatPay

APP2, TOKEN2, SECRET2 = "wx2222222222222222", "SecondAccountToken2", "second_secret_0000000000000000"
MCH2 = "1900000222"


async def second_merchant(mall: Any, aiohttp_server: Any, tmp_path: Any, tenant: Any, *, mchid: str,
                          appid: str) -> tuple[FakeWeChatPay, int]:
    """A second enabled APIv3 merchant of `tenant` at a fake WeChat Pay of its own."""
    merchant = wxpay_v3.generate_keypair()
    key_dir = tmp_path / f"paykeys_{mchid}"
    key_dir.mkdir()
    (key_dir / "apiclient_key.pem").write_bytes(merchant.private_pem)
    fake = FakeWeChatPay(mchid=mchid, appid=appid, apiv3_key="B" * 32, merchant_serial=merchant.serial,
                         merchant_public_pem=merchant.public_pem)
    (key_dir / "pub_key.pem").write_bytes(fake.platform.public_pem)
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    async with mall.svc.uows() as uow:
        row = await PayAccountRepo(uow.session).add_merchant(
            tenant.id, mall.svc.clock(), api_version="v3", mch_id=mchid, app_id=appid, apiv3_key="B" * 32,
            private_key_path=str(key_dir / "apiclient_key.pem"), serial_no=merchant.serial,
            platform_mode="public_key", platform_key_path=str(key_dir / "pub_key.pem"),
            platform_key_id=fake.platform.serial, base_url=fake.base_url, enabled=True, name="第二商户")
        await uow.commit()
        merchant_id = row.id
    mall.svc.forget_tenants()
    return fake, merchant_id


async def second_account(mall: Any, tenant: Any, merchant_id: int | None) -> int:
    """A second official account of `tenant` ("shop2"), linked to `merchant_id`."""
    async with mall.svc.uows() as uow:
        acct = await channels.save_account(
            uow, tenant.id, None, kind="mp", code="shop2",
            values={"name": "第二个公众号", "app_id": APP2, "app_secret": SECRET2, "token": TOKEN2},
            pay_account_id=merchant_id, enabled=True, actor="test", now=mall.svc.clock())
        await uow.commit()
    mall.svc.forget_tenants()
    return acct.id


async def second_entrance(mall: Any, aiohttp_server: Any, tmp_path: Any) -> tuple[MPSimulator, FakeWeChatPay, int, int]:
    """The demo tenant's second official account linked to a second merchant: its signed
    simulator, the merchant's fake WeChat Pay, the account id and the merchant id."""
    tenant = await mall.svc.tenant("demo")
    fake, merchant = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid=MCH2, appid=APP2)
    account = await second_account(mall, tenant, merchant)
    mall.fake.more_apps[APP2] = SECRET2
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                     token=TOKEN2, app_id=APP2)
    return wx, fake, account, merchant


async def open_native(mall: Any, order_no: str) -> tuple[int, int]:
    """Open the order's Native payment through the pay page (a real request to the WeChat
    Pay of the order's merchant; read it with `opened`); the order's (channel account,
    merchant)."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
    token = mall.svc.pay_token("demo", order_no)
    resp = await mall.client.post(f"/h5/pay/demo/{order_no}/native?t={token}", headers=XRW)
    assert resp.status == 200, await resp.text()
    return order.channel_account_id, order.pay_account_id


def opened(fake: FakeWeChatPay, order_no: str) -> list[str]:
    """The merchant ids a Native payment for `order_no` was opened at, on this fake."""
    return [c.body["mchid"] for c in fake.calls
            if c.path == "/v3/pay/transactions/native" and c.body.get("out_trade_no") == order_no]
