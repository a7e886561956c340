"""What the module registers: templates, the 「最新活动」 flow and its menu entry, the console
pages and the H5 article page."""

from __future__ import annotations

from social_mall.plugins import Registry
from social_mall_content import HERE, flow, web


def setup(reg: Registry) -> None:
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow.FLOW)
    web.register(reg)
