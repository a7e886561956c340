"""The rule for codes a person types into chat (social_mall/codes.py): shape, reading,
hashing, and the attempt limits over an in-process key-value store with an injected clock."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone

import pytest

from social_mall import codes
from storage.kv import MemoryKV

RULE = codes.CodeRule("test")
T0 = datetime(2026, 5, 1, 4, 0, tzinfo=timezone.utc)


def test_a_code_is_ten_crockford_characters_fifty_bits_shown_in_two_groups():
    assert len(codes.ALPHABET) == 32 and not set("ILOU") & set(codes.ALPHABET)
    assert codes.LENGTH * math.log2(len(codes.ALPHABET)) >= 40
    seen = set()
    for _ in range(200):
        new = codes.issue(RULE)
        assert len(new.text) == 10 and set(new.text) <= set(codes.ALPHABET)
        assert new.selector == new.text[:2]
        assert new.digest == hashlib.sha256(f"test:{new.text}".encode()).hexdigest()
        assert new.shown == f"{new.text[:5]}-{new.text[5:]}"
        seen.add(new.text)
    assert len(seen) == 200


@pytest.mark.parametrize("typed", ["K7Q2M-9XD3F", "k7q2m-9xd3f", "K7Q2M 9XD3F", "k7q2m9xd3f", " K7Q2M—9XD3F ",
                                   "Ｋ７Ｑ２Ｍ－９ＸＤ３Ｆ", "K7Q2M_9XD3F"])
def test_typing_ignores_case_width_spaces_and_dashes(typed: str):
    assert codes.normalise(typed) == "K7Q2M9XD3F"


def test_look_alikes_read_as_crockford_says():
    assert codes.normalise("IL0O0-00000") == "1100000000"


@pytest.mark.parametrize("typed", ["", "123456", "K7Q2M-9XD3", "K7Q2M-9XD3FF", "K7Q2M-9XD3U", "绑定K7Q2M9XD3",
                                   "K7Q2M-9XD3F" + " " * 40, "\ud800K7Q2M9XD3F", "K7Q2M/9XD3F"])
def test_anything_else_is_not_a_code(typed: str):
    assert codes.normalise(typed) is None


class Issued:
    """A module's table of issued codes, in memory: ref → (selector, stored)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, codes.Stored]] = {}
        self.lookups = 0

    def add(self, *, expires_at: datetime = T0 + RULE.ttl, spent: bool = False) -> codes.NewCode:
        new, ref = codes.issue(RULE), f"r{len(self.rows)}"
        self.rows[ref] = (new.selector, codes.Stored(ref, new.digest, expires_at, spent))
        return new

    async def find(self, selector: str) -> list[codes.Stored]:
        self.lookups += 1
        return [stored for sel, stored in self.rows.values() if sel == selector]


def wrong_tail(text: str) -> str:
    a = codes.ALPHABET
    return text[:2] + "".join(a[(a.index(c) + 1) % 32] for c in text[2:])


async def attempt(kv, issued: Issued, typed: str, *, actor: int = 1, now: datetime = T0) -> codes.Stored:
    return await codes.check(kv, RULE, tenant=7, actor=actor, typed=typed, now=now, find=issued.find)


async def test_the_right_code_is_found_and_a_wrong_one_refused():
    kv, issued = MemoryKV(), Issued()
    new = issued.add()
    with pytest.raises(codes.CodeError) as wrong:
        await attempt(kv, issued, wrong_tail(new.text), actor=2)
    assert type(wrong.value) is codes.CodeError and wrong.value.purpose == "test"
    assert (await attempt(kv, issued, new.shown.lower())).ref == "r0"


async def test_after_the_member_limit_even_the_right_code_is_refused_until_the_window_passes():
    kv, issued = MemoryKV(), Issued()
    new = issued.add(expires_at=T0 + timedelta(hours=1))
    for n in range(RULE.member_attempts):
        with pytest.raises(codes.CodeError):
            await attempt(kv, issued, "123456", now=T0 + timedelta(minutes=n))
    lookups = issued.lookups
    with pytest.raises(codes.CodeAttemptsError) as limited:
        await attempt(kv, issued, new.text, now=T0 + timedelta(minutes=5, seconds=30))
    assert limited.value.minutes == 10                   # the window started at the first attempt
    assert issued.lookups == lookups                     # refused before looking at the code
    with pytest.raises(codes.CodeAttemptsError):
        await attempt(kv, issued, new.text, now=T0 + timedelta(minutes=14, seconds=59))
    assert (await attempt(kv, issued, new.text, now=T0 + timedelta(minutes=15))).ref == "r0"
    # another member was never limited
    assert (await attempt(kv, issued, new.text, actor=2, now=T0 + timedelta(minutes=1))).ref == "r0"


async def test_a_code_burns_after_its_limit_of_guesses_from_any_number_of_members():
    kv, issued = MemoryKV(), Issued()
    new, other = issued.add(), issued.add()
    for actor in range(10, 10 + RULE.code_attempts):
        with pytest.raises(codes.CodeError) as wrong:
            await attempt(kv, issued, wrong_tail(new.text), actor=actor)
        assert type(wrong.value) is codes.CodeError
    with pytest.raises(codes.CodeBurntError):
        await attempt(kv, issued, new.text, actor=99)
    with pytest.raises(codes.CodeError) as still_wrong:   # a wrong guess doesn't learn it burnt
        await attempt(kv, issued, wrong_tail(new.text), actor=98)
    assert type(still_wrong.value) is codes.CodeError
    if other.selector != new.selector:
        assert (await attempt(kv, issued, other.text, actor=99)).ref == "r1"


async def test_spent_and_expired_codes_are_refused_like_unknown_ones():
    kv, issued = MemoryKV(), Issued()
    spent, old = issued.add(spent=True), issued.add(expires_at=T0)
    for typed in (spent.text, old.text, "0000000000"):
        with pytest.raises(codes.CodeError) as refused:
            await attempt(kv, issued, typed, actor=hash(typed) % 1000)
        assert type(refused.value) is codes.CodeError


async def test_a_malformed_attempt_counts_against_the_member():
    kv, issued = MemoryKV(), Issued()
    new = issued.add()
    for _ in range(RULE.member_attempts):
        with pytest.raises(codes.CodeMalformedError):
            await attempt(kv, issued, "123456")
    with pytest.raises(codes.CodeAttemptsError):
        await attempt(kv, issued, new.text)
