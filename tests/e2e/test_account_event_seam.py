"""The account-event seam (Registry.add_account_event), through the signed endpoint on both
backends: a module's handler gets an event that is no member's action (here
TEMPLATESENDJOBFINISH) once however often WeChat retries it, WeChat hears "success", no chat
flow runs and no member is made for the sender; a handler that fails answers 500 and the
retry gets another go. Without a handler the event reads exactly as before (the chat runs)."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from bot import BUILTIN_MODULES
from handlers.mp_simulator import MPSimulator
from social_mall.plugins import Module, Registry
from storage.models import Member
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings

SENDER = "oSystem_tpl_finish_00000001"


async def make_mall(backend, tmp_path, fake_wechat, aiohttp_client, handler=None) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    def setup(reg: Registry) -> None:
        reg.add_account_event("TEMPLATESENDJOBFINISH", handler)

    extra = [Module("scripted_events", setup)] if handler else []
    settings = app_settings(backend, tmp_path, fake_wechat.base_url)
    app = build_app(settings, auto_setup=True, modules=[*BUILTIN_MODULES, *extra])
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


def finish_xml(wx: MPSimulator, msg_id: int, created: int) -> str:
    return wx._envelope(SENDER, "event", f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msg_id}</MsgID>"
                                         "<Status><![CDATA[success]]></Status>", created)


def wx_of(mall: Mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                       app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def members(mall: Mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Member))


async def test_a_module_records_an_account_event_once(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    got: list[tuple[int, str, str]] = []
    fail = [True]

    async def handler(tenant_id, fields):
        if fail[0]:
            fail[0] = False
            raise RuntimeError("database down")
        got.append((tenant_id, fields["MsgID"], fields["Status"]))

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, handler)
    wx = wx_of(mall)
    before = await members(mall)
    xml = finish_xml(wx, 200163836, int(time.time()))
    first = await wx.post(*wx.signed_request(xml, user=SENDER))
    assert first.status == 500 and got == []                          # not recorded: WeChat retries
    for _ in range(2):
        answer = await wx.post(*wx.signed_request(xml, user=SENDER))
        assert answer.status == 200 and answer.body == "success"
    tenant = await mall.svc.tenant("demo")
    assert got == [(tenant.id, "200163836", "success")]
    assert await members(mall) == before


async def test_without_a_handler_the_event_reads_as_before(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = wx_of(mall)
    before = await members(mall)
    answer = await wx.post(*wx.signed_request(finish_xml(wx, 200163837, int(time.time())), user=SENDER))
    assert answer.status == 200
    assert await members(mall) == before + 1                           # the chat ran, as it always did
