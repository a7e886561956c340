#!/usr/bin/env python3
"""social_mall: the CLI and composition root.

    python bot.py serve [--host 127.0.0.1 --port 8080]   # migrates + seeds the demo on the embedded default
    python bot.py migrate
    python bot.py seed-demo
    python bot.py create-admin --username boss [--tenant demo] [--role owner]
    python bot.py chat [--user NAME] [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import getpass
import itertools
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from flows.runner import FlowRunner
from flows.templating import make_env
from handlers import console, groupbuy, h5, loyalty, pay_module, referral, shop
from handlers import metrics
from handlers.context import SERVICES, Services, utcnow
from social_mall.admins import Role
from social_mall.console.auth import first_admin
from social_mall.demo import DEMO_CODE, DemoCredentials, ensure_demo_order, seed_demo
from social_mall.leader import Leader
from social_mall.logs import request_id, setup_logging
from social_mall.outbox import OutboxWorker
from social_mall.payments.wxpay_v3 import load_or_create_keypair
from social_mall.plugins import Module, build_registry, discover
from social_mall.settings import Settings
from storage.cache import ReadCache
from storage.db import create_engine, migrate, session_factory, unapplied_heads, usable_connections
from social_mall.admission import Admission
from social_mall.groupbuy.desk import use_admission
from storage.admission import open_admission
from storage.kv import open_kv
from storage.uow import uow_factory

log = logging.getLogger("social_mall")

BUILTIN_MODULES: Sequence[Module] = (
    shop.MODULE, pay_module.MODULE, console.MODULE, referral.MODULE, groupbuy.MODULE, loyalty.MODULE,
)


def demo_credentials(settings: Settings) -> DemoCredentials:
    return DemoCredentials(
        wechat_app_id=settings.wechat_app_id,
        wechat_token=settings.wechat_token.get_secret_value(),
        wechat_aes_key=settings.wechat_aes_key.get_secret_value(),
        wechat_app_secret=settings.wechat_app_secret.get_secret_value(),
        mini_app_id=settings.mini_app_id, mini_app_secret=settings.mini_app_secret.get_secret_value(),
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GC_YOUNG_THRESHOLD = 10_000  # objects; see lifecycle() (the interpreter's default is 700)
DAILY_GRACE = 3600  # seconds: a daily job that missed its time (a busy loop, a new leader) still runs within this

# Request ids: a random per-process prefix and a counter (16 hex digits, like
# token_hex(8)), unique without a urandom() call per request.
_RID_PREFIX = secrets.token_hex(4)
_rid_seq = itertools.count(1)


def _new_rid_prefix() -> None:
    global _RID_PREFIX
    _RID_PREFIX = secrets.token_hex(4)


# a forked worker (`serve --workers N`) draws its own prefix: ids stay unique across workers
os.register_at_fork(after_in_child=_new_rid_prefix)


def client_of(request: web.Request, trusted: frozenset[str]) -> web.Request:
    """Behind a proxy in `trusted` (FORWARDED_ALLOW_IPS), the request as the client made it:
    its address from the last X-Forwarded-For hop (the one the proxy added) and its scheme from
    X-Forwarded-Proto. From anyone else the headers are ignored (they could be forged)."""
    if request.remote not in trusted:
        return request
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    proto = request.headers.get("X-Forwarded-Proto", "")
    changes: dict[str, str] = {}
    if hops:
        changes["remote"] = hops[-1]
    if proto in ("http", "https"):
        changes["scheme"] = proto
    return request.clone(**changes) if changes else request  # type: ignore[arg-type]


def with_request_id(handler: Handler, route: str = "", trusted: frozenset[str] = frozenset()) -> Handler:
    """The route's handler, run with a request id: the logs carry it (the `request_id`
    context variable) and the response's X-Request-Id header echoes it.

    A wrapper per route, not a middleware: an app with no middleware skips aiohttp's
    middleware chain on every request (two coroutine layers; 1.5% of the chat endpoint's
    instructions per message in bench/endpoint_cpu.py)."""

    @functools.wraps(handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        rid = request.headers.get("X-Request-Id") or f"{_RID_PREFIX}{next(_rid_seq) & 0xFFFFFFFF:08x}"
        token = request_id.set(rid)
        if trusted:
            request = client_of(request, trusted)
        began = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-Id"] = rid
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            request_id.reset(token)
            metrics.observe(route, status, time.perf_counter() - began)

    return handle


def with_request_ids(routes: Iterable[web.AbstractRouteDef],
                     trusted: Iterable[str] = ()) -> list[web.AbstractRouteDef]:
    proxies = frozenset(trusted)
    return [web.RouteDef(r.method, r.path, with_request_id(r.handler, r.path, proxies), r.kwargs)
            if isinstance(r, web.RouteDef) else r for r in routes]


def build_app(
    settings: Settings,
    *,
    public_base_url: str = "",
    clock: Callable[[], datetime] = utcnow,
    modules: Sequence[Module] | None = None,
    auto_setup: bool | None = None,
) -> web.Application:
    """The aiohttp app. Storage, clients and the scheduler open in a cleanup_ctx.

    `auto_setup` (default: on the embedded default) migrates and seeds the demo tenant.
    """
    # Endpoints cap their own bodies (WeChat and pay callbacks: max_body_bytes); the app-wide
    # limit only has to admit the console's picture uploads.
    app = web.Application(client_max_size=settings.max_upload_bytes)
    setup_now = settings.is_embedded if auto_setup is None else auto_setup
    svc = Services(settings, (public_base_url or settings.public_base_url).rstrip("/"), clock)
    found = list(modules) if modules is not None else discover(BUILTIN_MODULES)
    registry = build_registry(svc, found, settings.disabled_modules)
    svc.registry = registry
    if registry.books_checks:   # the modules' own money, checked hourly (social_mall/books.py)
        from social_mall.books import run_checks

        async def books() -> int:
            return len(await run_checks(svc.uows, registry.books_checks))

        registry.add_job("books.checks", 3600.0, books)
    svc.templates = make_env(registry.template_dirs)
    h5.install_filters(svc.templates)
    app.add_routes(with_request_ids(registry.routes, settings.forwarded_allow_ips))
    app[SERVICES] = svc

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        svc.engine = engine = create_engine(settings.database_url, schema=settings.database_schema,
                                            pool_size=settings.database_pool_size,
                                            max_overflow=settings.database_max_overflow)
        svc.pending_migrations = functools.partial(unapplied_heads, engine)
        if setup_now:
            await migrate(engine)
        svc.kv = kv = open_kv(settings.redis_url, settings.kv_prefix)
        svc.admission = Admission(open_admission(kv))
        svc.http = http = aiohttp.ClientSession()
        svc.platform_keys = load_or_create_keypair(settings.data_dir / "sandbox_pay_platform")
        svc.cache = ReadCache(ttl=settings.catalog_cache_seconds)
        svc.uows = uow_factory(session_factory(engine), registry.topic_map(), svc.cache,
                               modules=registry.modules, pricers=registry.pricers,
                               payment_methods=registry.payment_methods, order_notes=registry.order_notes,
                               visibility=registry.visibility)
        use_admission(svc.uows, svc.admission)   # group-buy seats: refusals answered from memory
        svc.outbox = OutboxWorker(svc.uows, registry.subscribers)
        svc.runner = FlowRunner(
            uows=svc.uows, kv=kv, templates=svc.templates, links=svc,
            state_ttl=settings.conversation_ttl_seconds,
            order_timeout=timedelta(minutes=settings.order_timeout_minutes),
            clock=clock, extra_flows=registry.flows, on_commit=svc.outbox.kick,
            methods=registry.fulfilments, card_notes=registry.card_notes, search=registry.search,
            related=registry.related, activity_sinks=registry.activity_sinks,
        )
        if setup_now:
            showcase = settings.demo_showcase
            async with svc.uows() as uow:
                tenant = await seed_demo(uow, demo_credentials(settings), now=clock(),
                                         extras=registry.demo_seeders(showcase))
                order_no = await ensure_demo_order(
                    uow, tenant, now=clock(), timeout=timedelta(minutes=settings.order_timeout_minutes))
                admin = await first_admin(uow, tenant.id) if showcase and "console" in registry.modules else None
                await uow.commit()
            if svc.sandbox_allowed(tenant):
                print(f"沙箱支付演示订单 / sandbox pay page: {svc.pay_url(tenant.code, order_no)}", flush=True)
            else:
                print("沙箱支付未开启 / sandbox pay is off (SOCIAL_MALL_SANDBOX_PAY); demo order "
                      f"{order_no} has no payment method", flush=True)
            if admin is not None:
                # to the terminal only, once: never through logging (log streams are collected)
                print(f"控制台管理员 / console admin: {svc.public_base_url}/console/  "
                      f"用户名 / username: {admin[0]}  密码 / password: {admin[1]}  "
                      "(只显示这一次 / shown only now)", flush=True)
        for name, load in registry.warmups:   # modules' slow loads, before the first request
            try:
                await asyncio.to_thread(load)
            except Exception:
                log.exception("app.warmup_failed", extra={"warmup": name})
        scheduler = AsyncIOScheduler(timezone="UTC")
        # of the workers sharing the key-value store, the one holding the lease runs the jobs
        svc.leader = leader = Leader(kv, ttl=settings.leader_lease_seconds)
        if settings.scheduler_enabled:
            await leader.try_lead()
            leader.start()
            for job in registry.jobs:
                trigger, when = job.trigger()   # every n seconds, or daily at a time of day (cron)
                scheduler.add_job(leader.guard(metrics.metered_job(job.name, job.run)), trigger, **when, id=job.name,
                                  max_instances=1, coalesce=True, misfire_grace_time=DAILY_GRACE if job.at else 1)
            scheduler.start()
        log.info("app.started", extra={"modules": registry.modules, "db": engine.dialect.name,
                                       "kv": type(kv).__name__})
        gc.freeze()  # what start-up built lives as long as the app: the collector needn't rescan it
        # With dozens of requests in flight, a few thousand of their objects are alive at any
        # moment, and the default young-generation threshold (700) ran a collection every
        # ~40 requests that found them all alive: ~9 µs per request in the endpoint bench.
        # Garbage that needs the collector (cycles) is rare; a higher threshold still bounds it.
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            await leader.stop()
            if svc.background:
                await asyncio.wait(list(svc.background), timeout=10)
            await svc.outbox.drain()
            await http.close()
            await kv.close()
            await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app


# -- CLI -----------------------------------------------------------------------------------

async def _with_uow(settings: Settings, fn: Callable[..., object]) -> object:
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    try:
        async with uow_factory(session_factory(engine), {})() as uow:
            result = await fn(uow)  # type: ignore[misc]
            await uow.commit()
            return result
    finally:
        await engine.dispose()


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    async def run() -> None:
        engine = create_engine(settings.database_url, schema=settings.database_schema)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(run())
    print("migrated")
    return 0


def cmd_seed(settings: Settings, _: argparse.Namespace) -> int:
    """The demo tenant and catalog, and (DEMO_SHOWCASE) what every enabled module shows
    off; the events it emits wait in the outbox for the server's subscribers."""
    svc = Services(settings, settings.public_base_url)
    registry = build_registry(svc, discover(BUILTIN_MODULES), settings.disabled_modules)
    extras = registry.demo_seeders(settings.demo_showcase)

    async def run() -> object:
        engine = create_engine(settings.database_url, schema=settings.database_schema)
        try:
            async with uow_factory(session_factory(engine), registry.topic_map(), modules=registry.modules)() as uow:
                tenant = await seed_demo(uow, demo_credentials(settings), extras=extras)
                await uow.commit()
                return tenant
        finally:
            await engine.dispose()

    tenant = asyncio.run(run())
    print(f"demo tenant ready: {tenant!r}")
    return 0


