"""Bind codes (「绑定码」 / 「绑定 <code>」) against guessing, through the real signed
official-account endpoint on both backends (SQLite + in-process KV, PostgreSQL + Redis).

A bind code merges the member who types it into the member who asked for it, so a
guessed code is an account takeover. Codes are 10 Crockford base32 characters (50 bits),
expire after 10 minutes, and are attempt-limited: 5 attempts per member per 15 minutes
(after that every attempt is refused, the right code included) and 5 per issued code
(after that the code is burnt). Every refusal changes nothing and is logged without the
code."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.logs import _Formatter
from social_mall.loyalty import service as loyalty
from social_mall.members.service import resolve_member
from storage.loyalty_models import MemberMerge
from storage.models import MemberIdentity
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN

VICTIM = "oBind_victim_000000000000001"
ATTACKER = "oBind_attacker_0000000000001"
OTHER = "oBind_victim_second_0000001"    # the victim's own second identity
CODE_SHAPE = re.compile(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}")   # Crockford base32, 50 bits


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def issue(wx, user: str) -> str:
    shown = await say(wx, user, "绑定码")
    m = re.search(r"绑定码：(\S+?)（", shown)
    assert m, shown
    return m.group(1)


async def people(mall, *openids: str) -> dict[str, object]:
    """Who each openid is, the merges, the identities and the points: what a merge changes."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        ids = {o: (await resolve_member(uow, tenant.id, "mp", o))[0].id for o in openids}
        return {
            "members": ids,
            "points": {o: await loyalty.points_balance(uow, tenant.id, m) for o, m in ids.items()},
            "merges": await uow.session.scalar(select(func.count()).select_from(MemberMerge)),
            "identities": sorted((i.external_id, i.member_id) for i in (await uow.session.scalars(
                select(MemberIdentity).where(MemberIdentity.tenant_id == tenant.id))).all()),
        }


def wrong_tail(code: str) -> str:
    """The same selector (first two characters) with every later character changed."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    plain = code.replace("-", "")
    flipped = plain[:2] + "".join(alphabet[(alphabet.index(c) + 1) % 32] if c in alphabet else "1" for c in plain[2:])
    return flipped


async def test_bind_codes_are_long_and_typed_in_any_case_or_grouping(mall, wx):
    for user in (VICTIM, OTHER):
        await wx.event(user, "subscribe")
    code = await issue(wx, VICTIM)
    assert CODE_SHAPE.fullmatch(code), code                         # ≥ 40 bits, grouped for reading
    typed = " ".join(code.lower().split("-"))                         # 「绑定 k7q2m 9xd3f」
    assert "绑定成功" in await say(wx, OTHER, f"绑定 {typed}")
    after = await people(mall, VICTIM, OTHER)
    assert after["members"][VICTIM] == after["members"][OTHER] and after["merges"] == 1


async def test_guesses_are_limited_per_member_and_the_victim_is_never_merged(mall, wx, caplog):
    caplog.set_level(logging.INFO)
    for user in (VICTIM, ATTACKER, OTHER):
        await wx.event(user, "subscribe")
    code = await issue(wx, VICTIM)
    await mall.settle()
    before = await people(mall, VICTIM, ATTACKER, OTHER)
    for guess in ("000000", "123456", "654321", "111111", "999999"):  # the old 6-digit space
        answer = await say(wx, ATTACKER, f"绑定 {guess}")
        assert "绑定" in answer and "绑定成功" not in answer, answer
    # the limit is reached: every attempt is refused for the window, the right code included
    refused = await say(wx, ATTACKER, f"绑定 {code}")
    assert "尝试次数过多，请 15 分钟后再试" in refused, refused
    await mall.settle()
    assert await people(mall, VICTIM, ATTACKER, OTHER) == before     # nothing merged, nothing moved

    # the limit is the attacker's: the code was never near-missed, its owner's other identity binds
    assert "绑定成功" in await say(wx, OTHER, f"绑定 {code}")

    # the failures were logged (event name, member id, reason), never the code typed
    lines = "\n".join(_Formatter("json").format(r) for r in caplog.records)
    refusals = [r for r in caplog.records if r.getMessage() == "code.refused"]
    assert len(refusals) == 6 and {getattr(r, "reason", "") for r in refusals} == {"malformed", "too_many"}
    assert code not in lines and code.replace("-", "") not in lines and ATTACKER not in lines

    # once the window has passed (injected clock), the attacker may try again
    later = mall.svc.runner.clock() + timedelta(minutes=16)
    mall.svc.runner.clock = lambda: later
    assert "尝试次数过多" not in await say(wx, ATTACKER, "绑定 000000")


async def test_a_code_that_saw_too_many_wrong_guesses_is_burnt(mall, wx):
    attackers = [f"oBind_guesser_{n:014d}" for n in range(5)]
    for user in (VICTIM, OTHER, *attackers):
        await wx.event(user, "subscribe")
    code = await issue(wx, VICTIM)
    await mall.settle()
    before = await people(mall, VICTIM, OTHER, *attackers)
    for user in attackers:                          # one near miss each: no member reaches its limit
        answer = await say(wx, user, f"绑定 {wrong_tail(code)}")
        assert "绑定码无效" in answer, answer
    burnt = await say(wx, OTHER, f"绑定 {code}")    # the right code, but it has seen 5 wrong guesses
    assert "绑定成功" not in burnt and "重新发送「绑定码」" in burnt, burnt
    await mall.settle()
    assert await people(mall, VICTIM, OTHER, *attackers) == before
    # a new code works
    assert "绑定成功" in await say(wx, OTHER, f"绑定 {await issue(wx, VICTIM)}")


async def test_an_expired_code_is_refused_and_changes_nothing(mall, wx):
    for user in (VICTIM, OTHER):
        await wx.event(user, "subscribe")
    code = await issue(wx, VICTIM)
    assert CODE_SHAPE.fullmatch(code), code
    await mall.settle()
    before = await people(mall, VICTIM, OTHER)
    base = mall.svc.runner.clock
    later = base() + timedelta(minutes=10, seconds=1)
    mall.svc.runner.clock = lambda: later
    assert "绑定码无效或已过期" in await say(wx, OTHER, f"绑定 {code}")
    await mall.settle()
    assert await people(mall, VICTIM, OTHER) == before


async def test_parallel_guesses_get_no_more_than_the_limit_checked(mall, wx, caplog):
    """Twelve guesses sent at once (concurrent signed requests): the counter is taken
    before the code is compared, so at most five are ever compared."""
    import asyncio

    caplog.set_level(logging.INFO)
    for user in (VICTIM, ATTACKER):
        await wx.event(user, "subscribe")
    code = await issue(wx, VICTIM)
    await mall.settle()
    before = await people(mall, VICTIM, ATTACKER)
    guesses = [f"{n:05d}-ZZZZZ" for n in range(12)]
    answers = await asyncio.gather(*(wx.text(ATTACKER, f"绑定 {g}") for g in guesses))
    assert all(a.status == 200 and "绑定成功" not in a.text for a in answers)
    checked = [r for r in caplog.records if r.getMessage() == "code.refused" and getattr(r, "reason", "") == "wrong"]
    assert 0 < len(checked) <= 5
    assert "尝试次数过多" in await say(wx, ATTACKER, f"绑定 {code}")
    await mall.settle()
    assert await people(mall, VICTIM, ATTACKER) == before
