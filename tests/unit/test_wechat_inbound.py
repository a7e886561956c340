"""The official-account adapter's Inbound: the same values wechatpy's fields give."""

from __future__ import annotations

import dataclasses

from wechatpy import parse_message

from handlers.wechat_mp import sent_at, to_inbound
from social_mall.tenants import TenantView

XML = ("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_user_1]]></FromUserName>"
       "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
       "<Content><![CDATA[ 分类 ]]></Content><MsgId>1234567890123456</MsgId></xml>")


def test_inbound_carries_wechatpys_values_and_the_same_send_time():
    msg = parse_message(XML)
    fields = {f.name: (7 if f.type == "int" else "") for f in dataclasses.fields(TenantView)}
    tenant = TenantView(**{**fields, "code": "demo"})
    inbound = to_inbound(tenant, msg)
    assert (inbound.user_id, inbound.text, inbound.msg_id) == ("o_user_1", "分类", "1234567890123456")
    assert inbound.at == msg.create_time
    assert inbound.at is not None and inbound.at.utcoffset() == msg.create_time.utcoffset()


def test_no_create_time_is_none():
    assert sent_at(parse_message(XML.replace("<CreateTime>1700000000</CreateTime>", ""))) is None
