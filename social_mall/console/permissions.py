"""Roles → permissions, as one table. Every console page and API route names the
permission it needs; modules may add permissions of their own with the roles allowed."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from social_mall.admins import Role


class Perm(StrEnum):
    DASHBOARD = "dashboard.view"
    CATALOG_VIEW = "catalog.view"
    CATALOG_EDIT = "catalog.edit"
    ORDERS_VIEW = "orders.view"
    ORDERS_SHIP = "orders.ship"
    ORDERS_REFUND = "orders.refund"      # finance
    ORDERS_EXPORT = "orders.export"      # finance
    MEMBERS_VIEW = "members.view"
    MEMBERS_EDIT = "members.edit"        # correct a member's profile (birthday)
    AUDIT_VIEW = "audit.view"
    FINANCE_VIEW = "finance.view"        # commissions, withdrawals (referral module pages)
    FINANCE_APPROVE = "finance.approve"  # withdrawal approvals
    CAMPAIGNS_VIEW = "campaigns.view"    # group-buy campaigns and teams
    CAMPAIGNS_EDIT = "campaigns.edit"
    SETTINGS = "settings.manage"         # tenant WeChat / pay credentials
    ADMINS = "admins.manage"             # admin users and roles
    TOKENS = "tokens.own"                # one's own API tokens
    TENANTS = "tenants.manage"           # platform: create tenants


P = Perm
FINANCE: frozenset[Perm] = frozenset({P.ORDERS_REFUND, P.ORDERS_EXPORT, P.FINANCE_VIEW, P.FINANCE_APPROVE})
_READ = frozenset({P.DASHBOARD, P.CATALOG_VIEW, P.ORDERS_VIEW, P.MEMBERS_VIEW, P.CAMPAIGNS_VIEW, P.TOKENS})

ROLE_PERMS: Mapping[Role, frozenset[Perm]] = {
    Role.SUPER: frozenset({P.TENANTS, P.TOKENS}),
    Role.OWNER: frozenset(Perm) - {P.TENANTS},
    Role.ADMIN: frozenset(Perm) - {P.TENANTS, P.SETTINGS, P.ADMINS},
    Role.OPERATOR: _READ | {P.CATALOG_EDIT, P.ORDERS_SHIP, P.CAMPAIGNS_EDIT},
    Role.SERVICE: _READ | {P.ORDERS_SHIP, P.MEMBERS_EDIT},
    Role.FINANCE: _READ | FINANCE | {P.AUDIT_VIEW},
}

ROLE_ZH: Mapping[Role, str] = {
    Role.SUPER: "平台超级管理员", Role.OWNER: "店主", Role.ADMIN: "管理员", Role.OPERATOR: "运营",
    Role.SERVICE: "客服", Role.FINANCE: "财务",
}

TENANT_ROLES: tuple[Role, ...] = (Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.SERVICE, Role.FINANCE)


def permits(role: str, perm: str, extra: Mapping[str, frozenset[str]] | None = None) -> bool:
    """May `role` do `perm`? `extra` maps module permissions to the roles allowed."""
    try:
        r = Role(role)
    except ValueError:
        return False
    if perm in ROLE_PERMS[r]:
        return True
    return bool(extra) and r.value in (extra or {}).get(perm, frozenset())


def sees_cost(role: str) -> bool:
    """May `role` read SKUs' costs (成本价)? Those who set prices or read the money (店主,
    管理员, 运营, 财务); not 客服, who talks to customers."""
    return permits(role, P.CATALOG_EDIT) or permits(role, P.FINANCE_VIEW)
