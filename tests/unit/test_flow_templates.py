"""Chat templates: filters, no autoescaping, strict names, and a template for every
error code and every template name the flows use."""

from __future__ import annotations

import inspect
import re
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pytest

import flows
import social_mall.errors as errors
from flows.runner import BUILTIN_FLOWS, FlowRunner
from flows.templating import TEMPLATES, make_env, shanghai, yuan
from social_mall.errors import MallError
from storage.kv import MemoryKV
from storage.uow import UnitOfWork

ENV = make_env()


@pytest.mark.parametrize(
    ("fen", "shown"),
    [(3990, "¥39.90"), (0, "¥0.00"), (5, "¥0.05"), (100, "¥1.00"), (29800, "¥298.00"), (-150, "-¥1.50")],
)
def test_yuan_formats_integer_fen(fen: int, shown: str):
    assert yuan(fen) == shown
    assert ENV.from_string("{{ x|yuan }}").render(x=fen) == shown


@pytest.mark.parametrize("bad", [39.9, "3990", True])
def test_yuan_refuses_anything_but_int(bad: object):
    with pytest.raises(TypeError):
        yuan(bad)  # type: ignore[arg-type]


def test_shanghai_is_utc_plus_eight_and_naive_means_utc():
    at = datetime(2024, 5, 1, 16, 30, tzinfo=timezone.utc)
    assert shanghai(at) == "2024-05-02 00:30"
    assert shanghai(at.replace(tzinfo=None), "%H:%M") == "00:30"


def test_text_templates_are_not_escaped_but_html_pages_are():
    assert ENV.from_string("{{ x }}").render(x="<b>&'") == "<b>&'"
    assert not ENV.autoescape("chat/help.txt")  # type: ignore[operator]
    assert ENV.autoescape("h5/pay.html")  # type: ignore[operator]


def test_undefined_names_raise():
    with pytest.raises(jinja2.UndefinedError):
        ENV.from_string("{{ missing }}").render()


def test_extra_dirs_come_first(tmp_path: Path):
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "cancelled.txt").write_text("自定义取消", encoding="utf-8")
    env = make_env([tmp_path])
    assert env.get_template("chat/cancelled.txt").render() == "自定义取消"
    assert env.get_template("chat/help.txt")  # the built-ins are still there


def _error_classes() -> list[type[MallError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, MallError)]


def test_every_core_error_code_has_a_chat_template():
    codes = {c.code for c in _error_classes()}
    assert {"not_found", "out_of_stock", "invalid_address", "mall_error"} <= codes
    for code in codes:
        assert (TEMPLATES / "chat" / "errors" / f"{code}.txt").is_file(), code


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (errors.OutOfStockError("赣南脐橙 5斤装", 0), "赣南脐橙 5斤装 已售罄"),
        (errors.OutOfStockError("赣南脐橙 5斤装", 3), "只剩 3 件"),
        (errors.InvalidQuantityError(100, 99), "1–99"),
        (errors.InvalidAddressError("phone"), "11 位大陆手机号"),
        (errors.InvalidAddressError("name"), "姓名"),
        (errors.InvalidAddressError("detail"), "详细地址"),
        (errors.NotFoundError("product", 3), "没有找到这个商品"),
        (errors.IllegalTransitionError("N1", "paid", "cancelled"), "当前为「已付款」，不能变为「已取消」"),
        (errors.EmptyCartError(), "购物车"),
    ],
)
def test_error_templates_say_the_facts_in_chinese(exc: MallError, expected: str):
    text = ENV.get_template(f"chat/errors/{exc.code}.txt").render(**exc.facts())
    assert expected in text


def test_every_template_named_in_the_flows_exists():
    source = "\n".join(p.read_text(encoding="utf-8") for p in Path(flows.__file__).parent.glob("*.py"))
    names = set(re.findall(r'"(chat/[\w/]+\.txt)"', source))
    names |= {flow.hint(state) for flow in BUILTIN_FLOWS for state in flow.states}
    assert len(names) > 40
    for name in names:
        assert (TEMPLATES / name).is_file(), name
        ENV.get_template(name)  # parses


class _NoLinks:
    async def pay_link(self, tenant_code: str, order_no: str) -> str | None:
        return ""

    def image_url(self, path: str) -> str:
        return ""

    def product_url(self, tenant_code: str, product_id: int) -> str:
        return ""


def _no_uow() -> UnitOfWork:
    raise AssertionError("no I/O here")


class PreorderOnlyError(errors.OutOfStockError):
    code = "preorder_only"  # no template of its own: the parent's is used


class QuietError(MallError):
    code = "quiet"


def test_error_template_is_found_by_walking_the_mro():
    runner = FlowRunner(uows=_no_uow, kv=MemoryKV(), templates=ENV, links=_NoLinks())
    say = runner._error(PreorderOnlyError("丹东草莓 2斤礼盒", 0))
    assert say.template == "chat/errors/out_of_stock.txt"
    assert say.ctx == {"sku_name": "丹东草莓 2斤礼盒", "left": 0}
    assert runner._error(QuietError()).template == "chat/errors/mall_error.txt"
    assert runner._error(errors.InvalidAddressError("phone")).template == "chat/errors/invalid_address.txt"