PASSWORD_PROMPT = "password (at least 10 characters): "


def cli_error(command: str, message: str) -> int:
    """A refusal the user can act on: one line on stderr, exit code 2 (like a usage error)."""
    print(f"{command}: {message}", file=sys.stderr, flush=True)
    return 2


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import IntegrityError

    from social_mall.console.auth import new_admin
    from social_mall.console.errors import ConflictError, InvalidInputError
    from social_mall.errors import NotFoundError
    from social_mall.tenants import get_tenant
    from storage.uow import UnitOfWork

    password = args.password or getpass.getpass(PASSWORD_PROMPT)

    async def run(uow: object) -> int:
        assert isinstance(uow, UnitOfWork)
        tenant_id = None if args.role == Role.SUPER else (await get_tenant(uow, args.tenant)).id
        return await new_admin(uow, username=args.username, password=password, role=Role(args.role),
                               tenant_id=tenant_id, actor="cli")

    try:
        admin_id = asyncio.run(_with_uow(settings, run))
    except InvalidInputError as exc:
        if exc.field == "password":
            return cli_error("create-admin", "the password is too short: it needs at least 10 characters "
                                             "(give it with --password, or type it at the prompt)")
        return cli_error("create-admin", "the username must be 3-64 characters: letters, digits, _ . @ -")
    except (ConflictError, IntegrityError):  # IntegrityError: created by someone else a moment ago
        return cli_error("create-admin", f"an administrator named {args.username!r} already exists "
                                         "(choose another --username)")
    except NotFoundError:
        return cli_error("create-admin", f"there is no shop {args.tenant!r} (the demo shop is "
                                         f"{DEMO_CODE!r}: run `bot.py seed-demo` first, or pass --tenant CODE)")
    print(f"admin {args.username} created (id {admin_id})")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    base = settings.public_base_url or f"http://{args.host}:{args.port}"
    if args.workers > 1:
        if settings.database_url.startswith("sqlite") or not settings.redis_url:
            return cli_error("serve", "--workers N needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL): "
                                      "workers share nothing else")
        from social_mall.workers import serve_workers

        if warning := connection_budget(settings, args.workers):
            print(f"serve: {warning}", file=sys.stderr, flush=True)

        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        if not metrics_dir:  # read when prometheus_client is imported: set it, then start over
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="social_mall_metrics_")
            os.execv(sys.executable, [sys.executable, *sys.argv])
        for stale in Path(metrics_dir).glob("*.db"):  # a previous run's samples
            stale.unlink()
        print(f"social_mall on {base} with {args.workers} workers "
              f"(official account endpoint: {base}/wechat/mp/{DEMO_CODE})", flush=True)
        return serve_workers(args.host, args.port, args.workers,
                             lambda sock: _run_worker(settings, base, sock=sock))
    print(f"social_mall on {base}  (official account endpoint: {base}/wechat/mp/{DEMO_CODE})", flush=True)
    _run_worker(settings, base, host=args.host, port=args.port)
    return 0


