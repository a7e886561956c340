"""FlowRunner's state handling on both backends: compare-and-set under concurrency,
expiry, unexpected errors, QR scenes, paging, and a flow added by another module."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy import select

from flows.engine import Conv, Ctx, Flow, Keyword, Outcome, Say, Step, StepFn, Turn
from flows.runner import TOO_FAST, FlowRunner, conv_key
from flows.templating import make_env
from flows.types import Inbound, Kind
from social_mall.catalog.service import list_categories
from social_mall.members.service import resolve_member, view_cart
from social_mall.orders.service import list_orders
from social_mall.tenants import TenantView
from storage.kv import KVStore
from storage.models import OutboxEvent, Product, Sku
from storage.uow import UowFactory

ALICE = "o_alice_0123456789abcdefghij"


class FakeLinks:
    async def pay_link(self, tenant_code: str, order_no: str) -> str | None:
        return f"https://shop.test/pay/{tenant_code}/{order_no}"

    def image_url(self, path: str) -> str:
        return f"https://cdn.test{path}"

    def product_url(self, tenant_code: str, product_id: int) -> str:
        return f"https://shop.test/{tenant_code}/p/{product_id}"


class BrokenLinks(FakeLinks):
    def product_url(self, tenant_code: str, product_id: int) -> str:
        raise RuntimeError("link service down")


@dataclass
class Chat:
    runner: FlowRunner
    tenant: TenantView
    user: str = ALICE

    def inbound(self, text: str = "", kind: Kind = Kind.TEXT, **payload: str) -> Inbound:
        return Inbound(self.tenant.id, self.tenant.code, "mp", self.user, kind, text, payload)

    async def say(self, text: str) -> str:
        replies = await self.runner.handle(self.inbound(text))
        return "\n".join(r.text if r.kind == "text" else f"[{r.article.title}]" for r in replies if r.article or r.text)

    async def state(self) -> tuple[str, str] | None:
        conv = await self.runner.state(self.inbound())
        return None if conv is None else (conv.flow, conv.state)


def make_runner(uows: UowFactory, kv: KVStore, **kw: object) -> FlowRunner:
    kw.setdefault("links", FakeLinks())
    kw.setdefault("templates", make_env())
    return FlowRunner(uows=uows, kv=kv, **kw)  # type: ignore[arg-type]


async def member_id(uows: UowFactory, tenant: TenantView) -> int:
    async with uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", ALICE)
        await uow.commit()
    return member.id


async def order_count(uows: UowFactory, tenant: TenantView) -> int:
    async with uows() as uow:
        return (await list_orders(uow, tenant.id, await member_id(uows, tenant))).total


async def at_confirmation(chat: Chat) -> None:
    for text in ("搜索 坚果", "1"):  # one hit: its card; its SKU: the summary, asking for the address
        await chat.say(text)
    assert "回复「确认」下单" in await chat.say("张三 13800138000 浙江省杭州市西湖区文三路100号")


async def test_two_quick_confirms_place_one_order(uows, kv, demo):
    chat = Chat(make_runner(uows, kv), demo)
    await at_confirmation(chat)
    first, second = await asyncio.gather(chat.say("确认"), chat.say("确认"))
    assert [("下单成功" in r) for r in (first, second)].count(True) == 1, (first, second)
    assert await order_count(uows, demo) == 1


class RacingKV:
    """Another worker moves the conversation between our read and our write, once."""

    def __init__(self, inner: KVStore, moved_to: str) -> None:
        self.inner, self.moved_to, self.cas_calls = inner, moved_to, 0
        self.armed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def cas(self, key: str, expected: str | None, value: str, ttl: float) -> bool:
        self.cas_calls += 1
        if self.armed:
            self.armed = False
            await self.inner.set(key, self.moved_to, ttl)
        return await self.inner.cas(key, expected, value, ttl)


async def test_a_lost_compare_and_set_reruns_once_against_the_new_state(uows, kv, demo):
    racing = RacingKV(kv, Conv("home", "menu", {}, 99).dump())
    chat = Chat(make_runner(uows, racing), demo)  # type: ignore[arg-type]
    await at_confirmation(chat)
    racing.armed, before = True, racing.cas_calls
    reply = await chat.say("确认")
    assert racing.cas_calls - before == 2
    assert "下单成功" not in reply and "没看懂「确认」" in reply  # re-run in the menu state
    assert await order_count(uows, demo) == 0
    assert await chat.state() == ("home", "menu")


class LosingKV(RacingKV):
    async def cas(self, key: str, expected: str | None, value: str, ttl: float) -> bool:
        self.cas_calls += 1
        return False if self.armed else await self.inner.cas(key, expected, value, ttl)


async def test_losing_twice_asks_to_send_again_and_changes_nothing(uows, kv, demo):
    losing = LosingKV(kv, "")
    chat = Chat(make_runner(uows, losing), demo)  # type: ignore[arg-type]
    for text in ("搜索 坚果", "1"):
        await chat.say(text)
    losing.armed = True
    assert await chat.say("加入购物车") == TOO_FAST
    losing.armed = False
    async with uows() as uow:
        assert (await view_cart(uow, demo.id, await member_id(uows, demo))).lines == ()
    assert await chat.state() == ("checkout", "new_address")


async def test_expired_state_says_so_and_starts_over(uows, kv, demo):
    chat = Chat(make_runner(uows, kv, state_ttl=1), demo)
    for text in ("分类", "1", "1"):
        await chat.say(text)
    assert await chat.state() == ("shop", "sku")
    await asyncio.sleep(1.3)
    assert await chat.state() is None
    assert "这一步已经失效了" in await chat.say("2")
    assert await chat.state() == ("home", "idle")
    assert "1. 水果生鲜" in await chat.say("分类")


async def test_state_gone_at_confirmation_places_nothing(uows, kv, demo):
    chat = Chat(make_runner(uows, kv), demo)
    await at_confirmation(chat)
    await kv.delete(conv_key(chat.inbound()))
    assert "这一步已经失效了" in await chat.say("确认")
    assert await order_count(uows, demo) == 0


async def test_unexpected_errors_are_logged_and_answered_busy(uows, kv, demo, caplog):
    chat = Chat(make_runner(uows, kv, links=BrokenLinks()), demo)
    await chat.say("分类")
    await chat.say("1")
    with caplog.at_level(logging.ERROR, logger="flows.runner"):
        assert await chat.say("1") == "系统繁忙，请稍后再试"
    failed = [r for r in caplog.records if r.getMessage() == "flow.failed"]
    assert failed and failed[0].exc_info is not None
    assert await chat.state() == ("shop", "products")  # nothing advanced


async def test_subscribe_through_a_qr_scene_records_the_entry(uows, kv, demo):
    kicked: list[int] = []
    chat = Chat(make_runner(uows, kv, on_commit=lambda: kicked.append(1)), demo)
    replies = await chat.runner.handle(chat.inbound(kind=Kind.SUBSCRIBE, scene="ref_42"))
    assert "欢迎关注" in replies[0].text
    async with uows() as uow:
        member = await uow.members.by_identity(demo.id, "mp", ALICE)
        topics = list(await uow.session.scalars(select(OutboxEvent.topic).where(OutboxEvent.tenant_id == demo.id)))
    assert member is not None and member.entry_source == "ref_42"
    assert {"member.joined", "member.entered"} <= set(topics)
    assert kicked
    back = await chat.runner.handle(chat.inbound(kind=Kind.SCAN, scene="ref_43"))
    assert "欢迎回来" in back[0].text
    assert await chat.runner.handle(chat.inbound(kind=Kind.UNSUBSCRIBE)) == []
    assert await chat.state() is None


async def test_products_page_five_at_a_time(uows, kv, demo):
    async with uows() as uow:
        fruit = (await list_categories(uow, demo.id))[0]
        for i in range(3):
            product = Product(tenant_id=demo.id, category_id=fruit.id, title=f"测试水果{i}", sort=10 + i)
            await uow.catalog.add(product)
            await uow.catalog.add(Sku(tenant_id=demo.id, product_id=product.id, spec="1斤", price_fen=1000, stock=5))
        await uow.commit()
    chat = Chat(make_runner(uows, kv), demo)
    await chat.say("分类")
    first = await chat.say("1")
    assert "第 1/2 页，共 8 件" in first and "5. 新疆阿克苏苹果" in first and "「下一页」翻页" in first
    second = await chat.say("下一页")
    assert "第 2/2 页" in second and "1. 测试水果0 ¥10.00起\n2. 测试水果1" in second
    assert "[测试水果1 ¥10.00]" in await chat.say("2")
    assert "第 2/2 页" in await chat.say("返回")
    assert "已经是最后一页了" in await chat.say("下一页")
    assert "第 1/2 页" in await chat.say("上一页")


class TeamSt(StrEnum):
    IDLE = "idle"
    JOIN = "join"


@dataclass(frozen=True)
class CountCategories:
    async def run(self, ctx: Ctx) -> Outcome:
        n = len(await list_categories(ctx.uow, ctx.tenant_id))
        return Outcome((Say("chat/team/open.txt", {"n": n}),), {"n": n})


def _open(turn: Turn) -> Step:
    return Step(TeamSt.JOIN, command=CountCategories())


def _join(turn: Turn) -> Step:
    return Step(TeamSt.IDLE, (Say("chat/team/joined.txt", {"n": turn.num("n") or 0}),))


TEAM: Mapping[tuple[str, str], StepFn] = {(TeamSt.IDLE, "team.open"): _open, (TeamSt.JOIN, "yes"): _join}


async def test_another_module_adds_its_flow(uows, kv, demo, tmp_path: Path):
    (tmp_path / "chat" / "team").mkdir(parents=True)
    (tmp_path / "chat" / "team" / "open.txt").write_text("{{ n }} 个分类都能拼团，回复「确认」参团。", "utf-8")
    (tmp_path / "chat" / "team" / "joined.txt").write_text("参团成功（{{ n }}）。", "utf-8")
    flow = Flow("team", TeamSt.IDLE, TEAM, keywords=(Keyword("team.open", words=("拼团",)),))
    chat = Chat(make_runner(uows, kv, templates=make_env([tmp_path]), extra_flows=[flow]), demo)
    assert await chat.say("拼团") == "4 个分类都能拼团，回复「确认」参团。"
    assert await chat.state() == ("team", "join")
    assert "没看懂" in await chat.say("好吗")
    assert await chat.say("确认") == "参团成功（4）。"
    await chat.say("拼团")
    assert "已取消" in await chat.say("取消")
    assert await chat.state() == ("home", "idle")
