"""The official-account adapter's Inbound: the same values wechatpy's fields give."""

from __future__ import annotations

import dataclasses

from wechatpy import parse_message

import pytest

from handlers.wechat_mp import read_message, sent_at, to_inbound
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


def _xml(msg_type: str, body: str) -> str:
    return (f"<xml><ToUserName>gh_1</ToUserName><FromUserName>o_user_1</FromUserName>"
            f"<CreateTime>1700000000</CreateTime><MsgType>{msg_type}</MsgType>{body}</xml>")


@pytest.mark.parametrize("xml", [
    XML,
    _xml("image", "<PicUrl>http://x/p.jpg</PicUrl><MediaId>m1</MediaId><MsgId>12</MsgId>"),
    _xml("event", "<Event>subscribe</Event>"),
    _xml("event", "<Event>subscribe</Event><EventKey>qrscene_gb_7</EventKey><Ticket>t1</Ticket>"),
    _xml("event", "<Event>subscribe</Event><EventKey>scanbarcode|x</EventKey>"),
    _xml("event", "<Event>SCAN</Event><EventKey>gb_7</EventKey><Ticket>t1</Ticket>"),
    _xml("event", "<Event>CLICK</Event><EventKey>MENU_1</EventKey>"),
    _xml("event", "<Event>LOCATION</Event><Latitude>23.1</Latitude><Longitude>113.3</Longitude>"
                  "<Precision>50</Precision>"),
    _xml("event", "<Event>unsubscribe</Event>"),
    _xml("voice", "<MediaId>m2</MediaId><Format>amr</Format><MsgId>13</MsgId>"),
])
def test_the_checked_reader_gives_wechatpys_message(xml):
    mine, theirs = read_message(xml.encode()), parse_message(xml)
    assert (type(mine), mine._data) == (type(theirs), theirs._data)
