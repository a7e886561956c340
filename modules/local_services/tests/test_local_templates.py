"""Every chat template the module's code names exists and parses, and every error code of
the module has its chat answer (found by the runner's MRO walk)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import social_mall_local
from flows.templating import make_env
from social_mall.errors import MallError
from social_mall_local import HERE, bookings, errors, fulfil, verify

TEMPLATES = HERE / "templates"
ENV = make_env([TEMPLATES])


def test_every_template_named_in_the_module_exists():
    source = "\n".join(p.read_text(encoding="utf-8") for p in Path(social_mall_local.__file__).parent.glob("*.py"))
    names = set(re.findall(r'"((?:chat|console|h5)/[\w/]+\.(?:txt|html))"', source))
    assert len(names) > 60
    for name in names:
        assert (TEMPLATES / name).is_file() or name.startswith(("chat/bad_number", "console/base")), name
        ENV.get_template(name)


def test_every_module_error_code_has_a_chat_answer():
    classes = [c for m in (errors, fulfil, verify, bookings) for _, c in inspect.getmembers(m, inspect.isclass)
               if issubclass(c, MallError) and c.__module__.startswith("social_mall_local")]
    assert len(classes) >= 12
    for cls in classes:
        assert (TEMPLATES / "chat" / "errors" / f"{cls.code}.txt").is_file(), cls.code
