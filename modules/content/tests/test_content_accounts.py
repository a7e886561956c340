"""A tenant with a second official account (issue 25): broadcasts and previews go out from
the primary account, whose token is refused for another account's openids (the fake: 40003),
so a segment counts only openids at the primary account, and the preview binding takes the
admin's openid there (sent through another account: told to use the primary)."""

from __future__ import annotations

import re

from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.catalog.service import list_products
from social_mall.channels import service as channels
from social_mall.members.service import member_of
from storage.models import Product, Sku
from tests.channels_kit import APP2, SECRET2, TOKEN2, second_account
from tests.fakes.console_kit import login, make_admin, paid_order

from test_content_articles import make, post, wx_of
from test_content_broadcasts import form_key

BUYERS = ("oBuyer_content_acct_0000001", "oBuyer_content_acct_0000002")
SECOND = "oBuyer_content_acct_second1"         # a follower of the second account only
BOTH_1, BOTH_2 = "oBuyer_content_both_prim01", "oBuyer_content_both_secd01"   # one person, both accounts
ADMIN_2 = "oAdmin_content_acct_second1"


async def test_a_segment_goes_to_the_primary_accounts_openids_and_preview_binds_there(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall = await make(backend, tmp_path, fake_wechat, aiohttp_client)
    tenant = await mall.svc.tenant("demo")
    await second_account(mall, tenant, None)
    fake_wechat.more_apps[APP2] = SECRET2
    wx1 = wx_of(mall)
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    for user in (SECOND, BOTH_2, ADMIN_2):
        fake_wechat.openid_apps[user] = APP2
        await wx2.event(user, "subscribe")
    for user in (*BUYERS, BOTH_1):
        fake_wechat.openid_apps[user] = tenant.wechat_app_id
        await wx1.event(user, "subscribe")
    async with mall.svc.uows() as uow:
        mango = (await list_products(uow, tenant.id, keyword="芒果干")).items[0].id
        category = await uow.session.scalar(select(Product.category_id).where(Product.id == mango))
        sku = await uow.session.scalar(select(Sku.id).where(Sku.product_id == mango).order_by(Sku.id).limit(1))
    for user in (*BUYERS, SECOND, BOTH_2):
        await paid_order(mall.svc.uows, tenant.id, user, sku_id=sku)
    async with mall.svc.uows() as uow:      # BOTH_2 (bought through the second account) is BOTH_1 too
        first, second = await member_of(uow, tenant.id, "mp", BOTH_2), await member_of(uow, tenant.id, "mp", BOTH_1)
        await channels.link_unionid(uow, tenant.id, first, "uContentBoth01", now=mall.svc.clock())
        await channels.link_unionid(uow, tenant.id, second, "uContentBoth01", now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    await make_admin(mall.svc.uows, "boss", role="owner")
    await login(mall.client, "boss")

    # the preview binding through the second account: told to use the primary, the code kept
    page = await (await post(mall, "/console/content/broadcasts/bind")).text()
    code = re.search(r"预览绑定 ([0-9A-Z]{5}-[0-9A-Z]{5})", page).group(1)
    assert "主公众号" in (await wx2.text(ADMIN_2, f"预览绑定 {code}")).text
    refused = await post(mall, "/console/content/broadcasts/preview", article="", text="hi", segment="all")
    assert refused.status == 400 and fake_wechat.mass_previews == []

    sent = await post(mall, "/console/content/broadcasts", key=await form_key(mall), text="年货节开抢",
                      segment=f"category:{category}")
    assert sent.status == 303, await sent.text()
    (job,) = fake_wechat.mass_sent                  # before: the second account's openids too, 40003
    assert sorted(job["touser"]) == sorted((*BUYERS, BOTH_1))
