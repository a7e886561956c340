"""Tenants: one merchant each, with its own official account and pay credentials."""

from __future__ import annotations

from dataclasses import dataclass

from social_mall.errors import NotFoundError
from storage.models import Tenant
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class TenantView:
    id: int
    code: str
    name: str
    wechat_app_id: str
    wechat_token: str
    wechat_aes_key: str
    wechat_app_secret: str
    pay_gateway: str
    pay_mch_id: str
    pay_app_id: str
    pay_apiv3_key: str

    def __repr__(self) -> str:  # secrets never reach a log line through repr
        return f"TenantView(id={self.id}, code={self.code!r})"


def tenant_view(t: Tenant) -> TenantView:
    return TenantView(
        t.id, t.code, t.name, t.wechat_app_id, t.wechat_token, t.wechat_aes_key,
        t.wechat_app_secret, t.pay_gateway, t.pay_mch_id, t.pay_app_id, t.pay_apiv3_key,
    )


async def get_tenant(uow: UnitOfWork, code: str) -> TenantView:
    t = await uow.tenants.by_code(code)
    if t is None:
        raise NotFoundError("tenant", code)
    return tenant_view(t)


async def get_tenant_by_id(uow: UnitOfWork, tenant_id: int) -> TenantView:
    t = await uow.tenants.get(tenant_id)
    if t is None:
        raise NotFoundError("tenant", tenant_id)
    return tenant_view(t)
