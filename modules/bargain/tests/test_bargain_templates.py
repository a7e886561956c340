"""Every error code of the module has a chat template (in the module's folder), each
renders its facts in Chinese, and every template the module names exists and parses."""

from __future__ import annotations

import inspect
import re

import pytest

from flows.templating import make_env
from social_mall_bargain import HERE, errors

TEMPLATES = HERE / "templates"
ENV = make_env([TEMPLATES])


def test_every_error_code_has_a_chat_template():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.BargainError)]
    assert len(classes) >= 9
    for c in classes:
        assert (TEMPLATES / "chat" / "errors" / f"{c.code}.txt").is_file(), c.code


@pytest.mark.parametrize(("exc", "expected"), [
    (errors.HelpLimitError(3), "今天已帮砍 3 次"),
    (errors.HelperNotEligibleError("new", 24), "关注满 24 小时后才能帮砍"),
    (errors.HelperNotEligibleError("follower", 24), "关注公众号后才能帮砍"),
    (errors.BargainClosedError("K7Q2M9XD", "expired"), "这个砍价已结束"),
    (errors.AlreadyBargainingError("K7Q2M9XD"), "砍价码 K7Q2M9XD"),
    (errors.InvalidTermsError(["floor", "helps"]), "floor、helps"),
])
def test_errors_say_the_facts_in_chinese(exc, expected):
    assert expected in ENV.get_template(f"chat/errors/{exc.code}.txt").render(**exc.facts())


def test_every_template_named_exists_and_parses():
    source = "\n".join(p.read_text(encoding="utf-8") for p in HERE.glob("*.py"))
    names = set(re.findall(r'"((?:chat|console|h5)/[\w/]+\.(?:txt|html))"', source))
    assert len(names) > 12
    for name in names:
        ENV.get_template(name)
