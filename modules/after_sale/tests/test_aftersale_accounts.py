"""A tenant with two official accounts (issue 25): a member of the second account sends
the photo of an after-sale request there; its media id is valid only with that account's
token (the fake answers 40007 to another's), so the photo is fetched through it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall_after_sale.models import AfterSalePhoto
from tests.channels_kit import APP2, SECRET2, TOKEN2, second_account

from after_kit import REQUEST_NO, START, Clock, buy_and_pay, console, make_mall, say, settle, ship

BUYER = "oUser_aftersale_second_acct01"
PHOTO = b"\xff\xd8\xff\xe0JFIF-second-account-photo"


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=Clock(START))


async def test_a_photo_sent_to_the_second_account_is_fetched_through_it(shop):
    tenant = await shop.svc.tenant("demo")
    await second_account(shop, tenant, None)
    shop.fake.more_apps[APP2] = SECRET2
    shop.fake.openid_apps[BUYER] = APP2
    wx2 = MPSimulator(shop.client.session, str(shop.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    order_no = await buy_and_pay(shop, wx2, BUYER, "芒果干", 2)
    await console(shop)
    await ship(shop, order_no)

    for text in ("申请售后", "1", "1 x1", "下一步", "1", "5"):
        await say(wx2, BUYER, text)
    shop.fake.media["MEDIA_second_acct_photo_01"] = PHOTO
    shop.fake.media_apps["MEDIA_second_acct_photo_01"] = APP2    # WeChat holds it for that account
    assert "已收到第 1 张照片" in (await wx2.image(BUYER, "MEDIA_second_acct_photo_01")).text
    submitted = await say(wx2, BUYER, "提交")
    rid = int(REQUEST_NO.search(submitted).group(1))
    await settle(shop)

    async with shop.svc.uows() as uow:
        ph = await uow.session.scalar(select(AfterSalePhoto).where(AfterSalePhoto.request_id == rid))
    assert ph.data == PHOTO                       # before: the primary's token, 40007, nothing kept
    assert set(shop.fake.apps_calling("/cgi-bin/media/get")) == {APP2}
