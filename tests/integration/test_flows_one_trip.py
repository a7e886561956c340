"""FlowRunner's one-round-trip path, on both backends: browsing a conversation the worker
wrote last costs one key-value call, a repeat still has exactly one effect, a stale copy
falls back to the claim-first path, and nothing but a `reads_only` command runs before
the message is claimed."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from flows.engine import Ctx, Flow, Keyword, Outcome, Say, Step, StepFn, Turn, reads_only
from flows.runner import conv_key
from flows.templating import make_env
from social_mall.tenants import TenantView
from storage.kv import KVStore
from storage.uow import UowFactory
from tests.integration.test_flows_state import Chat, make_runner

_KEYS = itertools.count(1)


class CountingKV:
    """Passes every call through and records its name."""

    def __init__(self, inner: KVStore) -> None:
        self.inner, self.calls = inner, []

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: object, **kw: object) -> object:
            self.calls.append(name)
            return attr(*args, **kw)

        return counted


class Worker:
    """One worker's runner; `say` sends a message with a de-duplication key, as the
    official-account endpoint does (a fresh key unless given)."""

    def __init__(self, uows: UowFactory, kv: KVStore, demo: TenantView, **kw: object) -> None:
        self.runner = make_runner(uows, kv, **kw)
        self.chat = Chat(self.runner, demo)

    async def say(self, text: str, key: str = "") -> str | None:
        replies = await self.runner.handle_once(self.chat.inbound(text), key or f"dedupe:t:{next(_KEYS)}")
        if replies is None:
            return None
        return "\n".join(r.text if r.kind == "text" else f"[{r.article.title}]" for r in replies if r.article or r.text)


async def test_browsing_a_conversation_written_here_takes_one_call(uows, kv, demo):
    counting = CountingKV(kv)
    a = Worker(uows, counting, demo)
    assert "1. 水果生鲜" in (await a.say("分类") or "")  # first message: claim + load, then CAS + confirm
    assert counting.calls == ["claim_and_get", "cas_and_confirm"]  # browsing: nothing to commit
    counting.calls.clear()
    assert "赣南脐橙" in (await a.say("1") or "")
    assert "1. 水果生鲜" in (await a.say("分类") or "")
    assert counting.calls == ["claim_and_cas", "claim_and_cas"]
    assert await a.chat.state() == ("shop", "categories")


async def test_a_repeat_on_the_one_trip_path_has_no_effect_on_any_worker(uows, kv, demo):
    a, b = Worker(uows, kv, demo), Worker(uows, kv, demo)
    await a.say("分类")
    await b.say("分类")  # b now holds a copy too (the one it wrote)
    await a.say("分类")  # a's copy is stale now: it falls back, and writes a fresh copy
    raw = await kv.get(conv_key(a.chat.inbound()))
    assert "赣南脐橙" in (await a.say("1", key="dedupe:t:retried") or "")
    after = await kv.get(conv_key(a.chat.inbound()))
    assert after != raw
    assert await a.say("1", key="dedupe:t:retried") is None  # same worker, copy current: repeat
    assert await b.say("1", key="dedupe:t:retried") is None  # other worker, stale copy: repeat
    assert await kv.get(conv_key(a.chat.inbound())) == after


async def test_a_stale_copy_falls_back_and_answers_from_the_current_state(uows, kv, demo):
    a, b = Worker(uows, kv, demo), Worker(uows, kv, demo)
    await a.say("分类")                            # a: categories listed (1 = 水果生鲜)
    found = await b.say("搜索 芒")                  # b moves the conversation on
    assert found is not None and "1. 海南贵妃芒" in found
    counting = CountingKV(kv)
    a.runner.kv = counting
    shown = await a.say("1")  # a's copy says "categories": the current state is the search
    assert shown is not None and "海南贵妃芒" in shown and "赣南脐橙" not in shown
    assert counting.calls == ["claim_and_cas", "claim_and_get", "cas_and_confirm"]


async def test_an_expired_conversation_is_not_revived_from_a_copy(uows, kv, demo):
    a = Worker(uows, kv, demo)
    for text in ("分类", "1", "1"):
        await a.say(text)
    assert await a.chat.state() == ("shop", "sku")
    await kv.delete(conv_key(a.chat.inbound()))  # as when its TTL runs out
    assert "这一步已经失效了" in (await a.say("2") or "")
    assert await a.chat.state() == ("home", "idle")


class St(StrEnum):
    IDLE = "idle"
    OPEN = "open"


@dataclass(frozen=True)
class Poke:
    """A command with an effect outside the unit of work (as a join desk or a call out has)."""

    seen: list[str]

    async def run(self, ctx: Ctx) -> Outcome:
        self.seen.append("poke")
        return Outcome((Say("chat/t/poked.txt"),))


@reads_only
@dataclass(frozen=True)
class Look:
    seen: list[str]

    async def run(self, ctx: Ctx) -> Outcome:
        self.seen.append("look")
        return Outcome((Say("chat/t/looked.txt"),))


def _flow(seen: list[str]) -> Flow:
    def poke(turn: Turn) -> Step:
        return Step(St.OPEN, command=Poke(seen))

    def look(turn: Turn) -> Step:
        return Step(St.OPEN, command=Look(seen))

    table: Mapping[tuple[str, str], StepFn] = {
        (St.IDLE, "t.poke"): poke, (St.OPEN, "t.poke"): poke,
        (St.IDLE, "t.look"): look, (St.OPEN, "t.look"): look,
    }
    return Flow("t", St.IDLE, table, keywords=(Keyword("t.poke", words=("戳",)), Keyword("t.look", words=("看",))))


async def test_only_a_reads_only_command_runs_before_the_claim(uows, kv, demo, tmp_path: Path):
    (tmp_path / "chat" / "t").mkdir(parents=True)
    (tmp_path / "chat" / "t" / "poked.txt").write_text("戳了。", "utf-8")
    (tmp_path / "chat" / "t" / "looked.txt").write_text("看了。", "utf-8")
    seen: list[str] = []
    a = Worker(uows, kv, demo, templates=make_env([tmp_path]), extra_flows=[_flow(seen)])
    assert await a.say("看") == "看了。"  # the first message: claim-first path
    seen.clear()
    # another worker has claimed the next message already (WeChat's retry got there first)
    await kv.set_nx("dedupe:t:taken", "1", 60)
    assert await a.say("戳", key="dedupe:t:taken") is None
    assert seen == []  # never ran: its effect can't be undone
    assert await a.say("看", key="dedupe:t:taken") is None
    assert seen == ["look"]  # ran on the copy, then the claim said "repeat": nothing written
    assert await a.say("戳") == "戳了。"
    assert seen == ["look", "poke"]
