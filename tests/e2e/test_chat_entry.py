"""Menu clicks, parametric-QR entries and the terminal chat, through the real endpoint."""

import asyncio
import sys
from pathlib import Path

from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from storage.models import Member, MemberIdentity, OutboxEvent
from tests.conftest import TEST_APP_ID, TEST_TOKEN

ROOT = Path(__file__).resolve().parents[2]


def simulator(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID)


async def test_menu_click_opens_the_categories(mall):
    answer = await simulator(mall).event("oClick_user_000000000000001", "CLICK", "分类")
    assert answer.status == 200
    assert "1. 水果生鲜" in answer.text


async def test_following_through_a_parametric_qr_records_the_entry_scene(mall):
    wx = simulator(mall)
    user = "oScene_user_000000000000001"
    welcome = await wx.event(user, "subscribe", "qrscene_ref_A7")
    assert "欢迎" in welcome.text
    rescan = await wx.event(user, "SCAN", "gb_42")          # already following: SCAN, bare scene
    assert rescan.status == 200
    await mall.settle()
    async with mall.svc.uows() as uow:
        member = await uow.session.scalar(
            select(Member).join(MemberIdentity, MemberIdentity.member_id == Member.id)
            .where(MemberIdentity.external_id == user))
        rows = (await uow.session.execute(
            select(OutboxEvent.event_uid, OutboxEvent.payload).where(OutboxEvent.topic == "member.entered")
            .order_by(OutboxEvent.id))).all()
    assert member.entry_source == "ref_A7"
    events = list({uid: payload for uid, payload in rows}.values())  # one row per subscriber
    scenes = [(e["scene"], e["first_time"]) for e in events if e["member_id"] == member.id]
    assert scenes == [("ref_A7", True), ("gb_42", False)]


async def test_terminal_chat_shops_through_the_running_server(mall):
    url = str(mall.client.make_url("")).rstrip("/")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), "chat", "--url", url, "--user", "oTerminal_000000000000001",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"SOCIAL_MALL_WECHAT_TOKEN": TEST_TOKEN, "SOCIAL_MALL_WECHAT_APP_ID": TEST_APP_ID,
             "PATH": "/usr/bin:/bin", "SOCIAL_MALL_LOG_LEVEL": "WARNING"},
        cwd=str(ROOT),
    )
    out, err = await asyncio.wait_for(proc.communicate("分类\n2\n/quit\n".encode()), 60)
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "欢迎关注" in text
    assert "1. 水果生鲜" in text
    assert "每日坚果" in text           # category 2 (休闲零食) listed
