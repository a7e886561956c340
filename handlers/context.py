"""The shared objects every handler and module uses, built once by bot.py and kept
under the `SERVICES` AppKey."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol
from datetime import datetime, timezone

import aiohttp
import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from social_mall.activity import Activity
from social_mall.admission import Admission
from social_mall.channels.service import order_channel
from social_mall.errors import NotFoundError
from social_mall.leader import Leader
from social_mall.members.service import push_identity
from social_mall.outbox import OutboxWorker
from social_mall.parsing import is_storable_text, parse_id
from social_mall.payments.gateway import PayGateway
from social_mall.payments.sandbox import SandboxGateway
from social_mall.payments.wxpay_v3 import KeyPair
from social_mall.plugins import Registry
from social_mall.settings import DEMO_APP_ID, WECHAT_API_HOST, Settings
from social_mall.sharing import ACCOUNT_ARG
from social_mall.tenants import TenantView, get_channel, get_default_channel, get_tenant, get_tenant_by_id
from storage.cache import MISS, ReadCache
from social_mall.kv import KVStore
from storage.uow import UowFactory

from flows.runner import FlowRunner
from adapters.wechat_client import WeChatClient

TENANT_CACHE_SECONDS = 30.0


class GatewayResolver(Protocol):
    """Real pay gateways per tenant (the `pay` module); None → no real account (the sandbox
    if the settings allow it for the tenant, else no payment method)."""

    async def refresh(self, tenant: TenantView) -> None: ...

    def fresh(self, tenant: TenantView) -> bool:
        """Is the tenant's gateway known and not due for a `refresh`?"""
        ...

    def cached(self, tenant: TenantView) -> PayGateway | None:
        """The gateway of the tenant's merchant `tenant.merchant_id` (0: its default)."""
        ...

    def forget(self, tenant_id: int | None = None) -> None: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Services:
    """Built in two steps: the settings first (modules register against them), then
    `bot.build_app`'s lifecycle opens the resources."""

    settings: Settings
    public_base_url: str
    clock: Callable[[], datetime] = utcnow
    engine: AsyncEngine = field(init=False)
    kv: KVStore = field(init=False)
    admission: Admission = field(init=False)  # the contended reservation step (social_mall/admission.py)
    http: aiohttp.ClientSession = field(init=False)
    platform_keys: KeyPair = field(init=False)     # the sandbox pay platform's key pair
    templates: jinja2.Environment = field(init=False)  # chat/, h5/ and module folders
    registry: Registry = field(init=False)
    uows: UowFactory = field(init=False)
    cache: ReadCache = field(init=False)  # the catalog read cache behind `uows`
    outbox: OutboxWorker = field(init=False)
    runner: FlowRunner = field(init=False)
    leader: Leader = field(init=False)  # holds the lease to run the scheduled jobs
    # the migration heads the database lacks (/readyz): storage.db.unapplied_heads on the engine
    pending_migrations: Callable[[], Awaitable[list[str]]] = field(init=False)
    background: set[asyncio.Future[None]] = field(default_factory=set)
    # code → TenantView and ("id", id) → TenantView; when an entry expires under load, one
    # lookup goes to the database and the requests behind it share its answer
    _tenants: ReadCache = field(default_factory=lambda: ReadCache(ttl=TENANT_CACHE_SECONDS))
    pay_resolver: GatewayResolver | None = None  # set by the `pay` module

    def known_tenant(self, code: str) -> TenantView | None:
        """The tenant when this worker's entries for it (and its pay gateway) are fresh,
        without an await; None means "ask `tenant`" (every message asks this first)."""
        view = self._tenants.peek(code)
        if view is MISS or (self.pay_resolver is not None and not self.pay_resolver.fresh(view)):
            return None
        assert isinstance(view, TenantView)
        return view

    async def tenant(self, code: str) -> TenantView | None:
        if not (0 < len(code) <= 64 and is_storable_text(code)):
            return None  # a code from a URL: NUL reached PostgreSQL, which refuses it (SQLite said "unknown")
        view = await self._tenant(code)
        if view is not None and self.pay_resolver is not None:
            await self.pay_resolver.refresh(view)
        return view

    async def _tenant(self, code: str) -> TenantView | None:
        try:
            return await self._tenants.get_or_load(code, lambda: self._load_tenant(code))
        except NotFoundError:  # not cached: a tenant created next is found at once
            return None

    async def _load_tenant(self, code: str) -> TenantView:
        async with self.uows() as uow:
            return await get_tenant(uow, code)

    def forget_tenants(self) -> None:
        """Drop cached tenants (after their credentials change)."""
        self._tenants.clear()
        if self.pay_resolver is not None:
            self.pay_resolver.forget()

    async def channel(self, code: str, account: str) -> TenantView | None:
        """The tenant `code` through its channel account `account` (None: no such tenant, or
        no such enabled account): that account's credentials and merchant."""
        tenant = await self.tenant(code)
        if tenant is None or not (0 < len(account) <= 32 and is_storable_text(account)):
            return None
        try:
            return await self._tenants.get_or_load(("acct", tenant.id, account),
                                                   lambda: self._load_channel(tenant, code=account))
        except NotFoundError:
            return None

    async def channel_by_id(self, tenant: TenantView, account_id: int | None) -> TenantView:
        """The tenant through the channel account with this id (an order's, a queued push's);
        the tenant as it is for None/0 or an account gone since."""
        if not account_id:
            return tenant
        try:
            return await self._tenants.get_or_load(("acct_id", tenant.id, account_id),
                                                   lambda: self._load_channel(tenant, account_id=account_id))
        except NotFoundError:
            return tenant

    async def shared_at(self, tenant: TenantView, request: web.Request) -> TenantView:
        """The tenant through the official account a share link or QR image names
        (`?a=<account id>`, social_mall/sharing.py `share_path`): its QR is made there. The
        tenant itself without one, or for an id that is malformed, another tenant's, disabled
        since, or not an official account's."""
        view = await self.channel_by_id(tenant, parse_id(request.query.get(ACCOUNT_ARG, "")))
        return view if view.account_kind == "mp" else tenant

    async def push_target(self, tenant_id: int, member_id: int, *, order_id: int | None = None,
                          account: int | None = None) -> tuple[TenantView, str] | None:
        """Where a push to the member goes: the official account its openid belongs to (the
        tenant through that account, its token) and that openid; about an order, the account
        the order was placed on when the member has an openid there; else `account` (the one
        the member asked through) when it has one there. None without an official-account
        openid (members/service.py `push_identity`)."""
        tenant = await self.tenant_by_id(tenant_id)
        async with self.uows() as uow:
            prefer = (await order_channel(uow, tenant_id, order_id))[0] if order_id is not None else account
            found = await push_identity(uow, tenant_id, member_id, "mp", prefer_account=prefer)
        if found is None:
            return None
        view = await self.channel_by_id(tenant, found[0])
        return (view if view.account_kind == "mp" else tenant), found[1]

    async def for_order(self, tenant: TenantView, account_id: int, merchant_id: int) -> TenantView:
        """The tenant as an order sees it: through the channel account it was placed on (its
        app id for OAuth and pushes) and with the merchant it is paid to."""
        view = await self.channel_by_id(tenant, account_id)
        return view if view.merchant_id == merchant_id else replace(view, merchant_id=merchant_id)

    async def _load_channel(self, tenant: TenantView, *, code: str | None = None,
                            account_id: int | None = None) -> TenantView:
        async with self.uows() as uow:
            return await get_channel(uow, tenant, code=code, account_id=account_id)

    async def tenant_by_id(self, tenant_id: int) -> TenantView:
        view = await self._tenant_by_id(tenant_id)
        if self.pay_resolver is not None:
            await self.pay_resolver.refresh(view)
        return view

    async def _tenant_by_id(self, tenant_id: int) -> TenantView:
        return await self._tenants.get_or_load(("id", tenant_id), lambda: self._load_tenant_by_id(tenant_id))

    async def _load_tenant_by_id(self, tenant_id: int) -> TenantView:
        async with self.uows() as uow:
            return await get_tenant_by_id(uow, tenant_id)

    def gateway(self, tenant: TenantView) -> SandboxGateway | PayGateway | None:
        """The tenant's payment method: its real gateway when it has a pay account (module
        `pay`; a disabled or broken account answers every call with an error), the sandbox
        only when the settings allow it for this tenant, else None: no payment method, and
        every pay page, 确认支付, notify and chat link says so instead of paying."""
        if self.pay_resolver is not None:
            real = self.pay_resolver.cached(tenant)
            if real is not None:
                return real
        if not self.sandbox_allowed(tenant):
            return None
        return SandboxGateway(
            platform=self.platform_keys, mchid=tenant.pay_mch_id, appid=tenant.pay_app_id,
            apiv3_key=self._sandbox_key(tenant), max_skew=self.settings.signature_max_skew_seconds,
        )

    def sandbox_allowed(self, tenant: TenantView) -> bool:
        """The sandbox is an explicit choice: on in the settings, and this tenant listed
        (and marked sandbox) — never a fallback for a tenant nobody configured."""
        s = self.settings
        return s.sandbox_pay_enabled and tenant.code in s.sandbox_pay_tenants and tenant.pay_gateway == "sandbox"

    def _sandbox_key(self, tenant: TenantView) -> str:
        """The APIv3 key between the sandbox platform and the tenant (both ends are us): the
        tenant's own when it has a valid one, else one derived from the secret key."""
        if len(tenant.pay_apiv3_key.encode()) == 32:
            return tenant.pay_apiv3_key
        key = self.settings.secret_key.get_secret_value().encode()
        return hmac.new(key, f"sandbox-apiv3:{tenant.code}".encode(), hashlib.sha256).hexdigest()[:32]

    def can_pay(self, tenant: TenantView) -> bool:
        """Can a buyer pay this tenant now (a working real account or the allowed sandbox)?"""
        gw = self.gateway(tenant)
        return gw is not None and gw.name != "unavailable"

    def simulates_wechat(self, tenant: TenantView) -> bool:
        """Does this server play WeChat's message API for the tenant? Only while it runs on
        the demo app id (no real account behind it) and WECHAT_API_BASE is WeChat's own host
        (a base of one's own, like the tests' fakes, is used as it is)."""
        return (tenant.wechat_app_id == DEMO_APP_ID
                and self.settings.wechat_api_base.rstrip("/") == WECHAT_API_HOST)

    def wechat(self, tenant: TenantView) -> WeChatClient:
        base = self.settings.wechat_api_base
        if self.simulates_wechat(tenant):
            base = f"{self.public_base_url}/wechat/sim/{tenant.code}"  # handlers/wechat_simulator.py
        return WeChatClient(
            self.http, self.kv, api_base=base,
            app_id=tenant.wechat_app_id, app_secret=tenant.wechat_app_secret,
            # each account's token (and JS-SDK ticket) under a key of its own
            tenant=f"{tenant.code}:{tenant.account_code}" if tenant.account_code else tenant.code,
        )

    # links -------------------------------------------------------------------------
    async def mini_program(self, tenant: TenantView, account: str | None = None) -> TenantView | None:
        """The tenant through the mini-program of the member API: its `mini` channel account
        `account`, or (None) its default one, the first enabled; None when there is none."""
        if account is not None:
            view = await self.channel(tenant.code, account)
            return view if view is not None and view.account_kind == "mini" else None
        try:
            return await self._tenants.get_or_load(("mini", tenant.id), lambda: self._load_default_mini(tenant))
        except NotFoundError:
            return None

    async def _load_default_mini(self, tenant: TenantView) -> TenantView:
        async with self.uows() as uow:
            return await get_default_channel(uow, tenant, "mini")

    def bound_appids(self) -> tuple[str, ...]:
        """App ids besides an official account whose payers pay through the tenant's
        merchant, from the settings (the demo's mini-program; a tenant's own channel accounts'
        app ids are accepted by `payments.service.apply_transaction` itself)."""
        return (self.settings.mini_app_id,) if self.settings.mini_app_id else ()

    def pay_token(self, tenant_code: str, order_no: str) -> str:
        key = self.settings.secret_key.get_secret_value().encode()
        return hmac.new(key, f"pay:{tenant_code}:{order_no}".encode(), hashlib.sha256).hexdigest()[:20]

    def pay_url(self, tenant_code: str, order_no: str) -> str:
        t = self.pay_token(tenant_code, order_no)
        return f"{self.public_base_url}/h5/pay/{tenant_code}/{order_no}?t={t}"

    async def pay_link(self, tenant_code: str, order_no: str) -> str | None:
        """The order's pay link for a chat answer, or None when the tenant has no payment
        method (the answer then says payment is unavailable instead of offering a link)."""
        tenant = await self.tenant(tenant_code)
        if tenant is None or not self.can_pay(tenant):
            return None
        return self.pay_url(tenant_code, order_no)

    def track(self, act: Activity) -> None:
        """Hand a member activity seen on a web page to the activity sinks (they only
        buffer it: social_mall/activity.py); a sink's failure never fails the page."""
        for sink in self.registry.activity_sinks:
            try:
                sink(act)
            except Exception:  # noqa: BLE001 - taking note must never break a page
                logging.getLogger(__name__).exception("activity.sink_failed", extra={"kind": act.kind})

    def image_url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.public_base_url}{path}"

    def product_url(self, tenant_code: str, product_id: int) -> str:
        return f"{self.public_base_url}/h5/product/{tenant_code}/{product_id}"

    def page_url(self, path: str) -> str:
        return f"{self.public_base_url}{path}"

    def notify_url(self, tenant_code: str) -> str:
        return f"{self.public_base_url}/pay/notify/{tenant_code}"


SERVICES = web.AppKey("services", Services)


async def merchant_of(request: web.Request) -> TenantView | None:
    """The tenant of a pay callback `/…/{tenant}` (its default merchant) or `/…/{tenant}/{merchant}`
    (another of its merchants); None when either is unknown."""
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    raw = request.match_info.get("merchant")
    if tenant is None or raw is None:
        return tenant
    merchant = parse_id(raw)
    if merchant is None:
        return None
    return replace(tenant, merchant_id=merchant)


async def shop_of(request: web.Request) -> tuple[Services, TenantView]:
    """The services and the tenant named by the `{tenant}` of the route; 404 when unknown."""
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    if tenant is None:
        raise web.HTTPNotFound(text="店铺不存在")
    return svc, tenant
