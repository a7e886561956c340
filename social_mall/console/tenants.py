"""Tenants: the platform super-admin creates them (with their first owner); an owner
sets the tenant's WeChat and pay credentials, which are write-only: the console shows
whether each is set, never its value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from social_mall.admins import Role, WeakPasswordError, create_admin
from social_mall.console import rules
from social_mall.console.auth import AdminView
from social_mall.console.errors import ConflictError, InvalidInputError
from social_mall.errors import NotFoundError
from storage.console_repos import ConsoleRepo
from storage.models import Tenant
from storage.uow import UnitOfWork

#: field → (max length, exact length or 0, secret?)
CREDENTIALS: Mapping[str, tuple[int, int, bool]] = {
    "wechat_app_id": (64, 0, False),
    "wechat_app_secret": (128, 0, True),
    "wechat_token": (64, 0, True),
    "wechat_aes_key": (64, 43, True),
    "pay_mch_id": (32, 0, False),
    "pay_app_id": (64, 0, False),
    "pay_apiv3_key": (64, 32, True),
}


@dataclass(frozen=True)
class TenantSettings:
    id: int
    code: str
    name: str
    pay_gateway: str
    is_set: dict[str, bool]
    hints: dict[str, str]   # last 4 characters of the non-secret identifiers only
    auto_complete_days: int | None = None   # shipped orders confirmed after this (None: the deployment's)


@dataclass(frozen=True)
class TenantRow:
    id: int
    code: str
    name: str


#: The longest auto-confirm period a tenant may set (days after shipping).
AUTO_COMPLETE_MAX_DAYS = 30


async def tenant_settings(uow: UnitOfWork, tenant: int) -> TenantSettings:
    t = await uow.tenants.get(tenant)
    if t is None:
        raise NotFoundError("tenant", tenant)
    values = {f: str(getattr(t, f) or "") for f in CREDENTIALS}
    return TenantSettings(
        t.id, t.code, t.name, t.pay_gateway, {f: bool(v) for f, v in values.items()},
        {f: rules.mask(v) for f, v in values.items() if not CREDENTIALS[f][2]},
        t.auto_complete_days,
    )


async def update_settings(uow: UnitOfWork, tenant: int, actor: AdminView, form: Mapping[str, str]) -> list[str]:
    """Blank fields keep their value. Returns the names of the fields changed (the
    audit log records names only, never values)."""
    values: dict[str, object] = {}
    name = (form.get("name") or "").strip()
    if name:
        values["name"] = rules.text(name, "name", max_len=100, min_len=1)
    days = (form.get("auto_complete_days") or "").strip()
    if days:
        if not (days.isascii() and days.isdigit() and len(days) <= 2 and 1 <= int(days) <= AUTO_COMPLETE_MAX_DAYS):
            raise InvalidInputError("auto_complete_days", "range")
        values["auto_complete_days"] = int(days)
    for field, (max_len, exact, _secret) in CREDENTIALS.items():
        raw = (form.get(field) or "").strip()
        if not raw:
            continue
        if len(raw) > max_len or (exact and len(raw) != exact) or not raw.isascii() or not raw.isprintable():
            raise InvalidInputError(field, "credential_format")
        values[field] = raw
    if not values:
        return []
    t = await uow.tenants.get(tenant)
    if t is None:
        raise NotFoundError("tenant", tenant)
    before_name = t.name
    await ConsoleRepo(uow.session).update_tenant(tenant, **values)
    changed = sorted(values)
    before_days = t.auto_complete_days
    uow.audit(tenant, actor.actor, "settings.update", f"tenant:{tenant}",
              before={**({"name": before_name} if "name" in values else {}),
                      **({"auto_complete_days": before_days} if "auto_complete_days" in values else {})} or None,
              after={"changed": changed, **({"name": values["name"]} if "name" in values else {}),
                     **({"auto_complete_days": values["auto_complete_days"]} if "auto_complete_days" in values else {})})
    return changed


async def list_tenants(uow: UnitOfWork) -> list[TenantRow]:
    return [TenantRow(t.id, t.code, t.name) for t in await ConsoleRepo(uow.session).tenants()]


async def create_tenant(uow: UnitOfWork, actor: AdminView, *, code: str, name: str, owner_username: str,
                        owner_password: str) -> int:
    if actor.role != Role.SUPER:
        raise InvalidInputError("role", "super_only")
    c = rules.tenant_code(code)
    n = rules.text(name, "name", max_len=100, min_len=1)
    owner = rules.username(owner_username)
    if await uow.tenants.by_code(c) is not None:
        raise ConflictError("tenant", c)
    if await ConsoleRepo(uow.session).admin_by_username(owner) is not None:
        raise ConflictError("username", owner)
    # no payment method until one is configured (a real pay account; the sandbox only
    # where the deployment's settings list this tenant): never an implicit sandbox
    tenant = await uow.tenants.add(Tenant(code=c, name=n, pay_gateway="none"))
    try:
        await create_admin(uow, username=owner, password=owner_password, role=Role.OWNER, tenant_id=tenant.id,
                           actor=actor.actor)
    except WeakPasswordError:
        raise InvalidInputError("owner_password", "weak_password") from None
    uow.audit(tenant.id, actor.actor, "tenant.create", f"tenant:{tenant.id}", after={"code": c, "name": n})
    return tenant.id
