"""The tenant lookup every request makes: cached per worker, one database read per expiry
even when many requests miss at once, and an unknown code never cached."""

from __future__ import annotations

import asyncio
from pathlib import Path

from handlers.context import TENANT_CACHE_SECONDS, Services
from social_mall.tenants import TenantView
from storage.uow import UnitOfWork, UowFactory
from tests.conftest import app_settings


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _services(backend, tmp_path: Path, uows: UowFactory) -> tuple[Services, list[int], _Clock]:
    svc = Services(app_settings(backend, tmp_path, "http://127.0.0.1:9"), "")
    opened: list[int] = []

    def counting() -> UnitOfWork:
        opened.append(1)
        return uows()

    svc.uows = counting
    clock = _Clock()
    svc._tenants.clock = clock
    return svc, opened, clock


async def test_concurrent_lookups_share_one_read_until_the_entry_expires(
        backend, tmp_path: Path, uows: UowFactory, demo: TenantView) -> None:
    svc, opened, clock = _services(backend, tmp_path, uows)

    first = await asyncio.gather(*(svc.tenant(demo.code) for _ in range(20)))
    assert {t.id for t in first if t is not None} == {demo.id} and len(opened) == 1

    clock.now += TENANT_CACHE_SECONDS - 1
    await svc.tenant(demo.code)
    assert len(opened) == 1  # still fresh

    clock.now += 2  # expired: the requests that miss together share one read
    again = await asyncio.gather(*(svc.tenant(demo.code) for _ in range(20)))
    assert all(t is not None and t.id == demo.id for t in again) and len(opened) == 2


async def test_lookups_by_id_are_cached_too(backend, tmp_path: Path, uows: UowFactory, demo: TenantView) -> None:
    svc, opened, _ = _services(backend, tmp_path, uows)
    views = await asyncio.gather(*(svc.tenant_by_id(demo.id) for _ in range(10)))
    assert {v.code for v in views} == {demo.code} and len(opened) == 1


async def test_an_unknown_code_is_not_cached_and_forget_drops_the_known_ones(
        backend, tmp_path: Path, uows: UowFactory, demo: TenantView) -> None:
    svc, opened, _ = _services(backend, tmp_path, uows)
    assert await svc.tenant("nosuch") is None
    assert await svc.tenant("nosuch") is None
    assert len(opened) == 2  # a tenant created next would be found at once

    await svc.tenant(demo.code)
    svc.forget_tenants()
    await svc.tenant(demo.code)
    assert len(opened) == 4


async def test_known_tenant_answers_without_a_read_only_while_the_entry_is_fresh(
        backend, tmp_path: Path, uows: UowFactory, demo: TenantView) -> None:
    svc, opened, clock = _services(backend, tmp_path, uows)
    assert svc.known_tenant(demo.code) is None  # never looked up: the caller asks `tenant`
    await svc.tenant(demo.code)
    known = svc.known_tenant(demo.code)
    assert known is not None and known.id == demo.id and len(opened) == 1
    clock.now += TENANT_CACHE_SECONDS + 1
    assert svc.known_tenant(demo.code) is None
    await svc.tenant(demo.code)
    svc.forget_tenants()
    assert svc.known_tenant(demo.code) is None


async def test_known_tenant_waits_for_the_pay_gateway_to_be_fresh_too(
        backend, tmp_path: Path, uows: UowFactory, demo: TenantView) -> None:
    from adapters.wechatpay_v3 import PayResolver

    svc, opened, _ = _services(backend, tmp_path, uows)
    svc.pay_resolver = resolver = PayResolver(svc)
    await svc.tenant(demo.code)
    assert svc.known_tenant(demo.code) is not None and resolver.fresh(demo)
    resolver.forget(demo.id)  # the merchant changed the pay account
    assert not resolver.fresh(demo) and svc.known_tenant(demo.code) is None
    await svc.tenant(demo.code)
    assert svc.known_tenant(demo.code) is not None
