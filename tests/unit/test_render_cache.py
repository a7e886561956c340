"""The runner's render cache (Say.key): one rendering per (template, key), never reused
across keys, and bounded."""

from __future__ import annotations

import jinja2

from flows import runner as runner_module
from flows.engine import Say
from flows.runner import FlowRunner
from storage.kv import MemoryKV


class _NoLinks:
    async def pay_link(self, tenant_code: str, order_no: str) -> str | None:
        return ""

    def image_url(self, path: str) -> str:
        return path

    def product_url(self, tenant_code: str, product_id: int) -> str:
        return ""


def runner_over(templates: dict[str, str]) -> tuple[FlowRunner, list[str]]:
    env = jinja2.Environment(loader=jinja2.DictLoader(templates))
    seen: list[str] = []
    env.globals["seen"] = lambda name: seen.append(name) or ""
    runner = FlowRunner(uows=lambda: None, kv=MemoryKV(), templates=env, links=_NoLinks())  # type: ignore[arg-type, return-value]
    return runner, seen


def test_a_keyed_reply_renders_once_per_key_and_an_unkeyed_one_every_time():
    runner, seen = runner_over({"t.txt": "{{ seen('t') }}{{ n }} 件"})
    first = runner._render([Say("t.txt", {"n": 1}, key=1)])
    assert runner._render([Say("t.txt", {"n": 1}, key=1)]) == first
    assert seen == ["t"]
    assert runner._render([Say("t.txt", {"n": 2}, key=2)])[0].text == "2 件"   # a new key renders
    assert runner._render([Say("t.txt", {"n": 3})])[0].text == "3 件"
    assert runner._render([Say("t.txt", {"n": 3})])[0].text == "3 件"
    assert len(seen) == 4


def test_the_same_key_in_two_templates_is_two_renderings():
    runner, _ = runner_over({"a.txt": "A{{ n }}", "b.txt": "B{{ n }}"})
    assert [r.text for r in runner._render([Say("a.txt", {"n": 1}, key=1)])] == ["A1"]
    assert [r.text for r in runner._render([Say("b.txt", {"n": 1}, key=1)])] == ["B1"]


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(runner_module, "RENDERED_MAX", 3)
    runner, seen = runner_over({"t.txt": "{{ seen('t') }}{{ n }}"})
    for n in range(10):
        runner._render([Say("t.txt", {"n": n}, key=n)])
    assert len(runner._rendered) <= 3
    assert len(seen) == 10
