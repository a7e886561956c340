"""Tenants: one merchant each, with its own official account and pay credentials."""

from __future__ import annotations

from dataclasses import dataclass, replace

from typing import TYPE_CHECKING

from social_mall.errors import NotFoundError
from storage.channel_repos import ChannelRepo
from storage.models import Tenant
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from social_mall.channels.service import AccountView


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
    # the channel account this view speaks for (storage/channel_models.py): 0 and "" for the
    # tenant's primary official account, whose credentials are the fields above; its orders
    # are paid through merchant `merchant_id` (0: the tenant's default merchant)
    account_id: int = 0
    account_code: str = ""
    account_kind: str = "mp"
    merchant_id: int = 0

    def __repr__(self) -> str:  # secrets never reach a log line through repr
        return f"TenantView(id={self.id}, code={self.code!r})"


def with_account(t: TenantView, a: AccountView) -> TenantView:
    """The tenant as seen through one of its channel accounts: that account's app id,
    secret, token and AES key, and the merchant it names."""
    if a.is_primary:
        return replace(t, merchant_id=a.pay_account_id or 0)
    return replace(t, wechat_app_id=a.app_id, wechat_token=a.token, wechat_aes_key=a.aes_key,
                   wechat_app_secret=a.app_secret, account_id=a.id, account_code=a.code, account_kind=a.kind,
                   merchant_id=a.pay_account_id or 0)


def tenant_view(t: Tenant) -> TenantView:
    return TenantView(
        t.id, t.code, t.name, t.wechat_app_id, t.wechat_token, t.wechat_aes_key,
        t.wechat_app_secret, t.pay_gateway, t.pay_mch_id, t.pay_app_id, t.pay_apiv3_key,
    )


async def _primary(uow: UnitOfWork, t: Tenant) -> TenantView:
    row = await ChannelRepo(uow.session).primary(t.id)
    view = tenant_view(t)
    return replace(view, merchant_id=row.pay_account_id or 0) if row is not None and row.pay_account_id else view


async def get_tenant(uow: UnitOfWork, code: str) -> TenantView:
    t = await uow.tenants.by_code(code)
    if t is None:
        raise NotFoundError("tenant", code)
    return await _primary(uow, t)


async def get_tenant_by_id(uow: UnitOfWork, tenant_id: int) -> TenantView:
    t = await uow.tenants.get(tenant_id)
    if t is None:
        raise NotFoundError("tenant", tenant_id)
    return await _primary(uow, t)


async def get_channel(uow: UnitOfWork, tenant: TenantView, *, code: str | None = None,
                      account_id: int | None = None) -> TenantView:
    """The tenant through its channel account named by `code` or `account_id` (enabled
    ones only; NotFoundError otherwise)."""
    from social_mall.channels.service import account_view

    repo = ChannelRepo(uow.session)
    row = await (repo.by_code(tenant.id, code) if code is not None else repo.get(tenant.id, account_id or 0))
    if row is None or not row.enabled:
        raise NotFoundError("channel_account", code if code is not None else account_id)
    return with_account(tenant, account_view(row))


async def get_default_channel(uow: UnitOfWork, tenant: TenantView, kind: str) -> TenantView:
    """The tenant through its default account of `kind` (its first enabled one, e.g. the
    mini-program of the tenant-level member API); NotFoundError when it has none."""
    from social_mall.channels.service import account_view

    row = await ChannelRepo(uow.session).first_enabled(tenant.id, kind)
    if row is None:
        raise NotFoundError("channel_account", kind)
    return with_account(tenant, account_view(row))
