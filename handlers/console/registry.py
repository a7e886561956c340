"""The console's extension point: modules add their pages (nav entry + permission) here.

    from handlers.console.registry import add_console_page, console_view, render

    def setup(reg):
        reg.add_routes(routes)                      # the module's own aiohttp routes
        add_console_page(reg, key="groupbuy", title="拼团", path="/console/groupbuy",
                         perm="campaigns.view", order=40)

Guard the module's handlers with `@console_view("campaigns.view")` (session, CSRF on
every non-GET, permission, tenant scope; `admin_of(request)` is the AdminView and
`form_of(request)` the posted form), and answer with `render(request, "x.html", ...)`,
whose templates can `{% extends "console/base.html" %}`. A module permission that is
not in social_mall.console.permissions.Perm needs `add_console_permission(reg, perm,
roles)` to say which roles hold it (owners always do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from social_mall.plugins import Registry

_PAGES = "console_pages"
_PERMS = "console_permissions"
_PANELS = "console_member_panels"

# (request, tenant id, member id) → (template, its context) shown on the member page, or None
MemberPanel = Callable[[Any, int, int], Awaitable[tuple[str, Mapping[str, Any]] | None]]


@dataclass(frozen=True)
class ConsolePage:
    key: str
    title: str
    path: str
    perm: str
    order: int = 100
    module: str = ""


def add_console_page(reg: Registry, *, key: str, title: str, path: str, perm: str, order: int = 100,
                     module: str = "") -> ConsolePage:
    if not path.startswith("/console/"):
        raise ValueError("console pages live under /console/")
    page = ConsolePage(key, title, path, perm, order, module)
    pages: list[ConsolePage] = reg.__dict__.setdefault(_PAGES, [])
    pages[:] = [p for p in pages if p.key != key] + [page]
    return page


def add_console_permission(reg: Registry, perm: str, roles: Iterable[str]) -> None:
    perms: dict[str, frozenset[str]] = reg.__dict__.setdefault(_PERMS, {})
    perms[perm] = frozenset(roles) | {"owner"}


def add_member_panel(reg: Registry, panel: MemberPanel) -> None:
    """A section of the console's member page (a module's timeline of the member's events):
    `panel(request, tenant_id, member_id)` → (template, context: the template sees it as
    `p`) or None for nothing. Keep it to one indexed query."""
    reg.__dict__.setdefault(_PANELS, []).append(panel)


def member_panels(reg: Registry) -> list[MemberPanel]:
    return list(reg.__dict__.get(_PANELS, []))


def console_pages(reg: Registry) -> list[ConsolePage]:
    return sorted(reg.__dict__.get(_PAGES, []), key=lambda p: (p.order, p.key))


def extra_permissions(reg: Registry) -> dict[str, frozenset[str]]:
    return dict(reg.__dict__.get(_PERMS, {}))


def __getattr__(name: str) -> object:  # re-exports without an import cycle
    if name in ("console_view", "render", "redirect", "admin_of", "tenant_of", "form_of", "can"):
        from handlers.console import core as _web

        return getattr(_web, name)
    raise AttributeError(name)