def connection_budget(settings: Settings, workers: int) -> str | None:
    """What to change when `workers` processes could ask PostgreSQL for more connections
    than it gives (each up to SOCIAL_MALL_DATABASE_POOL_SIZE + _MAX_OVERFLOW): past the
    server's limit a crowd's requests fail with "too many clients". None when they fit, or
    when the server can't be asked now (the workers then report it themselves)."""
    if settings.database_url.startswith("sqlite"):
        return None
    per_worker = settings.database_pool_size + settings.database_max_overflow

    async def usable() -> int:
        engine = create_engine(settings.database_url, schema=settings.database_schema, pool_size=1, max_overflow=0)
        try:
            return await usable_connections(engine)
        finally:
            await engine.dispose()

    try:
        limit = asyncio.run(usable())
    except (OSError, SQLAlchemyError) as exc:
        log.warning("serve.connections_unknown", extra={"error": type(exc).__name__})
        return None
    if workers * per_worker <= limit:
        return None
    fits = max(limit // workers, 1)
    return (f"{workers} workers × {per_worker} PostgreSQL connections each (pool "
            f"{settings.database_pool_size} + overflow {settings.database_max_overflow}) = {workers * per_worker}, "
            f"but the server gives {limit} (max_connections less the reserved ones). Under a crowd the extra "
            f"requests fail: set SOCIAL_MALL_DATABASE_POOL_SIZE and SOCIAL_MALL_DATABASE_MAX_OVERFLOW so that "
            f"their sum is at most {fits}, raise max_connections, or put PgBouncer in front (docs/deploy.md).")


def _run_worker(settings: Settings, base: str, *, host: str | None = None, port: int | None = None,
                sock: object = None) -> None:
    """One worker process: the app on `host:port`, or on an inherited listening `sock`."""
    if settings.event_loop == "uvloop":
        import uvloop

        uvloop.install()
    app = build_app(settings, public_base_url=base)
    web.run_app(app, host=host, port=port, sock=sock, print=None,  # type: ignore[arg-type]
                access_log_format='%a "%r" %s %b %Tf', shutdown_timeout=10)


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.terminal_chat import run_chat

    return asyncio.run(run_chat(settings, url=args.url, user=args.user, tenant=args.tenant,
                                safe_mode=args.safe))


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    parser = argparse.ArgumentParser(prog="bot.py", description="social_mall")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(fn=cmd_migrate)
    sub.add_parser("seed-demo", help="create the demo tenant and catalog").set_defaults(fn=cmd_seed)
    p = sub.add_parser("serve", help="run the server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the port (more than 1 needs PostgreSQL and Redis)")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("create-admin", help="create a console administrator")
    p.add_argument("--username", required=True, help="3-64 characters: letters, digits, _ . @ -")
    p.add_argument("--password", default="",
                   help="at least 10 characters; without it the password is asked for at a prompt")
    p.add_argument("--tenant", default=DEMO_CODE, help=f"the shop's code (default {DEMO_CODE})")
    p.add_argument("--role", default=Role.OWNER, choices=[r.value for r in Role])
    p.set_defaults(fn=cmd_create_admin)
    p = sub.add_parser("chat", help="shop from the terminal through the real endpoint")
    p.add_argument("--user", default="terminal_user")
    p.add_argument("--tenant", default=DEMO_CODE)
    p.add_argument("--url", default="")
    p.add_argument("--safe", action="store_true", help="use safe (AES) mode")
    p.set_defaults(fn=cmd_chat)
    args = parser.parse_args(argv)
    return int(args.fn(settings, args))


if __name__ == "__main__":
    sys.exit(main())
